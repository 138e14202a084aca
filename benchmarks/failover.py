"""`python -m benchmarks failover`: one primary of a private cluster SIGKILLed under writes.

A private 6-node cluster (benchmarks/_cluster.py, free loopback ports, removed afterwards) and
ONE open `Storage` on `redis+cluster://`. Writer tasks run rounds of create_run, then
insert_step_state + set_step_result, then a one-message save_messages into the writer's
thread, then a `list_runs` (which reads every primary); every write call that returned is an
acknowledged write. Once each writer has done a few
rounds, the primary the writers load most (the most bytes replicated) is killed with SIGKILL;
the writers keep going on the same `Storage` (never reopened) until, after the replica's
promotion and the last failed call, every writer has completed several clean rounds (or a
30 s bound runs out). Variants: `--signal STOP` freezes the primary instead (its sockets go
silent, calls wait for the socket timeout), `--replica-lag S` freezes its replica for S
seconds before the kill, `--payload N` pads each message with N characters.

Reported: what the caller saw (outcome counts by exception type and by method, and any
exception that is not a pikku_storage error), the times from the kill to the first failed
call, to the promotion seen in `CLUSTER NODES`, and to the first successful write after the
last failed one, the longest time without any successful write, and every acknowledged write
that the store no longer has (Redis replicates asynchronously, so a write acknowledged just
before the kill can be lost: counted, never assumed zero). The fault test
tests/faults/test_redis_cluster_failover.py asserts on the same report.

One raw error is counted apart: redis-py 8.1's async cluster client answers a CLUSTERDOWN (or
a topology refresh) with `aclose()`, which disconnects every pooled connection, including those
other tasks are sending on; such a task fails with `AttributeError: 'NoneType' object has no
attribute 'writelines'` from redis/asyncio/connection.py (seen once in about half of the runs,
with 4 writers as with 8, on 2026-12-04; redis-py 8.2 raises `ConnectionError` there instead).
The backend translates it to `StorageUnavailable` (pikku_storage/redis/_errors.py
`is_connection_race`); the line stays, so a raw one would show.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import signal
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

import redis
from redis import Redis

from benchmarks._cluster import PrivateCluster, private_cluster, redis_server_missing
from pikku_storage import Message, MessageRole, PikkuStorageError, Storage, open_storage
from pikku_storage.records import StepStatus

__all__ = ["FailoverReport", "measure_failover", "run_failover"]

T = TypeVar("T")

WRITERS: Final = 4
WARMUP_ROUNDS: Final = 5  # whole rounds per writer before the kill
SETTLE_ROUNDS: Final = 5  # clean rounds per writer after the promotion and the last failure
RECOVERY_BOUND: Final = 30.0  # seconds from the kill: a liveness bound, not a speed target
CALL_TIMEOUT: Final = 15.0  # a call with no answer by then is counted as hung
PAUSE_AFTER_FAILURE: Final = 0.01
HUNG: Final = "hung (no answer in 15 s)"
_REDIS_PY: Final = Path(redis.__file__).parent


@dataclass(frozen=True, slots=True)
class _Ack:
    kind: str  # "run", "result" or "message"
    at: float
    run_id: str
    step_id: str = ""
    thread_id: str = ""
    message_id: str = ""


@dataclass(slots=True)
class FailoverReport:
    """What one kill under writes showed (times in seconds from the kill)."""

    writers: int
    killed_port: int
    signal: str = "SIGKILL"
    replica_lag: float = 0.0  # seconds its replica was frozen before the kill
    calls: Counter[str] = field(default_factory=Counter)  # "ok" or the exception's type
    foreign_errors: Counter[str] = field(default_factory=Counter)  # not PikkuStorageError
    # not PikkuStorageError either: redis-py's connection race (see `_connection_race`)
    connection_race: Counter[str] = field(default_factory=Counter)
    failed_calls: Counter[str] = field(default_factory=Counter)  # "create_run: <type>"
    examples: dict[str, str] = field(default_factory=dict)  # type -> its first message
    first_error_s: float | None = None
    promoted_s: float | None = None
    recovered_s: float | None = None  # first successful write after the last failed one
    longest_gap_s: float = 0.0  # longest time without a successful write, after the kill
    settled: bool = False  # every writer completed SETTLE_ROUNDS clean rounds in the bound
    acked_before: int = 0
    lost_before: int = 0
    acked_after: int = 0
    lost_after: int = 0
    lost: list[str] = field(default_factory=list)  # the lost acknowledged writes, described

    def text(self) -> str:
        """The report as markdown lines."""

        def secs(x: float | None) -> str:
            return "-" if x is None else f"{x:.2f} s"

        errors = Counter({k: v for k, v in self.calls.items() if k != "ok"})
        lines = [
            f"**failover: {self.signal} of the primary on port {self.killed_port} under"
            f" {self.writers} writers on one open Storage (redis+cluster://)"
            + (
                f", its replica frozen for the {self.replica_lag:.2f} s before**"
                if self.replica_lag
                else "**"
            ),
            "",
            "| figure | value |",
            "|---|---|",
            f"| calls that returned | {self.calls.get('ok', 0)} |",
            f"| errors the caller saw | {_counts(errors) or 'none'} |",
            "| raw errors (not pikku_storage errors) besides the next line |"
            f" {_counts(self.foreign_errors) or 0} |",
            "| raw errors from redis-py's own connection race (see the module doc) |"
            f" {_counts(self.connection_race) or 0} |",
            f"| kill -> first failed call | {secs(self.first_error_s)} |",
            f"| kill -> replica promoted (CLUSTER NODES, every live node) | "
            f"{secs(self.promoted_s)} |",
            f"| kill -> first successful write after the last failed call | "
            f"{secs(self.recovered_s)} |",
            f"| longest time without a successful write | {secs(self.longest_gap_s)} |",
            f"| writers recovered without reopening (clean rounds within {RECOVERY_BOUND:.0f} s)"
            f" | {'yes' if self.settled else 'NO'} |",
            f"| acknowledged before the kill, lost | {self.lost_before} of {self.acked_before} |",
            f"| acknowledged after the kill, lost | {self.lost_after} of {self.acked_after} |",
        ]
        if self.failed_calls:
            lines += ["", "Failed calls by method: " + _counts(self.failed_calls)]
        for name, message in self.examples.items():
            lines.append(f"First {name}: {message}")
        if self.lost:
            lines += ["", "Lost: " + "; ".join(self.lost[:20])]
        return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} x{n}" for name, n in counter.most_common())


class _Stream:
    """`writers` tasks writing through one `Storage` until `stop()`."""

    def __init__(self, storage: Storage, writers: int, payload: int) -> None:
        self.storage = storage
        self.writers = writers
        self.padding = "x" * payload
        self.calls: Counter[str] = Counter()
        self.foreign: Counter[str] = Counter()
        self.race: Counter[str] = Counter()
        self.by_call: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        self.failures: list[float] = []
        self.writes_ok: list[float] = []
        self.rounds: list[list[float]] = [[] for _ in range(writers)]
        self.acks: list[_Ack] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._progress = asyncio.Condition()

    async def start(self) -> None:
        for w in range(self.writers):
            await self.storage.ai_storage.create_thread("failover", thread_id=f"thread-{w}")
        self._tasks = [asyncio.create_task(self._write(w)) for w in range(self.writers)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait (re-checked after every round of every writer) until `predicate()` holds;
        `False` when `timeout` seconds passed first."""
        async with self._progress:
            try:
                async with asyncio.timeout(timeout):
                    await self._progress.wait_for(predicate)
            except TimeoutError:
                return False
        return True

    def rounds_since(self, since: float) -> int:
        """The fewest whole rounds any writer completed at or after `since`."""
        return min(sum(t >= since for t in times) for times in self.rounds)

    async def _call(self, method: str, call: Awaitable[T], *, write: bool = True) -> T:
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                out = await call
        except TimeoutError as exc:
            if isinstance(exc, PikkuStorageError):
                self._failed(method, exc)
                raise
            self._failed(method, exc, HUNG)
            raise
        except Exception as exc:
            self._failed(method, exc)
            raise
        self.calls["ok"] += 1
        if write:
            self.writes_ok.append(time.monotonic())
        return out

    def _failed(self, method: str, exc: Exception, name: str | None = None) -> None:
        name = name or type(exc).__name__
        self.calls[name] += 1
        self.by_call[f"{method}: {name}"] += 1
        self.examples.setdefault(name, str(exc)[:200])
        if name != HUNG and _connection_race(exc):
            self.race[name] += 1
        elif name == HUNG or not isinstance(exc, PikkuStorageError):
            self.foreign[name if name == HUNG else f"{type(exc).__module__}.{name}"] += 1
        foreign = name == HUNG or not isinstance(exc, PikkuStorageError)
        if foreign and exc.__traceback__ is not None:  # where a foreign error came from
            frames = traceback.extract_tb(exc.__traceback__)[-3:]
            where = " <- ".join(
                f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} {f.name}" for f in reversed(frames)
            )
            self.examples[name] = f"{self.examples[name]} (at {where})"
        self.failures.append(time.monotonic())

    async def _write(self, w: int) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            try:
                await self._round(w, n)
            except Exception:  # counted in _call; the round ends, the next one starts
                await asyncio.sleep(PAUSE_AFTER_FAILURE)
            else:
                self.rounds[w].append(time.monotonic())
            async with self._progress:
                self._progress.notify_all()

    async def _round(self, w: int, n: int) -> None:
        wf, ai = self.storage.workflows, self.storage.ai_storage
        run_id = await self._call("create_run", wf.create_run("failover", {"w": w, "n": n}))
        self.acks.append(_Ack("run", time.monotonic(), run_id))
        step = await self._call(
            "insert_step_state", wf.insert_step_state(run_id, "s", None, {"n": n})
        )
        await self._call("set_step_result", wf.set_step_result(step.step_id, {"n": n}))
        self.acks.append(_Ack("result", time.monotonic(), run_id, step_id=step.step_id))
        thread_id, message_id = f"thread-{w}", f"m{n}"
        message = Message(id=message_id, role=MessageRole.USER, content=f"w{w} n{n}{self.padding}")
        await self._call("save_messages", ai.save_messages(thread_id, [message]))
        self.acks.append(
            _Ack("message", time.monotonic(), run_id, thread_id=thread_id, message_id=message_id)
        )
        # a read of every primary (one script per bucket): it fails and recovers as writes do
        await self._call("list_runs", self.storage.workflow_runs.list_runs(limit=10), write=False)


