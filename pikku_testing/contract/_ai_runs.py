"""Contract tests of agent runs (docs/services/ai-run-state.md item 29-38)."""

from __future__ import annotations

import uuid

import pytest

from pikku_storage import UNSET, Storage
from pikku_storage.clock import ManualClock
from pikku_storage.errors import InvalidValue, RunNotFound, ThreadNotFound
from pikku_storage.records import AgentRunStatus, PendingApproval, SuspendReason, Usage
from pikku_testing.contract._builders_ai import (
    T0,
    UNKNOWN_RUN_ID,
    agent_approval,
    at,
    expected_run,
    is_uuid4,
    make_run,
    make_thread,
    snapshot,
    tool_approval,
    wrong,
)

__all__ = ["RunTests"]

# Invalid run fields (docs/services/ai-run-state.md item 35): each is a keyword argument of
# update_run and create_run.
INVALID_FIELDS: dict[str, dict[str, object]] = {
    "status None": {"status": None},
    "status paused": {"status": "paused"},
    "status not a str": {"status": 1},
    "negative tokens": {"usage": Usage(input_tokens=-1)},
    "bool tokens": {"usage": Usage(output_tokens=True)},
    "tokens of 2**63": {"usage": Usage(input_tokens=2**63)},
    "float tokens": {"usage": Usage(input_tokens=wrong(1.0))},
    "usage a dict": {"usage": {"input_tokens": 1}},
    "unknown suspend_reason": {"suspend_reason": "sleepy"},
    "missing_rpcs a string": {"missing_rpcs": "abc"},
    "missing_rpcs holding a non-string": {"missing_rpcs": ["a", 1]},
    "repeated tool_call_id": {"pending_approvals": [tool_approval("tc-1"), agent_approval("tc-1")]},
    "empty tool_name": {"pending_approvals": [tool_approval("tc-1", tool_name="")]},
    "dict in place of an approval": {
        "pending_approvals": [{"tool_call_id": "tc-1", "tool_name": "s", "args": {}}]
    },
    "non-JSON approval args": {"pending_approvals": [tool_approval("tc-1", args=wrong({1, 2}))]},
    "non-JSON display_args": {
        "pending_approvals": [agent_approval("tc-1", display_args=float("inf"))]
    },
    "error_message not a str": {"error_message": 5},
}
UPDATE_ONLY: dict[str, dict[str, object]] = {"usage None": {"usage": None}}


