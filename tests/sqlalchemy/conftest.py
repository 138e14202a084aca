"""Fixtures of the SQLAlchemy backend's own tests (white-box: they reach its `Database`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sa_helpers import Capture, database

from pikku_storage import Storage
from pikku_storage.sqlalchemy._connection import Database


@pytest.fixture
def db(pikku_storage: Storage) -> Database:
    return database(pikku_storage)


@pytest.fixture
def capture(db: Database) -> Iterator[Capture]:
    recorder = Capture(db.engine)
    yield recorder
    recorder.close()