def _connection_race(exc: BaseException) -> bool:
    """An AttributeError/TypeError raised inside redis-py's own connection code: a connection
    closed under a running command by redis-py's cluster client itself."""
    if not isinstance(exc, AttributeError | TypeError) or exc.__traceback__ is None:
        return False
    innermost = Path(traceback.extract_tb(exc.__traceback__)[-1].filename)
    return innermost.is_relative_to(_REDIS_PY)


def _busiest_primary(cluster: PrivateCluster) -> int:
    """The primary that has replicated the most bytes so far (`master_repl_offset`): the one
    the writers load most (the thread tag's primary once messages carry a payload)."""
    offsets: dict[int, int] = {}
    for port in cluster.primaries():
        client = Redis(host="127.0.0.1", port=port, socket_timeout=5)
        try:
            offsets[port] = int(client.info("replication")["master_repl_offset"])
        finally:
            client.close()
    return max(offsets, key=lambda p: offsets[p])


async def _lost(storage: Storage, acks: list[_Ack]) -> list[_Ack]:
    """The acknowledged writes the store no longer has."""
    wf, runs, ai = storage.workflows, storage.workflow_runs, storage.ai_storage
    messages: dict[str, set[str]] = {}
    lost = []
    for ack in acks:
        if ack.kind == "run":
            ok = await wf.get_run(ack.run_id) is not None
        elif ack.kind == "result":
            steps = await runs.get_run_steps(ack.run_id)
            ok = any(s.step_id == ack.step_id and s.status is StepStatus.SUCCEEDED for s in steps)
        else:
            if ack.thread_id not in messages:
                got = await ai.get_messages(ack.thread_id)
                messages[ack.thread_id] = {m.id for m in got}
            ok = ack.message_id in messages[ack.thread_id]
        if not ok:
            lost.append(ack)
    return lost


