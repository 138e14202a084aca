"""In-memory AI services: one `AIStore` shared by the conversation, run-state and console services.

Every hook runs its whole storage step without an `await`, so each call is atomic within the
event loop; payloads are kept as the codec's JSON text and decoded on every read, so nothing a
caller holds aliases what is stored (see docs/operations.md#storage-layout).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from pikku_storage.clock import Clock
from pikku_storage.codec import JsonObject, decode
from pikku_storage.interfaces import AgentRunService, AIRunStateService, AIStorageService
from pikku_storage.interfaces.ai import (
    AgentRunChanges,
    MessageBatch,
    NewAgentRun,
    NewScore,
    NewThread,
    StoredMessage,
)
from pikku_storage.memory._ai_store import AIStore
from pikku_storage.records import (
    AgentRun,
    AgentRunScore,
    ApprovalStatus,
    PendingApproval,
    ResolvedApproval,
    Thread,
    WorkingMemoryScope,
)

__all__ = [
    "AIStore",
    "InMemoryAIRunStateService",
    "InMemoryAIStorageService",
    "InMemoryAgentRunService",
]

logger = logging.getLogger(__name__)

# --- services --------------------------------------------------------------------------------


class _Shared:
    """Hooks two of the three services share, served by the one `AIStore`."""

    _store: AIStore

    async def _get_thread(self, thread_id: str) -> Thread | None:
        return self._store.thread_record(thread_id)

    async def _get_messages(
        self, thread_id: str, last_n: int | None, cursor: str | None
    ) -> list[StoredMessage]:
        return self._store.messages(thread_id, last_n, cursor)

    async def _delete_thread(self, thread_id: str) -> bool:
        return self._store.delete_thread(thread_id)

    async def _get_runs_by_thread(self, thread_id: str) -> list[AgentRun]:
        return self._store.runs_of_thread(thread_id)


class InMemoryAIStorageService(_Shared, AIStorageService):
    """Threads, messages and working memory in process memory (see docs/services/ai-storage.md,
    docs/operations.md#storage-layout)."""

    def __init__(self, store: AIStore | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self._store = store if store is not None else AIStore()

    async def _create_thread(self, thread: NewThread) -> None:
        self._store.create_thread(thread)

    async def _get_threads(self, resource_id: str) -> list[Thread]:
        index = self._store.by_resource.get(resource_id, [])
        return self._store.threads_of(index, len(index), 0)

    async def _save_messages(self, thread_id: str, batch: MessageBatch) -> None:
        self._store.save_messages(thread_id, batch)

    async def _get_working_memory(self, id: str, scope: WorkingMemoryScope) -> JsonObject | None:
        text = self._store.memory(id, scope)
        if text is None:
            return None
        data = decode(text)
        assert isinstance(data, dict)
        return data

    async def _save_working_memory(
        self, id: str, scope: WorkingMemoryScope, data: str, now: datetime
    ) -> None:
        self._store.save_memory(id, scope, data)

    async def _delete_working_memory(self, id: str, scope: WorkingMemoryScope) -> bool:
        return self._store.delete_memory(id, scope)


class InMemoryAIRunStateService(_Shared, AIRunStateService):
    """Agent runs and pending approvals in process memory (see docs/services/ai-run-state.md,
    docs/operations.md#storage-layout)."""

    def __init__(self, store: AIStore | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self._store = store if store is not None else AIStore()

    async def _create_run(self, run: NewAgentRun) -> None:
        self._store.create_run(run)

    async def _update_run(self, run_id: str, changes: AgentRunChanges, now: datetime) -> None:
        self._store.update_run(run_id, changes, now)

    async def _get_run(self, run_id: str) -> AgentRun | None:
        return self._store.run_record(run_id)

    async def _resolve_approval(
        self, tool_call_id: str, status: ApprovalStatus, run_id: str | None, now: datetime
    ) -> bool:
        return self._store.resolve_approval(tool_call_id, status, run_id, now)

    async def _find_run_by_tool_call_id(
        self, tool_call_id: str
    ) -> tuple[AgentRun, PendingApproval] | None:
        return self._store.find_pending(tool_call_id)

    async def _get_approval_decisions(self, run_id: str) -> list[ResolvedApproval]:
        return self._store.decisions(run_id)

    async def _save_score(self, score: NewScore) -> None:
        self._store.save_score(score)

    async def _get_scores(self, run_id: str) -> list[AgentRunScore]:
        return self._store.scores(run_id)


class InMemoryAgentRunService(_Shared, AgentRunService):
    """Console queries, deletion and retention in process memory (see docs/services/agent-runs.md,
    docs/operations.md#storage-layout)."""

    def __init__(self, store: AIStore | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self._store = store if store is not None else AIStore()

    async def _list_threads(
        self,
        agent_name: str | None,
        resource_id: str | None,
        owners: list[str] | None,
        limit: int,
        offset: int,
    ) -> list[Thread]:
        store = self._store
        if owners is not None:
            return store.owned_threads(agent_name, resource_id, owners, limit, offset)
        if agent_name is not None and resource_id is not None:
            index = store.by_agent_resource.get((agent_name, resource_id), [])
        elif agent_name is not None:
            index = store.by_agent.get(agent_name, [])
        elif resource_id is not None:
            index = store.by_resource.get(resource_id, [])
        else:
            index = store.order
        return store.threads_of(index, limit, offset)

    async def _get_distinct_agent_names(self) -> list[str]:
        return list(self._store.agent_names)

    async def _prune_threads(self, cutoff: datetime, batch_size: int) -> int:
        total = 0
        while True:
            deleted = self._store.prune_batch(cutoff, batch_size)
            total += deleted
            if deleted < batch_size:
                break
            await asyncio.sleep(0)  # other tasks run between batches, as on a server
        logger.debug("pruned %d threads updated before %s", total, cutoff)
        return total
