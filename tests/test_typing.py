"""A typed user application passes `mypy --strict` against the installed packages (issue 13
item 6): JSON inputs are covariant, and the plugin's `StorageFactory` type is public."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SAMPLE = Path(__file__).parent / "typing_sample" / "app.py"


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_a_typed_sample_app_passes_mypy_strict(tmp_path: Path) -> None:
    from mypy import api

    stdout, stderr, status = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path), str(SAMPLE)]
    )
    assert status == 0, stdout + stderr


def test_the_same_app_fails_mypy_on_a_non_json_payload(tmp_path: Path) -> None:
    """The check is not vacuous: a payload that is not JSON is still a type error."""
    pytest.importorskip("mypy")
    from mypy import api

    bad = tmp_path / "bad.py"
    bad.write_text(
        "from pikku_storage import Storage\n\n"
        "async def f(storage: Storage) -> None:\n"
        "    await storage.workflows.create_run('w', {'when': object()})\n"
    )
    stdout, _, status = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path), str(bad)]
    )
    assert status == 1
    assert "bad.py:4: error: Dict entry 0 has incompatible type" in stdout, stdout
