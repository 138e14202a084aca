"""Contract tests of pending approvals and decisions (docs/services/ai-run-state.md#approvals item
39-43, Concurrency 60-61)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.errors import InvalidValue
from pikku_storage.records import (
    AgentRunStatus,
    ApprovalStatus,
    PendingApproval,
    ResolvedApproval,
    SuspendReason,
    Usage,
)
from pikku_testing._types import StorageFactory
from pikku_testing.contract._builders_ai import (
    UNKNOWN_RUN_ID,
    agent_approval,
    at,
    expected_run,
    make_run,
    make_thread,
    snapshot,
    tool_approval,
    wrong,
)

__all__ = ["ApprovalTests", "RunConcurrencyTests"]


class ApprovalTests:
    """`resolve_approval`, `find_run_by_tool_call_id`, `get_approval_decisions`
    (docs/contract.md)."""

    async def test_resolve_approval_returns_true_then_false(self, storage: Storage) -> None:
        """docs/services/ai-run-state.md#approvals item 39."""
        await make_thread(storage)
        await make_run(storage, pending_approvals=[tool_approval("tc-1")])
        assert await storage.ai_run_state.resolve_approval("tc-1", "approved") is True
        assert await storage.ai_run_state.resolve_approval("tc-1", "approved") is False
        assert await storage.ai_run_state.resolve_approval("tc-1", "denied") is False

    async def test_a_resolved_approval_leaves_the_pending_set_and_the_lookup(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-run-state.md#approvals item 39."""
        state = storage.ai_run_state
        await make_thread(storage)
        run_id = await make_run(
            storage, pending_approvals=[tool_approval("tc-1"), agent_approval("tc-2")]
        )
        assert await state.resolve_approval("tc-1", ApprovalStatus.APPROVED)
        run = await state.get_run(run_id)
        assert run is not None
        assert run.pending_approvals == [agent_approval("tc-2")]
        assert await state.find_run_by_tool_call_id("tc-1") is None
        assert await state.find_run_by_tool_call_id("tc-2") == (run, agent_approval("tc-2"))

    async def test_resolve_approval_leaves_the_run_status_and_updated_at(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-run-state.md#approvals item 39."""
        await make_thread(storage)
        run_id = await make_run(
            storage,
            status="suspended",
            suspend_reason="approval",
            pending_approvals=[tool_approval()],
        )
        pikku_clock.advance(3)
        assert await storage.ai_run_state.resolve_approval("tc-1", "approved")
        assert await storage.ai_run_state.get_run(run_id) == expected_run(
            run_id, status=AgentRunStatus.SUSPENDED, suspend_reason=SuspendReason.APPROVAL
        )

    async def test_resolve_approval_logs_the_decision_with_its_status_and_the_clock(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-run-state.md#approvals item 39."""
        await make_thread(storage)
        run_id = await make_run(storage, pending_approvals=[tool_approval("tc-1", args={"q": 1})])
        pikku_clock.advance(3)
        assert await storage.ai_run_state.resolve_approval("tc-1", "denied")
        assert await storage.ai_run_state.get_approval_decisions(run_id) == [
            ResolvedApproval(
                run_id=run_id,
                approval=tool_approval("tc-1", args={"q": 1}),
                status=ApprovalStatus.DENIED,
                resolved_at=at(3000),
            )
        ]

    async def test_resolve_approval_of_an_unknown_tool_call_returns_false(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-run-state.md#approvals item 40."""
        await make_thread(storage)
        await make_run(storage, pending_approvals=[tool_approval("tc-1")])
        before = await snapshot(storage)
        assert await storage.ai_run_state.resolve_approval("tc-unknown", "approved") is False
        assert await snapshot(storage) == before

    async def test_resolve_approval_with_an_unknown_status_raises_invalid_value(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-run-state.md#approvals item 40."""
        await make_thread(storage)
        run_id = await make_run(storage, pending_approvals=[tool_approval("tc-1")])
        before = await snapshot(storage)
        for status in ("maybe", None, True):
            with pytest.raises(InvalidValue):
                await storage.ai_run_state.resolve_approval("tc-1", wrong(status))
            with pytest.raises(InvalidValue):
                await storage.ai_run_state.resolve_approval("tc-1", wrong(status), run_id=run_id)
        assert await snapshot(storage) == before

    async def test_resolve_approval_without_run_id_claims_every_run_pending_on_the_call(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-run-state.md#approvals item 41."""
        state = storage.ai_run_state
        await make_thread(storage)
        parent = await make_run(storage, pending_approvals=[agent_approval("tc-1")])
        sub = await make_run(
            storage, pending_approvals=[tool_approval("tc-1"), tool_approval("tc-2")]
        )
        assert await state.resolve_approval("tc-1", "approved") is True
        assert await state.get_run(parent) == expected_run(parent)
        assert await state.get_run(sub) == expected_run(
            sub, pending_approvals=[tool_approval("tc-2")]
        )
        for run_id, approval in ((parent, agent_approval("tc-1")), (sub, tool_approval("tc-1"))):
            assert await state.get_approval_decisions(run_id) == [
                ResolvedApproval(
                    run_id=run_id,
                    approval=approval,
                    status=ApprovalStatus.APPROVED,
                    resolved_at=at(0),
                )
            ]

    async def test_resolve_approval_with_run_id_claims_only_that_run(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-run-state.md#approvals item 41."""
        state = storage.ai_run_state
        await make_thread(storage)
        parent = await make_run(storage, pending_approvals=[agent_approval("tc-1")])
        sub = await make_run(storage, pending_approvals=[tool_approval("tc-1")])
        assert await state.resolve_approval("tc-1", "denied", run_id=sub) is True
        assert await state.get_run(sub) == expected_run(sub)
        assert await state.get_run(parent) == expected_run(
            parent, pending_approvals=[agent_approval("tc-1")]
        )
        assert await state.get_approval_decisions(parent) == []
        found = await state.find_run_by_tool_call_id("tc-1")
        assert found is not None
        assert found[0].run_id == parent
        assert await state.resolve_approval("tc-1", "denied", run_id=sub) is False
        assert await state.resolve_approval("tc-1", "approved", run_id=parent) is True

    @pytest.mark.parametrize("which", ["unknown-uuid", "not-a-uuid", "run-not-pending"])
    async def test_resolve_approval_with_an_unknown_run_id_returns_false(
        self, storage: Storage, which: str
    ) -> None:
        """docs/services/ai-run-state.md#approvals item 41."""
        await make_thread(storage)
        await make_run(storage, pending_approvals=[tool_approval("tc-1")])
        other = await make_run(storage, pending_approvals=[tool_approval("tc-2")])
        run_id = {"unknown-uuid": str(uuid.uuid4()), "not-a-uuid": "run-x"}.get(which, other)
        before = await snapshot(storage)
        assert (
            await storage.ai_run_state.resolve_approval("tc-1", "approved", run_id=run_id) is False
        )
        assert await snapshot(storage) == before

    async def test_find_run_by_tool_call_id_returns_the_run_and_the_approval_as_stored(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-run-state.md#approvals item 42."""
        await make_thread(storage)
        approval = tool_approval("tc-1", "search", {"a": [1, {"b": None}], "c": 2**70})
        run_id = await make_run(
            storage,
            pending_approvals=[agent_approval("tc-0"), approval],
            usage=Usage(input_tokens=3),
        )
        found = await storage.ai_run_state.find_run_by_tool_call_id("tc-1")
        assert found == (
            expected_run(
                run_id,
                pending_approvals=[agent_approval("tc-0"), approval],
                usage=Usage(input_tokens=3),
            ),
            approval,
        )

    async def test_find_run_by_tool_call_id_is_none_when_nothing_is_pending(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-run-state.md#approvals item 42."""
        state = storage.ai_run_state
        await make_thread(storage)
        assert await state.find_run_by_tool_call_id("tc-1") is None
        await make_run(storage, pending_approvals=[tool_approval("tc-1")])
        assert await state.resolve_approval("tc-1", "approved")
        assert await state.find_run_by_tool_call_id("tc-1") is None

    async def test_find_run_by_tool_call_id_prefers_the_most_recently_created_run(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-run-state.md#approvals item 42."""
        await make_thread(storage, "t-1")
        await make_thread(storage, "t-2")
        pikku_clock.advance(5)
        newer = await make_run(storage, "t-2", pending_approvals=[tool_approval("tc-1", "new")])
        pikku_clock.advance(-2)
        older = await make_run(storage, "t-1", pending_approvals=[tool_approval("tc-1", "old")])
        found = await storage.ai_run_state.find_run_by_tool_call_id("tc-1")
        assert found is not None
        assert (found[0].run_id, found[1]) == (newer, tool_approval("tc-1", "new"))
        assert await storage.ai_run_state.resolve_approval("tc-1", "approved", run_id=newer)
        found = await storage.ai_run_state.find_run_by_tool_call_id("tc-1")
        assert found is not None
        assert found[0].run_id == older

    async def test_find_run_by_tool_call_id_prefers_the_later_created_run_on_a_tie(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-run-state.md#approvals item 42."""
        await make_thread(storage)
        await make_run(storage, pending_approvals=[tool_approval("tc-1", "first")])
        later = await make_run(storage, pending_approvals=[tool_approval("tc-1", "second")])
        found = await storage.ai_run_state.find_run_by_tool_call_id("tc-1")
        assert found is not None
        assert (found[0].run_id, found[1]) == (later, tool_approval("tc-1", "second"))

    async def test_approval_decisions_are_listed_in_claim_order(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-run-state.md#approvals item 43."""
        state = storage.ai_run_state
        await make_thread(storage)
        approvals: list[PendingApproval] = [
            tool_approval("tc-1"),
            agent_approval("tc-2"),
            tool_approval("tc-3"),
        ]
        run_id = await make_run(storage, pending_approvals=approvals)
        for call_id, status in [("tc-2", "approved"), ("tc-3", "denied"), ("tc-1", "approved")]:
            pikku_clock.advance(1)
            assert await state.resolve_approval(call_id, status, run_id=run_id)
        assert await state.get_approval_decisions(run_id) == [
            ResolvedApproval(
                run_id=run_id,
                approval=approvals[1],
                status=ApprovalStatus.APPROVED,
                resolved_at=at(1000),
            ),
            ResolvedApproval(
                run_id=run_id,
                approval=approvals[2],
                status=ApprovalStatus.DENIED,
                resolved_at=at(2000),
            ),
            ResolvedApproval(
                run_id=run_id,
                approval=approvals[0],
                status=ApprovalStatus.APPROVED,
                resolved_at=at(3000),
            ),
        ]

    @pytest.mark.parametrize("run_id", [UNKNOWN_RUN_ID, "not-a-uuid"])
    async def test_approval_decisions_of_an_unknown_run_are_empty(
        self, storage: Storage, run_id: str
    ) -> None:
        """docs/services/ai-run-state.md#approvals item 43."""
        await make_thread(storage)
        await make_run(storage, pending_approvals=[tool_approval()])
        assert await storage.ai_run_state.resolve_approval("tc-1", "approved")
        assert await storage.ai_run_state.get_approval_decisions(run_id) == []

    async def test_a_tool_call_pending_again_after_a_decision_is_claimed_and_logged_again(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-run-state.md#approvals item 43."""
        state = storage.ai_run_state
        await make_thread(storage)
        run_id = await make_run(storage, pending_approvals=[tool_approval("tc-1")])
        assert await state.resolve_approval("tc-1", "approved")
        pikku_clock.advance(1)
        again = tool_approval("tc-1", args={"retry": True})
        await state.update_run(run_id, pending_approvals=[again])
        found = await state.find_run_by_tool_call_id("tc-1")
        assert found is not None
        assert found[1] == again
        pikku_clock.advance(1)
        assert await state.resolve_approval("tc-1", "denied") is True
        assert await state.get_approval_decisions(run_id) == [
            ResolvedApproval(
                run_id=run_id,
                approval=tool_approval("tc-1"),
                status=ApprovalStatus.APPROVED,
                resolved_at=at(0),
            ),
            ResolvedApproval(
                run_id=run_id, approval=again, status=ApprovalStatus.DENIED, resolved_at=at(2000)
            ),
        ]


class RunConcurrencyTests:
    """Concurrent claims and updates on runs (docs/concepts.md#concurrency item 60-61)."""

    @pytest.mark.parametrize("with_run_id", [False, True], ids=["any-run", "with-run-id"])
    async def test_concurrent_resolves_claim_one_approval_exactly_once(
        self, storage: Storage, storage_factory: StorageFactory, with_run_id: bool
    ) -> None:
        """docs/concepts.md#concurrency item 60."""
        await make_thread(storage)
        run_id = await make_run(storage, pending_approvals=[tool_approval("tc-1")])
        instances = [storage, await storage_factory()]
        outcomes = await asyncio.gather(
            *(
                instances[i % 2].ai_run_state.resolve_approval(
                    "tc-1", "approved", run_id=run_id if with_run_id else None
                )
                for i in range(10)
            )
        )
        assert sorted(outcomes) == [False] * 9 + [True]
        assert len(await storage.ai_run_state.get_approval_decisions(run_id)) == 1

    async def test_concurrent_updates_of_different_fields_both_land(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 61."""
        await make_thread(storage)
        run_id = await make_run(storage)
        other = await storage_factory()
        usage = Usage(input_tokens=3, output_tokens=4, model="m")
        await asyncio.gather(
            storage.ai_run_state.update_run(run_id, status="completed"),
            other.ai_run_state.update_run(run_id, usage=usage),
        )
        run = await storage.ai_run_state.get_run(run_id)
        assert run is not None
        assert (run.status, run.usage) == (AgentRunStatus.COMPLETED, usage)
