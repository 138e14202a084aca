"""`python -m benchmarks URL --against OTHER`: ours on URL against ours on OTHER, interleaved.

Both namespaces get the same setup and preload; every operation then runs in A/B blocks,
URL's calls then OTHER's (the order flipped every block), exactly as ours/raw in `ops`, so the
ratio is the median of per-block p50 ratios and drift hits both alike. Made for a Redis Cluster
against standalone Redis (`redis+cluster://…` against `redis://…`, issue 15: `list_runs` 50
within 3x, writes within 1.25x); on a cluster URL it also reports how many keys of the
namespace each primary holds after the preload.
"""

from __future__ import annotations

import platform

from benchmarks._cluster import keys_per_primary
from benchmarks._measure import Result, measure, table
from benchmarks._namespace import Namespace
from benchmarks._workload import OPERATIONS, ours, preload, prepare
from benchmarks.ops import Options, pool_options

__all__ = ["run_compare"]


async def run_compare(url: str, other: str, options: Options) -> tuple[list[Result], str]:
    """Measure every operation on `url` against `other`, each in a fresh namespace."""
    a, b = Namespace(url), Namespace(other)
    lines: list[str] = []
    try:
        pool = pool_options(a.kind, options.concurrency)
        async with a.open(**pool) as sa, b.open(**pool_options(b.kind, options.concurrency)) as sb:
            channels = max(options.ops, 1) + 10
            state_a, state_b = await prepare(sa, channels), await prepare(sb, channels)
            await preload(sa, state_a, options.rows)
            await preload(sb, state_b, options.rows)
            for ns in (a, b):
                if ns.kind == "redis-cluster":
                    spread = await keys_per_primary(ns.base_url, ns.name)
                    lines.append(
                        f"keys of namespace {ns.name} on {ns.kind} per primary after setup and"
                        f" preload ({options.rows:,} runs and messages): "
                        + ", ".join(f"{node} {n:,}" for node, n in spread.items())
                    )
            mine, theirs = ours(sa, state_a), ours(sb, state_b)
            results = [
                await measure(
                    name,
                    label,
                    mine[name],
                    theirs[name],
                    ops=options.ops,
                    concurrency=options.concurrency,
                    block=options.block,
                )
                for name, label in OPERATIONS
            ]
            await sa.deployments.stop()
            await sb.deployments.stop()
    finally:
        try:
            await a.drop()
        finally:
            await b.drop()
    title = (
        f"{a.kind} against {b.kind}, ours on both, interleaved: {options.ops} ops per side,"
        f" concurrency {options.concurrency}, A/B blocks of {options.block},"
        f" {options.rows:,} preloaded runs and messages (Python {platform.python_version()})"
    )
    text = table(results, title, other=b.kind, mine=a.kind)
    return results, "\n\n".join([text, *lines])
