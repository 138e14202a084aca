"""The `pikku-storage` command through click's CliRunner: help, demo, inspection, check, errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from pikku_storage.cli import main

HAS_SQLITE = importlib.util.find_spec("pikku_storage.sqlite") is not None
needs_sqlite = pytest.mark.skipif(not HAS_SQLITE, reason="the sqlite backend is not installed")


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            paths += _paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


@pytest.mark.parametrize("path", _paths(main), ids=lambda p: " ".join(p) or "main")
def test_every_command_prints_help(path: tuple[str, ...]) -> None:
    result = _invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")


def test_demo_on_memory_prints_every_console_view() -> None:
    result = _invoke("demo", "memory://")
    assert result.exit_code == 0, result.output
    for heading in (
        "Workflow runs",
        "Step history of run",
        "charge-card",
        "Thread ",
        "issueRefund",
        "Approval decisions",
        "Subscribers of topic orders.shipped",
        "Live deployments",
        "pruned stale deployments: worker-",
    ):
        assert heading in result.output


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[Result]]:
    """An SQLite file the demo ran on twice, with both results."""
    if not HAS_SQLITE:
        pytest.skip("the sqlite backend is not installed")
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    return url, [_invoke("demo", url), _invoke("demo", url)]


def test_demo_on_an_sqlite_file_works_twice(demo_db: tuple[str, list[Result]]) -> None:
    url, (first, second) = demo_db
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "already stored" in second.output
    runs = json.loads(_invoke("runs", "list", url, "--json").output)
    assert len(runs) == 6
    assert {run["workflow"] for run in runs} == {
        "order-fulfilment",
        "nightly-report",
        "invoice-sync",
    }


def test_inspection_commands_read_what_the_demo_wrote(demo_db: tuple[str, list[Result]]) -> None:
    url, _ = demo_db
    runs = json.loads(_invoke("runs", "list", url, "--json", "--status", "completed").output)
    assert [run["workflow"] for run in runs] == ["order-fulfilment"] * 2
    shown = json.loads(_invoke("runs", "show", url, runs[0]["id"], "--json").output)
    assert [entry["step_name"] for entry in shown["history"]].count("charge-card") == 2
    assert shown["state"]["reservation"] == {"warehouse": "ams-1", "qty": 2}

    threads = json.loads(
        _invoke("threads", "list", url, "--json", "--agent", "support-agent").output
    )
    assert len(threads) == 2
    thread = json.loads(_invoke("threads", "show", url, threads[0]["id"], "--json").output)
    assert thread["runs"][0]["status"] == "completed"
    assert any(m["role"] == "tool" for m in thread["messages"])
    assert isinstance(thread["scores"], list)

    assert json.loads(_invoke("deployments", "list", url, "--json").output) == []
    pruned = json.loads(
        _invoke("channels", "prune", url, "--older-than", "0s", "--json", "--yes").output
    )
    assert len(pruned["removed"]) == 4
    deleted = _invoke("runs", "delete", url, runs[0]["id"], "--yes")
    assert deleted.exit_code == 0
    again = _invoke("runs", "delete", url, runs[0]["id"], "--yes")
    assert again.exit_code == 1
    assert "Run not found" in again.output
    count = json.loads(
        _invoke("runs", "prune", url, "--older-than", "0s", "--json", "--yes").output
    )
    assert count["deleted"] == 3  # a completed run and the failed ones; suspended is unfinished
    assert (
        json.loads(
            _invoke("threads", "prune", url, "--older-than", "0s", "--json", "--yes").output
        )["deleted"]
        == 2
    )


@pytest.mark.parametrize(
    "args",
    [
        ("runs", "list"),
        ("threads", "list"),
        ("deployments", "list"),
    ],
)
def test_inspection_on_an_empty_memory_store_prints_empty_json(args: tuple[str, ...]) -> None:
    result = _invoke(*args, "memory://", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == []


def test_verify_on_memory_says_there_is_no_persistent_schema() -> None:
    result = _invoke("verify", "memory://")
    assert result.exit_code == 0
    assert "no persistent schema" in result.output


@needs_sqlite
def test_verify_reports_missing_then_current_schema_after_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    missing = _invoke("verify", url, "--json")
    assert missing.exit_code == 3
    assert json.loads(missing.output)["stored_version"] is None
    assert not (tmp_path / "fresh.db").exists()  # verify is read-only
    assert _invoke("migrate", url).exit_code == 0
    current = _invoke("verify", url, "--json")
    assert current.exit_code == 0, current.output
    status = json.loads(current.output)
    assert status["stored_version"] == status["supported_version"]


def test_check_on_memory_is_green() -> None:
    # Two services keep the test fast; `pikku-storage check memory://` runs all eight.
    selection = "EventHubStoreContract or WorkflowRunServiceContract"
    result = _invoke("check", "memory://", "--json", "-k", selection)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report["services"]) == {"EventHubStore", "WorkflowRunService"}
    assert all(s["passed"] > 0 and s["failed"] == 0 for s in report["services"].values())


@pytest.mark.parametrize(
    "args",
    [
        ("runs", "list", "nope://somewhere"),
        ("demo", "mongodb://localhost"),
        ("check", "ftp://x"),
        ("verify", "nope://"),
        ("runs", "show", "memory://", "no-such-run"),
        ("threads", "show", "memory://", "no-such-thread"),
    ],
)
def test_errors_print_one_line_and_exit_non_zero(args: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1
    assert "Traceback" not in result.output


def test_a_bad_duration_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["runs", "prune", "memory://", "--older-than", "soon"])
    assert result.exit_code == 2
    assert "not a duration" in result.output
