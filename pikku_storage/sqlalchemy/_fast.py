"""Prebuilt statements executed straight on the driver cursor.

SQLAlchemy's `Connection.execute` costs 20-45 µs per statement even on a compiled-cache hit,
several times what SQLite itself takes for a point read or write. For the prebuilt statements
of `_statements.py` the backend compiles each Core statement once (SQLAlchemy's own
compiler, so the SQL is still SQLAlchemy's: no SQL of our own), keeps its bind order, bind
processors and result processors, and then runs it on the driver cursor directly. Results
mimic the few `Result` methods the services use. Statements with expanding parameters,
aiosqlite engines and engines with event listeners go through `Connection.execute`
(see docs/index.md, issue 10).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement

__all__ = ["FastResult", "Plan", "execute", "plan_for"]


class Plan:
    """One statement compiled for one dialect and one set of parameter keys."""

    __slots__ = (
        "binds",
        "converters",
        "dialect",
        "expanding",
        "positional",
        "results",
        "row",
        "sql",
    )

    def __init__(self, statement: ClauseElement, dialect: Dialect, keys: Sequence[str]) -> None:
        compiled: Any = statement.compile(dialect=dialect, column_keys=list(keys))
        self.dialect = dialect
        self.expanding = any(bind.expanding for bind in compiled.binds.values())
        self.sql: str = compiled.string
        processors = compiled._bind_processors
        defaults = compiled.construct_params({}, _check=False)
        self.positional = bool(compiled.positional)
        names = compiled.positiontup if self.positional else list(defaults)
        binds: list[tuple[str, Callable[[Any], Any] | None, Any]] = []
        for name in names or ():
            binds.append((name, processors.get(name), defaults.get(name)))
        self.binds = binds
        self.results: list[Callable[[Any], Any] | None] | None = None
        self.row: Any = None
        columns = compiled._result_columns
        if columns:
            self.row = namedtuple("Row", [c[0] for c in columns], rename=True)  # type: ignore[misc]
            self.results = [c[3]._cached_result_processor(dialect, None) for c in columns]
        # Only the columns with a result processor are touched per row.
        self.converters: list[tuple[int, Callable[[Any], Any]]] = [
            (index, processor)
            for index, processor in enumerate(self.results or ())
            if processor is not None
        ]

    def parameters(self, params: Mapping[str, Any]) -> Any:
        out = []
        for name, processor, default in self.binds:
            value = params.get(name, default)
            out.append(value if processor is None or value is None else processor(value))
        if self.positional:
            return out
        return {name: value for (name, _, _), value in zip(self.binds, out, strict=True)}

    def rows(self, fetched: list[tuple[Any, ...]]) -> list[Any]:
        assert self.results is not None
        make = self.row._make
        converters = self.converters
        if not converters:
            return [make(row) for row in fetched]
        out = []
        for row in fetched:
            values = list(row)
            for index, processor in converters:
                values[index] = processor(values[index])
            out.append(make(values))
        return out


_PLANS: dict[tuple[int, tuple[str, ...]], tuple[ClauseElement, Plan]] = {}


def plan_for(statement: ClauseElement, dialect: Dialect, keys: Sequence[str]) -> Plan:
    """The cached plan of `statement` for these parameter keys."""
    key = (id(statement), tuple(keys))
    found = _PLANS.get(key)
    if found is None or found[0] is not statement:
        found = _PLANS[key] = (statement, Plan(statement, dialect, keys))
    return found[1]


class FastResult:
    """The `Result` methods the services use, over rows already fetched."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalars(self) -> FastResult:
        return FastResult([row[0] for row in self._rows], self.rowcount)

    def scalar_one(self) -> Any:
        if len(self._rows) != 1:
            raise sa_exc.NoResultFound("expected exactly one row")
        return self._rows[0][0]

    def scalar_one_or_none(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def __iter__(self) -> Any:
        return iter(self._rows)


def execute(conn: Connection, statement: Any, params: Any) -> Any:
    """`statement` with `params` (a mapping, or a list of mappings: executemany) on the
    connection's driver cursor (stdlib `sqlite3`; psycopg and aiomysql through SQLAlchemy's
    adapted cursor, inside the call's greenlet). Driver errors are wrapped as SQLAlchemy's,
    and a connection found broken is invalidated, as `Connection.execute` would."""
    many = not isinstance(params, Mapping)
    first: Mapping[str, Any] = params[0] if many else params
    dialect = conn.dialect
    plan = plan_for(statement, dialect, list(first))
    if plan.expanding:
        return conn.execute(statement, params)
    raw: Any = conn.connection.dbapi_connection
    cursor: Any = None
    try:
        cursor = raw.cursor()
        if many:
            cursor.executemany(plan.sql, [plan.parameters(p) for p in params])
            return FastResult([], cursor.rowcount)
        cursor.execute(plan.sql, plan.parameters(first))
        rows = plan.rows(cursor.fetchall()) if plan.results is not None else []
        return FastResult(rows, cursor.rowcount)
    except dialect.loaded_dbapi.Error as error:
        invalidated = bool(dialect.is_disconnect(error, raw, cursor))
        if invalidated:
            conn.invalidate(error)
        raise sa_exc.DBAPIError.instance(
            plan.sql,
            None,
            error,
            dialect.loaded_dbapi.Error,
            connection_invalidated=invalidated,
            dialect=dialect,
        ) from error
    finally:
        if cursor is not None and not conn.invalidated:
            cursor.close()
