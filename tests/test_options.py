"""Bad options are `InvalidValue` from `open_storage`, naming the option, before any I/O (00 §6).

Every URL points at a closed port (or a file that is never created): an option error that
waited for a connection would show up as `StorageUnavailable` or a timeout instead.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pikku_storage import InvalidValue, ManualClock, open_storage


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


PORT = _closed_port()
BACKENDS = {
    "memory": "memory://",
    "sqlite": "sqlite:///{tmp}/never.db",
    "sqlalchemy-sqlite": "sqlite+aiosqlite:///{tmp}/never.db",
    "postgres": f"postgresql://u@127.0.0.1:{PORT}/db",
    "sqlalchemy-postgres": f"postgresql+psycopg://u@127.0.0.1:{PORT}/db",
    "sqlalchemy-mysql": f"mysql+aiomysql://u@127.0.0.1:{PORT}/db",
    "redis": f"redis://127.0.0.1:{PORT}/0",
}
COMMON: list[tuple[str, object]] = [
    ("clock", 3),
    ("clock", "now"),
    ("heartbeat_interval", "10"),
    ("heartbeat_ttl", -1),
    ("prune_on_heartbeat", "yes"),
]
PER_BACKEND: dict[str, list[tuple[str, object]]] = {
    "memory": [("store", {})],
    "sqlite": [("table_prefix", 3), ("busy_timeout", "abc"), ("busy_timeout", 0)],
    "sqlalchemy-sqlite": [
        ("table_prefix", "bad-prefix"),
        ("engine_options", 3),
        ("engine_options", {"no_such_argument": 1}),
        ("busy_timeout", float("nan")),
    ],
    "postgres": [
        ("connect_timeout", "abc"),
        ("connect_timeout", 2.5),
        ("port", "abc"),
        ("keepalives_idle", "x"),
        ("application_name", object()),
        ("prepare_threshold", "5"),
        ("schema", 1),
        ("schema", "bad name"),
        ("min_size", "1"),
        ("max_size", 0),
        ("timeout", "30"),
        ("check", "yes"),
        ("lock_url", 3),
        ("lock_url", ""),
        ("lock_url", "not a conninfo"),
    ],
    "sqlalchemy-postgres": [("schema", 3), ("table_prefix", "a b")],
    "sqlalchemy-mysql": [("table_prefix", "x;y"), ("engine_options", {"pool_size": "x"})],
    "redis": [
        ("socket_timeout", "abc"),
        ("socket_connect_timeout", -1),
        ("timeout", "x"),
        ("max_connections", "x"),
        ("max_connections", 0),
        ("health_check_interval", "x"),
        ("db", -1),
        ("retry_on_timeout", "yes"),
        ("password", 3),
        ("protocol", 4),
        ("key_prefix", "a:b"),
        ("lock_lease", "x"),
    ],
}
UNKNOWN = ["shema", "lock_idle_timeout", "key_prefx"]


def _url(backend: str, tmp_path: Path) -> str:
    return BACKENDS[backend].format(tmp=tmp_path)


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str | int | float | dict) else type(value).__name__


CASES = [
    pytest.param(backend, name, value, id=f"{backend}-{name}={_shown(value)}")
    for backend in BACKENDS
    for name, value in COMMON + PER_BACKEND[backend]
]


@pytest.mark.parametrize(("backend", "name", "value"), CASES)
def test_open_storage_raises_invalid_value_naming_an_option_of_the_wrong_type_or_range(
    backend: str, name: str, value: object, tmp_path: Path
) -> None:
    """00 §6: a bad option is `InvalidValue` at once, naming the option."""
    with pytest.raises(InvalidValue, match=name):
        open_storage(_url(backend, tmp_path), **{name: value})
    assert not (tmp_path / "never.db").exists()


@pytest.mark.parametrize("name", UNKNOWN)
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_open_storage_raises_invalid_value_naming_an_unknown_option(
    backend: str, name: str, tmp_path: Path
) -> None:
    """00 §6: an option the backend does not take is `InvalidValue` naming it."""
    with pytest.raises(InvalidValue, match=f"unknown option '{name}'|{name}"):
        open_storage(_url(backend, tmp_path), **{name: 1})


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_open_storage_accepts_the_documented_options_without_connecting(
    backend: str, tmp_path: Path
) -> None:
    """00 §5: constructors do no I/O; good options build a `Storage` even with no server."""
    options: dict[str, object] = {
        "clock": ManualClock(),
        "heartbeat_interval": 5,
        "heartbeat_ttl": 15.0,
        "prune_on_heartbeat": False,
    }
    extra: dict[str, dict[str, object]] = {
        "postgres": {
            "schema": "app",
            "connect_timeout": 3,
            "application_name": "x",
            "port": 1,
            "lock_url": f"postgresql://u@127.0.0.1:{PORT}/db",
        },
        "redis": {"key_prefix": "app", "socket_timeout": 1.5, "max_connections": 4},
        "sqlalchemy-mysql": {"table_prefix": "app_", "engine_options": {"pool_size": 2}},
    }
    storage = open_storage(_url(backend, tmp_path), **options, **extra.get(backend, {}))
    assert storage.workflows is not None
