"""Differential rules over the three AI services (Spec: 02, 05 scores and owners)."""

from __future__ import annotations

from typing import Any, Final

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from pikku_storage import (
    UNSET,
    AgentCallApproval,
    AgentRunStatus,
    ApprovalStatus,
    CredentialRequestApproval,
    CredentialType,
    JsonValue,
    Message,
    PendingApproval,
    Storage,
    SuspendReason,
    ToolCallApproval,
    Usage,
    WorkingMemoryScope,
)
from pikku_testing._differential_core import Harness, Translate
from pikku_testing._differential_values import (
    CALL_IDS,
    JSON,
    JSON_OBJECTS,
    MESSAGE_BATCHES,
    MESSAGE_IDS,
    PLAIN,
)

__all__ = ["AIRules"]

RESOURCES: Final = ("res-a", "res-b", "res-a:p", "res-a-x")
OWNERS: Final = ("res-a", "res-b", "res-a:p", "res", "res-c")
THREAD_IDS: Final = ("t1", "t2", "t3")
AGENTS: Final = ("agent-a", "agent-b")
_USAGE: Final = st.builds(
    Usage,
    input_tokens=st.integers(0, 2**63 - 1),
    output_tokens=st.integers(0, 10),
    model=st.sampled_from(["", "gpt"]),
)
# An approval spec: (tool call id, agent-call?, args); agent calls point at an agent run ref.
_APPROVAL_SPECS: Final = st.lists(
    st.tuples(st.sampled_from(CALL_IDS), st.booleans(), JSON),
    max_size=2,
    unique_by=lambda spec: spec[0],
)


async def _thread_exists(storage: Storage, thread_id: str) -> bool:
    return await storage.agent_runs.get_thread(thread_id) is not None


async def _agent_run_exists(storage: Storage, run_id: str) -> bool:
    return await storage.ai_run_state.get_run(run_id) is not None


_THREADS: Final = precondition(lambda self: self.has("thread"))
_AGENT_RUNS: Final = precondition(lambda self: self.has("agent_run"))
_OFFSETS: Final = st.sampled_from([-7200, -60, -1, 0, 0.001])


CREDENTIAL_CALL_ID: Final = "c3"  # a plain approval on this call id is a credential request