async def measure_failover(
    cluster: PrivateCluster,
    *,
    writers: int = WRITERS,
    payload: int = 0,
    sig: signal.Signals = signal.SIGKILL,
    replica_lag: float = 0.0,
    **options: object,
) -> FailoverReport:
    """Run the writers on `cluster`, kill its busiest primary, and report (see module doc).
    `payload` pads each message with that many characters (more replication traffic); `sig`
    SIGSTOP freezes the primary instead (no connection reset: calls wait for a timeout);
    `replica_lag` freezes the primary's replica that many seconds before the kill and resumes
    it right after, so the writes acknowledged meanwhile never reached it (the loss that
    asynchronous replication allows, made visible)."""
    prefix = f"failover_{secrets.token_hex(4)}"
    async with open_storage(cluster.url, key_prefix=prefix, **options) as storage:
        stream = _Stream(storage, writers, payload)
        await stream.start()
        began = time.monotonic()
        await stream.wait(lambda: stream.rounds_since(began) >= WARMUP_ROUNDS, RECOVERY_BOUND)
        port = await asyncio.to_thread(_busiest_primary, cluster)
        replica = await asyncio.to_thread(cluster.replica_of, port) if replica_lag else None
        if replica is not None:
            await asyncio.to_thread(cluster.kill, replica, signal.SIGSTOP)
            await asyncio.sleep(replica_lag)
        killed = await asyncio.to_thread(cluster.kill, port, sig)
        if replica is not None:
            await asyncio.to_thread(cluster.resume, replica)
        promotion = asyncio.create_task(
            asyncio.to_thread(cluster.wait_promoted, port, RECOVERY_BOUND)
        )
        report = FailoverReport(
            writers=writers, killed_port=port, signal=sig.name, replica_lag=replica_lag
        )

        def settled() -> bool:
            promoted = promotion.result() if promotion.done() else None
            if promoted is None:
                return False
            return stream.rounds_since(max([promoted, *stream.failures])) >= SETTLE_ROUNDS

        left = RECOVERY_BOUND - (time.monotonic() - killed)
        report.settled = await stream.wait(settled, left)
        await stream.stop()
        promoted = await promotion
        after = [t for t in stream.failures if t >= killed]
        report.calls, report.foreign_errors = stream.calls, stream.foreign
        report.connection_race = stream.race
        report.failed_calls, report.examples = stream.by_call, stream.examples
        report.first_error_s = min(after) - killed if after else None
        report.promoted_s = promoted - killed if promoted is not None else None
        if after:
            later = [t for t in stream.writes_ok if t > max(after)]
            report.recovered_s = min(later) - killed if later else None
        oks = [killed, *(t for t in stream.writes_ok if t >= killed)]
        report.longest_gap_s = max((b - a for a, b in itertools.pairwise(oks)), default=0.0)
        lost = await _lost(storage, stream.acks)
        report.acked_before = sum(a.at < killed for a in stream.acks)
        report.acked_after = len(stream.acks) - report.acked_before
        report.lost_before = sum(a.at < killed for a in lost)
        report.lost_after = len(lost) - report.lost_before
        report.lost = [
            f"{a.kind} {a.run_id if a.kind != 'message' else f'{a.thread_id}/{a.message_id}'}"
            f" acknowledged {(a.at - killed) * 1000:+.1f} ms from the kill"
            for a in lost
        ]
    return report


def run_failover(
    base_port: int | None = None,
    *,
    writers: int = WRITERS,
    payload: int = 0,
    sig: signal.Signals = signal.SIGKILL,
    replica_lag: float = 0.0,
    **options: object,
) -> str:
    """Start a private cluster, measure one failover on it, remove it; the report's text.
    `options` go to `open_storage` (client options such as `socket_timeout`)."""
    missing = redis_server_missing()
    if missing is not None:
        raise SystemExit(f"failover starts its own Redis Cluster: {missing} is not installed")
    with private_cluster(base_port) as cluster:
        report = asyncio.run(
            measure_failover(
                cluster,
                writers=writers,
                payload=payload,
                sig=sig,
                replica_lag=replica_lag,
                **options,
            )
        )
    return report.text()
