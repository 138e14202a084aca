"""Workflow contract, rejected input of `WorkflowService` (see docs/contract.md, 1, 2 and 8)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, NamedTuple

import pytest

from pikku_storage import Storage
from pikku_storage.errors import RunNotFound, StepNotFound
from pikku_storage.records import (
    GraphState,
    WorkflowRunWire,
    WorkflowVersion,
)
from pikku_testing.contract._builders_workflows import (
    BAD_IDENTIFIERS,
    LONG_ID,
    NON_JSON_VALUES,
    expect_invalid,
    new_run,
    new_step,
    snapshot,
)

__all__ = ["WorkflowValidationTests"]


class _Ids(NamedTuple):
    run_id: str
    step_id: str


_Call = Callable[[Storage, _Ids, Any], Awaitable[object]]


async def _enter(lock: AbstractAsyncContextManager[None]) -> None:
    async with lock:
        pass


async def _nothing() -> None:
    return None


# Every identifier argument of WorkflowService, each called with one bad value in its place.
_RUN_CALLS: dict[str, _Call] = {
    "create_run(workflow)": lambda s, i, x: s.workflows.create_run(x, None),
    "create_run(graph_hash)": lambda s, i, x: s.workflows.create_run("wf", None, graph_hash=x),
    "create_run(wire.type)": lambda s, i, x: s.workflows.create_run(
        "wf", None, wire=WorkflowRunWire(type=x)
    ),
    "create_run(wire.id)": lambda s, i, x: s.workflows.create_run(
        "wf", None, wire=WorkflowRunWire(type="http", id=x)
    ),
    "create_run(wire.parent_run_id)": lambda s, i, x: s.workflows.create_run(
        "wf", None, wire=WorkflowRunWire(type="http", parent_run_id=x)
    ),
    "get_run": lambda s, i, x: s.workflows.get_run(x),
    "get_run_history": lambda s, i, x: s.workflows.get_run_history(x),
    "update_run_status(run_id)": lambda s, i, x: s.workflows.update_run_status(x, "completed"),
    "update_run_state(run_id)": lambda s, i, x: s.workflows.update_run_state(x, "k", 1),
    "update_run_state(name)": lambda s, i, x: s.workflows.update_run_state(i.run_id, x, 1),
    "get_run_state": lambda s, i, x: s.workflows.get_run_state(x),
}
_STEP_CALLS: dict[str, _Call] = {
    "insert_step_state(run_id)": lambda s, i, x: s.workflows.insert_step_state(x, "n", None, 1),
    "insert_step_state(step_name)": lambda s, i, x: s.workflows.insert_step_state(
        i.run_id, x, None, 1
    ),
    "insert_step_state(rpc_name)": lambda s, i, x: s.workflows.insert_step_state(
        i.run_id, "n", x, 1
    ),
    "get_step_state(run_id)": lambda s, i, x: s.workflows.get_step_state(x, "step"),
    "get_step_state(step_name)": lambda s, i, x: s.workflows.get_step_state(i.run_id, x),
    "set_step_running": lambda s, i, x: s.workflows.set_step_running(x),
    "set_step_scheduled": lambda s, i, x: s.workflows.set_step_scheduled(x),
    "set_step_result": lambda s, i, x: s.workflows.set_step_result(x, 1),
    "set_step_error": lambda s, i, x: s.workflows.set_step_error(x, {"message": "m"}),
    "claim_step": lambda s, i, x: s.workflows.claim_step(x),
    "create_retry_attempt": lambda s, i, x: s.workflows.create_retry_attempt(x, "pending"),
}
_GRAPH_CALLS: dict[str, _Call] = {
    "get_completed_graph_state": lambda s, i, x: s.workflows.get_completed_graph_state(x),
    "get_nodes_without_steps(run_id)": lambda s, i, x: s.workflows.get_nodes_without_steps(
        x, ["a"]
    ),
    "get_nodes_without_steps(node_ids)": lambda s, i, x: s.workflows.get_nodes_without_steps(
        i.run_id, ["a", x]
    ),
    "get_node_results(run_id)": lambda s, i, x: s.workflows.get_node_results(x, ["a"]),
    "get_node_results(node_ids)": lambda s, i, x: s.workflows.get_node_results(i.run_id, ["a", x]),
    "set_branch_taken(step_id)": lambda s, i, x: s.workflows.set_branch_taken(x, "b"),
    "set_branch_taken(branch_key)": lambda s, i, x: s.workflows.set_branch_taken(i.step_id, x),
    "upsert_workflow_version(name)": lambda s, i, x: s.workflows.upsert_workflow_version(
        x, "h2", {}, "dsl"
    ),
    "upsert_workflow_version(graph_hash)": lambda s, i, x: s.workflows.upsert_workflow_version(
        "wf", x, {}, "dsl"
    ),
    "get_workflow_version(name)": lambda s, i, x: s.workflows.get_workflow_version(x, "h"),
    "get_workflow_version(graph_hash)": lambda s, i, x: s.workflows.get_workflow_version("wf", x),
}
_LOCK_CALLS: dict[str, _Call] = {
    "run_lock": lambda s, i, x: _enter(s.workflows.run_lock(x, timeout=0)),
    "step_lock(run_id)": lambda s, i, x: _enter(s.workflows.step_lock(x, "step", timeout=0)),
    "step_lock(step_name)": lambda s, i, x: _enter(s.workflows.step_lock(i.run_id, x, timeout=0)),
    "with_run_lock": lambda s, i, x: s.workflows.with_run_lock(x, _nothing, timeout=0),
    "with_step_lock(run_id)": lambda s, i, x: s.workflows.with_step_lock(
        x, "step", _nothing, timeout=0
    ),
    "with_step_lock(step_name)": lambda s, i, x: s.workflows.with_step_lock(
        i.run_id, x, _nothing, timeout=0
    ),
}
_WRONG_TYPES: tuple[object, ...] = (123, b"id", ["id"])


class WorkflowValidationTests:
    """docs/concepts.md#values item 1, 2 and 8 on `WorkflowService`: bad identifiers, non-JSON
    values, bad
    options and wrong types; every rejected call is shown to have written nothing."""

    async def _populated(self, storage: Storage) -> _Ids:
        run_id = await new_run(storage, input={"in": 1})
        await storage.workflows.update_run_state(run_id, "k", 1)
        step = await new_step(storage, run_id, "step", data={"d": 1})
        await storage.workflows.upsert_workflow_version("wf", "h", {"g": 1}, "dsl")
        return _Ids(run_id, step.step_id)

    async def _assert_all_invalid(
        self, storage: Storage, calls: dict[str, _Call], values: tuple[object, ...]
    ) -> None:
        ids = await self._populated(storage)
        before = await snapshot(storage, [ids.run_id], [("wf", "h")])
        for label, call in calls.items():
            for value in values:
                await expect_invalid(f"{label} with {value!r}", call, storage, ids, value)
        assert await snapshot(storage, [ids.run_id], [("wf", "h")]) == before

    # --- 1 --------------------------------------------------------------------------------

    async def test_workflow_run_identifiers_reject_bad_values_and_write_nothing(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 1."""
        await self._assert_all_invalid(storage, _RUN_CALLS, BAD_IDENTIFIERS)

    async def test_workflow_step_identifiers_reject_bad_values_and_write_nothing(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 1."""
        await self._assert_all_invalid(storage, _STEP_CALLS, BAD_IDENTIFIERS)

    async def test_workflow_graph_and_version_identifiers_reject_bad_values_and_write_nothing(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 1."""
        await self._assert_all_invalid(storage, _GRAPH_CALLS, BAD_IDENTIFIERS)

    async def test_workflow_lock_identifiers_reject_bad_values(self, storage: Storage) -> None:
        """docs/concepts.md#values item 1."""
        await self._assert_all_invalid(storage, _LOCK_CALLS, BAD_IDENTIFIERS)

    async def test_workflow_identifiers_of_the_wrong_type_raise_and_write_nothing(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 1 (docs/concepts.md#values: non-`str` ids raise
        `InvalidValue`)."""
        calls = {**_RUN_CALLS, **_STEP_CALLS, **_GRAPH_CALLS, **_LOCK_CALLS}
        await self._assert_all_invalid(storage, calls, _WRONG_TYPES)

    async def test_workflow_identifiers_of_255_characters_are_stored(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 1."""
        wf = storage.workflows
        wire = WorkflowRunWire(type=LONG_ID, id=LONG_ID, parent_run_id=LONG_ID)
        run_id = await wf.create_run(LONG_ID, None, graph_hash=LONG_ID, wire=wire)
        run = await wf.get_run(run_id)
        assert run is not None
        assert (run.workflow, run.graph_hash, run.wire) == (LONG_ID, LONG_ID, wire)
        await wf.update_run_state(run_id, LONG_ID, 1)
        assert await wf.get_run_state(run_id) == {LONG_ID: 1}
        step = await wf.insert_step_state(run_id, LONG_ID, LONG_ID, None)
        assert await wf.get_step_state(run_id, LONG_ID) == step
        await wf.set_step_result(step.step_id, 1)
        await wf.set_branch_taken(step.step_id, LONG_ID)
        state = await wf.get_completed_graph_state(run_id)
        assert state == GraphState(completed_node_ids=[LONG_ID], branch_keys={LONG_ID: LONG_ID})
        assert await wf.get_nodes_without_steps(run_id, [LONG_ID, "y" * 255]) == ["y" * 255]
        assert await wf.get_node_results(run_id, [LONG_ID]) == {LONG_ID: 1}
        steps = await storage.workflow_runs.get_run_steps(run_id)
        assert [(s.step_name, s.rpc_name) for s in steps] == [(LONG_ID, LONG_ID)]
        assert await wf.upsert_workflow_version(LONG_ID, LONG_ID, [], "dsl") is True
        assert await wf.get_workflow_version(LONG_ID, LONG_ID) == WorkflowVersion(
            graph=[], source="dsl"
        )
        async with wf.run_lock(LONG_ID, timeout=0), wf.step_lock(LONG_ID, LONG_ID, timeout=0):
            pass

    async def test_workflow_ids_of_255_characters_are_unknown_not_invalid(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 1 (a valid but non-UUID id is unknown, D2)."""
        wf = storage.workflows
        assert await wf.get_run(LONG_ID) is None
        with pytest.raises(RunNotFound):
            await wf.update_run_state(LONG_ID, "k", 1)
        with pytest.raises(StepNotFound):
            await wf.claim_step(LONG_ID)

    async def test_workflow_version_source_rejects_only_nul_and_lone_surrogates(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 1."""
        wf = storage.workflows
        for index, source in enumerate(["a\x00b", "a\ud800b"]):
            await expect_invalid(
                f"source {source!r}", wf.upsert_workflow_version, "wf", f"bad{index}", {}, source
            )
            assert await wf.get_workflow_version("wf", f"bad{index}") is None
        for index, source in enumerate(["", "x" * 256]):
            assert await wf.upsert_workflow_version("wf", f"ok{index}", {}, source) is True
            assert await wf.get_workflow_version("wf", f"ok{index}") == WorkflowVersion(
                graph={}, source=source
            )

    # --- 2 --------------------------------------------------------------------------------

    async def _assert_non_json_rejected(
        self,
        storage: Storage,
        path: str,
        call: Callable[[object], Awaitable[object]],
        run_ids: list[str],
    ) -> None:
        before = await snapshot(storage, run_ids, [("wf", "h")])
        for value in NON_JSON_VALUES:
            exc = await expect_invalid(f"{path} with {value!r}", call, {"a": [value]})
            assert f"{path}['a'][0]" in str(exc)
        assert await snapshot(storage, run_ids, [("wf", "h")]) == before

    async def test_non_json_run_input_is_rejected_naming_the_path(self, storage: Storage) -> None:
        """docs/concepts.md#values item 2."""

        async def call(value: Any) -> None:
            await storage.workflows.create_run("wf", value)

        await self._assert_non_json_rejected(storage, "input", call, [])

    async def test_non_json_run_output_is_rejected_naming_the_path(self, storage: Storage) -> None:
        """docs/concepts.md#values item 2."""
        run_id = await new_run(storage)

        async def call(value: Any) -> None:
            await storage.workflows.update_run_status(run_id, "completed", output=value)

        await self._assert_non_json_rejected(storage, "output", call, [run_id])

    async def test_non_json_step_data_is_rejected_naming_the_path(self, storage: Storage) -> None:
        """docs/concepts.md#values item 2."""
        run_id = await new_run(storage)

        async def call(value: Any) -> None:
            await storage.workflows.insert_step_state(run_id, "s", None, value)

        await self._assert_non_json_rejected(storage, "data", call, [run_id])

    async def test_non_json_step_result_is_rejected_naming_the_path(self, storage: Storage) -> None:
        """docs/concepts.md#values item 2."""
        run_id = await new_run(storage)
        step = await new_step(storage, run_id)

        async def call(value: Any) -> None:
            await storage.workflows.set_step_result(step.step_id, value)

        await self._assert_non_json_rejected(storage, "result", call, [run_id])

    async def test_non_json_state_value_is_rejected_naming_the_path(self, storage: Storage) -> None:
        """docs/concepts.md#values item 2."""
        run_id = await new_run(storage)

        async def call(value: Any) -> None:
            await storage.workflows.update_run_state(run_id, "k", value)

        await self._assert_non_json_rejected(storage, "value", call, [run_id])

    async def test_non_json_version_graph_is_rejected_naming_the_path(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 2."""

        async def call(value: Any) -> None:
            await storage.workflows.upsert_workflow_version("wf", "h", value, "dsl")

        await self._assert_non_json_rejected(storage, "graph", call, [])

    async def test_non_json_workflow_error_extras_are_rejected_naming_the_path(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 2."""
        run_id = await new_run(storage)
        step = await new_step(storage, run_id)

        async def on_run(value: Any) -> None:
            error = {"message": "m", "extra": value}
            await storage.workflows.update_run_status(run_id, "failed", error=error)

        async def on_step(value: Any) -> None:
            error = {"message": "m", "extra": value}
            await storage.workflows.set_step_error(step.step_id, error)

        await self._assert_non_json_rejected(storage, "error['extra']", on_run, [run_id])
        await self._assert_non_json_rejected(storage, "error['extra']", on_step, [run_id])

    # --- 8 --------------------------------------------------------------------------------

    async def test_bad_run_options_raise_and_create_no_run(self, storage: Storage) -> None:
        """docs/concepts.md#values item 8."""
        wf = storage.workflows
        before = await snapshot(storage)
        for inline in (1, 0, "true", None):
            await expect_invalid(f"inline={inline!r}", _create_with, wf, {"inline": inline})
        for wire in ({"type": "http"}, "http", 1):
            await expect_invalid(f"wire={wire!r}", _create_with, wf, {"wire": wire})
        assert await snapshot(storage) == before

    async def test_bad_retry_options_raise_and_create_no_step(self, storage: Storage) -> None:
        """docs/concepts.md#values item 8."""
        wf = storage.workflows
        run_id = await new_run(storage)
        before = await snapshot(storage, [run_id])
        for retries in (-1, True, 1.5, "1"):
            await expect_invalid(
                f"retries={retries!r}", _insert_with, wf, run_id, {"retries": retries}
            )
        for delay in (-1, 1.5, True, "", "x" * 65, [1]):
            await expect_invalid(
                f"retry_delay={delay!r}", _insert_with, wf, run_id, {"retry_delay": delay}
            )
        assert await snapshot(storage, [run_id]) == before
        await _insert_with(wf, run_id, {"retries": 0, "retry_delay": "x" * 64})

    async def test_bare_string_node_ids_raise(self, storage: Storage) -> None:
        """docs/concepts.md#values item 8."""
        wf = storage.workflows
        run_id = await new_run(storage)
        await new_step(storage, run_id, "ab")
        before = await snapshot(storage, [run_id])
        for call in (wf.get_nodes_without_steps, wf.get_node_results):
            await expect_invalid(call.__name__, call, run_id, "ab")
            await expect_invalid(call.__name__, call, run_id, None)
        assert await snapshot(storage, [run_id]) == before


async def _one() -> int:
    return 1


async def _create_with(wf: Any, options: dict[str, Any]) -> object:
    return await wf.create_run("wf", None, **options)


async def _insert_with(wf: Any, run_id: str, options: dict[str, Any]) -> object:
    return await wf.insert_step_state(run_id, "s", None, None, **options)
