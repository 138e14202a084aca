"""Each backend's public, read-only `schema_version(url, **namespace)`, which `pikku-storage
verify` and deploy checks use: the migrated version, `None` for an untouched namespace (which
it does not create), the spec's errors for bad names and unreachable servers (00 §5-6)."""

from __future__ import annotations

import secrets
from pathlib import Path
from types import ModuleType

import psycopg
import pytest

from pikku_storage import InvalidValue, Storage, StorageUnavailable, postgres, redis, sqlalchemy
from pikku_storage import sqlite as sqlite_backend

MODULES: dict[str, ModuleType] = {
    "sqlite": sqlite_backend,
    "postgres": postgres,
    "redis": redis,
    "sqlalchemy-postgres": sqlalchemy,
    "sqlalchemy-mysql": sqlalchemy,
}
# A loopback port nothing listens on, per backend.
UNREACHABLE = {
    "postgres": "postgresql://postgres@127.0.0.1:1/test",
    "redis": "redis://127.0.0.1:1/0",
    "sqlalchemy-postgres": "postgresql+psycopg://postgres@127.0.0.1:1/test",
    "sqlalchemy-mysql": "mysql+aiomysql://root@127.0.0.1:1/test",
}


@pytest.mark.pikku_backends(*MODULES)
async def test_schema_version_reads_the_version_init_recorded(
    pikku_storage: Storage,
    pikku_storage_open_args: tuple[str, dict[str, object]],
    pikku_backend_name: str,
) -> None:
    url, options = pikku_storage_open_args
    module = MODULES[pikku_backend_name]
    assert await module.schema_version(url, **options) == module.LATEST_VERSION
    assert isinstance(module.LATEST_VERSION, int)
    assert module.LATEST_VERSION >= 1


@pytest.mark.pikku_backends(*MODULES)
async def test_an_untouched_namespace_reads_none_and_is_not_created(
    pikku_storage_open_args: tuple[str, dict[str, object]],
    pikku_backend_name: str,
    tmp_path: Path,
) -> None:
    url, options = pikku_storage_open_args
    module = MODULES[pikku_backend_name]
    if pikku_backend_name == "sqlite":
        missing = tmp_path / "never.db"
        assert await module.schema_version(f"sqlite:///{missing}") is None
        assert not missing.exists()
        return
    name = f"pk_never_{secrets.token_hex(4)}"
    fresh = {key: name + ("_" if key == "table_prefix" else "") for key in options}
    assert await module.schema_version(url, **fresh) is None
    if "schema" in fresh:  # PostgreSQL: the schema still does not exist
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        async with await psycopg.AsyncConnection.connect(plain) as conn:
            cur = await conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,))
            assert await cur.fetchone() is None


@pytest.mark.parametrize(
    ("module", "url", "options"),
    [
        (postgres, "postgresql://postgres@127.0.0.1:1/test", {"schema": "bad-name"}),
        (redis, "redis://127.0.0.1:1/0", {"key_prefix": "bad prefix"}),
        (redis, "http://127.0.0.1:1/", {}),
        (sqlalchemy, "postgresql+psycopg://postgres@127.0.0.1:1/test", {"schema": "1x"}),
        (sqlalchemy, "postgresql://postgres@127.0.0.1:1/test", {}),
        (sqlite_backend, "redis://127.0.0.1:1/0", {}),
    ],
    ids=["pg-schema", "redis-prefix", "redis-url", "sa-schema", "sa-no-async-driver", "sqlite"],
)
async def test_bad_names_and_urls_raise_invalid_value_before_any_io(
    module: ModuleType, url: str, options: dict[str, object]
) -> None:
    """Every URL points at a closed port: `InvalidValue` shows the check came first."""
    with pytest.raises(InvalidValue):
        await module.schema_version(url, **options)


@pytest.mark.parametrize("backend", list(UNREACHABLE))
async def test_an_unreachable_server_raises_storage_unavailable(backend: str) -> None:
    with pytest.raises(StorageUnavailable):
        await MODULES[backend].schema_version(UNREACHABLE[backend])
