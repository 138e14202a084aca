"""`RedisWorkflowService` and `RedisWorkflowRunService`: workflow state on Redis.

Every write is one Lua script over the run's keys and the namespace indexes of its bucket
(standalone: tags `{r}` and `{P}`, on one server; cluster: one tag `{P.b}`, one slot); index
keys that depend on the run's status are read first and the script re-checks the run's `rev`,
answering "retry" if a status change slipped in. Lists read sorted sets, so their cost follows
the window, never the number of runs stored; on a cluster they merge the buckets' windows
(`_cluster_lists.py`). See docs/operations.md#storage-layout.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Final

from pikku_storage import _validate as v
from pikku_storage._locks import LockName
from pikku_storage.clock import Clock, to_epoch_ms
from pikku_storage.codec import JsonValue, decode, encode
from pikku_storage.errors import ConflictError, RunNotFound, StepFunctionMismatch, StepNotFound
from pikku_storage.interfaces.workflows import (
    GraphStep,
    NewRun,
    NewStep,
    StepChange,
    WorkflowService,
)
from pikku_storage.records import (
    StalledRun,
    StepInstance,
    StepState,
    StepStatus,
    UndispatchedStep,
    WorkflowStatus,
    WorkflowVersionStatus,
)
from pikku_storage.redis import _cluster_lists as fan
from pikku_storage.redis import _rows as rows
from pikku_storage.redis._connection import RedisSource
from pikku_storage.redis._errors import translated
from pikku_storage.redis._locks import RedisLocks
from pikku_storage.redis._wf_base import RedisWorkflowBase, flatten, rest_pairs
from pikku_storage.redis._wf_console import RedisWorkflowRunService

__all__ = ["RedisWorkflowRunService", "RedisWorkflowService"]

logger = logging.getLogger(__name__)

_STEPREF_CACHE: Final = 10_000  # step id -> run id entries kept per service (immutable map)
_RETRY: Final = -1
_MISMATCH: Final = -2


class RedisWorkflowService(RedisWorkflowBase, WorkflowService):
    """Workflow runs, steps, state, versions and leased locks on Redis (see
    docs/services/workflows.md, docs/operations.md#storage-layout).

    Built from a URL it owns its client; given a client or a `RedisConnection` it borrows it.
    `lock_lease` (seconds, default 30) is the `PX` lease of a held lock, renewed every third of
    it while the body runs.
    """

    def __init__(
        self,
        redis: RedisSource,
        *,
        key_prefix: str = "pikku",
        clock: Clock | None = None,
        lock_lease: float = 30.0,
        **client_options: object,
    ) -> None:
        super().__init__(redis, key_prefix=key_prefix, clock=clock, **client_options)
        lease = v.positive_seconds("lock_lease", lock_lease, minimum=0.0)
        self._locks = RedisLocks(self._keys, lease)
        self._steprefs: dict[str, str] = {}

    # --- runs -----------------------------------------------------------------------------------

    @translated
    async def _create_run(self, run: NewRun) -> None:
        k = self._keys
        now = to_epoch_ms(run.now)
        fields: dict[str, str | int] = {
            "workflow": run.workflow,
            "status": WorkflowStatus.RUNNING.value,
            "inline": "1" if run.inline else "0",
            "wire": run.wire,
            "created_at": now,
            "updated_at": now,
            "rev": 0,
            "step_seq": 0,
            "attempt_seq": 0,
            "deterministic": "1" if run.deterministic else "0",
            "planned_steps": run.planned_steps,
            "active_steps": 0,
            "activity_at": now,
        }
        if run.input is not None:
            fields["input"] = run.input
        if run.graph_hash is not None:
            fields["graph_hash"] = run.graph_hash
        b = k.bucket(run.run_id)
        args = [run.run_id, run.workflow, now, len(fields), *flatten(fields)]
        if k.cluster:
            # the namespace-wide insertion order lives in its own slot: taken first, so a run
            # created after another returned sorts after it (ties of one millisecond, 00 §4)
            args.append(await self._redis.incr(k.seq()))
        await self._scripts(
            "wf_create_run",
            [
                k.run(run.run_id),
                k.run(run.run_id) if k.cluster else k.seq(),
                k.runs(b),
                *k.run_indexes(run.workflow, WorkflowStatus.RUNNING.value, b),
                k.names(b),
                k.namecount(b),
                k.idle(b),
            ],
            args,
        )

    @translated
    async def _update_run_status(
        self,
        run_id: str,
        status: WorkflowStatus,
        output: str | None,
        error: str | None,
        now: datetime,
    ) -> None:
        k = self._keys
        while True:
            current = await self._run_status(run_id)
            if current is None:
                raise RunNotFound(run_id)
            workflow, old, rev = current
            b = k.bucket(run_id)
            outcome = await self._scripts(
                "wf_update_run_status",
                [
                    k.run(run_id),
                    *k.run_indexes(workflow, old, b)[:3],
                    *k.run_indexes(workflow, status.value, b)[:3],
                    k.steps(run_id),
                    k.idle(b),
                    k.undispatched(b),
                ],
                [run_id, rev, status.value, to_epoch_ms(now), output or "", error or ""],
            )
            if outcome == 0:
                raise RunNotFound(run_id)
            if outcome != _RETRY:
                return

    @translated
    async def _update_run_state(self, run_id: str, name: str, value: str, now: datetime) -> None:
        k = self._keys
        while True:
            current = await self._run_status(run_id)
            if current is None:
                raise RunNotFound(run_id)
            _, status, rev = current
            b = k.bucket(run_id)
            outcome = await self._scripts(
                "wf_update_run_state",
                [k.run(run_id), k.state(run_id), k.updated(status, b), k.idle(b)],
                [run_id, rev, to_epoch_ms(now), name, value],
            )
            if outcome == 0:
                raise RunNotFound(run_id)
            if outcome != _RETRY:
                return

    @translated
    async def _get_run_state(self, run_id: str) -> dict[str, JsonValue]:
        stored = rows.pairs(await self._redis.hgetall(self._keys.state(run_id)))
        return {name: decode(value) for name, value in stored.items()}

    # --- steps ------------------------------------------------------------------------------------

    @translated
    async def _insert_step_state(self, step: NewStep) -> StepState:
        k = self._keys
        b = k.bucket(step.run_id)
        if k.cluster:  # the step id drawn into its run's bucket: its stepref shares the slot
            step.step_id = k.draw_id(b)
        now = to_epoch_ms(step.now)
        live: dict[str, str | int] = {
            "name": step.step_name,
            "status": StepStatus.PENDING.value,
            "attempt": 1,
            "created_at": now,
            "updated_at": now,
        }
        for field, value in (
            ("rpc_name", step.rpc_name),
            ("from_step_name", step.from_step_name),
            ("data", step.data),
            ("retries", step.retries),
            ("retry_delay", step.retry_delay),
        ):
            if value is not None:
                live[field] = value
        attempt: dict[str, str | int] = {
            "status": StepStatus.PENDING.value,
            "created_at": now,
            "updated_at": now,
        }
        outcome = await self._scripts(
            "wf_insert_step",
            [
                k.run(step.run_id),
                k.steps(step.run_id),
                k.stepids(step.run_id),
                k.order(step.run_id),
                k.attempts(step.run_id),
                k.history(step.run_id),
                k.steprefs(b),
                k.idle(b),
                k.undispatched(b),
            ],
            [
                step.run_id,
                step.step_id,
                step.step_name,
                now,
                len(live),
                *flatten(live),
                len(attempt),
                *flatten(attempt),
            ],
        )
        if outcome == 0:
            raise RunNotFound(step.run_id)
        if outcome == _RETRY:
            raise ConflictError.step(step.run_id, step.step_name)
        self._remember_step(step.step_id, step.run_id)  # the next transition needs no HGET
        return step.initial_state()

    @translated
    async def _get_step_state(self, run_id: str, step_name: str) -> StepState | None:
        k = self._keys
        reader = rows.Reader(
            await self._scripts(
                "wf_get_step",
                [k.stepids(run_id), k.steps(run_id)],
                [step_name, *rows.STEP_FIELDS],
            )
        )
        if not reader:
            return None
        step_id = reader.take()
        return rows.step_state(step_id, rest_pairs(reader))

    async def _run_of_step(self, step_id: str) -> str:
        """The run id of a step (the immutable step-id map, cached); `StepNotFound` if none."""
        run_id = self._steprefs.get(step_id)
        if run_id is None:
            k = self._keys
            found = await self._redis.hget(k.steprefs(k.bucket(step_id)), step_id)
            if found is None:
                raise StepNotFound.by_id(step_id)
            run_id = rows.text(found)
            self._remember_step(step_id, run_id)
        return run_id

    def _remember_step(self, step_id: str, run_id: str) -> None:
        if len(self._steprefs) >= _STEPREF_CACHE:
            self._steprefs.clear()
        self._steprefs[step_id] = run_id

    @translated
    async def _set_step(self, step_id: str, change: StepChange, now: datetime) -> None:
        run_id = await self._run_of_step(step_id)
        k = self._keys
        if change.outcome is None:
            outcome_args = ["0", "", ""]
        else:
            result, error = change.outcome
            outcome_args = ["1", result or "", error or ""]
        done = await self._scripts(
            "wf_set_step",
            [k.steps(run_id), k.attempts(run_id), k.run(run_id), *self._markers(run_id)],
            [step_id, change.status.value, change.stamp, to_epoch_ms(now), *outcome_args, run_id],
        )
        if done == 0:
            raise StepNotFound.by_id(step_id)

    @translated
    async def _claim_step(self, step_id: str, now: datetime) -> StepState | None:
        run_id = await self._run_of_step(step_id)
        k = self._keys
        reader = rows.Reader(
            await self._scripts(
                "wf_claim_step",
                [k.steps(run_id), k.attempts(run_id), k.run(run_id), *self._markers(run_id)],
                [step_id, to_epoch_ms(now), run_id, *rows.STEP_FIELDS],
            )
        )
        outcome = reader.take_int()
        if outcome == _RETRY:
            raise StepNotFound.by_id(step_id)
        return rows.step_state(step_id, rest_pairs(reader)) if outcome == 1 else None

    @translated
    async def _create_retry_attempt(
        self, step_id: str, status: StepStatus, now: datetime
    ) -> StepState:
        run_id = await self._run_of_step(step_id)
        k = self._keys
        reader = rows.Reader(
            await self._scripts(
                "wf_retry_step",
                [
                    k.run(run_id),
                    k.steps(run_id),
                    k.attempts(run_id),
                    k.history(run_id),
                    *self._markers(run_id),
                ],
                [step_id, status.value, to_epoch_ms(now), run_id, *rows.STEP_FIELDS],
            )
        )
        if reader.take_int() == _RETRY:
            raise StepNotFound.by_id(step_id)
        return rows.step_state(step_id, rest_pairs(reader))

    # --- graph primitives ------------------------------------------------------------------------

    @translated
    async def _get_graph_steps(self, run_id: str) -> list[GraphStep]:
        steps = rows.split_fields(rows.pairs(await self._redis.hgetall(self._keys.steps(run_id))))
        return [rows.graph_step(fields) for fields in steps.values()]

    @translated
    async def _get_step_names(self, run_id: str, names: list[str]) -> set[str]:
        found = await self._redis.hmget(self._keys.stepids(run_id), names)
        return {name for name, step_id in zip(names, found, strict=True) if step_id is not None}

    @translated
    async def _get_succeeded_results(self, run_id: str, names: list[str]) -> dict[str, JsonValue]:
        k = self._keys
        found = rows.pairs(
            await self._scripts("wf_node_results", [k.stepids(run_id), k.steps(run_id)], names)
        )
        return {name: decode(result) for name, result in found.items()}

    @translated
    async def _set_branch_taken(self, step_id: str, branch_key: str, now: datetime) -> None:
        run_id = await self._run_of_step(step_id)
        k = self._keys
        done = await self._scripts(
            "wf_set_branch",
            [k.steps(run_id), k.run(run_id), *self._markers(run_id)],
            [step_id, branch_key, to_epoch_ms(now), run_id],
        )
        if done == 0:
            raise StepNotFound.by_id(step_id)

    # --- versions ---------------------------------------------------------------------------------

    @translated
    async def _upsert_workflow_version(
        self,
        name: str,
        graph_hash: str,
        graph: str,
        source: str,
        status: WorkflowVersionStatus,
        now: datetime,
    ) -> bool:
        # `graph` is codec JSON text already: spliced in as a value, never re-encoded; the
        # status comes last, the one part `wf_version_status` rewrites
        stored = (
            f'{{"name":{encode(name, "name")},"graph_hash":{encode(graph_hash, "graph_hash")},'
            f'"graph":{graph},"source":{encode(source, "source")},'
            f'"created_at":{to_epoch_ms(now)},"status":"{status.value}"}}'
        )
        created = await self._redis.set(self._keys.version(name, graph_hash), stored, nx=True)
        return bool(created)

    @translated
    async def _update_workflow_version_status(
        self, name: str, graph_hash: str, status: WorkflowVersionStatus, now: datetime
    ) -> bool:
        done = await self._scripts(
            "wf_version_status", [self._keys.version(name, graph_hash)], [status.value]
        )
        return done == 1

    # --- spec 05: claim for execution, child runs, instances, sweepers ---------------------------

    @translated
    async def _claim_step_for_execution(
        self,
        run_id: str,
        step_name: str,
        rpc_name: str | None,
        max_attempts: int | None,
        now: datetime,
    ) -> StepState | None:
        k = self._keys
        reader = rows.Reader(
            await self._scripts(
                "wf_claim_for_execution",
                [
                    k.run(run_id),
                    k.steps(run_id),
                    k.stepids(run_id),
                    k.attempts(run_id),
                    k.history(run_id),
                    *self._markers(run_id),
                ],
                [
                    run_id,
                    step_name,
                    "0" if rpc_name is None else "1",
                    rpc_name or "",
                    "" if max_attempts is None else max_attempts,
                    to_epoch_ms(now),
                    *rows.STEP_FIELDS,
                ],
            )
        )
        outcome = reader.take_int()
        if outcome == _RETRY:
            raise StepNotFound.by_name(run_id, step_name)
        if outcome == _MISMATCH:
            raise StepFunctionMismatch(run_id, step_name)
        if outcome == 0:
            return None
        step_id = reader.take()
        self._remember_step(step_id, run_id)
        return rows.step_state(step_id, rest_pairs(reader))

    @translated
    async def _set_step_child_run_id(self, step_id: str, child_run_id: str, now: datetime) -> None:
        run_id = await self._run_of_step(step_id)
        k = self._keys
        done = await self._scripts(
            "wf_set_child",
            [k.steps(run_id), k.attempts(run_id), k.run(run_id), *self._markers(run_id)],
            [step_id, child_run_id, to_epoch_ms(now), run_id],
        )
        if done == 0:
            raise StepNotFound.by_id(step_id)

    @translated
    async def _get_step_instances(self, run_id: str) -> list[StepInstance]:
        k = self._keys
        reader = rows.Reader(
            await self._scripts("wf_run_steps", [k.order(run_id), k.steps(run_id)])
        )
        members = reader.take_list()
        steps = rows.split_fields(reader.take_pairs())
        found = []
        for member in members:
            step_id = member.partition(":")[2]
            found.append(rows.step_instance(step_id, steps[step_id]))
        return found

    @translated
    async def _find_stalled_runs(
        self, older_than: datetime, limit: int, after: StalledRun | None
    ) -> list[StalledRun]:
        k = self._keys
        window = [
            to_epoch_ms(older_than),
            limit,
            "" if after is None else to_epoch_ms(after.idle_since),
            "" if after is None else after.run_id,
        ]
        if not k.cluster:
            reply = await self._scripts("wf_find_stalled", [k.idle()], [*window, *k.run_prefix()])
            return rows.stalled_runs(reply)
        replies = await self._scripts.many(
            [("wf_find_stalled", [k.idle(b)], [*window, *k.run_prefix(b)]) for b in k.all_buckets()]
        )
        return fan.first(
            (rows.stalled_runs(reply) for reply in replies),
            lambda r: (r.idle_since, r.run_id),
            limit,
        )

    @translated
    async def _find_undispatched_steps(
        self, older_than: datetime, limit: int, after: UndispatchedStep | None
    ) -> list[UndispatchedStep]:
        k = self._keys
        window = [
            to_epoch_ms(older_than),
            limit,
            "" if after is None else to_epoch_ms(after.pending_since),
            "" if after is None else after.step_id,
        ]
        if not k.cluster:
            reply = await self._scripts(
                "wf_find_undispatched", [k.undispatched()], [*window, *k.steps_prefix()]
            )
            return rows.undispatched_steps(reply)
        replies = await self._scripts.many(
            [
                ("wf_find_undispatched", [k.undispatched(b)], [*window, *k.steps_prefix(b)])
                for b in k.all_buckets()
            ]
        )
        return fan.first(
            (rows.undispatched_steps(reply) for reply in replies),
            lambda s: (s.pending_since, s.step_id),
            limit,
        )

    def _markers(self, run_id: str) -> tuple[str, str]:
        """The idle and undispatched zsets of a run's bucket."""
        k = self._keys
        b = k.bucket(run_id)
        return k.idle(b), k.undispatched(b)

    # --- locks ------------------------------------------------------------------------------------

    def _lock(self, name: LockName, timeout: float | None) -> AbstractAsyncContextManager[None]:
        return self._locks.hold(self._redis, self._scripts, name, timeout)
