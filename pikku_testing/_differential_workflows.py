"""Differential rules over `WorkflowService` and `WorkflowRunService` (Spec: 01)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Final

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from pikku_storage import (
    FINISHED_STATUSES,
    JsonValue,
    PlannedStep,
    StepStatus,
    Storage,
    WorkflowRunWire,
    WorkflowStatus,
    WorkflowVersionStatus,
)
from pikku_testing._differential_core import Harness, Translate
from pikku_testing._differential_values import ERRORS, JSON, PLAIN

__all__ = ["WorkflowRules"]

WORKFLOWS: Final = ("wf-a", "wf-b", "wf é")
STEP_NAMES: Final = ("s1", "s2", "node:a")
STATE_NAMES: Final = ("a", "b.c", "$x")
_RUN_STATUSES: Final = st.sampled_from([*WorkflowStatus, "completed"])
_OFFSETS: Final = st.sampled_from([-7200, -60, -1, 0, 0.001])
_PLANS: Final = st.sampled_from(
    [
        None,
        [],
        [PlannedStep(step_name="s1")],
        (
            PlannedStep(step_name="s1", display_name=""),
            PlannedStep(step_name="s1", display_name="x"),
        ),
        [PlannedStep(step_name="")],
    ]
)
_VERSION_STATUSES: Final = st.sampled_from([*WorkflowVersionStatus, "draft", "archived"])


def _step_ids(state: Any) -> list[tuple[str, str]]:
    return [("step", state.step_id)]


async def _run_exists(storage: Storage, run_id: str) -> bool:
    return await storage.workflows.get_run(run_id) is not None


async def _step_exists(storage: Storage, step_id: str) -> bool:
    return any(step.step_id == step_id for step in await _all_steps(storage))


async def _all_steps(storage: Storage) -> list[Any]:
    runs = await storage.workflow_runs.list_runs(limit=1000)
    return [step for run in runs for step in await storage.workflow_runs.get_run_steps(run.id)]


_RUNS: Final = precondition(lambda self: self.has("run"))
_STEPS: Final = precondition(lambda self: self.has("step"))


class WorkflowRules(Harness):
    """Runs, state, steps, transitions, claims, retries, graph reads, versions, console."""

    def _refresh(self) -> None:
        self.refresh("run", _run_exists)
        self.refresh("step", _step_exists)

    @initialize()
    def seed_run_with_step(self) -> None:
        """Every sequence starts with a run holding one step, so step rules have a target."""

        async def create(s: Storage, tr: Translate) -> object:
            return await s.workflows.create_run("wf-a", {"seed": True})

        self.both("create_run('wf-a') [seed]", create, new=lambda run_id: [("run", run_id)])
        run = self.known["run"][-1]

        async def insert(s: Storage, tr: Translate) -> object:
            return await s.workflows.insert_step_state(tr(run), "s1", None, None)

        self.both(f"insert_step_state({run}, 's1') [seed]", insert, new=_step_ids)

    @rule(
        workflow=st.sampled_from(WORKFLOWS),
        payload=JSON,
        inline=st.booleans(),
        graph_hash=st.none() | st.sampled_from(["h1", "h2"]),
        wire_type=st.none() | st.sampled_from(["http", "rpc"]),
        data=st.data(),
        deterministic=st.booleans(),
        plan=_PLANS,
        user=st.none() | st.sampled_from(["u1", ""]),
    )
    def create_run(
        self,
        workflow: str,
        payload: JsonValue,
        inline: bool,
        graph_hash: str | None,
        wire_type: str | None,
        data: st.DataObject,
        deterministic: bool,
        plan: Sequence[PlannedStep] | None,
        user: str | None,
    ) -> None:
        parent = self.pick(data, "run") if wire_type == "rpc" else None

        async def op(s: Storage, tr: Translate) -> object:
            wire = None
            if wire_type is not None:
                wire = WorkflowRunWire(
                    type=wire_type,
                    id="w1",
                    parent_run_id=tr(parent),
                    parent_step_id="ps" if parent is not None else None,
                    pikku_user_id=user,
                )
            return await s.workflows.create_run(
                workflow,
                payload,
                inline=inline,
                graph_hash=graph_hash,
                wire=wire,
                deterministic=deterministic,
                planned_steps=plan,
            )

        self.both(f"create_run({workflow!r})", op, new=lambda run_id: [("run", run_id)])

    @_RUNS
    @rule(data=st.data(), via_console=st.booleans())
    def get_run(self, data: st.DataObject, via_console: bool) -> None:
        run = self.pick(data, "run")

        async def op(s: Storage, tr: Translate) -> object:
            service = s.workflow_runs if via_console else s.workflows
            return await service.get_run(tr(run))

        self.both(f"get_run({run})", op)

    @_RUNS
    @rule(data=st.data(), status=_RUN_STATUSES, output=JSON, error=ERRORS)
    def update_run_status(
        self, data: st.DataObject, status: str, output: JsonValue, error: Any
    ) -> None:
        run = self.pick(data, "run")

        async def op(s: Storage, tr: Translate) -> object:
            await s.workflows.update_run_status(tr(run), status, output=output, error=error)
            return None

        self.both(f"update_run_status({run}, {status!r})", op)

    @_RUNS
    @rule(data=st.data(), name=st.sampled_from(STATE_NAMES), value=JSON)
    def update_run_state(self, data: st.DataObject, name: str, value: JsonValue) -> None:
        run = self.pick(data, "run")

        async def op(s: Storage, tr: Translate) -> object:
            await s.workflows.update_run_state(tr(run), name, value)
            return None

        self.both(f"update_run_state({run}, {name!r})", op)

    @_RUNS
    @rule(data=st.data())
    def get_run_state(self, data: st.DataObject) -> None:
        run = self.pick(data, "run")

        async def op(s: Storage, tr: Translate) -> object:
            return await s.workflows.get_run_state(tr(run))

        self.both(f"get_run_state({run})", op)

    @_RUNS
    @rule(
        data=st.data(),
        step_name=st.sampled_from(STEP_NAMES),
        rpc_name=st.none() | st.just("rpc"),
        payload=JSON,
        retries=st.sampled_from([None, 0, 2]),
        retry_delay=st.sampled_from([None, 0, 1000, "1000", "2s"]),
        from_step=st.none() | st.sampled_from(STEP_NAMES),
    )
    def insert_step_state(
        self,
        data: st.DataObject,
        step_name: str,
        rpc_name: str | None,
        payload: JsonValue,
        retries: int | None,
        retry_delay: int | str | None,
        from_step: str | None,
    ) -> None:
        run = self.pick(data, "run")

        async def op(s: Storage, tr: Translate) -> object:
            return await s.workflows.insert_step_state(
                tr(run),
                step_name,
                rpc_name,
                payload,
                retries=retries,
                retry_delay=retry_delay,
                from_step_name=from_step,
            )

        self.both(f"insert_step_state({run}, {step_name!r})", op, new=_step_ids)

    @_RUNS
    @rule(data=st.data(), step_name=st.sampled_from(STEP_NAMES))
    def get_step_state(self, data: st.DataObject, step_name: str) -> None:
        run = self.pick(data, "run")

        async def op(s: Storage, tr: Translate) -> object:
            return await s.workflows.get_step_state(tr(run), step_name)

        self.both(f"get_step_state({run}, {step_name!r})", op)

    @_STEPS
    @rule(
        data=st.data(),
        kind=st.sampled_from(["running", "scheduled", "result", "error"]),
        result=JSON,
        message=PLAIN,
    )
    def transition(self, data: st.DataObject, kind: str, result: JsonValue, message: str) -> None:
        step = self.pick(data, "step")

        async def op(s: Storage, tr: Translate) -> object:
            service = s.workflows
            if kind == "running":
                await service.set_step_running(tr(step))
                return None
            if kind == "scheduled":
                await service.set_step_scheduled(tr(step))
                return None
            if kind == "result":
                await service.set_step_result(tr(step), result)
                return None
            await service.set_step_error(tr(step), {"message": message, "code": 3})
            return None

        self.both(f"set_step_{kind}({step})", op)

    @_STEPS
    @rule(data=st.data())
    def claim_step(self, data: st.DataObject) -> None:
        step = self.pick(data, "step")

        async def op(s: Storage, tr: Translate) -> object:
            return await s.workflows.claim_step(tr(step))

        self.both(f"claim_step({step})", op)

    @_RUNS
    @rule(
        data=st.data(),
        step_name=st.sampled_from(STEP_NAMES),
        rpc_name=st.none() | st.just("rpc"),
        max_attempts=st.sampled_from([None, 1, 2, 3, 0]),
    )
    def claim_step_for_execution(
        self, data: st.DataObject, step_name: str, rpc_name: str | None, max_attempts: int | None
    ) -> None:
        run = self.pick(data, "run")

        async def op(s: Storage, tr: Translate) -> object:
            return await s.workflows.claim_step_for_execution(
                tr(run), step_name, rpc_name, max_attempts=max_attempts
            )

        self.both(f"claim_step_for_execution({run}, {step_name!r}, {rpc_name!r})", op)

    @_STEPS
    @rule(data=st.data(), child=st.sampled_from(["c1", "c2"]))
    def set_step_child_run_id(self, data: st.DataObject, child: str) -> None:
        step = self.pick(data, "step")

        async def op(s: Storage, tr: Translate) -> object:
            await s.workflows.set_step_child_run_id(tr(step), child)
            return None

        self.both(f"set_step_child_run_id({step}, {child!r})", op)

    @_RUNS
    @rule(data=st.data())
    def get_step_instances(self, data: st.DataObject) -> None:
        run = self.pick(data, "run")

        async def op(s: Storage, tr: Translate) -> object:
            return await s.workflows.get_step_instances(tr(run))

        self.both(f"get_step_instances({run})", op)

    @rule(offset=_OFFSETS, which=st.sampled_from(["stalled", "undispatched"]))
    def sweep(self, offset: float, which: str) -> None:
        """Both sweepers as id -> since maps: ties sort by generated ids, which differ between
        the sides (the contract tests check the order)."""

        async def op(s: Storage, tr: Translate) -> object:
            cutoff = s.workflows.clock.now() + timedelta(seconds=offset)
            if which == "stalled":
                runs = await s.workflows.find_stalled_runs(older_than=cutoff, limit=1000)
                return {r.run_id: (r.workflow, r.idle_since) for r in runs}
            steps = await s.workflows.find_undispatched_steps(older_than=cutoff, limit=1000)
            return {u.step_id: (u.run_id, u.step_name, u.rpc_name, u.pending_since) for u in steps}

        self.both(f"sweep {which}(now {offset:+})", op)

    @_STEPS
    @rule(data=st.data(), status=st.sampled_from([StepStatus.PENDING, "running"]))
    def create_retry_attempt(self, data: st.DataObject, status: str) -> None:
        step = self.pick(data, "step")

        async def op(s: Storage, tr: Translate) -> object:
            return await s.workflows.create_retry_attempt(tr(step), status)

        self.both(f"create_retry_attempt({step}, {status!r})", op)

    @_STEPS
    @rule(data=st.data(), branch=st.sampled_from(["left", "right"]))
    def set_branch_taken(self, data: st.DataObject, branch: str) -> None:
        step = self.pick(data, "step")

        async def op(s: Storage, tr: Translate) -> object:
            await s.workflows.set_branch_taken(tr(step), branch)
            return None

        self.both(f"set_branch_taken({step}, {branch!r})", op)

    @_RUNS
    @rule(
        data=st.data(),
        read=st.sampled_from(["graph", "without", "results"]),
        names=st.lists(st.sampled_from([*STEP_NAMES, "zz"]), max_size=4),
    )
    def graph_read(self, data: st.DataObject, read: str, names: list[str]) -> None:
        run = self.pick(data, "run")

        async def op(s: Storage, tr: Translate) -> object:
            if read == "graph":
                return await s.workflows.get_completed_graph_state(tr(run))
            if read == "without":
                return await s.workflows.get_nodes_without_steps(tr(run), names)
            return await s.workflows.get_node_results(tr(run), names)

        self.both(f"graph {read}({run}, {names!r})", op)

    @rule(
        name=st.sampled_from(WORKFLOWS),
        graph_hash=st.sampled_from(["h1", "h2"]),
        graph=JSON,
        source=PLAIN,
        read_only=st.booleans(),
        status=_VERSION_STATUSES,
        update=st.booleans(),
    )
    def workflow_version(
        self,
        name: str,
        graph_hash: str,
        graph: JsonValue,
        source: str,
        read_only: bool,
        status: str,
        update: bool,
    ) -> None:
        async def op(s: Storage, tr: Translate) -> object:
            if read_only:
                return await s.workflow_runs.get_workflow_version(name, graph_hash)
            if update:
                await s.workflows.update_workflow_version_status(name, graph_hash, status)
                return None
            return await s.workflows.upsert_workflow_version(
                name, graph_hash, graph, source, status=status
            )

        self.both(f"workflow_version({name!r}, {graph_hash!r}, read_only={read_only})", op)

    @_RUNS
    @rule(data=st.data(), read=st.sampled_from(["history", "console_history", "steps"]))
    def run_reads(self, data: st.DataObject, read: str) -> None:
        run = self.pick(data, "run")

        async def op(s: Storage, tr: Translate) -> object:
            if read == "history":
                return await s.workflows.get_run_history(tr(run))
            if read == "console_history":
                return await s.workflow_runs.get_run_history(tr(run))
            return await s.workflow_runs.get_run_steps(tr(run))

        self.both(f"{read}({run})", op)

    @rule(
        workflow_name=st.none() | st.sampled_from(WORKFLOWS),
        status=st.none() | st.sampled_from(list(WorkflowStatus)),
        limit=st.sampled_from([1, 2, 3, 50]),
        offset=st.sampled_from([0, 1, 2, 5]),
    )
    def list_runs(
        self, workflow_name: str | None, status: WorkflowStatus | None, limit: int, offset: int
    ) -> None:
        async def op(s: Storage, tr: Translate) -> object:
            return await s.workflow_runs.list_runs(
                workflow_name=workflow_name, status=status, limit=limit, offset=offset
            )

        self.both(f"list_runs({workflow_name!r}, {status!r}, {limit}, {offset})", op)

    @rule()
    def distinct_workflow_names(self) -> None:
        async def op(s: Storage, tr: Translate) -> object:
            return await s.workflow_runs.get_distinct_workflow_names()

        self.both("get_distinct_workflow_names()", op)

    @rule(workflow_name=st.none() | st.sampled_from(WORKFLOWS))
    def count_runs(self, workflow_name: str | None) -> None:
        async def op(s: Storage, tr: Translate) -> object:
            return await s.workflow_runs.count_runs(workflow_name=workflow_name)

        self.both(f"count_runs({workflow_name!r})", op)

    @_RUNS
    @rule(data=st.data())
    def delete_run(self, data: st.DataObject) -> None:
        run = self.pick(data, "run")

        async def op(s: Storage, tr: Translate) -> object:
            return await s.workflow_runs.delete_run(tr(run))

        if self.both(f"delete_run({run})", op):
            self._refresh()

    @rule(
        offset=_OFFSETS,
        statuses=st.none() | st.lists(st.sampled_from(list(WorkflowStatus)), min_size=1),
        batch_size=st.sampled_from([1, 2, 1000]),
    )
    def prune_runs(
        self, offset: float, statuses: list[WorkflowStatus] | None, batch_size: int
    ) -> None:
        cutoff = self.at(offset)
        chosen = FINISHED_STATUSES if statuses is None else statuses

        async def op(s: Storage, tr: Translate) -> object:
            return await s.workflow_runs.prune_runs(
                finished_before=cutoff, statuses=chosen, batch_size=batch_size
            )

        if self.both(f"prune_runs({cutoff.isoformat()}, {chosen!r}, {batch_size})", op):
            self._refresh()
