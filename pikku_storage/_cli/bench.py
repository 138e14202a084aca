"""`pikku-storage bench [URL ...]`: ops/s and p50/p99 latency per hot operation and backend.

Each URL gets a throwaway namespace (as `check` does), an optional preload of `--rows` runs
and messages, then every operation `--ops` times in sequence on the public API; for
PostgreSQL and Redis the same operations written directly on psycopg / redis-py run in the
same namespace right after ours, and the report gives our/raw latency ratios.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import click
from rich.console import Console, Group
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from pikku_storage._cli._bench_ops import BenchState, Operation, prepare, public_ops
from pikku_storage._cli._bench_preload import preload
from pikku_storage._cli._common import console, display_url, echo_json
from pikku_storage._cli._namespaces import NamespaceSpec, Target
from pikku_storage.storage import Storage

__all__ = ["Measurement", "bench", "run_bench"]

DEFAULT_URLS = ("memory://", "sqlite:///bench.db")
WARMUP = 5


@dataclass(slots=True)
class Measurement:
    """Latencies of one operation on one backend (and of its raw twin, when measured)."""

    name: str
    label: str
    latencies: list[float]
    raw: list[float] | None = None

    @staticmethod
    def summary(latencies: list[float]) -> dict[str, float]:
        ordered = sorted(latencies)
        n = len(ordered)
        total = sum(ordered)
        return {
            "ops_per_s": n / total if total else 0.0,
            "mean_ms": statistics.fmean(ordered) * 1000,
            "p50_ms": ordered[min(n - 1, int(n * 0.50))] * 1000,
            "p99_ms": ordered[min(n - 1, int(n * 0.99))] * 1000,
        }

    def report(self) -> dict[str, object]:
        out: dict[str, object] = {"operation": self.label, **self.summary(self.latencies)}
        if self.raw:
            raw = self.summary(self.raw)
            out["raw"] = raw
            out["ratio_p50"] = self.summary(self.latencies)["p50_ms"] / raw["p50_ms"]
        return out


@dataclass(slots=True)
class BackendResult:
    url: str
    kind: str
    rows: int
    ops: int
    preload: str = ""
    preload_s: float = 0.0
    measurements: list[Measurement] = field(default_factory=list)


async def _time(
    op: Callable[[int], Awaitable[object]], ops: int, tick: Callable[[], None]
) -> list[float]:
    latencies: list[float] = []
    for i in range(ops):
        start = time.perf_counter()
        await op(i)
        latencies.append(time.perf_counter() - start)
        tick()
    return latencies


class RawTwin(Protocol):
    """The workload on the bare driver: `open`/`close` plus one method per operation name."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...


def _raw_twin(kind: str, spec: NamespaceSpec, state: BenchState) -> RawTwin | None:
    if kind == "postgres":
        from pikku_storage._cli._bench_raw_pg import RawPg

        return RawPg(spec, state)
    if kind == "redis":
        from pikku_storage._cli._bench_raw_redis import RawRedis

        return RawRedis(spec, state)
    return None


async def run_bench(
    url: str, *, ops: int, rows: int, raw: bool, progress: Progress
) -> BackendResult:
    """Benchmark one URL in a fresh namespace, removed afterwards."""
    target = Target(url)
    result = BackendResult(url=display_url(url), kind=target.kind, rows=rows, ops=ops)
    try:
        spec = target.new_namespace()
        storage: Storage = target.open(spec)
        async with storage:
            state = BenchState(ops=ops + WARMUP)
            task = progress.add_task(f"{target.kind}: setup", total=None)
            await prepare(storage, state, target.token)
            if rows:
                started = time.perf_counter()
                result.preload = await preload(target, spec, storage, state, rows, progress)
                result.preload_s = time.perf_counter() - started
            twin = _raw_twin(target.kind, spec, state) if raw else None
            if twin is not None:
                await twin.open()
            try:
                for op in public_ops(storage, state):
                    result.measurements.append(
                        await _measure(op, twin, ops, progress, task, target.kind)
                    )
            finally:
                if twin is not None:
                    await twin.close()
            progress.remove_task(task)
    finally:
        await target.cleanup()
    return result


