"""`RedisAgentRunService`: console queries over threads and runs (re-exported by `ai.py`)."""

from __future__ import annotations

from datetime import datetime

from pikku_storage._owners import owner_bounds, resource_in_owners
from pikku_storage.clock import to_epoch_ms
from pikku_storage.interfaces.ai import (
    AgentRunService,
)
from pikku_storage.records import (
    Thread,
)
from pikku_storage.redis import _cluster_lists as fan
from pikku_storage.redis import _rows as rows
from pikku_storage.redis._ai_base import RedisAIBase
from pikku_storage.redis._errors import translated

__all__ = ["RedisAgentRunService"]


class RedisAgentRunService(RedisAIBase, AgentRunService):
    """Console queries over threads and runs, deletion and retention (see
    docs/services/agent-runs.md, docs/operations.md#storage-layout)."""

    @translated
    async def _list_threads(
        self,
        agent_name: str | None,
        resource_id: str | None,
        owners: list[str] | None,
        limit: int,
        offset: int,
    ) -> list[Thread]:
        k = self._keys
        if owners is not None:
            return await self._list_owned_threads(agent_name, resource_id, owners, limit, offset)

        def index(b: int) -> str:
            if agent_name is None:
                return k.threads(b) if resource_id is None else k.by_resource(resource_id, b)
            if resource_id is None:
                return k.by_agent(agent_name, b)
            return k.by_agent_resource(agent_name, resource_id, b)

        if k.cluster:
            indexes = [index(b) for b in k.all_buckets()]
            chosen = await fan.top_members(self._redis, indexes, offset, limit)
            return await self._threads_by_members([m for _, m in chosen])
        members = await self._redis.zrange(index(0), offset, offset + limit - 1, desc=True)
        return await self._threads_by_members(members)

    async def _list_owned_threads(
        self,
        agent_name: str | None,
        resource_id: str | None,
        owners: list[str],
        limit: int,
        offset: int,
    ) -> list[Thread]:
        """The owners' resources by `BYLEX` ranges of the resources zset, then one script
        merging their index windows of `offset + limit`, then the window's threads: three
        calls, whatever the number of threads stored (05 §2.2, §4)."""
        k = self._keys
        placed: list[tuple[int, str]] = []  # (bucket, resource id) with threads there
        if resource_id is not None:
            if resource_in_owners(resource_id, owners):
                placed = [(b, resource_id) for b in k.all_buckets()]
        else:
            args: list[str] = []
            for owner in owners:
                args += [owner, *owner_bounds(owner)]
            if k.cluster:
                replies = await self._scripts.many(
                    [("ai_owner_resources", [k.resources(b)], args) for b in k.all_buckets()]
                )
            else:
                replies = [await self._scripts("ai_owner_resources", [k.resources()], args)]
            placed = [(b, r) for b, reply in enumerate(replies) for r in rows.strings(reply)]
        if not placed:
            return []
        indexes = [
            k.by_resource(r, b) if agent_name is None else k.by_agent_resource(agent_name, r, b)
            for b, r in placed
        ]
        if k.cluster:
            chosen = await fan.top_members(self._redis, indexes, offset, limit)
            return await self._threads_by_members([m for _, m in chosen])
        members = rows.strings(await self._scripts("ai_owner_threads", indexes, [offset + limit]))
        return await self._threads_by_members(members[offset:])

    @translated
    async def _get_distinct_agent_names(self) -> list[str]:
        k = self._keys
        if k.cluster:
            return await fan.union_sorted(self._redis, [k.agent_names(b) for b in k.all_buckets()])
        return [rows.text(n) for n in await self._redis.zrange(k.agent_names(), 0, -1)]

    @translated
    async def _prune_threads(self, cutoff: datetime, batch_size: int) -> int:
        return await self._deleter.prune(
            self._redis, self._scripts, to_epoch_ms(cutoff), batch_size
        )
