"""A service used before `init()` says so instead of leaking the driver's "no such table" or
"pool is not open yet" (issue 13 item 7); `init()` removes the guard."""

from __future__ import annotations

import importlib.util
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from pikku_storage import InvalidValue, StorageUnavailable, open_storage

HINT = "is not initialized (or was closed): call `await storage.init()`"


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, dict[str, object]]]:
    """A URL and options of a namespace nobody initialized (removed afterwards)."""
    if request.param == "sqlite":
        if importlib.util.find_spec("pikku_storage.sqlite") is None:
            pytest.skip("the sqlite backend is not installed")
        yield f"sqlite:///{tmp_path / 'fresh.db'}", {}
        return
    psycopg = pytest.importorskip("psycopg")
    url = request.getfixturevalue("pikku_postgres_url")
    schema = f"ux_init_{secrets.token_hex(4)}"
    yield url, {"schema": schema}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_a_call_before_init_says_to_call_init(
    fresh_url: tuple[str, dict[str, object]],
) -> None:
    url, options = fresh_url
    storage = open_storage(url, **options)
    try:
        with pytest.raises(StorageUnavailable) as caught:
            await storage.workflows.create_run("checkout", {"cart": 1})
        assert "WorkflowService " + HINT in str(caught.value)
        await storage.init()
        run_id = await storage.workflows.create_run("checkout", {"cart": 1})
        assert (await storage.workflow_runs.get_run(run_id)) is not None
    finally:
        await storage.close()


async def test_contract_errors_before_init_are_unchanged(
    fresh_url: tuple[str, dict[str, object]],
) -> None:
    url, options = fresh_url
    storage = open_storage(url, **options)
    try:
        with pytest.raises(InvalidValue):
            await storage.workflows.create_run("", {"cart": 1})
    finally:
        await storage.close()
