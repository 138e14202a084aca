"""Interleaved A/B measurement of ours against raw, and the markdown table of the result.

Each operation runs in rounds: a block of ours then a block of raw (the order flipped every
round), `concurrency` tasks at a time, so machine drift hits both sides alike. The ratio is
the median of the per-round p50 ratios.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from benchmarks._workload import Op

__all__ = ["Result", "measure", "table"]

WARMUP = 5


@dataclass(slots=True)
class Result:
    """Latencies (seconds) and wall time of one operation, ours and raw."""

    name: str
    label: str
    ours: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    ours_wall: float = 0.0
    raw_wall: float = 0.0
    round_ratios: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        """Median of the per-round ours/raw p50 ratios, or `None` without a raw twin."""
        return statistics.median(self.round_ratios) if self.round_ratios else None


def p50(latencies: list[float]) -> float:
    """The median latency."""
    return statistics.median(latencies)


async def _block(
    op: Op, counter: Iterator[int], n: int, concurrency: int
) -> tuple[list[float], float]:
    """`n` calls of `op`, `concurrency` at a time; their latencies and the wall time."""
    latencies: list[float] = []
    left = [n]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            i = next(counter)
            start = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - start


async def measure(
    name: str, label: str, ours: Op, raw: Op | None, *, ops: int, concurrency: int, block: int
) -> Result:
    """`ops` timed calls of each side after a warm-up, interleaved in blocks of `block`."""
    result = Result(name, label)
    ours_i, raw_i = itertools.count(), itertools.count()
    await _block(ours, ours_i, WARMUP, 1)
    if raw is not None:
        await _block(raw, raw_i, WARMUP, 1)
    done = 0
    for round_no in itertools.count():
        n = min(block, ops - done)
        if n <= 0:
            break
        sides: list[tuple[str, Op, Iterator[int]]] = [("ours", ours, ours_i)]
        if raw is not None:
            sides.append(("raw", raw, raw_i))
            if round_no % 2:
                sides.reverse()
        got: dict[str, list[float]] = {}
        for side, op, counter in sides:
            latencies, wall = await _block(op, counter, n, concurrency)
            got[side] = latencies
            if side == "ours":
                result.ours += latencies
                result.ours_wall += wall
            else:
                result.raw += latencies
                result.raw_wall += wall
        if "raw" in got:
            result.round_ratios.append(p50(got["ours"]) / p50(got["raw"]))
        done += n
    return result


def table(results: list[Result], title: str, other: str = "raw", mine: str = "ours") -> str:
    """A markdown table: ops/s and p50 per side, and `mine`/`other` at p50."""
    lines = [
        f"**{title}**",
        "",
        f"| operation | {mine} ops/s | {mine} p50 ms | {other} ops/s | {other} p50 ms"
        f" | {mine}/{other} p50 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ours_rate = len(r.ours) / r.ours_wall if r.ours_wall else 0.0
        row = [r.label, f"{ours_rate:,.0f}", f"{p50(r.ours) * 1000:.3f}"]
        if r.raw and r.ratio is not None:
            raw_rate = len(r.raw) / r.raw_wall if r.raw_wall else 0.0
            row += [f"{raw_rate:,.0f}", f"{p50(r.raw) * 1000:.3f}", f"{r.ratio:.2f}x"]
        else:
            row += ["-", "-", "-"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
