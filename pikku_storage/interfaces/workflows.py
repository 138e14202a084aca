"""`WorkflowService` and `WorkflowRunService`: validation once, then one backend hook per call.

Every public method checks its arguments through the shared modules, turns a non-canonical
run or step id into an unknown id before any I/O (D2), reads the clock once, and awaits the
hook of the same name with a leading underscore. Backends implement hooks only (Spec: 01).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeVar

from pikku_storage import _validate as v
from pikku_storage._build import record_builder
from pikku_storage._ids import is_canonical_uuid, new_id
from pikku_storage._locks import LockName, SingleUseLock
from pikku_storage._serial import ErrorInput, encode_error, encode_planned_steps, encode_wire
from pikku_storage.clock import Clock
from pikku_storage.codec import JsonInput, JsonValue, decode_optional, encode, encode_optional
from pikku_storage.errors import (
    InvalidValue,
    RunNotFound,
    StepNotFound,
    WorkflowVersionNotFound,
)
from pikku_storage.interfaces._base import Service
from pikku_storage.records import (
    FINISHED_STATUSES,
    GraphState,
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

__all__ = [
    "GraphStep",
    "NewRun",
    "NewStep",
    "StepChange",
    "WorkflowRunService",
    "WorkflowService",
]

T = TypeVar("T")

MAX_RETRY_DELAY_TEXT: Final = 64
RETRY_STATUSES: Final = (StepStatus.PENDING, StepStatus.RUNNING)
CLAIMABLE_STATUSES: Final = (StepStatus.PENDING, StepStatus.SCHEDULED)
ACTIVE_STATUSES: Final = frozenset((StepStatus.RUNNING, StepStatus.SCHEDULED, StepStatus.SUSPENDED))
"""Step statuses that keep a run from being stalled (05 §3.5, §4 `active_steps`)."""
MAX_SWEEP_LIMIT: Final = 1000


@dataclass(slots=True, kw_only=True)  # not frozen: 5x cheaper to build per call
class NewRun:
    """A validated run to insert; payloads are codec JSON text (`None` is JSON null)."""

    run_id: str
    workflow: str
    input: str | None
    inline: bool
    graph_hash: str | None
    wire: str
    now: datetime
    deterministic: bool = False
    planned_steps: str = "[]"


@dataclass(slots=True, kw_only=True)  # not frozen: 5x cheaper to build per call
class NewStep:
    """A validated step to insert with its first history entry."""

    run_id: str
    step_id: str
    step_name: str
    rpc_name: str | None
    data: str | None
    retries: int | None
    retry_delay: str | None
    now: datetime
    from_step_name: str | None = None

    def initial_state(self) -> StepState:
        """What the inserted step reads as: `pending`, attempt 1, no outcome or stamps
        (docs/services/workflows.md#steps)."""
        delay = decode_optional(self.retry_delay)
        assert delay is None or isinstance(delay, int | str)  # by _retry_delay
        return StepState(
            step_id=self.step_id,
            status=StepStatus.PENDING,
            attempt_count=1,
            retries=self.retries,
            retry_delay=delay,
            created_at=self.now,
            updated_at=self.now,
            rpc_name=self.rpc_name,
            from_step_name=self.from_step_name,
        )


@dataclass(slots=True, kw_only=True)  # not frozen: 5x cheaper to build per call
class StepChange:
    """An unconditional transition (docs/services/workflows.md#transitions): status, the stamp field
    it sets, and the outcome.

    `outcome` is `(result JSON, error JSON)` to write, or `None` to keep the current ones.
    """

    status: StepStatus
    stamp: str
    outcome: tuple[str | None, str | None] | None


@dataclass(slots=True, kw_only=True)  # not frozen: 5x cheaper to build per call
class GraphStep:
    """What the graph primitives need of one step."""

    step_name: str
    status: StepStatus
    attempt_count: int
    retries: int | None
    branch_taken: str | None


_new_run: Final = record_builder(NewRun)
_new_step: Final = record_builder(NewStep)
_new_change: Final = record_builder(StepChange)


def _retries(value: object) -> int | None:
    return None if value is None else v.non_negative_int("retries", value, below=v.INT32_END)


def _retry_delay(value: object) -> str | None:
    """D11: `None`, an int >= 0 (milliseconds) or a non-empty string of at most 64 characters."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value or len(value) > MAX_RETRY_DELAY_TEXT:
            raise InvalidValue(f"retry_delay text must have 1 to {MAX_RETRY_DELAY_TEXT} characters")
        return encode(value, "retry_delay")
    return encode(v.non_negative_int("retry_delay", value), "retry_delay")


def _sweep_args(
    older_than: object, limit: object, after: object, record: type[object]
) -> tuple[datetime, int]:
    """05 §3.5: an aware cutoff, `limit` an int in 1..1000, `after` `None` or the record."""
    cutoff = v.aware_cutoff("older_than", older_than)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SWEEP_LIMIT:
        raise InvalidValue(f"limit must be an int from 1 to {MAX_SWEEP_LIMIT}")
    if after is not None and not isinstance(after, record):
        raise InvalidValue(f"after must be None or a {record.__name__}, got {type(after).__name__}")
    return cutoff, limit


def _run_id(value: object) -> tuple[str, bool]:
    """Validate a run or step id; the flag says whether it can name a stored record (D2)."""
    checked = v.identifier("run_id", value)
    return checked, is_canonical_uuid(checked)


class _WorkflowReads(Service):
    """Reads both workflow services offer."""

    async def get_run(self, run_id: str) -> WorkflowRun | None:
        """The run, or `None` for an unknown or non-canonical id (see
        docs/services/workflows.md#runs)."""
        run_id, known = _run_id(run_id)
        return await self._get_run(run_id) if known else None

    async def get_run_history(self, run_id: str) -> list[StepHistoryEntry]:
        """Every attempt of every step, oldest first, ties by insertion (see
        docs/services/workflow-runs.md)."""
        run_id, known = _run_id(run_id)
        return await self._get_run_history(run_id) if known else []

    async def get_workflow_version(self, name: str, graph_hash: str) -> WorkflowVersion | None:
        """The stored version of `(name, graph_hash)`, or `None` (see
        docs/services/workflows.md#versions)."""
        v.identifier("name", name)
        v.identifier("graph_hash", graph_hash)
        return await self._get_workflow_version(name, graph_hash)

    @abstractmethod
    async def _get_run(self, run_id: str) -> WorkflowRun | None: ...

    @abstractmethod
    async def _get_run_history(self, run_id: str) -> list[StepHistoryEntry]: ...

    @abstractmethod
    async def _get_workflow_version(self, name: str, graph_hash: str) -> WorkflowVersion | None: ...


class WorkflowService(_WorkflowReads):
    """Run and step state, the run state bag, locks, graph primitives and versions
    (docs/services/workflows.md)."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self._held_locks: set[SingleUseLock] = set()

    async def close(self) -> None:
        """Release every lock this service holds, then what it owns
        (docs/services/workflows.md#locks)."""
        for lock in list(self._held_locks):
            await lock.release()
        await self._close()

    # --- runs ---------------------------------------------------------------------------

    async def create_run(
        self,
        workflow: str,
        input: JsonInput,
        *,
        inline: bool = False,
        graph_hash: str | None = None,
        wire: WorkflowRunWire | None = None,
        deterministic: bool = False,
        planned_steps: Sequence[PlannedStep] | None = None,
    ) -> str:
        """Insert a `running` run with a new UUID4 id and return the id; never idempotent.

        `deterministic` and `planned_steps` are fixed here (docs/services/workflows.md#runs).
        """
        run = _new_run(
            run_id=new_id(),
            workflow=v.identifier("workflow", workflow),
            input=encode_optional(input, "input"),
            inline=v.boolean("inline", inline),
            graph_hash=v.optional_identifier("graph_hash", graph_hash),
            wire=encode_wire(wire),
            now=self._now(),
            deterministic=v.boolean("deterministic", deterministic),
            planned_steps=encode_planned_steps(planned_steps),
        )
        await self._create_run(run)
        return run.run_id

    async def update_run_status(
        self,
        run_id: str,
        status: WorkflowStatus | str,
        *,
        output: JsonInput = None,
        error: ErrorInput | None = None,
    ) -> None:
        """Overwrite status, output and error in one write; omitted ones become `None`.

        Any status may follow any status. Raises: `RunNotFound`. See
        docs/services/workflows.md#runs.
        """
        run_id, known = _run_id(run_id)
        checked = v.enum_member(WorkflowStatus, "status", status)
        output_text = encode_optional(output, "output")
        error_text = None if error is None else encode_error(error)
        if not known:
            raise RunNotFound(run_id)
        await self._update_run_status(run_id, checked, output_text, error_text, self._now())

    async def update_run_state(self, run_id: str, name: str, value: JsonInput) -> None:
        """Set one key of the run's state bag; other keys stay. Raises: `RunNotFound`
        (docs/services/workflows.md#run-state)."""
        run_id, known = _run_id(run_id)
        v.identifier("name", name)
        value_text = encode(value, "value")
        if not known:
            raise RunNotFound(run_id)
        await self._update_run_state(run_id, name, value_text, self._now())

    async def get_run_state(self, run_id: str) -> dict[str, JsonValue]:
        """The whole state bag; `{}` for an unknown run."""
        run_id, known = _run_id(run_id)
        return await self._get_run_state(run_id) if known else {}

    # --- steps --------------------------------------------------------------------------

    async def insert_step_state(
        self,
        run_id: str,
        step_name: str,
        rpc_name: str | None,
        data: JsonInput,
        *,
        retries: int | None = None,
        retry_delay: int | str | None = None,
        from_step_name: str | None = None,
    ) -> StepState:
        """Create a `pending` step with attempt 1 and its first history entry; `from_step_name`
        records the predecessor that scheduled it.

        Raises: `RunNotFound`; `ConflictError` if the run already has `step_name`
        (docs/services/workflows.md#steps).
        """
        run_id, known = _run_id(run_id)
        step = _new_step(
            run_id=run_id,
            step_id=new_id(),
            step_name=v.identifier("step_name", step_name),
            rpc_name=v.optional_identifier("rpc_name", rpc_name),
            data=encode_optional(data, "data"),
            retries=_retries(retries),
            retry_delay=_retry_delay(retry_delay),
            now=self._now(),
            from_step_name=v.optional_identifier("from_step_name", from_step_name),
        )
        if not known:
            raise RunNotFound(run_id)
        return await self._insert_step_state(step)

    async def get_step_state(self, run_id: str, step_name: str) -> StepState:
        """The live state. Raises: `StepNotFound` for an unknown step or run (D8)."""
        run_id, known = _run_id(run_id)
        v.identifier("step_name", step_name)
        state = await self._get_step_state(run_id, step_name) if known else None
        if state is None:
            raise StepNotFound.by_name(run_id, step_name)
        return state

    async def set_step_running(self, step_id: str) -> None:
        """Set `running` and stamp `running_at` on the live step and current attempt."""
        await self._transition(
            step_id, _new_change(status=StepStatus.RUNNING, stamp="running_at", outcome=None)
        )

    async def set_step_scheduled(self, step_id: str) -> None:
        """Set `scheduled` and stamp `scheduled_at` on the live step and current attempt."""
        await self._transition(
            step_id, _new_change(status=StepStatus.SCHEDULED, stamp="scheduled_at", outcome=None)
        )

    async def set_step_result(self, step_id: str, result: JsonInput) -> None:
        """Set `succeeded` with `result`, clear the error and stamp `succeeded_at`."""
        outcome = (encode_optional(result, "result"), None)
        await self._transition(
            step_id, _new_change(status=StepStatus.SUCCEEDED, stamp="succeeded_at", outcome=outcome)
        )

    async def set_step_error(self, step_id: str, error: ErrorInput) -> None:
        """Set `failed` with the serialized error, clear the result and stamp `failed_at`."""
        outcome = (None, encode_error(error))
        await self._transition(
            step_id, _new_change(status=StepStatus.FAILED, stamp="failed_at", outcome=outcome)
        )

    async def _transition(self, step_id: str, change: StepChange) -> None:
        step_id = self._known_step_id(step_id)
        await self._set_step(step_id, change, self._now())

    def _known_step_id(self, step_id: object) -> str:
        checked, known = _run_id(step_id)
        if not known:
            raise StepNotFound.by_id(checked)
        return checked

    async def claim_step(self, step_id: str) -> StepState | None:
        """Atomically move a `pending` or `scheduled` step to `running`; else `None`
        (docs/services/workflows.md#claim-and-retry)."""
        step_id = self._known_step_id(step_id)
        return await self._claim_step(step_id, self._now())

    async def create_retry_attempt(self, step_id: str, status: StepStatus | str) -> StepState:
        """Start the next attempt as `pending` or `running`, clearing outcome and stamps."""
        checked = v.enum_member(StepStatus, "status", status)
        if checked not in RETRY_STATUSES:
            raise InvalidValue(f"status must be pending or running for a retry: {checked.value}")
        step_id = self._known_step_id(step_id)
        return await self._create_retry_attempt(step_id, checked, self._now())

    async def claim_step_for_execution(
        self,
        run_id: str,
        step_name: str,
        rpc_name: str | None,
        *,
        max_attempts: int | None = None,
    ) -> StepState | None:
        """Claim a step for a dispatch of `rpc_name` in one conditional write.

        `pending`/`scheduled` become `running`; `failed` (while `attempt_count < max_attempts`
        when given) gets its next attempt `running`; else `None`, nothing changed. Raises:
        `StepNotFound`, then `StepFunctionMismatch` whatever the status
        (docs/services/workflows.md#claim-for-execution).
        """
        run_id, known = _run_id(run_id)
        v.identifier("step_name", step_name)
        v.optional_identifier("rpc_name", rpc_name)
        if max_attempts is not None and (
            isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1
        ):
            raise InvalidValue("max_attempts must be None or an int >= 1")
        if not known:
            raise StepNotFound.by_name(run_id, step_name)
        return await self._claim_step_for_execution(
            run_id, step_name, rpc_name, max_attempts, self._now()
        )

    async def set_step_child_run_id(self, step_id: str, child_run_id: str) -> None:
        """Record the child run of the step's current attempt on the live step and its history
        entry; any status, a later call overwrites. Raises: `StepNotFound`."""
        child = v.identifier("child_run_id", child_run_id)
        step_id = self._known_step_id(step_id)
        await self._set_step_child_run_id(step_id, child, self._now())

    async def get_step_instances(self, run_id: str) -> list[StepInstance]:
        """Every step of the run in creation order, without payloads; unknown run `[]`."""
        run_id, known = _run_id(run_id)
        return await self._get_step_instances(run_id) if known else []

    # --- sweepers -----------------------------------------------------------------------

    async def find_stalled_runs(
        self, *, older_than: datetime, limit: int = 100, after: StalledRun | None = None
    ) -> list[StalledRun]:
        """`running` runs with no step in flight, idle since before `older_than`, ordered by
        (`idle_since`, `run_id`), strictly after `after` (docs/services/workflows.md#sweepers)."""
        cutoff, checked = _sweep_args(older_than, limit, after, StalledRun)
        return await self._find_stalled_runs(cutoff, checked, after)

    async def find_undispatched_steps(
        self, *, older_than: datetime, limit: int = 100, after: UndispatchedStep | None = None
    ) -> list[UndispatchedStep]:
        """`pending` steps of `running` runs, pending since before `older_than`, ordered by
        (`pending_since`, `step_id`), strictly after `after`."""
        cutoff, checked = _sweep_args(older_than, limit, after, UndispatchedStep)
        return await self._find_undispatched_steps(cutoff, checked, after)

    # --- graph primitives ---------------------------------------------------------------

    async def get_completed_graph_state(self, run_id: str) -> GraphState:
        """Completed and exhausted-failed node ids (sorted) and succeeded steps' branches."""
        run_id, known = _run_id(run_id)
        if not known:
            return GraphState()
        state = GraphState()
        for step in await self._get_graph_steps(run_id):
            if step.status is StepStatus.SUCCEEDED:
                state.completed_node_ids.append(step.step_name)
                if step.branch_taken is not None:
                    state.branch_keys[step.step_name] = step.branch_taken
            elif step.status is StepStatus.FAILED and step.attempt_count >= (step.retries or 0) + 1:
                state.failed_node_ids.append(step.step_name)
        state.completed_node_ids.sort()
        state.failed_node_ids.sort()
        return state

    async def get_nodes_without_steps(self, run_id: str, node_ids: Sequence[str]) -> list[str]:
        """The node ids naming no step of the run, input order and duplicates kept (D8)."""
        run_id, known = _run_id(run_id)
        names = v.identifier_list("node_ids", node_ids)
        if not names or not known:
            return names
        existing = await self._get_step_names(run_id, list(dict.fromkeys(names)))
        return [name for name in names if name not in existing]

    async def get_node_results(self, run_id: str, node_ids: Sequence[str]) -> dict[str, JsonValue]:
        """Results of the listed nodes that are `succeeded` steps, `None` results included."""
        run_id, known = _run_id(run_id)
        names = v.identifier_list("node_ids", node_ids)
        if not names or not known:
            return {}
        return await self._get_succeeded_results(run_id, list(dict.fromkeys(names)))

    async def set_branch_taken(self, step_id: str, branch_key: str) -> None:
        """Record the branch on the step whatever its status; history is untouched."""
        v.identifier("branch_key", branch_key)
        step_id = self._known_step_id(step_id)
        await self._set_branch_taken(step_id, branch_key, self._now())

    # --- versions -----------------------------------------------------------------------

    async def upsert_workflow_version(
        self,
        name: str,
        graph_hash: str,
        graph: JsonInput,
        source: str,
        *,
        status: WorkflowVersionStatus | str = WorkflowVersionStatus.ACTIVE,
    ) -> bool:
        """Insert-if-absent: `True` iff this call stored the version; an existing key changes
        nothing, status included (docs/services/workflows.md#versions)."""
        v.identifier("name", name)
        v.identifier("graph_hash", graph_hash)
        graph_text = encode(graph, "graph")
        v.plain_text("source", source)
        checked = v.enum_member(WorkflowVersionStatus, "status", status)
        return await self._upsert_workflow_version(
            name, graph_hash, graph_text, source, checked, self._now()
        )

    async def update_workflow_version_status(
        self, name: str, graph_hash: str, status: WorkflowVersionStatus | str
    ) -> None:
        """Set a stored version's status (any to any); graph and source stay. Raises:
        `WorkflowVersionNotFound`."""
        v.identifier("name", name)
        v.identifier("graph_hash", graph_hash)
        checked = v.enum_member(WorkflowVersionStatus, "status", status)
        if not await self._update_workflow_version_status(name, graph_hash, checked, self._now()):
            raise WorkflowVersionNotFound(name, graph_hash)

    # --- locks --------------------------------------------------------------------------

    def run_lock(
        self, run_id: str, *, timeout: float | None = 30.0, max_hold: float | None = None
    ) -> AbstractAsyncContextManager[None]:
        """A single-use context manager holding the run's lock (docs/services/workflows.md#locks).
        Not re-entrant.

        With `max_hold` seconds, a body still inside at the deadline loses the lock, is
        cancelled and fenced, and leaving raises `LockHoldExceeded`.
        """
        name = LockName(v.identifier("run_id", run_id))
        return self._single_use_lock(name, timeout, max_hold)

    def step_lock(
        self,
        run_id: str,
        step_name: str,
        *,
        timeout: float | None = 30.0,
        max_hold: float | None = None,
    ) -> AbstractAsyncContextManager[None]:
        """A single-use context manager holding the lock of one step of a run; `max_hold` as
        for `run_lock`."""
        name = LockName(v.identifier("run_id", run_id), v.identifier("step_name", step_name))
        return self._single_use_lock(name, timeout, max_hold)

    def _single_use_lock(
        self, name: LockName, timeout: object, max_hold: object
    ) -> AbstractAsyncContextManager[None]:
        wait = v.timeout(timeout)
        hold = None if max_hold is None else v.positive_seconds("max_hold", max_hold)
        return SingleUseLock(self._lock(name, wait), self._held_locks, str(name), hold)

    async def with_run_lock(
        self,
        run_id: str,
        fn: Callable[[], Awaitable[T]],
        *,
        timeout: float | None = 30.0,
        max_hold: float | None = None,
    ) -> T:
        """Await `fn()` under the run lock and return its value; past `max_hold`, raise
        `LockHoldExceeded` instead."""
        async with self.run_lock(run_id, timeout=timeout, max_hold=max_hold):
            return await fn()

    async def with_step_lock(
        self,
        run_id: str,
        step_name: str,
        fn: Callable[[], Awaitable[T]],
        *,
        timeout: float | None = 30.0,
        max_hold: float | None = None,
    ) -> T:
        """Await `fn()` under the step lock and return its value; past `max_hold`, raise
        `LockHoldExceeded` instead."""
        async with self.step_lock(run_id, step_name, timeout=timeout, max_hold=max_hold):
            return await fn()

    # --- hooks --------------------------------------------------------------------------

    @abstractmethod
    async def _create_run(self, run: NewRun) -> None: ...

    @abstractmethod
    async def _update_run_status(
        self,
        run_id: str,
        status: WorkflowStatus,
        output: str | None,
        error: str | None,
        now: datetime,
    ) -> None:
        """Raises `RunNotFound`."""

    @abstractmethod
    async def _update_run_state(self, run_id: str, name: str, value: str, now: datetime) -> None:
        """Raises `RunNotFound`."""

    @abstractmethod
    async def _get_run_state(self, run_id: str) -> dict[str, JsonValue]: ...

    @abstractmethod
    async def _insert_step_state(self, step: NewStep) -> StepState:
        """Raises `RunNotFound`, then `ConflictError.step`."""

    @abstractmethod
    async def _get_step_state(self, run_id: str, step_name: str) -> StepState | None: ...

    @abstractmethod
    async def _set_step(self, step_id: str, change: StepChange, now: datetime) -> None:
        """Raises `StepNotFound.by_id`."""

    @abstractmethod
    async def _claim_step(self, step_id: str, now: datetime) -> StepState | None:
        """Raises `StepNotFound.by_id`; a conditional write, never read-then-write."""

    @abstractmethod
    async def _create_retry_attempt(
        self, step_id: str, status: StepStatus, now: datetime
    ) -> StepState:
        """Raises `StepNotFound.by_id`."""

    @abstractmethod
    async def _get_graph_steps(self, run_id: str) -> list[GraphStep]: ...

    @abstractmethod
    async def _get_step_names(self, run_id: str, names: list[str]) -> set[str]:
        """Which of the distinct `names` are steps of the run."""

    @abstractmethod
    async def _get_succeeded_results(
        self, run_id: str, names: list[str]
    ) -> dict[str, JsonValue]: ...

    @abstractmethod
    async def _set_branch_taken(self, step_id: str, branch_key: str, now: datetime) -> None:
        """Raises `StepNotFound.by_id`."""

    @abstractmethod
    async def _upsert_workflow_version(
        self,
        name: str,
        graph_hash: str,
        graph: str,
        source: str,
        status: WorkflowVersionStatus,
        now: datetime,
    ) -> bool: ...

    @abstractmethod
    async def _claim_step_for_execution(
        self,
        run_id: str,
        step_name: str,
        rpc_name: str | None,
        max_attempts: int | None,
        now: datetime,
    ) -> StepState | None:
        """Raises `StepNotFound.by_name`, then `StepFunctionMismatch`; one conditional write."""

    @abstractmethod
    async def _set_step_child_run_id(self, step_id: str, child_run_id: str, now: datetime) -> None:
        """Raises `StepNotFound.by_id`."""

    @abstractmethod
    async def _get_step_instances(self, run_id: str) -> list[StepInstance]: ...

    @abstractmethod
    async def _find_stalled_runs(
        self, older_than: datetime, limit: int, after: StalledRun | None
    ) -> list[StalledRun]: ...

    @abstractmethod
    async def _find_undispatched_steps(
        self, older_than: datetime, limit: int, after: UndispatchedStep | None
    ) -> list[UndispatchedStep]: ...

    @abstractmethod
    async def _update_workflow_version_status(
        self, name: str, graph_hash: str, status: WorkflowVersionStatus, now: datetime
    ) -> bool:
        """`False` when the key is unknown."""

    @abstractmethod
    def _lock(self, name: LockName, timeout: float | None) -> AbstractAsyncContextManager[None]:
        """The backend's lock; raises `LockTimeout(str(name), timeout)` when not acquired."""


class WorkflowRunService(_WorkflowReads):
    """Read-only console queries over runs, plus deletion and retention (see
    docs/services/workflow-runs.md)."""

    async def list_runs(
        self,
        *,
        workflow_name: str | None = None,
        status: WorkflowStatus | str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[WorkflowRun]:
        """Runs newest first (ties: later insertion first), filtered exactly, then paged."""
        name = v.optional_identifier("workflow_name", workflow_name)
        checked = None if status is None else v.enum_member(WorkflowStatus, "status", status)
        limit, offset = v.limit_offset(limit, offset)
        return await self._list_runs(name, checked, limit, offset)

    async def count_runs(self, *, workflow_name: str | None = None) -> dict[WorkflowStatus, int]:
        """How many runs are stored in each status (every status a key, `0` included),
        of one workflow or of all; one consistent read, exact (no cap, no estimate).

        An addition beyond upstream for the console's counts by status: `list_runs` stays
        bounded by `offset + limit`, and a count through it would read every run. Served by
        the status indexes (see docs/services/workflow-runs.md)."""
        name = v.optional_identifier("workflow_name", workflow_name)
        found = await self._count_runs(name)
        return {status: found.get(status, 0) for status in WorkflowStatus}

    async def get_run_steps(self, run_id: str) -> list[RunStep]:
        """One entry per step with its current attempt, in creation order."""
        run_id, known = _run_id(run_id)
        return await self._get_run_steps(run_id) if known else []

    async def get_distinct_workflow_names(self) -> list[str]:
        """Each stored workflow name once, in code-point order."""
        return await self._get_distinct_workflow_names()

    async def delete_run(self, run_id: str) -> bool:
        """Remove the run, its steps, history and state; `False` if it did not exist (D16)."""
        run_id, known = _run_id(run_id)
        return await self._delete_run(run_id) if known else False

    async def prune_runs(
        self,
        *,
        finished_before: datetime,
        statuses: Iterable[WorkflowStatus | str] = FINISHED_STATUSES,
        batch_size: int = 1000,
    ) -> int:
        """Delete runs in `statuses` last updated before the cutoff; return how many (D7)."""
        cutoff = v.aware_cutoff("finished_before", finished_before)
        if isinstance(statuses, str | bytes) or not isinstance(statuses, Iterable):
            raise InvalidValue("statuses must be an iterable of statuses, not a bare str")
        checked = tuple(
            dict.fromkeys(v.enum_member(WorkflowStatus, "statuses", s) for s in statuses)
        )
        if not checked:
            raise InvalidValue("statuses must not be empty")
        return await self._prune_runs(cutoff, checked, v.batch_size(batch_size))

    @abstractmethod
    async def _list_runs(
        self, workflow_name: str | None, status: WorkflowStatus | None, limit: int, offset: int
    ) -> list[WorkflowRun]: ...

    @abstractmethod
    async def _count_runs(self, workflow_name: str | None) -> dict[WorkflowStatus, int]:
        """Runs per status; statuses with none may be left out (the caller fills in `0`)."""

    @abstractmethod
    async def _get_run_steps(self, run_id: str) -> list[RunStep]: ...

    @abstractmethod
    async def _get_distinct_workflow_names(self) -> list[str]: ...

    @abstractmethod
    async def _delete_run(self, run_id: str) -> bool: ...

    @abstractmethod
    async def _prune_runs(
        self, cutoff: datetime, statuses: tuple[WorkflowStatus, ...], batch_size: int
    ) -> int:
        """Batches of at most `batch_size`, oldest first per status, each run re-checked."""
