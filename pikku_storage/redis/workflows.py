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
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Final, cast

from pikku_storage import _validate as v
from pikku_storage._locks import LockName
from pikku_storage.clock import Clock, to_epoch_ms
from pikku_storage.codec import JsonValue, decode, encode
from pikku_storage.errors import ConflictError, RunNotFound, StepFunctionMismatch, StepNotFound
from pikku_storage.interfaces._base import Service
from pikku_storage.interfaces.workflows import (
    GraphStep,
    NewRun,
    NewStep,
    StepChange,
    WorkflowRunService,
    WorkflowService,
)
from pikku_storage.records import (
    RunStep,
    StalledRun,
    StepHistoryEntry,
    StepInstance,
    StepState,
    StepStatus,
    UndispatchedStep,
    WorkflowRun,
    WorkflowStatus,
    WorkflowVersion,
    WorkflowVersionStatus,
)
from pikku_storage.redis import _cluster_lists as fan
from pikku_storage.redis import _rows as rows
from pikku_storage.redis._connection import RedisBase, RedisSource
from pikku_storage.redis._errors import translated
from pikku_storage.redis._keys import WorkflowKeys, run_member_id
from pikku_storage.redis._locks import RedisLocks

__all__ = ["RedisWorkflowRunService", "RedisWorkflowService"]

logger = logging.getLogger(__name__)

_STEPREF_CACHE: Final = 10_000  # step id -> run id entries kept per service (immutable map)
_RETRY: Final = -1
_MISMATCH: Final = -2


class _RedisWorkflowBase(RedisBase, Service):
    """The constructor and reads both workflow services share, over one namespace's keys."""

    def __init__(
        self,
        redis: RedisSource,
        *,
        key_prefix: str = "pikku",
        clock: Clock | None = None,
        **client_options: object,
    ) -> None:
        super().__init__(clock=clock)
        self._setup(redis, key_prefix, client_options)
        self._keys = WorkflowKeys(self._prefix, self._buckets)

    @translated
    async def _get_run(self, run_id: str) -> WorkflowRun | None:
        found = await self._redis.hmget(self._keys.run(run_id), rows.RUN_FIELDS)
        return rows.workflow_run(run_id, found) if found[0] is not None else None

    @translated
    async def _get_run_history(self, run_id: str) -> list[StepHistoryEntry]:
        k = self._keys
        reader = rows.Reader(
            await self._scripts(
                "wf_run_steps", [k.history(run_id), k.steps(run_id), k.attempts(run_id)]
            )
        )
        members = reader.take_list()
        steps = rows.split_fields(reader.take_pairs())
        attempts = reader.take_pairs()
        entries = []
        for member in members:
            _, step_id, n = member.split(":")
            prefix = f"{step_id}:{n}:"
            fields = {f[len(prefix) :]: val for f, val in attempts.items() if f.startswith(prefix)}
            entries.append(rows.history_entry(step_id, int(n), fields, steps[step_id]))
        return entries

    @translated
    async def _get_workflow_version(self, name: str, graph_hash: str) -> WorkflowVersion | None:
        stored = await self._redis.get(self._keys.version(name, graph_hash))
        return None if stored is None else rows.workflow_version(rows.text(stored))

    async def _run_status(self, run_id: str) -> tuple[str, str, str] | None:
        """`(workflow, status, rev)` of a run, read before a script that moves its indexes."""
        found = await self._redis.hmget(self._keys.run(run_id), ["workflow", "status", "rev"])
        if found[0] is None:
            return None
        workflow, status, rev = (rows.text(item) for item in found)
        return workflow, status, rev


class RedisWorkflowService(_RedisWorkflowBase, WorkflowService):
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
        args = [run.run_id, run.workflow, now, len(fields), *_flatten(fields)]
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
                *_flatten(live),
                len(attempt),
                *_flatten(attempt),
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
        return rows.step_state(step_id, _rest_pairs(reader))

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
        return rows.step_state(step_id, _rest_pairs(reader)) if outcome == 1 else None

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
        return rows.step_state(step_id, _rest_pairs(reader))

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
        return rows.step_state(step_id, _rest_pairs(reader))

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


