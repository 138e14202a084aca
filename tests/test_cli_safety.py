"""The CLI as a user meets it: reading never creates or migrates, deleting asks first, ids are
never cut, `PIKKU_STORAGE_URL` is the default URL, exit statuses say what went wrong."""

from __future__ import annotations

import importlib.util
import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pikku_storage.cli import main

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pikku_storage.sqlite") is None,
    reason="the sqlite backend is not installed",
)

RUN_ID = str(uuid.uuid4())
# Every command that reads or deletes (never creates) with the arguments it needs.
READ_ONLY = [
    ("runs", "list"),
    ("runs", "show", RUN_ID),
    ("runs", "delete", RUN_ID, "--yes"),
    ("runs", "prune", "--older-than", "1d", "--yes"),
    ("threads", "list"),
    ("threads", "show", "some-thread"),
    ("threads", "prune", "--older-than", "1d", "--yes"),
    ("channels", "prune", "--older-than", "1d", "--yes"),
    ("deployments", "list"),
]


def _invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


def _ids(result: Result, key: str = "id") -> list[str]:
    return [str(item[key]) for item in json.loads(result.output)]


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An SQLite file the demo wrote (runs, threads, channels, deployments)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('safety') / 'demo.db'}"
    assert _invoke("demo", url).exit_code == 0
    return url


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: " ".join(c[:2]))
def test_a_read_only_command_on_a_missing_sqlite_file_creates_nothing(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    path = tmp_path / "typo.db"
    result = _invoke(command[0], command[1], f"sqlite:///{path}", *command[2:])
    assert result.exit_code == 3, result.output
    assert f"no file {path}" in result.output
    assert f"pikku-storage migrate sqlite:///{path}" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_command_on_a_store_behind_the_code_does_not_migrate_it(
    tmp_path: Path,
) -> None:
    # An SQLite file from before the first migration: a version table with no version in it.
    url = f"sqlite:///{tmp_path / 'old.db'}"
    assert _invoke("migrate", url).exit_code == 0
    import sqlite3

    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute("DELETE FROM pikku_schema_version")
    result = _invoke("runs", "list", url)
    assert result.exit_code == 3, result.output
    assert "pikku-storage migrate" in result.output
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("SELECT count(*) FROM pikku_schema_version").fetchone() == (0,)


@pytest.fixture
def pg_schema(pikku_postgres_url: str) -> Iterator[tuple[str, str]]:
    """The PostgreSQL URL and a schema name nothing uses; the schema is dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    schema = f"ux_cli_{secrets.token_hex(4)}"
    yield pikku_postgres_url, schema
    with psycopg.connect(pikku_postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _pg_schema_exists(url: str, schema: str) -> bool:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,))
        return row.fetchone() == (1,)


def test_a_read_only_command_on_a_missing_postgres_schema_creates_nothing(
    pg_schema: tuple[str, str],
) -> None:
    url, schema = pg_schema
    result = _invoke("runs", "list", url, "--schema", schema)
    assert result.exit_code == 3, result.output
    assert f"pikku-storage migrate {url} --schema {schema}" in result.output
    assert not _pg_schema_exists(url, schema)


def test_a_read_only_command_on_a_postgres_schema_behind_does_not_migrate_it(
    pg_schema: tuple[str, str],
) -> None:
    import psycopg

    url, schema = pg_schema
    assert _invoke("migrate", url, "--schema", schema).exit_code == 0
    with psycopg.connect(url, autocommit=True) as conn:
        latest = conn.execute(f'SELECT max(version) FROM "{schema}".pikku_migrations').fetchone()
        assert latest is not None
        conn.execute(f'DELETE FROM "{schema}".pikku_migrations WHERE version = %s', latest)
        result = _invoke("threads", "list", url, "--schema", schema)
        after = conn.execute(f'SELECT max(version) FROM "{schema}".pikku_migrations').fetchone()
    assert result.exit_code == 3, result.output
    assert f"schema version {latest[0] - 1}, this pikku-storage needs {latest[0]}" in (
        result.output
    )
    assert after == (latest[0] - 1,)


def test_an_unreachable_server_exits_5_not_1() -> None:
    result = _invoke("runs", "list", "postgresql://postgres@127.0.0.1:1/test")
    assert result.exit_code == 5, result.output
    assert "unavailable" in result.output


def test_an_unknown_run_exits_1(demo_url: str) -> None:
    result = _invoke("runs", "show", demo_url, RUN_ID)
    assert result.exit_code == 1
    assert f"Run not found: {RUN_ID}" in result.output


@pytest.mark.parametrize("columns", ["80", "50", None])
def test_ids_are_never_cut_at_any_width_or_when_piped(demo_url: str, columns: str | None) -> None:
    env = {"COLUMNS": columns} if columns else None
    runs = _ids(_invoke("runs", "list", demo_url, "--json"))
    threads = _ids(_invoke("threads", "list", demo_url, "--json"))
    run_table = _invoke("runs", "list", demo_url, env=env).output
    thread_table = _invoke("threads", "list", demo_url, env=env).output
    assert all(run_id in run_table for run_id in runs)
    assert all(thread_id in thread_table for thread_id in threads)


def test_pikku_storage_url_is_the_default_url(demo_url: str) -> None:
    env = {"PIKKU_STORAGE_URL": demo_url}
    runs = _ids(_invoke("runs", "list", "--json", env=env))
    assert runs == _ids(_invoke("runs", "list", demo_url, "--json"))
    shown = _invoke("runs", "show", runs[0], "--json", env=env)
    assert json.loads(shown.output)["run"]["id"] == runs[0]
    assert _invoke("verify", env=env).exit_code == 0
    # A URL on the command line wins over the variable.
    assert _invoke("runs", "list", "memory://", "--json", env=env).output.strip() == "[]"


@pytest.mark.parametrize(
    "command",
    [
        ("runs", "prune", "--older-than", "0s"),
        ("threads", "prune", "--older-than", "0s"),
        ("channels", "prune", "--older-than", "0s"),
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_deleting_without_yes_and_without_a_terminal_is_refused(
    demo_url: str, command: tuple[str, ...]
) -> None:
    before = _invoke("runs", "list", demo_url, "--json").output
    result = _invoke(command[0], command[1], demo_url, *command[2:])
    assert result.exit_code == 2
    assert "pass --yes" in result.output
    assert _invoke("runs", "list", demo_url, "--json").output == before


def test_delete_dry_run_names_the_run_and_keeps_it(demo_url: str) -> None:
    run_id = _ids(_invoke("runs", "list", demo_url, "--json"))[0]
    result = _invoke("runs", "delete", demo_url, run_id, "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"would delete run {run_id}" in result.output
    assert _invoke("runs", "show", demo_url, run_id).exit_code == 0


def test_prune_dry_run_lists_what_prune_deletes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'prune.db'}"
    assert _invoke("demo", url).exit_code == 0
    preview = json.loads(
        _invoke("runs", "prune", url, "--older-than", "0s", "--dry-run", "--json").output
    )
    threads = json.loads(
        _invoke("threads", "prune", url, "--older-than", "0s", "--dry-run", "--json").output
    )
    assert len(_ids(_invoke("runs", "list", url, "--json"))) == 3  # nothing deleted yet
    pruned = json.loads(
        _invoke("runs", "prune", url, "--older-than", "0s", "--yes", "--json").output
    )
    assert pruned["deleted"] == len(preview["would_delete"]) == 2  # completed and failed
    deleted = json.loads(
        _invoke("threads", "prune", url, "--older-than", "0s", "--yes", "--json").output
    )
    assert deleted["deleted"] == len(threads["would_delete"]) == 1


def test_runs_prune_refuses_unfinished_statuses() -> None:
    result = _invoke("runs", "prune", "memory://", "--older-than", "1d", "--status", "running")
    assert result.exit_code == 2
    assert "'running' is not one of 'completed', 'failed', 'cancelled'" in result.output


@pytest.mark.parametrize("ttl", ["45", "45s", "0.75m"])
def test_deployments_ttl_takes_seconds_or_a_duration(ttl: str) -> None:
    result = _invoke("deployments", "list", "memory://", "--ttl", ttl, "--json")
    assert result.exit_code == 0, result.output


def test_help_documents_the_exit_statuses() -> None:
    text = _invoke("--help").output
    for line in ("1  not found", "2  usage error", "3  the store is not initialized", "5  the"):
        assert line in text