class AIRules(Harness):
    """Threads, messages, working memory, agent runs, approvals and the console."""

    def _refresh(self) -> None:
        self.refresh("thread", _thread_exists)
        self.refresh("agent_run", _agent_run_exists)

    @initialize()
    def seed_thread(self) -> None:
        """Every sequence starts with thread `t1`, so thread rules have a target."""

        async def create(s: Storage, tr: Translate) -> object:
            return await s.ai_storage.create_thread("res-a", thread_id="t1")

        self.both("create_thread('res-a', 't1') [seed]", create)
        self.remember("thread", "t1")

    def _approvals(
        self, data: st.DataObject, specs: list[tuple[str, bool, JsonValue]]
    ) -> list[tuple[str, str | None, JsonValue]]:
        return [
            (call_id, self.pick(data, "agent_run") if agent else None, args)
            for call_id, agent, args in specs
        ]

    @staticmethod
    def _build(
        approvals: list[tuple[str, str | None, JsonValue]], tr: Translate
    ) -> list[PendingApproval]:
        built: list[PendingApproval] = []
        for call_id, agent_run, args in approvals:
            if agent_run is None and call_id == CREDENTIAL_CALL_ID:
                built.append(
                    CredentialRequestApproval(
                        tool_call_id=call_id,
                        tool_name="sendMail",
                        args=args,
                        credential_name="gmail",
                        credential_type=CredentialType.OAUTH2,
                        connect_url="https://auth.example.test/connect",
                    )
                )
            elif agent_run is None:
                built.append(ToolCallApproval(tool_call_id=call_id, tool_name="search", args=args))
            else:
                built.append(
                    AgentCallApproval(
                        tool_call_id=call_id,
                        agent_name="sub",
                        agent_run_id=tr(agent_run),
                        display_tool_name="ask",
                        display_args=args,
                    )
                )
        return built

    @rule(
        resource=st.sampled_from(RESOURCES),
        thread_id=st.none() | st.sampled_from(THREAD_IDS),
        title=st.none() | PLAIN,
        metadata=st.none() | JSON_OBJECTS,
    )
    def create_thread(
        self,
        resource: str,
        thread_id: str | None,
        title: str | None,
        metadata: dict[str, JsonValue] | None,
    ) -> None:
        async def op(s: Storage, tr: Translate) -> object:
            return await s.ai_storage.create_thread(
                resource, thread_id=thread_id, title=title, metadata=metadata
            )

        generated = (lambda thread: [("thread", thread.id)]) if thread_id is None else None
        self.both(f"create_thread({resource!r}, {thread_id!r})", op, new=generated)
        if thread_id is not None and self.last_ok:
            self.remember("thread", thread_id)

    @_THREADS
    @rule(data=st.data(), via_console=st.booleans())
    def get_thread(self, data: st.DataObject, via_console: bool) -> None:
        thread = self.pick(data, "thread")

        async def op(s: Storage, tr: Translate) -> object:
            if via_console:
                return await s.agent_runs.get_thread(tr(thread))
            return await s.ai_storage.get_thread(tr(thread))

        self.both(f"get_thread({thread}, console={via_console})", op)

    @rule(resource=st.sampled_from(RESOURCES))
    def get_threads(self, resource: str) -> None:
        async def op(s: Storage, tr: Translate) -> object:
            return await s.ai_storage.get_threads(resource)

        self.both(f"get_threads({resource!r})", op)

    @_THREADS
    @rule(data=st.data(), via_console=st.booleans())
    def delete_thread(self, data: st.DataObject, via_console: bool) -> None:
        thread = self.pick(data, "thread")

        async def op(s: Storage, tr: Translate) -> object:
            if via_console:
                return await s.agent_runs.delete_thread(tr(thread))
            await s.ai_storage.delete_thread(tr(thread))
            return None

        self.both(f"delete_thread({thread}, console={via_console})", op)
        self._refresh()

    @_THREADS
    @rule(data=st.data(), messages=MESSAGE_BATCHES)
    def save_messages(self, data: st.DataObject, messages: list[Message]) -> None:
        thread = self.pick(data, "thread")

        async def op(s: Storage, tr: Translate) -> object:
            await s.ai_storage.save_messages(tr(thread), messages)
            return None

        self.both(f"save_messages({thread}, {messages!r})", op)

    @_THREADS
    @rule(
        data=st.data(),
        last_n=st.sampled_from([None, 0, 1, 2, 5]),
        cursor=st.none() | st.sampled_from([*MESSAGE_IDS, "tool-results-m1"]),
        via_console=st.booleans(),
    )
    def get_messages(
        self, data: st.DataObject, last_n: int | None, cursor: str | None, via_console: bool
    ) -> None:
        thread = self.pick(data, "thread")

        async def op(s: Storage, tr: Translate) -> object:
            if via_console:
                return await s.agent_runs.get_thread_messages(tr(thread))
            return await s.ai_storage.get_messages(tr(thread), last_n=last_n, cursor=cursor)

        self.both(f"get_messages({thread}, {last_n!r}, {cursor!r}, {via_console})", op)

    @rule(
        data=st.data(),
        scope=st.sampled_from([*WorkingMemoryScope, "resource"]),
        action=st.sampled_from(["get", "save", "delete"]),
        payload=JSON_OBJECTS,
    )
    def working_memory(
        self, data: st.DataObject, scope: str, action: str, payload: dict[str, JsonValue]
    ) -> None:
        target = (
            self.pick(data, "thread")
            if scope == "thread"
            else data.draw(st.sampled_from(RESOURCES))
        )

        async def op(s: Storage, tr: Translate) -> object:
            service = s.ai_storage
            if action == "get":
                return await service.get_working_memory(tr(target), scope)
            if action == "save":
                await service.save_working_memory(tr(target), scope, payload)
                return None
            return await service.delete_working_memory(tr(target), scope)

        self.both(f"{action}_working_memory({target}, {scope!r})", op)

    @_THREADS
    @rule(
        data=st.data(),
        agent=st.sampled_from(AGENTS),
        resource=st.sampled_from(RESOURCES),
        status=st.sampled_from([*AgentRunStatus, "suspended"]),
        usage=st.none() | _USAGE,
        specs=_APPROVAL_SPECS,
        suspend_reason=st.none() | st.sampled_from(list(SuspendReason)),
        missing_rpcs=st.none() | st.lists(PLAIN, max_size=2),
        error_message=st.none() | PLAIN,
    )
    def create_agent_run(
        self,
        data: st.DataObject,
        agent: str,
        resource: str,
        status: str,
        usage: Usage | None,
        specs: list[tuple[str, bool, JsonValue]],
        suspend_reason: SuspendReason | None,
        missing_rpcs: list[str] | None,
        error_message: str | None,
    ) -> None:
        thread = self.pick(data, "thread")
        approvals = self._approvals(data, specs)

        async def op(s: Storage, tr: Translate) -> object:
            return await s.ai_run_state.create_run(
                agent_name=agent,
                thread_id=tr(thread),
                resource_id=resource,
                status=status,
                usage=usage,
                pending_approvals=self._build(approvals, tr),
                suspend_reason=suspend_reason,
                missing_rpcs=missing_rpcs,
                error_message=error_message,
            )

        self.both(
            f"create_agent_run({agent!r}, {thread}, {approvals!r})",
            op,
            new=lambda run_id: [("agent_run", run_id)],
        )

    @_AGENT_RUNS
    @rule(
        data=st.data(),
        fields=st.fixed_dictionaries(
            {},
            optional={
                "status": st.sampled_from(list(AgentRunStatus)),
                "error_message": st.none() | PLAIN,
                "suspend_reason": st.none() | st.sampled_from(list(SuspendReason)),
                "missing_rpcs": st.none() | st.lists(PLAIN, max_size=2),
                "usage": _USAGE,
                "pending_approvals": st.none() | _APPROVAL_SPECS,
            },
        ),
    )
    def update_agent_run(self, data: st.DataObject, fields: dict[str, Any]) -> None:
        run = self.pick(data, "agent_run")
        rest = {key: value for key, value in fields.items() if key != "pending_approvals"}
        specs = fields.get("pending_approvals", UNSET)
        approvals = None if specs is None or specs is UNSET else self._approvals(data, specs)

        async def op(s: Storage, tr: Translate) -> object:
            pending: Any = specs if approvals is None else self._build(approvals, tr)
            await s.ai_run_state.update_run(tr(run), pending_approvals=pending, **rest)
            return None

        self.both(f"update_agent_run({run}, {rest!r}, {specs!r}, {approvals!r})", op)

    @_AGENT_RUNS
    @rule(data=st.data(), read=st.sampled_from(["run", "decisions"]))
    def agent_run_reads(self, data: st.DataObject, read: str) -> None:
        run = self.pick(data, "agent_run")

        async def op(s: Storage, tr: Translate) -> object:
            if read == "run":
                return await s.ai_run_state.get_run(tr(run))
            return await s.ai_run_state.get_approval_decisions(tr(run))

        self.both(f"agent {read}({run})", op)

    @_THREADS
    @rule(data=st.data(), console=st.booleans())
    def runs_by_thread(self, data: st.DataObject, console: bool) -> None:
        thread = self.pick(data, "thread")

        async def op(s: Storage, tr: Translate) -> object:
            if console:
                return await s.agent_runs.get_thread_runs(tr(thread))
            return await s.ai_run_state.get_runs_by_thread(tr(thread))

        self.both(f"runs_by_thread({thread}, console={console})", op)

    @rule(
        data=st.data(),
        call_id=st.sampled_from(CALL_IDS),
        status=st.sampled_from([*ApprovalStatus, "denied"]),
        scoped=st.booleans(),
    )
    def resolve_approval(
        self, data: st.DataObject, call_id: str, status: str, scoped: bool
    ) -> None:
        run = self.pick(data, "agent_run") if scoped else None

        async def op(s: Storage, tr: Translate) -> object:
            return await s.ai_run_state.resolve_approval(call_id, status, run_id=tr(run))

        self.both(f"resolve_approval({call_id!r}, {status!r}, run_id={run})", op)

    @rule(call_id=st.sampled_from(CALL_IDS))
    def find_run_by_tool_call_id(self, call_id: str) -> None:
        async def op(s: Storage, tr: Translate) -> object:
            return await s.ai_run_state.find_run_by_tool_call_id(call_id)

        self.both(f"find_run_by_tool_call_id({call_id!r})", op)

    @rule(
        agent=st.none() | st.sampled_from(AGENTS),
        resource=st.none() | st.sampled_from(RESOURCES),
        limit=st.sampled_from([1, 2, 50]),
        offset=st.sampled_from([0, 1, 3]),
    )
    def list_threads(
        self, agent: str | None, resource: str | None, limit: int, offset: int
    ) -> None:
        async def op(s: Storage, tr: Translate) -> object:
            return await s.agent_runs.list_threads(
                agent_name=agent, resource_id=resource, limit=limit, offset=offset
            )

        self.both(f"list_threads({agent!r}, {resource!r}, {limit}, {offset})", op)

    @rule(
        owners=st.lists(st.sampled_from(OWNERS), max_size=3),
        agent=st.none() | st.sampled_from(AGENTS),
        resource=st.none() | st.sampled_from(RESOURCES),
        limit=st.sampled_from([1, 2, 50]),
        offset=st.sampled_from([0, 1, 3]),
    )
    def list_threads_of_owners(
        self, owners: list[str], agent: str | None, resource: str | None, limit: int, offset: int
    ) -> None:
        async def op(s: Storage, tr: Translate) -> object:
            return await s.agent_runs.list_threads(
                agent_name=agent, resource_id=resource, owners=owners, limit=limit, offset=offset
            )

        self.both(f"list_threads({owners!r}, {agent!r}, {resource!r}, {limit}, {offset})", op)

    @_AGENT_RUNS
    @rule(
        data=st.data(),
        scorer=st.sampled_from(["helpfulness", "tone"]),
        score=st.sampled_from([0, 1, 0.5, 1 / 3, 0.1, -0.0, 1.5]),
        reason=st.none() | PLAIN,
        metadata=st.none() | JSON_OBJECTS,
    )
    def save_score(
        self,
        data: st.DataObject,
        scorer: str,
        score: float,
        reason: str | None,
        metadata: dict[str, JsonValue] | None,
    ) -> None:
        run = self.pick(data, "agent_run")

        async def op(s: Storage, tr: Translate) -> object:
            return await s.ai_run_state.save_score(
                tr(run), scorer, score, reason=reason, metadata=metadata
            )

        self.both(f"save_score({run}, {scorer!r}, {score!r})", op)

    @_AGENT_RUNS
    @rule(data=st.data())
    def get_scores(self, data: st.DataObject) -> None:
        run = self.pick(data, "agent_run")

        async def op(s: Storage, tr: Translate) -> object:
            return await s.ai_run_state.get_scores(tr(run))

        self.both(f"get_scores({run})", op)

    @rule()
    def distinct_agent_names(self) -> None:
        async def op(s: Storage, tr: Translate) -> object:
            return await s.agent_runs.get_distinct_agent_names()

        self.both("get_distinct_agent_names()", op)

    @rule(offset=_OFFSETS, batch_size=st.sampled_from([1, 2, 1000]))
    def prune_threads(self, offset: float, batch_size: int) -> None:
        cutoff = self.at(offset)

        async def op(s: Storage, tr: Translate) -> object:
            return await s.agent_runs.prune_threads(updated_before=cutoff, batch_size=batch_size)

        if self.both(f"prune_threads({cutoff.isoformat()}, {batch_size})", op):
            self._refresh()
