"""A stream of writes from one open `Storage`, and the checks of what a store holds afterwards.

Writers run rounds of workflow and AI writes (run, then under its run lock a step, failed
attempt, retry and result, then state, status, a two-message batch with a tool call) until told
to stop. A failed call ends its round and the writer starts the next one: the outcome of a
write that raised `StorageUnavailable` is unknown (it may have committed before the connection
broke, issue 17 item 10), so the checks accept each write whole or absent, never half.
Spec: 00 §6, 01 §3.5, 02 §2.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

from pikku_storage import Message, MessageRole, Storage, ToolCall, WorkflowRun, WorkflowStatus

__all__ = ["Writers", "check_consistent", "delete_everything"]

_PAUSE_AFTER_FAILURE: Final = 0.01  # do not spin on a refused connection
_PAGE: Final = 1000
_LOCK_TIMEOUT: Final = 5.0  # nobody else takes a writer's run lock


@dataclass
class _Writer:
    seen: Counter[str] = field(default_factory=Counter)  # outcome type name -> count
    failures: list[float] = field(default_factory=list)  # monotonic times of failed calls
    successes: list[float] = field(default_factory=list)  # monotonic times of whole rounds
    rounds: int = 0


class Writers:
    """`count` tasks writing through `storage` until `stop()`."""

    def __init__(self, storage: Storage, count: int) -> None:
        self.storage = storage
        self.writers = [_Writer() for _ in range(count)]
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._progress = asyncio.Condition()

    async def start(self) -> None:
        for n in range(len(self.writers)):
            await self.storage.ai_storage.create_thread("res", thread_id=f"thread-{n}")
        self._tasks = [asyncio.create_task(self._write(n)) for n in range(len(self.writers))]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def wait(self, predicate_name: str, since: float, count: int = 1) -> None:
        """Wait until every writer has `count` failures (`"failures"`) or whole rounds
        (`"successes"`) at or after monotonic time `since`."""
        async with self._progress:
            await self._progress.wait_for(
                lambda: all(
                    sum(t >= since for t in getattr(w, predicate_name)) >= count
                    for w in self.writers
                )
            )

    def outcomes(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for w in self.writers:
            total.update(w.seen)
        return total

    def failing(self, since: float) -> float:
        """Seconds between the first and the last failed call at or after `since`."""
        times = [t for w in self.writers for t in w.failures if t >= since]
        return max(times) - min(times) if times else 0.0

    def recovery(self, up: float) -> float:
        """Seconds from `up` until the last writer completed its first round after it."""
        return max(min(t for t in w.successes if t >= up) for w in self.writers) - up

    async def _write(self, worker: int) -> None:
        me = self.writers[worker]
        while not self._stop.is_set():
            try:
                await self._round(worker, me.rounds)
            except Exception as exc:  # recorded: the test asserts only StorageUnavailable
                me.seen[type(exc).__name__] += 1
                me.failures.append(time.monotonic())
                await asyncio.sleep(_PAUSE_AFTER_FAILURE)
            else:
                me.seen["ok"] += 1
                me.successes.append(time.monotonic())
            me.rounds += 1
            async with self._progress:
                self._progress.notify_all()

    async def _round(self, worker: int, n: int) -> None:
        wf, ai = self.storage.workflows, self.storage.ai_storage
        run_id = await wf.create_run(f"flow{worker}", {"n": n})
        step = await wf.insert_step_state(run_id, "a", None, None, retries=2)
        async with wf.run_lock(run_id, timeout=_LOCK_TIMEOUT):
            await wf.claim_step(step.step_id)
            await wf.set_step_error(step.step_id, {"message": "again"})
            await wf.create_retry_attempt(step.step_id, "running")
            await wf.set_step_result(step.step_id, n)
        await wf.update_run_state(run_id, "n", n)
        await wf.update_run_status(run_id, "completed", output=n)
        await ai.save_messages(
            f"thread-{worker}",
            [
                Message(id=f"m{n}", role=MessageRole.USER, content="q"),
                Message(
                    id=f"a{n}",
                    role=MessageRole.ASSISTANT,
                    tool_calls=[ToolCall(id=f"c{n}", name="t")],
                ),
            ],
        )


async def _all_runs(storage: Storage, status: WorkflowStatus | None = None) -> list[WorkflowRun]:
    out: list[WorkflowRun] = []
    while page := await storage.workflow_runs.list_runs(
        status=status, limit=_PAGE, offset=len(out)
    ):
        out += page
    return out


async def _all_threads(storage: Storage) -> list[str]:
    out: list[str] = []
    while page := await storage.agent_runs.list_threads(limit=_PAGE, offset=len(out)):
        out += [thread.id for thread in page]
    return out


async def check_consistent(storage: Storage) -> dict[str, int]:
    """Assert every run is whole (indexed under its status; each step's attempts agree with
    it, 01 §3.5) and every message batch is whole (02 §2). Returns what the store held."""
    runs = storage.workflow_runs
    listed = await _all_runs(storage)
    by_status = {
        status: {r.id for r in await _all_runs(storage, status)}
        for status in {run.status for run in listed}
    }
    held: Counter[str] = Counter()
    for run in listed:
        held[f"runs {run.status.value}"] += 1
        assert run.id in by_status[run.status]
        steps = await runs.get_run_steps(run.id)
        history = await runs.get_run_history(run.id)
        assert len(history) == sum(step.attempt_count for step in steps)
        for step in steps:
            attempts = [h for h in history if h.step_id == step.step_id]
            assert step.attempt_count == len(attempts)
            assert attempts[-1].status == step.status
            assert attempts[-1].result == step.result
            held["attempts"] += len(attempts)
        if run.status == "completed":
            assert (await storage.workflows.get_run_state(run.id)) == {"n": run.output}
    for thread_id in await _all_threads(storage):
        messages = await storage.ai_storage.get_messages(thread_id)
        ids = [m.id for m in messages if not m.id.startswith("tool-results-")]
        held["threads"] += 1
        held["messages"] += len(ids)
        if not thread_id.startswith("thread-"):
            continue  # not written by `Writers`
        users = [i[1:] for i in ids if i.startswith("m")]
        assistants = [i[1:] for i in ids if i.startswith("a")]
        assert users == assistants  # a two-message batch is stored whole or not at all
        assert ids == [i for n in users for i in (f"m{n}", f"a{n}")]
        for m in messages:
            if m.id.startswith("a"):
                assert [c.id for c in m.tool_calls or []] == [f"c{m.id[1:]}"]
    return dict(held)


async def delete_everything(storage: Storage) -> None:
    """Delete every run and thread through the public API (then the namespace must be empty
    of data: what is left is what the backend could not reach, an orphan)."""
    for run in await _all_runs(storage):
        assert await storage.workflow_runs.delete_run(run.id)
    for thread_id in await _all_threads(storage):
        await storage.ai_storage.delete_thread(thread_id)