class RunTests:
    """`create_run`, `update_run`, `get_run`, `get_runs_by_thread` (docs/contract.md Runs)."""

    async def test_create_run_returns_a_uuid4_and_get_run_shows_the_defaults(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-run-state.md item 29."""
        await make_thread(storage)
        pikku_clock.advance(1.0005)
        run_id = await make_run(storage)
        assert is_uuid4(run_id)
        run = await storage.ai_run_state.get_run(run_id)
        assert run == expected_run(run_id, created_at=at(1000))
        assert run is not None
        assert run.usage == Usage(input_tokens=0, output_tokens=0, model="")
        assert run.pending_approvals == []

    async def test_create_run_with_every_field_set_round_trips(self, storage: Storage) -> None:
        """docs/services/ai-run-state.md item 30."""
        await make_thread(storage)
        approvals: list[PendingApproval] = [
            agent_approval("tc-2"),
            tool_approval("tc-1", args=[1, "two", None]),
        ]
        run_id = await storage.ai_run_state.create_run(
            agent_name="planner",
            thread_id="t-1",
            resource_id="res-other",
            status=AgentRunStatus.SUSPENDED,
            usage=Usage(input_tokens=10, output_tokens=20, model="gpt-x"),
            pending_approvals=approvals,
            suspend_reason=SuspendReason.APPROVAL,
            missing_rpcs=["a", "a", "b"],
            error_message="",
        )
        assert await storage.ai_run_state.get_run(run_id) == expected_run(
            run_id,
            agent_name="planner",
            resource_id="res-other",
            status=AgentRunStatus.SUSPENDED,
            usage=Usage(input_tokens=10, output_tokens=20, model="gpt-x"),
            pending_approvals=approvals,
            suspend_reason=SuspendReason.APPROVAL,
            missing_rpcs=["a", "a", "b"],
            error_message="",
        )

    async def test_empty_missing_rpcs_is_distinct_from_none(self, storage: Storage) -> None:
        """docs/services/ai-run-state.md item 30."""
        await make_thread(storage)
        empty = await make_run(storage, missing_rpcs=[])
        absent = await make_run(storage, missing_rpcs=None)
        from_tuple = await make_run(storage, missing_rpcs=("x", "y"))
        state = storage.ai_run_state
        assert await state.get_run(empty) == expected_run(empty, missing_rpcs=[])
        assert await state.get_run(absent) == expected_run(absent)
        assert await state.get_run(from_tuple) == expected_run(from_tuple, missing_rpcs=["x", "y"])

    async def test_the_largest_token_count_round_trips(self, storage: Storage) -> None:
        """docs/services/ai-run-state.md item 35."""
        await make_thread(storage)
        usage = Usage(input_tokens=2**63 - 1, output_tokens=2**63 - 1, model="m")
        run_id = await make_run(storage, usage=usage)
        assert await storage.ai_run_state.get_run(run_id) == expected_run(run_id, usage=usage)

    async def test_create_run_on_an_unknown_thread_raises_thread_not_found_and_writes_nothing(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-run-state.md item 31."""
        await make_thread(storage, "t-2")
        before = await snapshot(storage, ["t-1", "t-2"])
        with pytest.raises(ThreadNotFound):
            await make_run(storage, "t-1", pending_approvals=[tool_approval()])
        assert await snapshot(storage, ["t-1", "t-2"]) == before
        assert await storage.agent_runs.get_distinct_agent_names() == []
        assert await storage.ai_run_state.find_run_by_tool_call_id("tc-1") is None
        assert await storage.agent_runs.list_threads(agent_name="agent-a") == []

    async def test_update_run_keeps_unset_fields_and_sets_the_given_ones(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-run-state.md item 32."""
        await make_thread(storage)
        usage = Usage(input_tokens=1, output_tokens=2, model="m")
        run_id = await make_run(
            storage,
            status="suspended",
            usage=usage,
            pending_approvals=[tool_approval()],
            suspend_reason="rpc-missing",
            missing_rpcs=["r"],
            error_message="boom",
        )
        pikku_clock.advance(2)
        await storage.ai_run_state.update_run(
            run_id, status=AgentRunStatus.RUNNING, error_message="still", usage=UNSET
        )
        assert await storage.ai_run_state.get_run(run_id) == expected_run(
            run_id,
            status=AgentRunStatus.RUNNING,
            error_message="still",
            suspend_reason=SuspendReason.RPC_MISSING,
            missing_rpcs=["r"],
            usage=usage,
            pending_approvals=[tool_approval()],
            updated_at=at(2000),
        )
        pikku_clock.advance(1)
        await storage.ai_run_state.update_run(
            run_id, suspend_reason="approval", missing_rpcs=["x", "y"]
        )
        run = await storage.ai_run_state.get_run(run_id)
        assert run is not None
        assert (run.suspend_reason, run.missing_rpcs) == (SuspendReason.APPROVAL, ["x", "y"])
        assert (run.created_at, run.updated_at) == (T0, at(3000))

    async def test_update_run_with_none_clears_the_optional_fields(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-run-state.md item 32."""
        await make_thread(storage)
        run_id = await make_run(
            storage, suspend_reason="approval", missing_rpcs=["r"], error_message="boom"
        )
        pikku_clock.advance(1)
        await storage.ai_run_state.update_run(
            run_id, error_message=None, suspend_reason=None, missing_rpcs=None
        )
        assert await storage.ai_run_state.get_run(run_id) == expected_run(
            run_id, updated_at=at(1000)
        )

    async def test_update_run_usage_replaces_all_three_values(self, storage: Storage) -> None:
        """docs/services/ai-run-state.md item 32."""
        await make_thread(storage)
        run_id = await make_run(storage, usage=Usage(input_tokens=1, output_tokens=2, model="a"))
        await storage.ai_run_state.update_run(run_id, usage=Usage(input_tokens=5))
        run = await storage.ai_run_state.get_run(run_id)
        assert run is not None
        assert run.usage == Usage(input_tokens=5, output_tokens=0, model="")

    async def test_update_run_without_fields_only_moves_updated_at(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-run-state.md item 32."""
        await make_thread(storage)
        run_id = await make_run(storage, pending_approvals=[tool_approval()], error_message="e")
        pikku_clock.advance(7)
        await storage.ai_run_state.update_run(run_id)
        assert await storage.ai_run_state.get_run(run_id) == expected_run(
            run_id, pending_approvals=[tool_approval()], error_message="e", updated_at=at(7000)
        )

    async def test_update_run_pending_approvals_replaces_the_set_in_the_new_order(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-run-state.md item 33."""
        state = storage.ai_run_state
        await make_thread(storage)
        first: list[PendingApproval] = [
            tool_approval("tc-1"),
            tool_approval("tc-2"),
            agent_approval("tc-3"),
        ]
        run_id = await make_run(storage, pending_approvals=first)
        assert await state.resolve_approval("tc-1", "approved")
        decisions = await state.get_approval_decisions(run_id)
        pikku_clock.advance(1)
        second: list[PendingApproval] = [
            agent_approval("tc-4"),
            tool_approval("tc-2", args={"changed": True}),
        ]
        await state.update_run(run_id, pending_approvals=second)
        assert await state.get_run(run_id) == expected_run(
            run_id, pending_approvals=second, updated_at=at(1000)
        )
        assert await state.find_run_by_tool_call_id("tc-3") is None
        found = await state.find_run_by_tool_call_id("tc-2")
        assert found is not None
        assert found[1] == second[1]
        assert await state.get_approval_decisions(run_id) == decisions

    @pytest.mark.parametrize("cleared", [[], None], ids=["empty-list", "none"])
    async def test_update_run_with_empty_or_none_pending_approvals_clears_the_set(
        self, storage: Storage, cleared: list[object] | None
    ) -> None:
        """docs/services/ai-run-state.md item 33."""
        state = storage.ai_run_state
        await make_thread(storage)
        run_id = await make_run(
            storage, pending_approvals=[tool_approval("tc-1"), tool_approval("tc-2")]
        )
        assert await state.resolve_approval("tc-1", "denied")
        decisions = await state.get_approval_decisions(run_id)
        await state.update_run(run_id, pending_approvals=wrong(cleared))
        run = await state.get_run(run_id)
        assert run is not None
        assert run.pending_approvals == []
        assert await state.find_run_by_tool_call_id("tc-2") is None
        assert await state.get_approval_decisions(run_id) == decisions

    @pytest.mark.parametrize("run_id", [UNKNOWN_RUN_ID, "not-a-uuid", "x"])
    async def test_update_run_of_an_unknown_run_raises_run_not_found(
        self, storage: Storage, run_id: str
    ) -> None:
        """docs/services/ai-run-state.md item 34."""
        await make_thread(storage)
        await make_run(storage)
        with pytest.raises(RunNotFound) as caught:
            await storage.ai_run_state.update_run(run_id, status="completed")
        assert str(caught.value) == f"Run not found: {run_id}"
        assert isinstance(caught.value, LookupError)

    @pytest.mark.parametrize("run_id", [UNKNOWN_RUN_ID, "not-a-uuid", "x"])
    async def test_get_run_of_an_unknown_run_returns_none(
        self, storage: Storage, run_id: str
    ) -> None:
        """docs/services/ai-run-state.md item 34."""
        await make_thread(storage)
        await make_run(storage)
        assert await storage.ai_run_state.get_run(run_id) is None

    @pytest.mark.parametrize(
        "fields",
        [*INVALID_FIELDS.values(), *UPDATE_ONLY.values()],
        ids=[*INVALID_FIELDS, *UPDATE_ONLY],
    )
    async def test_an_invalid_field_in_update_run_raises_invalid_value_and_changes_nothing(
        self, storage: Storage, pikku_clock: ManualClock, fields: dict[str, object]
    ) -> None:
        """docs/services/ai-run-state.md item 35."""
        await make_thread(storage)
        await make_run(storage, pending_approvals=[tool_approval("tc-0")], error_message="e")
        run_id = (await storage.ai_run_state.get_runs_by_thread("t-1"))[0].run_id
        pikku_clock.advance(1)
        before = await snapshot(storage)
        with pytest.raises(InvalidValue):
            await storage.ai_run_state.update_run(
                run_id, **wrong({"error_message": "changed", **fields})
            )
        assert await snapshot(storage) == before
        with pytest.raises(InvalidValue):
            await storage.ai_run_state.update_run(str(uuid.uuid4()), **wrong(fields))

    @pytest.mark.parametrize("fields", INVALID_FIELDS.values(), ids=INVALID_FIELDS.keys())
    async def test_an_invalid_field_in_create_run_raises_invalid_value_and_writes_nothing(
        self, storage: Storage, fields: dict[str, object]
    ) -> None:
        """docs/services/ai-run-state.md item 35."""
        await make_thread(storage)
        before = await snapshot(storage)
        with pytest.raises(InvalidValue):
            await storage.ai_run_state.create_run(
                agent_name="agent-a", thread_id="t-1", resource_id="res-1", **wrong(fields)
            )
        assert await snapshot(storage) == before
        with pytest.raises(InvalidValue):
            await storage.ai_run_state.create_run(
                agent_name="agent-a", thread_id="t-unknown", resource_id="res-1", **wrong(fields)
            )

    async def test_any_status_change_is_accepted(self, storage: Storage) -> None:
        """docs/services/ai-run-state.md item 36."""
        state = storage.ai_run_state
        await make_thread(storage)
        run_id = await make_run(storage, status="completed")
        for status in ("running", "failed", "completed", "suspended", "running"):
            await state.update_run(run_id, status=status)
            run = await state.get_run(run_id)
            assert run is not None
            assert run.status is AgentRunStatus(status)
            assert run.suspend_reason is None

    async def test_get_runs_by_thread_lists_runs_newest_first_with_their_pending_sets(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-run-state.md item 37."""
        await make_thread(storage, "t-1")
        await make_thread(storage, "t-2")
        first = await make_run(storage, pending_approvals=[tool_approval("tc-1")])
        pikku_clock.advance(1)
        second = await make_run(storage, agent_name="agent-b")
        third = await make_run(storage, pending_approvals=[agent_approval("tc-2")])
        await make_run(storage, "t-2")
        assert await storage.ai_run_state.get_runs_by_thread("t-1") == [
            expected_run(third, pending_approvals=[agent_approval("tc-2")], created_at=at(1000)),
            expected_run(second, agent_name="agent-b", created_at=at(1000)),
            expected_run(first, pending_approvals=[tool_approval("tc-1")]),
        ]

    async def test_get_runs_by_thread_of_an_unknown_thread_is_empty(self, storage: Storage) -> None:
        """docs/services/ai-run-state.md item 37."""
        await make_thread(storage)
        await make_run(storage)
        assert await storage.ai_run_state.get_runs_by_thread("t-unknown") == []

    async def test_an_approval_whose_tool_call_was_never_saved_is_kept(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-run-state.md item 38."""
        await make_thread(storage)
        run_id = await make_run(storage, pending_approvals=[tool_approval("never-saved")])
        assert await storage.ai_run_state.get_run(run_id) == expected_run(
            run_id, pending_approvals=[tool_approval("never-saved")]
        )

    async def test_a_parent_and_a_sub_run_pending_on_one_tool_call_keep_both(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-run-state.md item 38."""
        await make_thread(storage)
        sub_approval = tool_approval("tc-1", "delete_file", {"path": "/tmp/x"})
        sub = await make_run(storage, agent_name="helper", pending_approvals=[sub_approval])
        parent_approval = agent_approval("tc-1", agent_run_id=sub)
        parent = await make_run(storage, agent_name="parent", pending_approvals=[parent_approval])
        state = storage.ai_run_state
        assert await state.get_run(sub) == expected_run(
            sub, agent_name="helper", pending_approvals=[sub_approval]
        )
        assert await state.get_run(parent) == expected_run(
            parent, agent_name="parent", pending_approvals=[parent_approval]
        )
