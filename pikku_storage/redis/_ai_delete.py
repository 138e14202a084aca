"""The AI thread cascade: `delete_thread` and `prune_threads` batches on Redis.

Which keys a thread's deletion touches depends on stored data (its resource, agents, runs and
their pending tool calls), so the client reads a snapshot first, then one script deletes every
key and index entry, re-checking each thread's `seq` (a re-created thread has another) and
`rev` (bumped by every write that adds a run or a pending id). See docs/services/ai-storage.md,
docs/services/agent-runs.md, docs/operations.md#storage-layout.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, cast

from redis.asyncio import Redis

from pikku_storage.redis import _rows as rows
from pikku_storage.redis._keys import AIKeys, thread_member_id
from pikku_storage.redis._scripts import Scripts

__all__ = ["ThreadDeleter"]

logger = logging.getLogger(__name__)

_RETRY: Final = -1


@dataclass(slots=True)
class _Snapshot:
    thread_id: str
    seq: str
    rev: str
    resource_id: str
    agents: list[str]
    run_ids: list[str]
    pending: list[list[str]] = field(default_factory=list)  # tool call ids per run


class ThreadDeleter:
    """Deletes whole threads of one AI namespace."""

    __slots__ = ("_keys",)

    def __init__(self, keys: AIKeys) -> None:
        self._keys = keys

    async def delete(self, client: Redis, scripts: Scripts, thread_id: str) -> bool:
        """Delete one thread with its whole cascade; `True` if it existed."""
        while True:
            snapshots = await self._snapshots(scripts, [thread_id])
            if not snapshots:
                return False
            b = self._keys.bucket(thread_id)
            outcome = await self._run(scripts, "delete", "", snapshots, b)
            if outcome != _RETRY:
                return outcome == 1

    async def prune(self, client: Redis, scripts: Scripts, cutoff_ms: int, batch_size: int) -> int:
        """Delete threads updated before the cutoff, `batch_size` per script; the count."""
        deleted = 0
        for b in self._keys.all_buckets():  # a batch is one bucket's threads: one slot
            previous: Sequence[object] = []
            while True:
                members = await client.zrangebyscore(
                    self._keys.threads(b), "-inf", f"({cutoff_ms}", start=0, num=batch_size
                )
                if not members or members == previous:
                    break  # nothing left, or a batch that made no progress twice
                previous = members
                ids = [thread_member_id(rows.text(m)) for m in members]
                snapshots = await self._snapshots(scripts, ids)
                count = (
                    await self._run(scripts, "prune", cutoff_ms, snapshots, b) if snapshots else 0
                )
                logger.debug("pruned %s threads in one batch", count)
                deleted += count
        return deleted

    async def _snapshots(self, scripts: Scripts, thread_ids: list[str]) -> list[_Snapshot]:
        k = self._keys
        keys = []
        for thread_id in thread_ids:
            keys += [k.thread(thread_id), k.agents(thread_id), k.runs(thread_id)]
        reader = rows.Reader(await scripts("ai_thread_snapshot", keys))
        found = []
        for thread_id in thread_ids:
            if reader.take_int() == 0:
                continue
            seq, rev, resource_id, _updated = (reader.take() for _ in range(4))
            found.append(
                _Snapshot(
                    thread_id=thread_id,
                    seq=seq,
                    rev=rev,
                    resource_id=resource_id,
                    agents=reader.take_list(),
                    run_ids=reader.take_list(),
                )
            )
        pending_keys = [k.pending(s.thread_id, r) for s in found for r in s.run_ids]
        if pending_keys:
            pending = rows.Reader(await scripts("hkeys_many", pending_keys))
            for snapshot in found:
                snapshot.pending = [pending.take_list() for _ in snapshot.run_ids]
        return found

    async def _run(
        self,
        scripts: Scripts,
        mode: str,
        cutoff: int | str,
        snapshots: list[_Snapshot],
        b: int,
    ) -> int:
        k = self._keys
        keys = [k.threads(b), k.agent_names(b), k.run_thread(b), k.resources(b)]
        args: list[str | int] = [mode, cutoff]
        for s in snapshots:
            t = s.thread_id
            keys += [*k.thread_data(t), k.by_resource(s.resource_id, b)]
            for agent in s.agents:
                keys += [k.by_agent(agent, b), k.by_agent_resource(agent, s.resource_id, b)]
            for run_id in s.run_ids:
                keys += [
                    k.run(t, run_id),
                    k.pending(t, run_id),
                    k.decisions(t, run_id),
                    k.scores(t, run_id),
                ]
            positions: list[int] = []
            for index, tool_call_ids in enumerate(s.pending, start=1):
                keys += [k.approval(c, b) for c in tool_call_ids]
                positions += [index] * len(tool_call_ids)
            args += [t, s.seq, s.rev, s.resource_id, len(s.agents), *s.agents]
            args += [len(s.run_ids), *s.run_ids]
            args += [len(positions), *positions]
        return cast(int, await scripts("ai_delete_threads", keys, args))
