"""Contract tests of the spec 05 message flags, run status `interrupted`, reason `credential`
and credential requests (docs/services/ai-storage.md#message-fields,
docs/services/ai-run-state.md#credential-requests; spec 05 items 12-15)."""

from __future__ import annotations

from datetime import datetime

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.errors import InvalidValue
from pikku_storage.records import (
    AgentRunStatus,
    ApprovalStatus,
    CredentialRequestApproval,
    CredentialType,
    Message,
    MessageRole,
    ResolvedApproval,
    SuspendReason,
    ToolResult,
)
from pikku_testing.contract._builders_ai import (
    T0,
    at,
    call,
    expected_run,
    make_run,
    make_thread,
    snapshot,
    stored,
    user,
    wrong,
)

__all__ = ["MessageFlagTests", "RunAdditionTests"]


def _assistant(
    message_id: str = "a-1",
    *,
    reasoning: str | None = None,
    interrupted: bool = False,
    calls: tuple[str, ...] = (),
) -> Message:
    return Message(
        id=message_id,
        role=MessageRole.ASSISTANT,
        content="answer",
        tool_calls=[call(call_id) for call_id in calls],
        reasoning_content=reasoning,
        interrupted=interrupted,
    )


def _read(message: Message, created_at: datetime = T0) -> Message:
    """`message` as read back: `stored()` keeping the assistant flags."""
    out = stored(message, created_at)
    out.reasoning_content = message.reasoning_content
    out.interrupted = message.interrupted
    return out


def _result(call_id: str, text: str = "found it", *, undelivered: bool = False) -> ToolResult:
    return ToolResult(id=call_id, name="search", result=text, undelivered=undelivered)


def _tool(*results: ToolResult, undelivered: bool = False, message_id: str = "tool-1") -> Message:
    return Message(
        id=message_id, role=MessageRole.TOOL, tool_results=list(results), undelivered=undelivered
    )


def _synthetic(assistant_id: str, *results: ToolResult, undelivered: bool) -> Message:
    return Message(
        id="tool-results-" + assistant_id,
        role=MessageRole.TOOL,
        content=None,
        tool_results=list(results),
        created_at=T0,
        undelivered=undelivered,
    )


def credential_request(
    call_id: str = "tc-c", *, connect_url: str | None = "https://example.test/connect"
) -> CredentialRequestApproval:
    return CredentialRequestApproval(
        tool_call_id=call_id,
        tool_name="send_mail",
        args={"to": "a@example.test"},
        credential_name="gmail",
        credential_type=CredentialType.OAUTH2,
        connect_url=connect_url,
    )


