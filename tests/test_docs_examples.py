"""The examples of docs/contract.md run as written (issue 13 item 5): the contract suite for
your own backend, here on a `my_backend` module built on memory and on SQLite files."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs" / "contract.md"

MEMORY_BACKEND = """
from pikku_storage import open_storage
from pikku_storage.memory import InMemoryStore

_stores = {}


def open_my_storage(*, namespace, **options):
    store = _stores.setdefault(namespace, InMemoryStore())
    return open_storage("memory://", store=store, **options)
"""

SQLITE_BACKEND = """
from pikku_storage import open_storage

_DIRECTORY = "@TMP@"


def open_my_storage(*, namespace, **options):
    return open_storage(f"sqlite:///{_DIRECTORY}/{namespace}.db", **options)
"""


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def _contract_example() -> str:
    after = DOCS.read_text().split("<!-- contract-example -->", 1)[1]
    return _python_blocks(after)[0]


def _run(pytester: pytest.Pytester, backend: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(my_backend=backend, test_my_backend=_contract_example())
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    # A subprocess: an in-process run drops the modules it imported (SQLAlchemy among them)
    # from sys.modules afterwards, and later tests then mix two copies of them.
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", *args)


def test_the_contract_example_passes_on_a_memory_backend(pytester: pytest.Pytester) -> None:
    result = _run(pytester, MEMORY_BACKEND)
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert outcomes["passed"] > 500
    assert "failed" not in outcomes
    assert "error" not in outcomes


@pytest.mark.skipif(
    importlib.util.find_spec("pikku_storage.sqlite") is None,
    reason="the sqlite backend is not installed",
)
def test_the_contract_example_passes_on_an_sqlite_backend(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    directory = tmp_path_factory.mktemp("my-backend")
    # The thread and run services are where a shared namespace failed (Thread already exists).
    result = _run(
        pytester,
        SQLITE_BACKEND.replace("@TMP@", str(directory)),
        "-k",
        "thread or message or list_runs",
    )
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert outcomes["passed"] > 50
    assert "failed" not in outcomes


def test_the_plugin_example_passes(pytester: pytest.Pytester) -> None:
    first = _python_blocks(DOCS.read_text())[0]
    pytester.makepyfile(test_example=first)
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)


def _spec_refs_script() -> ModuleType:
    path = DOCS.parents[1] / "scripts" / "spec-refs-to-docs.py"
    spec = importlib.util.spec_from_file_location("spec_refs_to_docs", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_docs_target_of_the_spec_reference_mapping_exists() -> None:
    assert _spec_refs_script().check() == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("runs (Spec: 01 §4).", "runs (see docs/services/workflow-runs.md)."),
        (
            "Spec: 00 §5, 01 §5.4.",
            "See docs/concepts.md#lifecycle-and-namespaces, docs/operations.md#storage-layout.",
        ),
        (
            '"""02 §6 Saving messages 7."""',
            '"""docs/services/ai-storage.md#saving-messages item 7."""',
        ),
        ("(01 §6 item 35)", "(docs/services/workflows.md#locks item 35)"),
        (
            "(03 §2-§3,\n§6.2)",
            "(docs/services/channels.md, docs/services/eventhub.md, "
            "docs/operations.md#storage-layout)",
        ),
    ],
)
def test_spec_references_become_docs_links(text: str, expected: str) -> None:
    assert _spec_refs_script().rewrite(text)[0] == expected
