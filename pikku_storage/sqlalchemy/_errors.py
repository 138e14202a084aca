"""Driver errors classified by code: SQLSTATE, SQLite extended result code, MySQL errno.

Never by message text. The predicates look through SQLAlchemy's `DBAPIError` wrapper to the
driver exception (psycopg, sqlite3 directly or via aiosqlite, PyMySQL via aiomysql); the call
site decides which contract error a unique or foreign-key violation means (style §12).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from sqlalchemy import exc as sa_exc

from pikku_storage.errors import PikkuStorageError, StorageUnavailable

__all__ = [
    "is_already_exists",
    "is_foreign_key_violation",
    "is_retryable",
    "is_sqlite_busy",
    "is_unavailable",
    "is_unique_violation",
    "translate_errors",
]

# SQLite extended result codes.
SQLITE_BUSY: Final = 5
SQLITE_LOCKED: Final = 6
SQLITE_CANTOPEN: Final = 14
SQLITE_CONSTRAINT_FOREIGNKEY: Final = 787
SQLITE_CONSTRAINT_PRIMARYKEY: Final = 1555
SQLITE_CONSTRAINT_UNIQUE: Final = 2067
# MySQL / MariaDB server and client error numbers.
ER_DUP_ENTRY: Final = 1062
ER_NO_REFERENCED_ROW_2: Final = 1452
ER_LOCK_DEADLOCK: Final = 1213
ER_LOCK_WAIT_TIMEOUT: Final = 1205
ER_TABLE_EXISTS: Final = 1050
ER_DUP_KEYNAME: Final = 1061
ER_DB_CREATE_EXISTS: Final = 1007
_MYSQL_UNAVAILABLE: Final = frozenset(
    {
        1040,  # too many connections
        1053,  # server shutdown in progress
        1927,  # MariaDB: connection was killed
        2002,  # can't connect through socket
        2003,  # can't connect to server
        2006,  # server has gone away
        2013,  # lost connection during query
        2055,  # lost connection (system error)
        4031,  # MySQL 8: disconnected by the server for inactivity
    }
)
_PG_UNAVAILABLE: Final = frozenset({"57P01", "57P02", "57P03"})


def _driver_error(error: BaseException) -> BaseException:
    """The driver's exception inside SQLAlchemy's wrapper (or the error itself)."""
    if isinstance(error, sa_exc.DBAPIError) and error.orig is not None:
        return error.orig
    return error


def _sqlstate(error: BaseException) -> str | None:
    state = getattr(_driver_error(error), "sqlstate", None)
    return state if isinstance(state, str) else None


def _sqlite_code(error: BaseException) -> int | None:
    code = getattr(_driver_error(error), "sqlite_errorcode", None)
    return code if isinstance(code, int) else None


def _mysql_errno(error: BaseException) -> int | None:
    driver = _driver_error(error)
    if type(driver).__module__.startswith(("pymysql", "aiomysql", "asyncmy")):
        args = getattr(driver, "args", ())
        if args and isinstance(args[0], int):
            return args[0]
    return None


def is_unique_violation(error: BaseException) -> bool:
    """A primary-key or unique-constraint violation (23505, 1555/2067, 1062)."""
    return (
        _sqlstate(error) == "23505"
        or _sqlite_code(error) in (SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE)
        or _mysql_errno(error) == ER_DUP_ENTRY
    )


def is_foreign_key_violation(error: BaseException) -> bool:
    """A missing parent row (23503, 787, 1452)."""
    return (
        _sqlstate(error) == "23503"
        or _sqlite_code(error) == SQLITE_CONSTRAINT_FOREIGNKEY
        or _mysql_errno(error) == ER_NO_REFERENCED_ROW_2
    )


def is_retryable(error: BaseException) -> bool:
    """A deadlock or serialization failure: the whole transaction may simply run again."""
    return _sqlstate(error) in ("40001", "40P01") or _mysql_errno(error) in (
        ER_LOCK_DEADLOCK,
        ER_LOCK_WAIT_TIMEOUT,
    )


def is_sqlite_busy(error: BaseException) -> bool:
    """SQLite `SQLITE_BUSY` (any extended code): another connection holds the lock."""
    code = _sqlite_code(error)
    return code is not None and code & 0xFF == SQLITE_BUSY


def is_already_exists(error: BaseException) -> bool:
    """MySQL DDL finding its table, index or database already there (a resumed migration)."""
    return _mysql_errno(error) in (ER_TABLE_EXISTS, ER_DUP_KEYNAME, ER_DB_CREATE_EXISTS)


def is_unavailable(error: BaseException) -> bool:
    """The server is unreachable, the connection broke, or the store stayed busy."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.TimeoutError | OSError):  # pool timeout, refused connection
        return True
    state = _sqlstate(error)
    if state is not None and (state.startswith("08") or state in _PG_UNAVAILABLE):
        return True
    if _mysql_errno(error) in _MYSQL_UNAVAILABLE:
        return True
    code = _sqlite_code(error)
    if code is not None and code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED, SQLITE_CANTOPEN):
        return True
    driver = _driver_error(error)
    if isinstance(error, sa_exc.OperationalError) and getattr(driver, "sqlstate", "") is None:
        return True  # psycopg: no SQLSTATE means a client-side connection failure (refused)
    return driver is not error and isinstance(driver, OSError)


@asynccontextmanager
async def translate_errors() -> AsyncIterator[None]:
    """Turn what means "unavailable" on every dialect into `StorageUnavailable`.

    Contract errors raised inside pass through untouched; other driver errors propagate.
    """
    try:
        yield
    except PikkuStorageError:
        raise
    except Exception as error:
        if is_unavailable(error):
            raise StorageUnavailable(f"database unavailable: {type(error).__name__}") from error
        raise