class MessageFlagTests:
    """`reasoning_content`, `interrupted` and `undelivered` on saved and read messages."""

    @pytest.mark.parametrize("reasoning", ["", "thinking about it", None])
    async def test_assistant_flags_round_trip(
        self, storage: Storage, reasoning: str | None
    ) -> None:
        """Spec 05 §5 item 12."""
        await make_thread(storage)
        message = _assistant(reasoning=reasoning, interrupted=True)
        await storage.ai_storage.save_messages("t-1", [user(), message])
        expected = [stored(user()), _read(message)]
        assert await storage.ai_storage.get_messages("t-1") == expected
        assert await storage.agent_runs.get_thread_messages("t-1") == expected
        read = (await storage.ai_storage.get_messages("t-1"))[1]
        assert (read.reasoning_content, read.interrupted) == (reasoning, True)

    async def test_message_flags_default_to_none_and_false(self, storage: Storage) -> None:
        """Spec 05 §5 item 12."""
        await make_thread(storage)
        await storage.ai_storage.save_messages(
            "t-1", [user(), _assistant(calls=("tc-1",)), _tool(_result("tc-1"))]
        )
        for message in await storage.ai_storage.get_messages("t-1"):
            assert (message.reasoning_content, message.interrupted, message.undelivered) == (
                None,
                False,
                False,
            )
            assert all(r.undelivered is False for r in message.tool_results)

    async def test_an_undelivered_tool_message_marks_its_results_and_synthetic_message(
        self, storage: Storage
    ) -> None:
        """Spec 05 §5 item 13."""
        await make_thread(storage)
        assistant = _assistant(calls=("tc-1", "tc-2"))
        await storage.ai_storage.save_messages(
            "t-1", [assistant, _tool(_result("tc-1"), _result("tc-2"), undelivered=True)]
        )
        flagged = [_result("tc-1", undelivered=True), _result("tc-2", undelivered=True)]
        expected = [_read(assistant), _synthetic("a-1", *flagged, undelivered=True)]
        assert await storage.ai_storage.get_messages("t-1") == expected
        assert await storage.agent_runs.get_thread_messages("t-1") == expected

    async def test_mixed_results_keep_per_result_flags_and_the_message_is_delivered(
        self, storage: Storage
    ) -> None:
        """Spec 05 §5 item 13."""
        await make_thread(storage)
        assistant = _assistant(calls=("tc-1", "tc-2"))
        await storage.ai_storage.save_messages("t-1", [assistant, _tool(_result("tc-1"))])
        await storage.ai_storage.save_messages(
            "t-1", [_tool(_result("tc-2", "late"), undelivered=True, message_id="tool-2")]
        )
        expected = [
            _read(assistant),
            _synthetic(
                "a-1",
                _result("tc-1"),
                _result("tc-2", "late", undelivered=True),
                undelivered=False,
            ),
        ]
        assert await storage.ai_storage.get_messages("t-1") == expected

    async def test_a_result_flag_alone_marks_that_result(self, storage: Storage) -> None:
        """Spec 05 §5 item 13."""
        await make_thread(storage)
        assistant = _assistant(calls=("tc-1",))
        await storage.ai_storage.save_messages(
            "t-1", [assistant, _tool(_result("tc-1", undelivered=True))]
        )
        expected = [
            _read(assistant),
            _synthetic("a-1", _result("tc-1", undelivered=True), undelivered=True),
        ]
        assert await storage.ai_storage.get_messages("t-1") == expected

    async def test_a_later_delivered_result_clears_the_flag(self, storage: Storage) -> None:
        """Spec 05 §5 item 13."""
        await make_thread(storage)
        assistant = _assistant(calls=("tc-1",))
        await storage.ai_storage.save_messages(
            "t-1", [assistant, _tool(_result("tc-1", "first"), undelivered=True)]
        )
        await storage.ai_storage.save_messages(
            "t-1", [_tool(_result("tc-1", "second"), message_id="tool-2")]
        )
        expected = [
            _read(assistant),
            _synthetic("a-1", _result("tc-1", "second"), undelivered=False),
        ]
        assert await storage.ai_storage.get_messages("t-1") == expected

    async def test_a_later_result_in_one_batch_replaces_text_and_flag_together(
        self, storage: Storage
    ) -> None:
        """Spec 05 §5 item 13."""
        await make_thread(storage)
        assistant = _assistant(calls=("tc-1",))
        await storage.ai_storage.save_messages(
            "t-1",
            [
                assistant,
                _tool(_result("tc-1", "first")),
                _tool(_result("tc-1", "second"), undelivered=True, message_id="tool-2"),
            ],
        )
        expected = [
            _read(assistant),
            _synthetic("a-1", _result("tc-1", "second", undelivered=True), undelivered=True),
        ]
        assert await storage.ai_storage.get_messages("t-1") == expected

    @pytest.mark.parametrize(
        "message",
        [
            Message(id="m", role=MessageRole.USER, content="x", interrupted=True),
            Message(id="m", role=MessageRole.TOOL, tool_results=[], interrupted=True),
            Message(id="m", role=MessageRole.USER, content="x", reasoning_content=""),
            Message(id="m", role=MessageRole.SYSTEM, content="x", reasoning_content="r"),
            Message(id="m", role=MessageRole.TOOL, tool_results=[], reasoning_content="r"),
            Message(id="m", role=MessageRole.ASSISTANT, content="x", undelivered=True),
            Message(id="m", role=MessageRole.USER, content="x", undelivered=True),
            Message(id="m", role=MessageRole.ASSISTANT, content="x", interrupted=wrong(1)),
            Message(id="m", role=MessageRole.ASSISTANT, content="x", interrupted=wrong("true")),
            Message(id="m", role=MessageRole.TOOL, tool_results=[], undelivered=wrong(1)),
            Message(id="m", role=MessageRole.ASSISTANT, content="x", reasoning_content="a\x00"),
            Message(id="m", role=MessageRole.ASSISTANT, content="x", reasoning_content=wrong(5)),
        ],
        ids=lambda message: f"{message.role}",
    )
    async def test_a_misplaced_or_malformed_flag_raises_invalid_value(
        self, storage: Storage, message: Message
    ) -> None:
        """Spec 05 §5 item 14."""
        await make_thread(storage)
        before = await snapshot(storage)
        with pytest.raises(InvalidValue):
            await storage.ai_storage.save_messages("t-1", [user("m-0"), message])
        assert await snapshot(storage) == before

    async def test_a_malformed_result_flag_raises_invalid_value(self, storage: Storage) -> None:
        """Spec 05 §5 item 14."""
        await make_thread(storage)
        await storage.ai_storage.save_messages("t-1", [_assistant(calls=("tc-1",))])
        before = await snapshot(storage)
        with pytest.raises(InvalidValue):
            await storage.ai_storage.save_messages(
                "t-1", [_tool(_result("tc-1", undelivered=wrong("yes")))]
            )
        assert await snapshot(storage) == before

    async def test_false_and_none_flags_are_accepted_on_every_role(self, storage: Storage) -> None:
        """Spec 05 §5 item 14."""
        await make_thread(storage)
        await storage.ai_storage.save_messages(
            "t-1",
            [
                Message(id="s", role=MessageRole.SYSTEM, content="x", interrupted=False),
                Message(id="u", role=MessageRole.USER, content="x", undelivered=False),
                _assistant(calls=("tc-1",)),
                _tool(_result("tc-1")),
            ],
        )
        assert len(await storage.ai_storage.get_messages("t-1")) == 4


