"""Contract tests of identifiers and values in the run-state and console services
(docs/contract.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, TypeAlias

import pytest

from pikku_storage import Storage
from pikku_storage.codec import JsonValue
from pikku_storage.errors import InvalidValue
from pikku_storage.records import (
    AgentCallApproval,
    AgentRunStatus,
    ApprovalStatus,
    PendingApproval,
    SuspendReason,
    Usage,
)
from pikku_testing.contract._ai_values import BAD_IDS
from pikku_testing.contract._builders_ai import (
    NON_JSON,
    SCALARS,
    agent_approval,
    json_identical,
    make_run,
    make_thread,
    snapshot,
    tool_approval,
    user,
    wrong,
)

__all__ = ["ConsoleValueTests", "RunValueTests"]

Call: TypeAlias = Callable[[Storage, object], Awaitable[object]]


def _create(storage: Storage, **fields: object) -> Awaitable[str]:
    arguments: dict[str, object] = {
        "agent_name": "agent-a",
        "thread_id": "t-1",
        "resource_id": "res-1",
        **fields,
    }
    return storage.ai_run_state.create_run(**wrong(arguments))


RUN_ID_CALLS: Final[dict[str, Callable[[Storage, object, str], Awaitable[object]]]] = {
    "create_run agent_name": lambda s, x, r: _create(s, agent_name=x),
    "create_run thread_id": lambda s, x, r: _create(s, thread_id=x),
    "create_run resource_id": lambda s, x, r: _create(s, resource_id=x),
    "approval tool_call_id": lambda s, x, r: _create(
        s, pending_approvals=[tool_approval(wrong(x))]
    ),
    "approval tool_name": lambda s, x, r: _create(
        s, pending_approvals=[tool_approval("tc-9", wrong(x))]
    ),
    "approval agent_run_id": lambda s, x, r: _create(
        s, pending_approvals=[agent_approval("tc-9", agent_run_id=wrong(x))]
    ),
    "update_run run_id": lambda s, x, r: s.ai_run_state.update_run(wrong(x), status="failed"),
    "update_run approval": lambda s, x, r: s.ai_run_state.update_run(
        r, pending_approvals=[tool_approval(wrong(x))]
    ),
    "get_run": lambda s, x, r: s.ai_run_state.get_run(wrong(x)),
    "get_runs_by_thread": lambda s, x, r: s.ai_run_state.get_runs_by_thread(wrong(x)),
    "resolve_approval tool_call_id": lambda s, x, r: s.ai_run_state.resolve_approval(
        wrong(x), "approved"
    ),
    "resolve_approval run_id": lambda s, x, r: s.ai_run_state.resolve_approval(
        "tc-1", "approved", run_id=wrong(x)
    ),
    "find_run_by_tool_call_id": lambda s, x, r: s.ai_run_state.find_run_by_tool_call_id(wrong(x)),
    "get_approval_decisions": lambda s, x, r: s.ai_run_state.get_approval_decisions(wrong(x)),
}

RUN_TEXT_CALLS: Final[dict[str, Callable[[Storage, str, str], Awaitable[object]]]] = {
    "agent_name": lambda s, x, r: _create(s, agent_name=f"a{x}"),
    "resource_id": lambda s, x, r: _create(s, resource_id=f"r{x}"),
    "error_message": lambda s, x, r: _create(s, error_message=f"e{x}"),
    "usage model": lambda s, x, r: _create(s, usage=Usage(model=f"m{x}")),
    "missing_rpcs entry": lambda s, x, r: _create(s, missing_rpcs=["ok", f"r{x}"]),
    "approval tool_name": lambda s, x, r: _create(
        s, pending_approvals=[tool_approval("tc-9", f"n{x}")]
    ),
    "approval display_tool_name": lambda s, x, r: _create(
        s,
        pending_approvals=[
            AgentCallApproval(
                tool_call_id="tc-9",
                agent_name="helper",
                agent_run_id="sub",
                display_tool_name=f"d{x}",
                display_args={},
            )
        ],
    ),
    "update error_message": lambda s, x, r: s.ai_run_state.update_run(r, error_message=f"e{x}"),
    "update missing_rpcs": lambda s, x, r: s.ai_run_state.update_run(r, missing_rpcs=[f"r{x}"]),
    "update usage model": lambda s, x, r: s.ai_run_state.update_run(r, usage=Usage(model=f"{x}")),
    "resolve tool_call_id": lambda s, x, r: s.ai_run_state.resolve_approval(f"tc{x}", "denied"),
}

RUN_JSON_CALLS: Final[dict[str, Callable[[Storage, object, str], Awaitable[object]]]] = {
    "create approval args": lambda s, x, r: _create(
        s, pending_approvals=[tool_approval("tc-9", args=wrong({"v": x}))]
    ),
    "create display_args": lambda s, x, r: _create(
        s, pending_approvals=[agent_approval("tc-9", display_args=wrong([x]))]
    ),
    "update approval args": lambda s, x, r: s.ai_run_state.update_run(
        r, pending_approvals=[tool_approval("tc-9", args=wrong(x))]
    ),
    "update display_args": lambda s, x, r: s.ai_run_state.update_run(
        r, pending_approvals=[agent_approval("tc-9", display_args=wrong({"a": {"b": x}}))]
    ),
}

CONSOLE_ID_CALLS: Final[dict[str, Call]] = {
    "list_threads agent_name": lambda s, x: s.agent_runs.list_threads(agent_name=wrong(x)),
    "list_threads resource_id": lambda s, x: s.agent_runs.list_threads(resource_id=wrong(x)),
    "get_thread": lambda s, x: s.agent_runs.get_thread(wrong(x)),
    "get_thread_messages": lambda s, x: s.agent_runs.get_thread_messages(wrong(x)),
    "get_thread_runs": lambda s, x: s.agent_runs.get_thread_runs(wrong(x)),
    "delete_thread": lambda s, x: s.agent_runs.delete_thread(wrong(x)),
}


def _args(approval: PendingApproval) -> JsonValue:
    return approval.display_args if isinstance(approval, AgentCallApproval) else approval.args


async def _seed(storage: Storage) -> str:
    """Thread `t-1` with a run pending on `tc-1`: lookups that would succeed."""
    await make_thread(storage)
    await storage.ai_storage.save_messages("t-1", [user()])
    return await make_run(storage, pending_approvals=[tool_approval("tc-1")])


class RunValueTests:
    """Identifiers, text and JSON values through `AIRunStateService` (docs/contract.md
    Identifiers)."""

    @pytest.mark.parametrize("method", RUN_ID_CALLS.values(), ids=RUN_ID_CALLS.keys())
    async def test_an_empty_overlong_or_non_string_run_state_id_raises_invalid_value(
        self, storage: Storage, method: Callable[[Storage, object, str], Awaitable[object]]
    ) -> None:
        """docs/concepts.md#values item 53."""
        run_id = await _seed(storage)
        before = await snapshot(storage)
        for bad in BAD_IDS.values():
            with pytest.raises(InvalidValue):
                await method(storage, bad, run_id)
        assert await snapshot(storage) == before

    @pytest.mark.parametrize("method", RUN_TEXT_CALLS.values(), ids=RUN_TEXT_CALLS.keys())
    async def test_nul_or_a_lone_surrogate_in_run_text_raises_invalid_value(
        self, storage: Storage, method: Callable[[Storage, str, str], Awaitable[object]]
    ) -> None:
        """docs/concepts.md#values item 54."""
        run_id = await _seed(storage)
        before = await snapshot(storage)
        for bad in ("\x00", "\ud800"):
            with pytest.raises(InvalidValue):
                await method(storage, bad, run_id)
        assert await snapshot(storage) == before

    @pytest.mark.parametrize("method", RUN_JSON_CALLS.values(), ids=RUN_JSON_CALLS.keys())
    async def test_a_non_json_or_lone_surrogate_approval_value_raises_invalid_value(
        self,
        storage: Storage,
        method: Callable[[Storage, object, str], Awaitable[object]],
    ) -> None:
        """docs/concepts.md#values item 54, 55."""
        run_id = await _seed(storage)
        before = await snapshot(storage)
        for value in [*NON_JSON.values(), "\udc00", {"\ud800": 1}]:
            with pytest.raises(InvalidValue):
                await method(storage, value, run_id)
        assert await snapshot(storage) == before

    async def test_nul_and_json_scalars_in_approval_args_round_trip(self, storage: Storage) -> None:
        """docs/concepts.md#values item 54, 55."""
        await make_thread(storage)
        values = {**SCALARS, "nul\x00": "a\x00b"}
        approvals: list[PendingApproval] = [
            tool_approval("tc-1", args=values),
            agent_approval("tc-2", display_args=[values, -0.0, 2**80]),
            tool_approval("tc-3", args=0),
            tool_approval("tc-4", args=False),
        ]
        run_id = await make_run(storage, pending_approvals=approvals)
        run = await storage.ai_run_state.get_run(run_id)
        assert run is not None
        read = run.pending_approvals
        assert read == approvals
        for got, want in zip(read, approvals, strict=True):
            assert json_identical(_args(got), _args(want))

    async def test_run_enum_parameters_accept_plain_strings_and_reads_return_members(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 56."""
        state = storage.ai_run_state
        await make_thread(storage)
        run_id = await make_run(
            storage,
            status="suspended",
            suspend_reason="rpc-missing",
            pending_approvals=[tool_approval("tc-1"), tool_approval("tc-2")],
        )
        run = await state.get_run(run_id)
        assert run is not None
        assert type(run.status) is AgentRunStatus
        assert type(run.suspend_reason) is SuspendReason
        assert (run.status, run.suspend_reason) == (
            AgentRunStatus.SUSPENDED,
            SuspendReason.RPC_MISSING,
        )
        await state.update_run(run_id, status="failed", suspend_reason="approval")
        run = await state.get_run(run_id)
        assert run is not None
        assert (run.status, run.suspend_reason) == (AgentRunStatus.FAILED, SuspendReason.APPROVAL)
        assert await state.resolve_approval("tc-1", "approved")
        assert await state.resolve_approval("tc-2", ApprovalStatus.DENIED)
        decisions = await state.get_approval_decisions(run_id)
        assert [type(d.status) for d in decisions] == [ApprovalStatus, ApprovalStatus]
        assert [d.status for d in decisions] == [ApprovalStatus.APPROVED, ApprovalStatus.DENIED]


class ConsoleValueTests:
    """Identifiers through `AgentRunService` (docs/contract.md Identifiers)."""

    @pytest.mark.parametrize("method", CONSOLE_ID_CALLS.values(), ids=CONSOLE_ID_CALLS.keys())
    async def test_an_empty_overlong_or_non_string_console_id_raises_invalid_value(
        self, storage: Storage, method: Call
    ) -> None:
        """docs/concepts.md#values item 53."""
        await _seed(storage)
        before = await snapshot(storage)
        for bad in BAD_IDS.values():
            with pytest.raises(InvalidValue):
                await method(storage, bad)
        assert await snapshot(storage) == before