async def _measure(
    op: Operation, twin: RawTwin | None, ops: int, progress: Progress, task: TaskID, kind: str
) -> Measurement:
    progress.reset(task, total=ops, description=f"{kind}: {op.name}")

    def tick() -> None:
        progress.advance(task)

    await _time(op.call, WARMUP, lambda: None)
    latencies = await _time(lambda i: op.call(i + WARMUP), ops, tick)
    measurement = Measurement(op.name, op.label, latencies)
    twin_op = getattr(twin, op.name, None) if twin is not None else None
    if twin_op is not None:
        progress.reset(task, total=ops, description=f"{kind}: {op.name} (raw)")
        await _time(twin_op, WARMUP, lambda: None)
        measurement.raw = await _time(lambda i: twin_op(i + WARMUP), ops, tick)
    return measurement


def _table(result: BackendResult) -> Group:
    title = f"{result.kind} — {result.url} — {result.ops} ops"
    if result.rows:
        title += f", {result.rows:,} preloaded runs + messages"
        title += f" ({result.preload}, {result.preload_s:.0f} s)"
    has_raw = any(m.raw for m in result.measurements)
    table = Table()
    columns = ["operation", "ops/s", "p50 ms", "p99 ms"]
    if has_raw:
        columns += ["raw ops/s", "raw p50 ms", "raw p99 ms", "ours/raw p50"]
    for column in columns:
        table.add_column(column, justify="left" if column == "operation" else "right")
    for m in result.measurements:
        ours = Measurement.summary(m.latencies)
        row = [
            m.label,
            f"{ours['ops_per_s']:,.0f}",
            f"{ours['p50_ms']:.3f}",
            f"{ours['p99_ms']:.3f}",
        ]
        if has_raw:
            if m.raw:
                raw = Measurement.summary(m.raw)
                row += [
                    f"{raw['ops_per_s']:,.0f}",
                    f"{raw['p50_ms']:.3f}",
                    f"{raw['p99_ms']:.3f}",
                    f"{ours['p50_ms'] / raw['p50_ms']:.2f}x",
                ]
            else:
                row += ["-", "-", "-", "-"]
        table.add_row(*row)
    return Group(Text(title, style="bold"), table)


@click.command("bench")
@click.argument("urls", nargs=-1, metavar="[URL ...]")
@click.option(
    "--ops",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Timed iterations per operation (after 5 warm-up ones).",
)
@click.option(
    "--rows",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Preload this many runs and thread messages first (list/window costs).",
)
@click.option(
    "--raw/--no-raw",
    default=True,
    show_default=True,
    help="Also time psycopg / redis-py doing the same operations (PostgreSQL, Redis).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def bench(urls: tuple[str, ...], ops: int, rows: int, raw: bool, as_json: bool) -> None:
    """Measure ops/s and p50/p99 latency of the hot operations on each URL.

    Default URLs: memory:// and sqlite:///bench.db. Each URL is measured in a fresh
    namespace (schema, key prefix, table prefix; SQLite always a temporary file) that is
    removed afterwards;
    the operations run one at a time (latency, not throughput under concurrency).
    """
    out: Console = console()
    results: list[BackendResult] = []
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
        transient=True,
        disable=as_json,
    ) as progress:
        for url in urls or DEFAULT_URLS:
            result = asyncio.run(run_bench(url, ops=ops, rows=rows, raw=raw, progress=progress))
            results.append(result)
            if not as_json:
                progress.console.print(_table(result))
    if as_json:
        echo_json(
            [
                {
                    "url": r.url,
                    "backend": r.kind,
                    "ops": r.ops,
                    "rows": r.rows,
                    "preload": r.preload or None,
                    "preload_s": r.preload_s,
                    "results": {m.name: m.report() for m in r.measurements},
                }
                for r in results
            ]
        )
