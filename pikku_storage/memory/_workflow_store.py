"""`WorkflowStore`: the in-memory workflow data both in-memory workflow services share.

Every method is synchronous, so a service call that uses one is atomic under asyncio; payloads
are kept as the codec's JSON text; a run's are decoded once, on its first read, and every read
returns a deep copy of that, so nothing a caller holds aliases the store. Sorted lists serve
every list order, so reads cost what they return (see docs/operations.md#storage-layout).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, TypeAlias, TypeVar

from pikku_storage._build import record_builder
from pikku_storage._locks import LocalLockRegistry
from pikku_storage._serial import decode_planned_steps, decode_wire
from pikku_storage.codec import JsonObject, JsonValue, copy_json, decode, decode_optional
from pikku_storage.errors import ConflictError, RunNotFound, StepFunctionMismatch, StepNotFound
from pikku_storage.interfaces.workflows import (
    ACTIVE_STATUSES,
    GraphStep,
    NewRun,
    NewStep,
    StepChange,
)
from pikku_storage.records import (
    PlannedStep,
    RunStep,
    StalledRun,
    StepHistoryEntry,
    StepInstance,
    StepState,
    StepStatus,
    UndispatchedStep,
    WorkflowRun,
    WorkflowRunWire,
    WorkflowStatus,
    WorkflowVersion,
    WorkflowVersionStatus,
)

__all__ = ["WorkflowStore"]

# Sort keys: (timestamp, insertion sequence, ...); the sequence is unique, so ties never reach
# the trailing ids.
_RunKey: TypeAlias = tuple[datetime, int, str]
_StepKey: TypeAlias = tuple[datetime, int, str]
_AttemptKey: TypeAlias = tuple[datetime, int, str, int]
# Sweeper keys (05 §3.5): (idle_since, run_id) and (pending_since, step_id), ids by code point.
_SweepKey: TypeAlias = tuple[datetime, str]

_CLAIMABLE = (StepStatus.PENDING, StepStatus.SCHEDULED)

# (input, its copier, output, its copier, error, its copier, wire): see `_run_record`
_Parsed: TypeAlias = (
    "tuple[JsonValue, _Copy, JsonValue, _Copy, JsonObject | None, _Copy, WorkflowRunWire]"
)


class _Attempt:
    """One attempt of a step: what its history entry shows (the live step shows the last one)."""

    __slots__ = (
        "child_run_id",
        "created_at",
        "error",
        "failed_at",
        "number",
        "result",
        "running_at",
        "scheduled_at",
        "seq",
        "status",
        "succeeded_at",
        "updated_at",
    )

    def __init__(self, number: int, seq: int, status: StepStatus, now: datetime) -> None:
        self.number = number
        self.seq = seq
        self.status = status
        self.result: str | None = None
        self.error: str | None = None
        self.created_at = now
        self.updated_at = now
        self.running_at: datetime | None = now if status is StepStatus.RUNNING else None
        self.scheduled_at: datetime | None = None
        self.succeeded_at: datetime | None = None
        self.failed_at: datetime | None = None
        self.child_run_id: str | None = None  # per attempt (05 D9)


class _Step:
    """A step; its live status, outcome and stamps are those of `attempts[-1]`
    (docs/services/workflows.md#claim-and-retry)."""

    __slots__ = (
        "attempts",
        "branch_taken",
        "created_at",
        "data",
        "dispatch_since",
        "from_step_name",
        "id",
        "name",
        "retries",
        "retry_delay",
        "rpc_name",
        "run_id",
        "seq",
        "updated_at",
    )

    def __init__(self, new: NewStep, seq: int) -> None:
        self.id = new.step_id
        self.run_id = new.run_id
        self.name = new.step_name
        self.seq = seq
        self.rpc_name = new.rpc_name
        self.from_step_name = new.from_step_name
        self.dispatch_since: datetime | None = None  # 05 §4: updated_at while pending, run running
        self.data = new.data
        self.retries = new.retries
        self.retry_delay = new.retry_delay
        self.branch_taken: str | None = None
        self.created_at = new.now
        self.updated_at = new.now
        self.attempts: list[_Attempt] = []


class _Run:
    """A run with its state bag, steps by name and the per-run step and history orders."""

    __slots__ = (
        "active_steps",
        "activity_at",
        "created_at",
        "deterministic",
        "error",
        "graph_hash",
        "history",
        "id",
        "idle_key",
        "inline",
        "input",
        "output",
        "parsed",
        "plan",
        "seq",
        "state",
        "status",
        "step_order",
        "steps",
        "updated_at",
        "wire",
        "workflow",
    )

    def __init__(self, new: NewRun, seq: int) -> None:
        self.id = new.run_id
        self.seq = seq
        self.workflow = new.workflow
        self.status = WorkflowStatus.RUNNING
        self.input = new.input
        self.output: str | None = None
        self.error: str | None = None
        self.inline = new.inline
        self.graph_hash = new.graph_hash
        self.wire = new.wire  # codec text, parsed on the first read
        self.deterministic = new.deterministic
        # the plan is fixed at creation: parsed once (most runs have none)
        self.plan: tuple[tuple[str, str | None], ...] = (
            ()
            if new.planned_steps == "[]"
            else tuple(
                (step.step_name, step.display_name)
                for step in decode_planned_steps(new.planned_steps)
            )
        )
        # decoded payloads and wire, or None until the first read after a write of them
        self.parsed: _Parsed | None = None
        self.active_steps = 0  # 05 §4: steps running, scheduled or suspended
        self.activity_at = new.now  # 05 §4: max updated_at of the run and its steps
        self.idle_key: _SweepKey | None = None  # set while in the stalled-candidate list
        self.created_at = new.now
        self.updated_at = new.now
        self.state: dict[str, str] = {}
        self.steps: dict[str, _Step] = {}
        self.step_order: list[_StepKey] = []
        self.history: list[_AttemptKey] = []

    @property
    def key(self) -> _RunKey:
        return (self.created_at, self.seq, self.id)

    @property
    def updated_key(self) -> _RunKey:
        return (self.updated_at, self.seq, self.id)


_K = TypeVar("_K", _RunKey, _SweepKey)
_TAIL: Final = 64
"""Sorted lists are searched in their last `_TAIL` keys first: a key carries the clock's
latest instant, so it lands at or near the end (ties within one millisecond go by id)."""


def _position(keys: list[_K], key: _K) -> int:
    """`bisect_left(keys, key)`, searching only the tail when the key is past its start."""
    lo = len(keys) - _TAIL
    return bisect.bisect_left(keys, key, lo if lo > 0 and keys[lo] < key else 0)


def _remove(keys: list[_RunKey], key: _RunKey) -> None:
    del keys[_position(keys, key)]


def _remove_key(keys: list[_SweepKey], key: _SweepKey) -> None:
    del keys[_position(keys, key)]


def _insert(keys: list[_K], key: _K) -> None:
    """Insert in order; a key after the last (the clock moving forward) is a plain append."""
    if not keys or keys[-1] < key:
        keys.append(key)
    else:
        keys.insert(_position(keys, key), key)


class WorkflowStore:
    """One namespace of workflow data, shared by both in-memory services and their locks.

    Dicts hold runs (with their steps by name, state and orders), steps by id and versions;
    sorted lists of `(created_at, seq, id)` serve `list_runs` overall, per name, per status and
    per (name, status), `(updated_at, seq, id)` per status serves `prune_runs`, and a sorted
    name list with per-name run counts serves `get_distinct_workflow_names` (see
    docs/operations.md#storage-layout).
    """

    __slots__ = (
        "_by_name",
        "_by_name_status",
        "_by_status",
        "_by_updated",
        "_name_counts",
        "_names",
        "_runs_by_created",
        "_seq",
        "_stalled",
        "_undispatched",
        "locks",
        "runs",
        "steps",
        "versions",
    )

    def __init__(self) -> None:
        self._seq = itertools.count(1)
        self.runs: dict[str, _Run] = {}
        self.steps: dict[str, _Step] = {}
        self.versions: dict[tuple[str, str], tuple[str, str, WorkflowVersionStatus, datetime]] = {}
        self.locks = LocalLockRegistry()
        self._runs_by_created: list[_RunKey] = []
        self._by_name: dict[str, list[_RunKey]] = {}
        self._by_status: dict[WorkflowStatus, list[_RunKey]] = {}
        self._by_name_status: dict[tuple[str, WorkflowStatus], list[_RunKey]] = {}
        self._by_updated: dict[WorkflowStatus, list[_RunKey]] = {}
        self._names: list[str] = []
        self._name_counts: dict[str, int] = {}
        self._stalled: list[_SweepKey] = []
        self._undispatched: list[_SweepKey] = []

    # --- indexes ------------------------------------------------------------------------

    def _status_lists(self, run: _Run) -> list[list[_RunKey]]:
        """The created-order lists keyed by the run's status (they move when it changes)."""
        return [
            self._by_status.setdefault(run.status, []),
            self._by_name_status.setdefault((run.workflow, run.status), []),
        ]

    def _index(self, run: _Run) -> None:
        key = run.key
        _insert(self._runs_by_created, key)
        by_name = self._by_name.get(run.workflow)
        if by_name is None:
            self._by_name[run.workflow] = [key]
            bisect.insort(self._names, run.workflow)
            self._name_counts[run.workflow] = 1
        else:
            _insert(by_name, key)
            self._name_counts[run.workflow] += 1
        self._index_status(run, key)

    def _index_status(self, run: _Run, key: _RunKey | None = None) -> None:
        key = run.key if key is None else key
        status = run.status
        _insert(self._by_status.setdefault(status, []), key)
        _insert(self._by_name_status.setdefault((run.workflow, status), []), key)
        _insert(self._by_updated.setdefault(status, []), run.updated_key)

    def _unindex_status(self, run: _Run) -> None:
        for keys in self._status_lists(run):
            _remove(keys, run.key)
        _remove(self._by_updated[run.status], run.updated_key)
        self._drop_empty(run)

    def _unindex(self, run: _Run) -> None:
        self._unindex_status(run)
        _remove(self._runs_by_created, run.key)
        _remove(self._by_name[run.workflow], run.key)
        self._drop_empty(run)
        count = self._name_counts.pop(run.workflow) - 1
        if count:
            self._name_counts[run.workflow] = count
        else:
            del self._names[bisect.bisect_left(self._names, run.workflow)]

    def _drop_empty(self, run: _Run) -> None:
        """Forget empty per-value lists, so deleted names and statuses leave nothing behind."""
        if not self._by_status.get(run.status, True):
            del self._by_status[run.status]
        if not self._by_updated.get(run.status, True):
            del self._by_updated[run.status]
        if not self._by_name_status.get((run.workflow, run.status), True):
            del self._by_name_status[(run.workflow, run.status)]
        if not self._by_name.get(run.workflow, True):
            del self._by_name[run.workflow]

    def _touch(self, run: _Run, now: datetime) -> None:
        """Move the run's `updated_at`, re-keying the prune index."""
        updated = self._by_updated[run.status]
        _remove(updated, run.updated_key)
        run.updated_at = now
        _insert(updated, run.updated_key)

    # --- sweeper markers (05 §4), kept in each mutation's synchronous section ----------

    def _unmark_run(self, run: _Run) -> None:
        if run.idle_key is not None:
            _remove_key(self._stalled, run.idle_key)
            run.idle_key = None

    def _mark_run(self, run: _Run, now: datetime) -> None:
        """Raise `activity_at` to `now` and file the run as a stalled candidate if it is one."""
        self._unmark_run(run)
        if now > run.activity_at:
            run.activity_at = now
        if run.status is WorkflowStatus.RUNNING and run.active_steps == 0:
            run.idle_key = (run.activity_at, run.id)
            _insert(self._stalled, run.idle_key)

    def _unmark_step(self, step: _Step) -> None:
        if step.dispatch_since is not None:
            _remove_key(self._undispatched, (step.dispatch_since, step.id))
            step.dispatch_since = None

    def _mark_step(self, run: _Run, step: _Step) -> None:
        self._unmark_step(step)
        if step.attempts[-1].status is StepStatus.PENDING and run.status is WorkflowStatus.RUNNING:
            step.dispatch_since = step.updated_at
            _insert(self._undispatched, (step.updated_at, step.id))

    def _step_written(self, step: _Step, old: StepStatus | None, now: datetime) -> None:
        """After a step write: adjust `active_steps` by old versus new status, then re-file the
        step and its run."""
        run = self.runs[step.run_id]
        new = step.attempts[-1].status
        run.active_steps += (new in ACTIVE_STATUSES) - (old in ACTIVE_STATUSES)
        self._mark_step(run, step)
        self._mark_run(run, now)

    def stalled_runs(
        self, older_than: datetime, limit: int, after: StalledRun | None
    ) -> list[StalledRun]:
        keys = self._stalled
        start = 0 if after is None else bisect.bisect_right(keys, (after.idle_since, after.run_id))
        end = bisect.bisect_left(keys, (older_than,), lo=start)
        return [
            StalledRun(run_id=run_id, workflow=self.runs[run_id].workflow, idle_since=at)
            for at, run_id in keys[start : min(end, start + limit)]
        ]

    def undispatched_steps(
        self, older_than: datetime, limit: int, after: UndispatchedStep | None
    ) -> list[UndispatchedStep]:
        keys = self._undispatched
        start = (
            0 if after is None else bisect.bisect_right(keys, (after.pending_since, after.step_id))
        )
        end = bisect.bisect_left(keys, (older_than,), lo=start)
        found: list[UndispatchedStep] = []
        for at, step_id in keys[start : min(end, start + limit)]:
            step = self.steps[step_id]
            found.append(
                UndispatchedStep(
                    run_id=step.run_id,
                    step_id=step_id,
                    step_name=step.name,
                    rpc_name=step.rpc_name,
                    pending_since=at,
                )
            )
        return found

    # --- runs and state -----------------------------------------------------------------

    def create_run(self, new: NewRun) -> None:
        run = _Run(new, next(self._seq))
        self.runs[run.id] = run
        self._index(run)
        self._mark_run(run, new.now)

    def _run(self, run_id: str) -> _Run:
        run = self.runs.get(run_id)
        if run is None:
            raise RunNotFound(run_id)
        return run

    def update_run_status(
        self,
        run_id: str,
        status: WorkflowStatus,
        output: str | None,
        error: str | None,
        now: datetime,
    ) -> None:
        run = self._run(run_id)
        self._unindex_status(run)
        was_running = run.status is WorkflowStatus.RUNNING
        run.status, run.output, run.error, run.updated_at = status, output, error, now
        run.parsed = None
        self._index_status(run)
        if was_running is not (status is WorkflowStatus.RUNNING):
            for step in run.steps.values():  # dispatch_since follows the run (cost: its steps)
                self._mark_step(run, step)
        self._mark_run(run, now)

    def update_run_state(self, run_id: str, name: str, value: str, now: datetime) -> None:
        run = self._run(run_id)
        run.state[name] = value
        self._touch(run, now)
        self._mark_run(run, now)

    def run_state(self, run_id: str) -> dict[str, JsonValue]:
        run = self.runs.get(run_id)
        return {} if run is None else {name: decode(text) for name, text in run.state.items()}

    def run_record(self, run_id: str) -> WorkflowRun | None:
        run = self.runs.get(run_id)
        return None if run is None else _run_record(run)

    def list_runs(
        self, name: str | None, status: WorkflowStatus | None, limit: int, offset: int
    ) -> list[WorkflowRun]:
        if name is not None and status is not None:
            keys = self._by_name_status.get((name, status), [])
        elif name is not None:
            keys = self._by_name.get(name, [])
        elif status is not None:
            keys = self._by_status.get(status, [])
        else:
            keys = self._runs_by_created
        end = len(keys) - offset
        window = keys[max(0, end - limit) : max(0, end)]
        return [_run_record(self.runs[key[2]]) for key in reversed(window)]

    def count_runs(self, name: str | None) -> dict[WorkflowStatus, int]:
        """Runs per status: the lengths of the per-status (or per name and status) lists."""
        if name is None:
            return {status: len(keys) for status, keys in self._by_status.items()}
        return {s: len(self._by_name_status.get((name, s), ())) for s in WorkflowStatus}

    def distinct_workflow_names(self) -> list[str]:
        return list(self._names)

    def delete_run(self, run_id: str) -> bool:
        run = self.runs.pop(run_id, None)
        if run is None:
            return False
        self._unindex(run)
        self._unmark_run(run)
        for step in run.steps.values():
            self._unmark_step(step)
            del self.steps[step.id]
        return True

    def prune_runs(
        self, cutoff: datetime, statuses: tuple[WorkflowStatus, ...], batch_size: int
    ) -> int:
        """Batches of `batch_size`, oldest `updated_at` first per status; each run is re-checked
        before it is deleted, as on the other backends (D7)."""
        deleted = 0
        for status in statuses:
            while True:
                keys = self._by_updated.get(status, [])
                batch = keys[: min(bisect.bisect_left(keys, (cutoff,)), batch_size)]
                deleted_before = deleted
                for updated_at, _seq, run_id in batch:
                    run = self.runs.get(run_id)
                    if run and run.status is status and run.updated_at == updated_at < cutoff:
                        deleted += self.delete_run(run_id)
                if deleted == deleted_before:
                    break
        return deleted

    # --- steps --------------------------------------------------------------------------

    def insert_step(self, new: NewStep) -> StepState:
        run = self._run(new.run_id)
        if new.step_name in run.steps:
            raise ConflictError.step(new.run_id, new.step_name)
        step = _Step(new, next(self._seq))
        run.steps[step.name] = step
        self.steps[step.id] = step
        bisect.insort(run.step_order, (step.created_at, step.seq, step.id))
        self._add_attempt(run, step, StepStatus.PENDING, new.now)
        self._step_written(step, None, new.now)
        return _step_state(step)

    def _add_attempt(self, run: _Run, step: _Step, status: StepStatus, now: datetime) -> None:
        attempt = _Attempt(len(step.attempts) + 1, next(self._seq), status, now)
        step.attempts.append(attempt)
        bisect.insort(run.history, (now, attempt.seq, step.id, attempt.number))

    def _step(self, step_id: str) -> _Step:
        step = self.steps.get(step_id)
        if step is None:
            raise StepNotFound.by_id(step_id)
        return step

    def step_state(self, run_id: str, step_name: str) -> StepState | None:
        run = self.runs.get(run_id)
        step = None if run is None else run.steps.get(step_name)
        return None if step is None else _step_state(step)

    def set_step(self, step_id: str, change: StepChange, now: datetime) -> None:
        step = self._step(step_id)
        attempt = step.attempts[-1]
        old = attempt.status
        attempt.status = change.status
        if change.outcome is not None:
            attempt.result, attempt.error = change.outcome
        setattr(attempt, change.stamp, now)
        attempt.updated_at = step.updated_at = now
        self._step_written(step, old, now)

    def claim_step(self, step_id: str, now: datetime) -> StepState | None:
        step = self._step(step_id)
        if step.attempts[-1].status not in _CLAIMABLE:
            return None
        self.set_step(
            step_id, StepChange(status=StepStatus.RUNNING, stamp="running_at", outcome=None), now
        )
        return _step_state(step)

    def create_retry_attempt(self, step_id: str, status: StepStatus, now: datetime) -> StepState:
        step = self._step(step_id)
        old = step.attempts[-1].status
        self._add_attempt(self.runs[step.run_id], step, status, now)
        step.updated_at = now
        self._step_written(step, old, now)
        return _step_state(step)

    def claim_step_for_execution(
        self,
        run_id: str,
        step_name: str,
        rpc_name: str | None,
        max_attempts: int | None,
        now: datetime,
    ) -> StepState | None:
        """05 §3.3 as one synchronous decision: unknown step, function check, then status."""
        run = self.runs.get(run_id)
        step = None if run is None else run.steps.get(step_name)
        if step is None:
            raise StepNotFound.by_name(run_id, step_name)
        if step.rpc_name != rpc_name:
            raise StepFunctionMismatch(run_id, step_name)
        status = step.attempts[-1].status
        if status in _CLAIMABLE:
            return self.claim_step(step.id, now)
        if status is StepStatus.FAILED and (
            max_attempts is None or len(step.attempts) < max_attempts
        ):
            return self.create_retry_attempt(step.id, StepStatus.RUNNING, now)
        return None

    def set_step_child_run_id(self, step_id: str, child_run_id: str, now: datetime) -> None:
        step = self._step(step_id)
        attempt = step.attempts[-1]
        attempt.child_run_id = child_run_id
        attempt.updated_at = step.updated_at = now
        self._step_written(step, attempt.status, now)

    def step_instances(self, run_id: str) -> list[StepInstance]:
        run = self.runs.get(run_id)
        if run is None:
            return []
        instances: list[StepInstance] = []
        for _at, _seq, step_id in run.step_order:
            step = self.steps[step_id]
            instances.append(
                StepInstance(
                    step_id=step.id,
                    step_name=step.name,
                    status=step.attempts[-1].status,
                    from_step_name=step.from_step_name,
                )
            )
        return instances

    def set_branch_taken(self, step_id: str, branch_key: str, now: datetime) -> None:
        step = self._step(step_id)
        step.branch_taken = branch_key
        step.updated_at = now
        self._step_written(step, step.attempts[-1].status, now)

    def graph_steps(self, run_id: str) -> list[GraphStep]:
        run = self.runs.get(run_id)
        if run is None:
            return []
        return [
            GraphStep(
                step_name=step.name,
                status=step.attempts[-1].status,
                attempt_count=len(step.attempts),
                retries=step.retries,
                branch_taken=step.branch_taken,
            )
            for step in run.steps.values()
        ]

    def step_names(self, run_id: str, names: list[str]) -> set[str]:
        run = self.runs.get(run_id)
        return set() if run is None else {name for name in names if name in run.steps}

    def succeeded_results(self, run_id: str, names: list[str]) -> dict[str, JsonValue]:
        run = self.runs.get(run_id)
        results: dict[str, JsonValue] = {}
        for name in names:
            step = None if run is None else run.steps.get(name)
            if step is not None and step.attempts[-1].status is StepStatus.SUCCEEDED:
                results[name] = decode_optional(step.attempts[-1].result)
        return results

    def run_steps(self, run_id: str) -> list[RunStep]:
        run = self.runs.get(run_id)
        if run is None:
            return []
        return [_run_step(self.steps[step_id]) for _at, _seq, step_id in run.step_order]

    def history(self, run_id: str) -> list[StepHistoryEntry]:
        run = self.runs.get(run_id)
        if run is None:
            return []
        return [
            _history_entry(self.steps[step_id], self.steps[step_id].attempts[number - 1])
            for _at, _seq, step_id, number in run.history
        ]

    # --- versions -----------------------------------------------------------------------

    def upsert_version(
        self,
        name: str,
        graph_hash: str,
        graph: str,
        source: str,
        status: WorkflowVersionStatus,
        now: datetime,
    ) -> bool:
        if (name, graph_hash) in self.versions:
            return False
        self.versions[(name, graph_hash)] = (graph, source, status, now)
        return True

    def update_version_status(
        self, name: str, graph_hash: str, status: WorkflowVersionStatus
    ) -> bool:
        stored = self.versions.get((name, graph_hash))
        if stored is None:
            return False
        self.versions[(name, graph_hash)] = (stored[0], stored[1], status, stored[3])
        return True

    def version(self, name: str, graph_hash: str) -> WorkflowVersion | None:
        stored = self.versions.get((name, graph_hash))
        if stored is None:
            return None
        return WorkflowVersion(graph=decode(stored[0]), source=stored[1], status=stored[2])


# --- records ---------------------------------------------------------------------------


def _decode_error(text: str | None) -> JsonObject | None:
    if text is None:
        return None
    error = decode(text)
    assert isinstance(error, dict)
    return error


def _retry_delay(text: str | None) -> int | str | None:
    delay = decode_optional(text)
    assert delay is None or isinstance(delay, int | str)
    return delay


_new_run: Final = record_builder(WorkflowRun)
_new_wire: Final = record_builder(WorkflowRunWire)
_new_plan_step: Final = record_builder(PlannedStep)
_new_step_state: Final = record_builder(StepState)
_new_run_step: Final = record_builder(RunStep)
_new_history_entry: Final = record_builder(StepHistoryEntry)

_Copy: TypeAlias = Callable[[Any], Any] | None
"""How to deep-copy one decoded value: `None` for a scalar (immutable, given as it is), the
container's own C `copy` when nothing inside is a container, else `copy_json`."""


def _copier(value: JsonValue) -> _Copy:
    if type(value) is dict:
        nested = any(type(item) is dict or type(item) is list for item in value.values())
        return copy_json if nested else dict.copy
    if type(value) is list:
        nested = any(type(item) is dict or type(item) is list for item in value)
        return copy_json if nested else list.copy
    return None


def _parse(run: _Run) -> _Parsed:
    value, output, error = (
        decode_optional(run.input),
        decode_optional(run.output),
        _decode_error(run.error),
    )
    wire = decode_wire(run.wire)
    return (value, _copier(value), output, _copier(output), error, _copier(error), wire)


def _run_record(run: _Run) -> WorkflowRun:
    parsed = run.parsed
    if parsed is None:
        parsed = run.parsed = _parse(run)
    value, copy_value, output, copy_output, error, copy_error, wire = parsed
    return _new_run(
        id=run.id,
        workflow=run.workflow,
        status=run.status,
        input=value if copy_value is None else copy_value(value),
        output=output if copy_output is None else copy_output(output),
        error=error if copy_error is None else copy_error(error),
        inline=run.inline,
        graph_hash=run.graph_hash,
        wire=_new_wire(
            type=wire.type,
            id=wire.id,
            parent_run_id=wire.parent_run_id,
            parent_step_id=wire.parent_step_id,
            pikku_user_id=wire.pikku_user_id,
        ),
        created_at=run.created_at,
        updated_at=run.updated_at,
        deterministic=run.deterministic,
        planned_steps=[
            _new_plan_step(step_name=name, display_name=display) for name, display in run.plan
        ]
        if run.plan
        else [],
    )


def _step_state(step: _Step) -> StepState:
    attempt = step.attempts[-1]
    return _new_step_state(
        step_id=step.id,
        status=attempt.status,
        result=decode_optional(attempt.result),
        error=_decode_error(attempt.error),
        attempt_count=attempt.number,
        retries=step.retries,
        retry_delay=_retry_delay(step.retry_delay),
        created_at=step.created_at,
        updated_at=step.updated_at,
        running_at=attempt.running_at,
        scheduled_at=attempt.scheduled_at,
        succeeded_at=attempt.succeeded_at,
        failed_at=attempt.failed_at,
        rpc_name=step.rpc_name,
        from_step_name=step.from_step_name,
        child_run_id=attempt.child_run_id,
    )


def _run_step(step: _Step) -> RunStep:
    attempt = step.attempts[-1]
    return _new_run_step(
        step_id=step.id,
        step_name=step.name,
        data=decode_optional(step.data),
        status=attempt.status,
        result=decode_optional(attempt.result),
        error=_decode_error(attempt.error),
        attempt_count=attempt.number,
        retries=step.retries,
        retry_delay=_retry_delay(step.retry_delay),
        created_at=step.created_at,
        updated_at=step.updated_at,
        running_at=attempt.running_at,
        scheduled_at=attempt.scheduled_at,
        succeeded_at=attempt.succeeded_at,
        failed_at=attempt.failed_at,
        rpc_name=step.rpc_name,
        from_step_name=step.from_step_name,
        child_run_id=attempt.child_run_id,
    )


def _history_entry(step: _Step, attempt: _Attempt) -> StepHistoryEntry:
    return _new_history_entry(
        step_id=step.id,
        step_name=step.name,
        status=attempt.status,
        result=decode_optional(attempt.result),
        error=_decode_error(attempt.error),
        attempt_count=attempt.number,
        retries=step.retries,
        retry_delay=_retry_delay(step.retry_delay),
        created_at=attempt.created_at,
        updated_at=attempt.updated_at,
        running_at=attempt.running_at,
        scheduled_at=attempt.scheduled_at,
        succeeded_at=attempt.succeeded_at,
        failed_at=attempt.failed_at,
        rpc_name=step.rpc_name,
        from_step_name=step.from_step_name,
        child_run_id=attempt.child_run_id,
    )
