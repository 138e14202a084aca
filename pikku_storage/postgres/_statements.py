"""The one statement convention of the PostgreSQL services: a frozen dataclass per area.

Each service area declares a frozen dataclass whose fields are named after the templates of
its `_sql_*` module in lower case (`get_run` is `GET_RUN`); `compose_statements` fills it once
per service, in the constructor (pure), and a method reads `self._sql.get_run`. A field
without a template fails when the service is built, not a string key missed at call time.
Each statement is composed with schema-qualified identifiers (style §7) and rendered to its
text once: psycopg would otherwise render a `Composed` (and quote its identifiers) again on
every execute. See docs/concepts.md#lifecycle-and-namespaces; style §7.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from types import ModuleType
from typing import LiteralString, TypeVar

from psycopg import sql

from pikku_storage.postgres._connection import PgDatabase

__all__ = ["Statement", "compose_statements"]

Statement = sql.SQL
T = TypeVar("T")


def compose_statements(
    cls: type[T], db: PgDatabase, module: ModuleType, tables: Mapping[str, LiteralString]
) -> T:
    """`cls` with each field set to `module`'s template of that name, composed for `db`."""
    values: dict[str, Statement] = {}
    for field in fields(cls):  # type: ignore[arg-type]  # cls is a dataclass
        template = getattr(module, field.name.upper())
        assert isinstance(template, sql.SQL), field.name
        composed = db.compose(template, **tables)
        # rendered with the identifiers quoted by psycopg itself; the text is SQL we composed
        values[field.name] = sql.SQL(composed.as_string())
    return cls(**values)
