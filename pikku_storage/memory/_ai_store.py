"""The in-memory AI state: one `AIStore` per namespace, shared by the three services.

Threads keep their messages and runs sorted; thread order, per-resource, per-agent and the
distinct resource ids live in bisect-sorted lists, so a page (also an owner-scoped one) costs
what it reads; scores are a sorted list per run (docs/operations.md#storage-layout).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, TypeAlias, TypeVar

from pikku_storage._build import agent_run_score, record_builder
from pikku_storage._owners import owner_bounds
from pikku_storage._serial import EncodedApproval, decode_approval, decode_content
from pikku_storage.codec import decode
from pikku_storage.errors import ConflictError, RunNotFound, ThreadNotFound
from pikku_storage.interfaces.ai import (
    AgentRunChanges,
    MessageBatch,
    NewAgentRun,
    NewScore,
    NewThread,
    StoredMessage,
    StoredToolCall,
)
from pikku_storage.records import (
    AgentRun,
    AgentRunScore,
    AgentRunStatus,
    ApprovalStatus,
    MessageRole,
    PendingApproval,
    ResolvedApproval,
    SuspendReason,
    Thread,
    UnsetType,
    Usage,
    WorkingMemoryScope,
)

__all__ = ["AIStore"]


# (updated_at, thread seq, thread id): ascending order is the reverse of thread order.
_ThreadKey: TypeAlias = tuple[datetime, int, str]
_K = TypeVar("_K", str, tuple[str, str])


@dataclass(slots=True)
class _Call:
    name: str
    args: str
    result: str | None = None
    undelivered: bool = False


@dataclass(slots=True, kw_only=True)
class _Message:
    id: str
    role: MessageRole
    text: str | None
    parts: str | None
    created_at: datetime
    seq: int
    call_ids: tuple[str, ...]
    reasoning: str | None = None
    interrupted: bool = False


def _message_key(message: _Message) -> tuple[datetime, int]:
    return (message.created_at, message.seq)


_new_stored: Final = record_builder(_Message)


@dataclass(slots=True)
class _Decision:
    approval: EncodedApproval
    status: ApprovalStatus
    resolved_at: datetime


@dataclass(slots=True)
class _Score:
    scorer_name: str
    score: float
    reason: str | None
    metadata: str | None
    created_at: datetime
    seq: int


def _score_key(score: _Score) -> tuple[datetime, int]:
    return (score.created_at, score.seq)


@dataclass(slots=True)
class _Run:
    run_id: str
    seq: int
    agent_name: str
    thread_id: str
    resource_id: str
    status: AgentRunStatus
    error_message: str | None
    suspend_reason: SuspendReason | None
    missing_rpcs: tuple[str, ...] | None
    usage: tuple[int, int, str]
    created_at: datetime
    updated_at: datetime
    pending: dict[str, EncodedApproval] = field(default_factory=dict)
    decisions: list[_Decision] = field(default_factory=list)
    scores: list[_Score] = field(default_factory=list)  # by (created_at, seq)


def _run_key(run: _Run) -> tuple[datetime, int]:
    return (run.created_at, run.seq)


@dataclass(slots=True)
class _Thread:
    id: str
    seq: int
    resource_id: str
    title: str | None
    metadata: str | None
    created_at: datetime
    updated_at: datetime
    message_seq: int = 0
    messages: list[_Message] = field(default_factory=list)  # by (created_at, seq)
    message_ids: dict[str, _Message] = field(default_factory=dict)
    calls: dict[str, _Call] = field(default_factory=dict)
    runs: list[_Run] = field(default_factory=list)  # by (created_at, seq): reverse run order
    agents: dict[str, None] = field(default_factory=dict)  # agents with a run here, as a set
    memory: str | None = None

    @property
    def key(self) -> _ThreadKey:
        return (self.updated_at, self.seq, self.id)


def _remove(index: list[_ThreadKey], key: _ThreadKey) -> None:
    position = bisect.bisect_left(index, key)
    assert index[position] == key
    del index[position]


class AIStore:
    """The state of one AI namespace, shared by the three services built on it
    (docs/operations.md#storage-layout).

    Threads keep their messages sorted by (`created_at`, sequence) and their runs by
    (`created_at`, sequence); thread order lives in sorted key lists (all threads, per resource,
    per agent, per agent and resource), so a page costs what it returns. Methods never await.
    """

    def __init__(self) -> None:
        self.threads: dict[str, _Thread] = {}
        self.runs: dict[str, _Run] = {}
        self.pending_by_call: dict[str, dict[str, None]] = {}  # tool call id -> run ids
        self.resource_memory: dict[str, str] = {}
        self.order: list[_ThreadKey] = []
        self.by_resource: dict[str, list[_ThreadKey]] = {}
        self.by_agent: dict[str, list[_ThreadKey]] = {}
        self.by_agent_resource: dict[tuple[str, str], list[_ThreadKey]] = {}
        self.agent_names: list[str] = []  # sorted by code point
        self.resources: list[str] = []  # resource ids with a thread, sorted by code point
        self._seq = 0

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _indexes(self, thread: _Thread) -> list[list[_ThreadKey]]:
        indexes = [self.order, self.by_resource[thread.resource_id]]
        for agent in thread.agents:
            indexes.append(self.by_agent[agent])
            indexes.append(self.by_agent_resource[(agent, thread.resource_id)])
        return indexes

    # --- threads --------------------------------------------------------------------------

    def create_thread(self, new: NewThread) -> None:
        if new.thread_id in self.threads:
            raise ConflictError.thread(new.thread_id)
        thread = _Thread(
            id=new.thread_id,
            seq=self._next_seq(),
            resource_id=new.resource_id,
            title=new.title,
            metadata=new.metadata,
            created_at=new.now,
            updated_at=new.now,
        )
        self.threads[thread.id] = thread
        bisect.insort(self.order, thread.key)
        if thread.resource_id not in self.by_resource:
            bisect.insort(self.resources, thread.resource_id)
        bisect.insort(self.by_resource.setdefault(thread.resource_id, []), thread.key)

    def thread_record(self, thread_id: str) -> Thread | None:
        thread = self.threads.get(thread_id)
        return None if thread is None else _thread_out(thread)

    def threads_of(self, index: list[_ThreadKey], limit: int, offset: int) -> list[Thread]:
        stop = len(index) - offset
        if stop <= 0:
            return []
        keys = index[max(stop - limit, 0) : stop]
        return [_thread_out(self.threads[key[2]]) for key in reversed(keys)]

    def delete_thread(self, thread_id: str) -> bool:
        thread = self.threads.get(thread_id)
        if thread is None:
            return False
        key = thread.key
        _remove(self.order, key)
        if self._unindex(self.by_resource, thread.resource_id, key):
            del self.resources[bisect.bisect_left(self.resources, thread.resource_id)]
        for agent in thread.agents:
            self._unindex(self.by_agent_resource, (agent, thread.resource_id), key)
            if self._unindex(self.by_agent, agent, key):
                del self.agent_names[bisect.bisect_left(self.agent_names, agent)]
        for run in thread.runs:  # scores go with their run
            del self.runs[run.run_id]
            for call_id in run.pending:
                self._unpend(call_id, run.run_id)
        del self.threads[thread_id]
        return True

    @staticmethod
    def _unindex(indexes: dict[_K, list[_ThreadKey]], name: _K, key: _ThreadKey) -> bool:
        """Remove `key` from `indexes[name]`; drop the emptied list and say so."""
        index = indexes[name]
        _remove(index, key)
        if index:
            return False
        del indexes[name]
        return True

    def owned_threads(
        self,
        agent_name: str | None,
        resource_id: str | None,
        owners: list[str],
        limit: int,
        offset: int,
    ) -> list[Thread]:
        """A page of the threads whose resource is an owner or under one (`owner:...`).

        The owners' resources come from the sorted `resources` list (an exact probe plus the
        range of `owner_bounds`), then the newest `offset + limit` keys of each resource's
        index are merged: cost grows with the owners' threads, not with the threads stored.
        """
        matched: set[str] = set()
        resources = self.resources
        for owner in owners:
            if owner in self.by_resource:
                matched.add(owner)
            low, high = owner_bounds(owner)
            start = bisect.bisect_left(resources, low)
            matched.update(resources[start : bisect.bisect_left(resources, high, lo=start)])
        if resource_id is not None:
            matched &= {resource_id}
        window = offset + limit
        windows: list[list[_ThreadKey]] = []
        for resource in matched:
            index = (
                self.by_resource.get(resource)
                if agent_name is None
                else self.by_agent_resource.get((agent_name, resource))
            )
            if index:
                windows.append(index[-window:][::-1])
        newest = heapq.merge(*windows, reverse=True)
        keys = list(itertools.islice(newest, offset, window))
        return [_thread_out(self.threads[key[2]]) for key in keys]

    def prune_batch(self, cutoff: datetime, batch_size: int) -> int:
        victims: list[str] = []
        for updated_at, _, thread_id in self.order:
            if updated_at >= cutoff or len(victims) == batch_size:
                break
            victims.append(thread_id)
        for thread_id in victims:
            self.delete_thread(thread_id)
        return len(victims)

    # --- messages ---------------------------------------------------------------------------

    def save_messages(self, thread_id: str, batch: MessageBatch) -> None:
        thread = self.threads.get(thread_id)
        if thread is None:
            raise ThreadNotFound(thread_id)
        batch.check_stored(thread_id, thread.message_ids, thread.calls, thread.calls)
        if batch.empty:
            return
        for new in batch.messages:
            thread.message_seq += 1
            message = _new_stored(
                id=new.message_id,
                role=new.role,
                text=new.content_text,
                parts=new.content_parts,
                created_at=new.created_at,
                seq=thread.message_seq,
                call_ids=tuple([call.tool_call_id for call in new.tool_calls])
                if new.tool_calls
                else (),
                reasoning=new.reasoning_content,
                interrupted=new.interrupted,
            )
            for call in new.tool_calls:
                thread.calls[call.tool_call_id] = _Call(name=call.name, args=call.args)
            thread.message_ids[message.id] = message
            # its seq is the thread's highest, so it goes last unless an earlier message is newer
            if thread.messages and thread.messages[-1].created_at > message.created_at:
                bisect.insort(thread.messages, message, key=_message_key)
            else:
                thread.messages.append(message)
        undelivered = batch.undelivered_results
        for call_id, text in batch.results.items():
            stored = thread.calls[call_id]
            stored.result = text
            stored.undelivered = call_id in undelivered
        self._bump(thread, batch.now)

    def _bump(self, thread: _Thread, now: datetime) -> None:
        old, indexes = thread.key, self._indexes(thread)
        thread.updated_at = now
        new = thread.key
        for index in indexes:
            position = bisect.bisect_left(index, old)
            assert index[position] == old
            if position == len(index) - 1 and (position == 0 or index[position - 1] < new):
                index[position] = new  # already the freshest and stays so: re-key in place
            else:
                del index[position]
                bisect.insort(index, new)

    def messages(
        self, thread_id: str, last_n: int | None, cursor: str | None
    ) -> list[StoredMessage]:
        thread = self.threads.get(thread_id)
        if thread is None:
            return []
        stop = len(thread.messages)
        if cursor is not None:
            anchor = thread.message_ids.get(cursor)
            if anchor is None:
                return []
            stop = bisect.bisect_left(thread.messages, _message_key(anchor), key=_message_key)
        start = 0 if last_n is None else max(stop - last_n, 0)
        return [_message_out(thread, message) for message in thread.messages[start:stop]]

    # --- working memory -------------------------------------------------------------------

    def memory(self, id: str, scope: WorkingMemoryScope) -> str | None:
        if scope is WorkingMemoryScope.RESOURCE:
            return self.resource_memory.get(id)
        thread = self.threads.get(id)
        return None if thread is None else thread.memory

    def save_memory(self, id: str, scope: WorkingMemoryScope, data: str) -> None:
        if scope is WorkingMemoryScope.RESOURCE:
            self.resource_memory[id] = data
            return
        thread = self.threads.get(id)
        if thread is None:
            raise ThreadNotFound(id)
        thread.memory = data

    def delete_memory(self, id: str, scope: WorkingMemoryScope) -> bool:
        if scope is WorkingMemoryScope.RESOURCE:
            return self.resource_memory.pop(id, None) is not None
        thread = self.threads.get(id)
        if thread is None or thread.memory is None:
            return False
        thread.memory = None
        return True

    # --- runs -------------------------------------------------------------------------------

    def create_run(self, new: NewAgentRun) -> None:
        thread = self.threads.get(new.thread_id)
        if thread is None:
            raise ThreadNotFound(new.thread_id)
        run = _Run(
            run_id=new.run_id,
            seq=self._next_seq(),
            agent_name=new.agent_name,
            thread_id=new.thread_id,
            resource_id=new.resource_id,
            status=new.status,
            error_message=new.error_message,
            suspend_reason=new.suspend_reason,
            missing_rpcs=None if new.missing_rpcs is None else tuple(new.missing_rpcs),
            usage=(new.usage.input_tokens, new.usage.output_tokens, new.usage.model),
            created_at=new.now,
            updated_at=new.now,
        )
        self._set_pending(run, new.pending_approvals)
        self.runs[run.run_id] = run
        bisect.insort(thread.runs, run, key=_run_key)
        if run.agent_name not in thread.agents:
            thread.agents[run.agent_name] = None
            if run.agent_name not in self.by_agent:
                bisect.insort(self.agent_names, run.agent_name)
            bisect.insort(self.by_agent.setdefault(run.agent_name, []), thread.key)
            pair = (run.agent_name, thread.resource_id)
            bisect.insort(self.by_agent_resource.setdefault(pair, []), thread.key)

    def _set_pending(self, run: _Run, approvals: tuple[EncodedApproval, ...]) -> None:
        """Replace the pending set by difference, keeping the per-tool-call index in step."""
        pending = {approval.tool_call_id: approval for approval in approvals}
        for call_id in run.pending:
            if call_id not in pending:
                self._unpend(call_id, run.run_id)
        for call_id in pending:
            self.pending_by_call.setdefault(call_id, {})[run.run_id] = None
        run.pending = pending

    def _unpend(self, call_id: str, run_id: str) -> None:
        holders = self.pending_by_call[call_id]
        del holders[run_id]
        if not holders:
            del self.pending_by_call[call_id]

    def update_run(self, run_id: str, changes: AgentRunChanges, now: datetime) -> None:
        run = self.runs.get(run_id)
        if run is None:
            raise RunNotFound(run_id)
        if not isinstance(changes.status, UnsetType):
            run.status = changes.status
        if not isinstance(changes.error_message, UnsetType):
            run.error_message = changes.error_message
        if not isinstance(changes.suspend_reason, UnsetType):
            run.suspend_reason = changes.suspend_reason
        if not isinstance(changes.missing_rpcs, UnsetType):
            rpcs = changes.missing_rpcs
            run.missing_rpcs = None if rpcs is None else tuple(rpcs)
        if not isinstance(changes.usage, UnsetType):
            usage = changes.usage
            run.usage = (usage.input_tokens, usage.output_tokens, usage.model)
        if not isinstance(changes.pending_approvals, UnsetType):
            self._set_pending(run, changes.pending_approvals)
        run.updated_at = now

    def run_record(self, run_id: str) -> AgentRun | None:
        run = self.runs.get(run_id)
        return None if run is None else _run_out(run)

    def runs_of_thread(self, thread_id: str) -> list[AgentRun]:
        thread = self.threads.get(thread_id)
        return [] if thread is None else [_run_out(run) for run in reversed(thread.runs)]

    def resolve_approval(
        self, call_id: str, status: ApprovalStatus, run_id: str | None, now: datetime
    ) -> bool:
        holders = self.pending_by_call.get(call_id, {})
        claimed = [holder for holder in holders if run_id is None or holder == run_id]
        for holder in claimed:
            run = self.runs[holder]
            run.decisions.append(_Decision(run.pending.pop(call_id), status, now))
            self._unpend(call_id, holder)
        return bool(claimed)

    def find_pending(self, call_id: str) -> tuple[AgentRun, PendingApproval] | None:
        holders = self.pending_by_call.get(call_id)
        if not holders:
            return None
        run = max((self.runs[run_id] for run_id in holders), key=_run_key)
        approval = run.pending[call_id]
        return _run_out(run), decode_approval(approval.kind, approval.payload)

    def save_score(self, new: NewScore) -> None:
        run = self.runs.get(new.run_id)
        if run is None:
            raise RunNotFound(new.run_id)
        score = _Score(
            scorer_name=new.scorer_name,
            score=new.score,
            reason=new.reason,
            metadata=new.metadata,
            created_at=new.now,
            seq=self._next_seq(),
        )
        bisect.insort(run.scores, score, key=_score_key)

    def scores(self, run_id: str) -> list[AgentRunScore]:
        run = self.runs.get(run_id)
        if run is None:
            return []
        return [
            agent_run_score(run_id, s.scorer_name, s.score, s.reason, s.metadata, s.created_at)
            for s in run.scores
        ]

    def decisions(self, run_id: str) -> list[ResolvedApproval]:
        run = self.runs.get(run_id)
        if run is None:
            return []
        return [
            ResolvedApproval(
                run_id=run_id,
                approval=decode_approval(entry.approval.kind, entry.approval.payload),
                status=entry.status,
                resolved_at=entry.resolved_at,
            )
            for entry in run.decisions
        ]


def _thread_out(thread: _Thread) -> Thread:
    metadata = None if thread.metadata is None else decode(thread.metadata)
    assert metadata is None or isinstance(metadata, dict)
    return Thread(
        id=thread.id,
        resource_id=thread.resource_id,
        title=thread.title,
        metadata=metadata,
        created_at=thread.created_at,
        updated_at=thread.updated_at,
    )


_new_message_out: Final = record_builder(StoredMessage)


def _message_out(thread: _Thread, message: _Message) -> StoredMessage:
    calls = []
    for call_id in message.call_ids:
        call = thread.calls[call_id]
        args = decode(call.args)
        assert isinstance(args, dict)
        calls.append(
            StoredToolCall(
                id=call_id,
                name=call.name,
                args=args,
                result=call.result,
                undelivered=call.undelivered,
            )
        )
    return _new_message_out(
        id=message.id,
        role=message.role,
        content=decode_content(message.text, message.parts),
        created_at=message.created_at,
        tool_calls=calls,
        reasoning_content=message.reasoning,
        interrupted=message.interrupted,
    )


def _run_out(run: _Run) -> AgentRun:
    return AgentRun(
        run_id=run.run_id,
        agent_name=run.agent_name,
        thread_id=run.thread_id,
        resource_id=run.resource_id,
        status=run.status,
        error_message=run.error_message,
        suspend_reason=run.suspend_reason,
        missing_rpcs=None if run.missing_rpcs is None else list(run.missing_rpcs),
        pending_approvals=[decode_approval(a.kind, a.payload) for a in run.pending.values()],
        usage=Usage(input_tokens=run.usage[0], output_tokens=run.usage[1], model=run.usage[2]),
        created_at=run.created_at,
        updated_at=run.updated_at,
    )
