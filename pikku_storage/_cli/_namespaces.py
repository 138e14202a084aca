"""Throwaway namespaces on a live URL for `check` and `bench`, and their removal afterwards.

Each namespace is a fresh PostgreSQL schema, Redis key prefix, SQLAlchemy table prefix,
SQLite temp file or in-memory store, named `pkc_<token>_<n>` so that the final sweep removes
exactly what this run created and nothing of any sibling namespace (Spec: 00 §5).
"""

from __future__ import annotations

import itertools
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pikku_storage._cli._common import backend_kind, display_url
from pikku_storage.storage import Storage, open_storage

__all__ = ["NamespaceSpec", "Target", "sweep"]


@dataclass(frozen=True, slots=True)
class NamespaceSpec:
    """One namespace: the URL and the options selecting it (plus an in-process store)."""

    name: str
    url: str
    options: dict[str, object]
    portable: bool  # another OS process can open (url, options)


@dataclass(slots=True)
class Target:
    """A live URL and the namespaces made on it during one command."""

    url: str
    kind: str = ""
    token: str = field(default_factory=lambda: secrets.token_hex(3))
    tmpdir: Path | None = None
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    made: list[NamespaceSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.kind = backend_kind(self.url)

    @property
    def prefix(self) -> str:
        """The start of every namespace name of this run."""
        return f"pkc_{self.token}_"

    def _dir(self) -> Path:
        if self.tmpdir is None:
            self.tmpdir = Path(tempfile.mkdtemp(prefix=f"pikku-{self.token}-"))
        return self.tmpdir

    def new_namespace(self) -> NamespaceSpec:
        """A fresh, empty namespace on the target."""
        name = f"{self.prefix}{next(self.counter)}"
        url, options, portable = self.url, dict[str, object](), True
        if self.kind == "memory":
            from pikku_storage.memory import InMemoryStore

            options, portable = {"store": InMemoryStore()}, False
        elif self.kind in ("sqlite", "sqlalchemy-sqlite"):
            scheme = urlsplit(self.url).scheme
            url = f"{scheme}:///{self._dir() / (name + '.db')}"
        elif self.kind == "postgres":
            options = {"schema": name}
        elif self.kind == "redis":
            options = {"key_prefix": name}
        else:
            options = {"table_prefix": name + "_"}
        spec = NamespaceSpec(name=name, url=url, options=options, portable=portable)
        self.made.append(spec)
        return spec

    def open(self, spec: NamespaceSpec, **options: object) -> Storage:
        """A new (not yet initialized) `Storage` on `spec`; `options` go to `open_storage`."""
        return open_storage(spec.url, **{**spec.options, **options})

    async def cleanup(self) -> list[str]:
        """Remove every namespace this run made (also ones a crash left); what was removed."""
        try:
            return await sweep(self.url, self.kind, self.prefix)
        finally:
            if self.tmpdir is not None:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
                self.tmpdir = None

    def describe(self) -> str:
        """Where the namespaces live, for the report."""
        what = {
            "memory": "a fresh in-memory store per test",
            "sqlite": "a temporary SQLite file per test",
            "sqlalchemy-sqlite": "a temporary SQLite file per test",
            "postgres": f"fresh schemas {self.prefix}*",
            "redis": f"fresh key prefixes {self.prefix}*",
        }.get(self.kind, f"fresh table prefixes {self.prefix}*")
        return f"{display_url(self.url)} ({self.kind}): {what}"


async def sweep(url: str, kind: str, marker: str) -> list[str]:
    """Drop every schema, key or table on `url` whose name contains `marker`.

    `marker` holds a random token, so only what this run made can match. SQLite files and
    in-memory stores need no sweep (their directory is removed by the caller).
    """
    if kind in ("postgres", "sqlalchemy-postgres"):
        return await _drop_pg_schemas(url, marker)
    if kind == "redis":
        return await _delete_redis_keys(url, marker)
    if kind == "sqlalchemy-mysql":
        return await _drop_sa_tables(url, marker)
    return []


def _plain_pg_url(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    return urlunsplit(("postgresql" if scheme == "postgres" else scheme, *parts[1:]))


async def _drop_pg_schemas(url: str, marker: str) -> list[str]:
    import psycopg
    from psycopg import sql

    async with await psycopg.AsyncConnection.connect(_plain_pg_url(url), autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT nspname FROM pg_namespace WHERE strpos(nspname, %s) > 0 ORDER BY 1",
            (marker,),
        )
        names = [str(row[0]) for row in await cur.fetchall()]
        for name in names:
            await conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
            )
    return names


async def _delete_redis_keys(url: str, marker: str) -> list[str]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"*{marker}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await client.unlink(*batch)
    finally:
        await client.aclose()
    return [f"{deleted} keys *{marker}*"] if deleted else []


async def _drop_sa_tables(url: str, marker: str) -> list[str]:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import create_async_engine

    def drop(conn: Connection) -> list[str]:
        from sqlalchemy import inspect

        names = [n for n in inspect(conn).get_table_names() if marker in n]
        if names:
            meta = MetaData()
            meta.reflect(conn, only=names)
            meta.drop_all(conn)
        return names

    parts = urlsplit(url)
    if "+" not in parts.scheme:  # mysql://… as the test plugin takes it
        url = urlunsplit(("mysql+aiomysql", *parts[1:]))
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(drop)
    finally:
        await engine.dispose()