class RedisWorkflowRunService(_RedisWorkflowBase, WorkflowRunService):
    """Console queries, deletion and retention over the workflow keys (see
    docs/services/workflow-runs.md, docs/operations.md#storage-layout)."""

    @translated
    async def _list_runs(
        self, workflow_name: str | None, status: WorkflowStatus | None, limit: int, offset: int
    ) -> list[WorkflowRun]:
        k = self._keys

        def index(b: int) -> str:
            if workflow_name is None:
                return k.runs(b) if status is None else k.by_status(status.value, b)
            if status is None:
                return k.by_workflow(workflow_name, b)
            return k.by_workflow_status(status.value, workflow_name, b)

        if k.cluster:
            return await fan.list_runs(self._redis, self._scripts, k, index, limit, offset)
        before, after = k.run_prefix()
        return rows.workflow_runs(
            await self._scripts(
                "wf_list_runs", [index(0)], [offset, offset + limit - 1, before, after]
            )
        )

    @translated
    async def _get_run_steps(self, run_id: str) -> list[RunStep]:
        k = self._keys
        reader = rows.Reader(
            await self._scripts("wf_run_steps", [k.order(run_id), k.steps(run_id)])
        )
        members = reader.take_list()
        steps = rows.split_fields(reader.take_pairs())
        result = []
        for member in members:
            step_id = member.partition(":")[2]
            result.append(rows.run_step(step_id, steps[step_id]))
        return result

    @translated
    async def _get_distinct_workflow_names(self) -> list[str]:
        k = self._keys
        if k.cluster:
            return await fan.union_sorted(self._redis, [k.names(b) for b in k.all_buckets()])
        names = await self._redis.zrange(k.names(), 0, -1)
        return [rows.text(name) for name in names]

    @translated
    async def _delete_run(self, run_id: str) -> bool:
        while True:
            current = await self._run_status(run_id)
            if current is None:
                return False
            workflow, status, rev = current
            b = self._keys.bucket(run_id)
            outcome = await self._scripts(
                "wf_delete_runs",
                [*self._shared_delete_keys(b), *self._run_delete_keys(run_id, workflow, status)],
                ["delete", "", run_id, status, rev, workflow],
            )
            if outcome != _RETRY:
                return outcome == 1

    @translated
    async def _prune_runs(
        self, cutoff: datetime, statuses: tuple[WorkflowStatus, ...], batch_size: int
    ) -> int:
        k = self._keys
        cutoff_ms = to_epoch_ms(cutoff)
        deleted = 0
        for status, b in ((s, b) for s in statuses for b in k.all_buckets()):
            previous: Sequence[object] = []
            while True:
                members = await self._redis.zrangebyscore(
                    k.updated(status.value, b), "-inf", f"({cutoff_ms}", start=0, num=batch_size
                )
                if not members or members == previous:
                    break  # nothing left, or a batch that made no progress twice
                previous = members
                run_ids = [run_member_id(rows.text(m)) for m in members]
                reader = rows.Reader(
                    await self._scripts("hgetall_many", [k.run(r) for r in run_ids])
                )
                keys = self._shared_delete_keys(b)
                args: list[str | int] = ["prune", cutoff_ms]
                for run_id in run_ids:
                    h = reader.take_pairs()
                    if h:
                        keys += self._run_delete_keys(run_id, h["workflow"], status.value)
                        args += [run_id, status.value, h["rev"], h["workflow"]]
                count = await self._scripts("wf_delete_runs", keys, args) if len(keys) > 6 else 0
                deleted += cast(int, count)
                logger.debug("pruned %s %s runs in one batch", count, status.value)
        return deleted

    def _shared_delete_keys(self, b: int) -> list[str]:
        k = self._keys
        return [k.runs(b), k.names(b), k.namecount(b), k.steprefs(b), k.idle(b), k.undispatched(b)]

    def _run_delete_keys(self, run_id: str, workflow: str, status: str) -> list[str]:
        k = self._keys
        return [*k.run_data(run_id), *k.run_indexes(workflow, status, k.bucket(run_id))]


def _flatten(fields: dict[str, str | int]) -> list[str | int]:
    return [item for pair in fields.items() for item in pair]


def _rest_pairs(reader: rows.Reader) -> dict[str, str]:
    found: dict[str, str] = {}
    while reader:
        name = reader.take()
        found[name] = reader.take()
    return found
