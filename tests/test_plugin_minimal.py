"""The base wheel with only pytest installed: the plugin loads, its fixtures and the
`pikku-storage` command say what to install (issue 13 items 1 and 7).

Builds a wheel of this tree, installs it with pytest alone into a fresh virtualenv, and runs a
tiny test project there; about half a minute, bounded by subprocess timeouts.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEP_TIMEOUT = 240  # seconds per build/install/run step

pytestmark = pytest.mark.timeout(4 * STEP_TIMEOUT)

SAMPLE = """
def test_arithmetic():
    assert 1 + 1 == 2


def test_uses_storage(pikku_storage):
    pass
"""


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )


@pytest.fixture(scope="module")
def minimal_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv holding only pytest and a wheel of this tree, no extras."""
    base = tmp_path_factory.mktemp("minimal")
    source = base / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__"),
    )
    built = _run(
        sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", ".", "-w", base, cwd=source
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = base.glob("pikku_storage-*.whl")
    venv.create(base / "venv", with_pip=True)
    python = base / "venv" / "bin" / "python"
    installed = _run(python, "-m", "pip", "install", "-q", wheel, "pytest", cwd=base)
    assert installed.returncode == 0, installed.stderr
    return python


def test_plugin_loads_without_pytest_asyncio(minimal_python: Path, tmp_path: Path) -> None:
    probe = _run(minimal_python, "-c", "import pytest_asyncio", cwd=tmp_path)
    assert probe.returncode != 0, "the minimal venv must not have pytest-asyncio"
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    result = _run(
        minimal_python,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-rE",
        "test_sample.py",
        cwd=tmp_path,
    )
    out = result.stdout + result.stderr
    assert "Error while loading plugin" not in out
    assert "1 passed, 1 error" in out, out
    assert "pip install 'pikku-storage[testing]'" in out, out


def test_the_command_without_the_cli_extra_says_what_to_install(
    minimal_python: Path, tmp_path: Path
) -> None:
    result = _run(minimal_python.parent / "pikku-storage", "--help", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "pikku-storage: the command needs the cli extra (click is not installed): "
        "pip install 'pikku-storage[cli]'"
    ]
