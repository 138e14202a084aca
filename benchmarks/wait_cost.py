"""`python -m benchmarks wait redis+cluster://…`: what `WAIT 1 <ms>` after each write costs.

Measured on bare redis-py against the primary that serves one hash tag (found through the
cluster), one connection, interleaved A/B blocks as in `ops`: a create_run-shaped Lua script
(HSET of the run hash + two ZADDs into its indexes, all under one tag) alone, against the same
script followed by `WAIT 1 <ms>` pipelined on the same connection (one round trip), and against
the script then `WAIT` as a second round trip. WAIT waits for the replication offset as of
its own connection's last command, so it belongs on the write's connection: on another pooled
connection that has been idle since before the write it returns at once and proves nothing
(redis-py's non-transactional cluster pipeline of EVALSHA + WAIT keeps both on one connection
of the key's primary). Keys are removed afterwards.
"""

from __future__ import annotations

import secrets
import statistics
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from benchmarks._measure import Result, measure, p50

__all__ = ["run_wait_cost"]

# KEYS[1] run hash, KEYS[2] runs by time, KEYS[3] runs by workflow+status; ARGV[1] now (ms),
# ARGV[2] input JSON, ARGV[3] run id. Reply: 1.
_CREATE: Final = """
redis.call('HSET', KEYS[1], 'workflow', 'bench', 'status', 'running', 'input', ARGV[2],
    'created_at', ARGV[1], 'updated_at', ARGV[1])
redis.call('ZADD', KEYS[2], tonumber(ARGV[1]), ARGV[3])
redis.call('ZADD', KEYS[3], tonumber(ARGV[1]), ARGV[3])
return 1
"""


@dataclass(slots=True)
class WaitFigures:
    """p50/p99 per variant (ms), the with/without ratio, and WAIT's replies."""

    primary: str
    timeout_ms: int
    results: list[Result]
    replies: Counter[int]

    def text(self) -> str:
        lines = [
            f"**WAIT 1 {self.timeout_ms} after a create_run-shaped script, primary {self.primary}"
            f" (one connection, interleaved blocks)**",
            "",
            "| variant | p50 ms | p99 ms | without WAIT p50 ms | with/without p50 |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in self.results:
            p99 = statistics.quantiles(r.ours, n=100)[98] * 1000 if len(r.ours) > 1 else 0.0
            lines.append(
                f"| {r.label} | {p50(r.ours) * 1000:.3f} | {p99:.3f} | {p50(r.raw) * 1000:.3f}"
                f" | {r.ratio:.2f}x |"
            )
        got = ", ".join(f"{n} replica(s): {c}" for n, c in sorted(self.replies.items()))
        lines += ["", f"WAIT replies: {got} (0 = timed out before a replica acknowledged)"]
        return "\n".join(lines)


async def run_wait_cost(url: str, *, ops: int, block: int, timeout_ms: int = 100) -> WaitFigures:
    """Measure the three variants on the cluster at `url` (`redis+cluster://host:port/…`)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    tag = f"{{pkb_wait_{secrets.token_hex(4)}}}"
    cluster = RedisCluster(host=host, port=port)
    try:
        await cluster.initialize()
        node = cluster.get_node_from_key(f"{tag}:runs")
        assert node is not None  # initialize() found every slot's primary
        node_host, node_port = node.host, int(node.port)
    finally:
        await cluster.aclose()
    primary = f"{node_host}:{node_port}"
    client = Redis(host=node_host, port=node_port, single_connection_client=True)
    script = client.register_script(_CREATE)
    replies: Counter[int] = Counter()

    def keys() -> tuple[list[str], list[str]]:
        run_id = str(uuid.uuid4())
        return [f"{tag}:run:{run_id}", f"{tag}:runs", f"{tag}:runs:bench:running"], [
            "1796350000000",
            '{"orderId": 1}',
            run_id,
        ]

    async def plain(i: int) -> None:
        k, a = keys()
        await script(keys=k, args=a)

    async def pipelined(i: int) -> None:
        k, a = keys()
        async with client.pipeline(transaction=False) as pipe:
            await script(keys=k, args=a, client=pipe)
            pipe.execute_command("WAIT", 1, timeout_ms)
            _, acked = await pipe.execute()
        replies[int(acked)] += 1

    async def two_trips(i: int) -> None:
        k, a = keys()
        await script(keys=k, args=a)
        replies[int(await client.wait(1, timeout_ms))] += 1

    try:
        await plain(-1)  # loads the script
        results = [
            await measure(name, label, op, plain, ops=ops, concurrency=1, block=block)
            for name, label, op in (
                ("pipelined", "script + WAIT pipelined (1 round trip)", pipelined),
                ("two_trips", "script, then WAIT (2 round trips)", two_trips),
            )
        ]
    finally:
        async for key in client.scan_iter(match=f"{tag}*", count=1000):
            await client.unlink(key)
        await client.aclose()
    return WaitFigures(primary, timeout_ms, results, replies)
