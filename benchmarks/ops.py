"""`python -m benchmarks ops URL ...`: p50 and ours/raw per operation, as a markdown table."""

from __future__ import annotations

import platform
from dataclasses import dataclass

from benchmarks._measure import Result, measure, table
from benchmarks._namespace import Namespace
from benchmarks._workload import OPERATIONS, Op, State, ours, preload, prepare

__all__ = ["Options", "run_ops"]


@dataclass(frozen=True, slots=True)
class Options:
    """What `ops` measures: timed calls per side, tasks at once, calls per A/B block."""

    ops: int = 1000
    concurrency: int = 1
    block: int = 50
    raw: bool = True
    rows: int = 0


class Twin:
    """A raw twin: `open`, `close` and the operations it has."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def ops(self) -> dict[str, Op]:
        return {}


def _twin(ns: Namespace, state: State, size: int) -> Twin | None:
    """The raw driver twin of the namespace's backend, if it has one."""
    twin: object
    if ns.kind == "sqlite":
        from benchmarks._raw_sql import RawSqlite

        twin = RawSqlite(ns.sqlite_path, state)
    elif ns.kind == "postgres":
        from benchmarks._raw_pg import RawPostgres

        twin = RawPostgres(ns.url, ns.option("schema"), state, size)
    elif ns.kind.startswith("redis"):  # redis, redis-cluster
        from benchmarks._raw_redis import RawRedis

        cluster = ns.kind == "redis-cluster"
        twin = RawRedis(ns.url, ns.option("key_prefix"), state, size, cluster=cluster)
    elif ns.kind == "sqlalchemy-mysql":
        from benchmarks._raw_sql import RawMysql

        twin = RawMysql(ns.url, ns.option("table_prefix"), state, size)
    else:
        return None
    return twin  # type: ignore[return-value]


def pool_options(kind: str, size: int) -> dict[str, object]:
    """Ours with a pool of the raw twin's size at `--concurrency` above the default (10);
    on PostgreSQL also opened at that size, as the twin's is (growing one connection at a time
    under load, psycopg_pool's way, cost ours the connects inside the timed blocks)."""
    if kind == "postgres" and size > 1:
        return {"min_size": size, "max_size": max(size, 10)}
    if size <= 10:
        return {}
    if kind.startswith("redis"):
        return {"max_connections": size}
    return {}  # SQLAlchemy keeps its default pool (5 + 10 overflow); SQLite has one writer


async def run_ops(url: str, options: Options) -> tuple[list[Result], str]:
    """Measure every operation on `url` in a fresh namespace; the results and the table."""
    ns = Namespace(url)
    try:
        async with ns.open(**pool_options(ns.kind, options.concurrency)) as storage:
            state = await prepare(storage, channels=max(options.ops, 1) + 10)
            await preload(storage, state, options.rows)
            twin = _twin(ns, state, options.concurrency) if options.raw else None
            raw_ops: dict[str, Op] = {}
            if twin is not None:
                await twin.open()
                raw_ops = twin.ops()
            try:
                mine = ours(storage, state)
                results = [
                    await measure(
                        name,
                        label,
                        mine[name],
                        raw_ops.get(name),
                        ops=options.ops,
                        concurrency=options.concurrency,
                        block=options.block,
                    )
                    for name, label in OPERATIONS
                ]
            finally:
                if twin is not None:
                    await twin.close()
            await storage.deployments.stop()
    finally:
        await ns.drop()
    title = (
        f"{ns.kind}: {options.ops} ops per side, concurrency {options.concurrency},"
        f" A/B blocks of {options.block}, {options.rows:,} preloaded runs and messages"
        f" (Python {platform.python_version()})"
    )
    return results, table(results, title)