class RunAdditionTests:
    """Status `interrupted`, reason `credential` and credential requests."""

    async def test_interrupted_and_credential_round_trip_through_create_run(
        self, storage: Storage
    ) -> None:
        """Spec 05 §5 item 15."""
        await make_thread(storage)
        run_id = await make_run(storage, status="interrupted", suspend_reason="credential")
        assert await storage.ai_run_state.get_run(run_id) == expected_run(
            run_id, status=AgentRunStatus.INTERRUPTED, suspend_reason=SuspendReason.CREDENTIAL
        )

    async def test_interrupted_and_credential_round_trip_through_update_run(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """Spec 05 §5 item 15."""
        await make_thread(storage)
        run_id = await make_run(storage)
        pikku_clock.advance(1)
        await storage.ai_run_state.update_run(
            run_id, status=AgentRunStatus.INTERRUPTED, suspend_reason=SuspendReason.CREDENTIAL
        )
        assert await storage.ai_run_state.get_run(run_id) == expected_run(
            run_id,
            status=AgentRunStatus.INTERRUPTED,
            suspend_reason=SuspendReason.CREDENTIAL,
            updated_at=at(1000),
        )
        rows = await storage.agent_runs.get_thread_runs("t-1")
        assert (rows[0].status, rows[0].suspend_reason) == ("interrupted", "credential")

    @pytest.mark.parametrize("connect_url", ["https://example.test/connect", None, "", "u" * 2048])
    async def test_a_credential_request_round_trips_is_found_claimed_once_and_logged(
        self, storage: Storage, pikku_clock: ManualClock, connect_url: str | None
    ) -> None:
        """Spec 05 §5 item 15."""
        state = storage.ai_run_state
        await make_thread(storage)
        request = credential_request(connect_url=connect_url)
        run_id = await make_run(
            storage, status="suspended", suspend_reason="credential", pending_approvals=[request]
        )
        run = await state.get_run(run_id)
        assert run == expected_run(
            run_id,
            status=AgentRunStatus.SUSPENDED,
            suspend_reason=SuspendReason.CREDENTIAL,
            pending_approvals=[request],
        )
        assert await state.find_run_by_tool_call_id("tc-c") == (run, request)
        pikku_clock.advance(2)
        assert await state.resolve_approval("tc-c", "approved") is True
        assert await state.resolve_approval("tc-c", "approved") is False
        assert await state.get_approval_decisions(run_id) == [
            ResolvedApproval(
                run_id=run_id,
                approval=request,
                status=ApprovalStatus.APPROVED,
                resolved_at=at(2000),
            )
        ]
        assert await state.find_run_by_tool_call_id("tc-c") is None

    async def test_a_credential_type_given_as_its_value_reads_as_the_member(
        self, storage: Storage
    ) -> None:
        """Spec 05 §5 item 15."""
        await make_thread(storage)
        request = credential_request()
        request.credential_type = wrong("apikey")
        run_id = await make_run(storage, pending_approvals=[request])
        run = await storage.ai_run_state.get_run(run_id)
        assert run is not None
        [read] = run.pending_approvals
        assert isinstance(read, CredentialRequestApproval)
        assert read.credential_type is CredentialType.API_KEY

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("credential_type", "basic"),
            ("credential_type", None),
            ("credential_name", ""),
            ("credential_name", None),
            ("connect_url", "u" * 2049),
            ("connect_url", "a\x00"),
            ("tool_name", ""),
            ("args", {1, 2}),
        ],
    )
    async def test_a_malformed_credential_request_raises_invalid_value(
        self, storage: Storage, field: str, value: object
    ) -> None:
        """Spec 05 §5 item 15."""
        await make_thread(storage)
        run_id = await make_run(storage)
        request = credential_request()
        setattr(request, field, value)
        before = await snapshot(storage)
        with pytest.raises(InvalidValue):
            await make_run(storage, pending_approvals=[request])
        with pytest.raises(InvalidValue):
            await storage.ai_run_state.update_run(run_id, pending_approvals=[request])
        assert await snapshot(storage) == before
