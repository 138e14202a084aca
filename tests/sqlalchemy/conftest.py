"""Fixtures of the SQLAlchemy backend's own tests (white-box: they reach its `Database`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from pikku_storage import Storage
from pikku_storage.sqlalchemy._connection import Database
from tests.sqlalchemy.sa_helpers import Capture, Fresh, database, server_namespace


@pytest.fixture
def db(pikku_storage: Storage) -> Database:
    return database(pikku_storage)


@pytest.fixture
def capture(db: Database) -> Iterator[Capture]:
    recorder = Capture(db.engine)
    yield recorder
    recorder.close()


@pytest_asyncio.fixture(
    params=["sqlite", "sqlalchemy-postgres", "sqlalchemy-mysql"], ids=lambda name: name
)
async def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Fresh]:
    """An empty, never-migrated namespace per dialect, dropped afterwards."""
    if request.param == "sqlite":
        yield Fresh(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}", {})
        return
    server = "postgres" if request.param == "sqlalchemy-postgres" else "mysql"
    async with server_namespace(request, server) as namespace:
        yield namespace
