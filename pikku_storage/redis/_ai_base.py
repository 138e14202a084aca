"""The keys and reads the three Redis AI services share (see `ai.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from pikku_storage.interfaces.ai import (
    StoredMessage,
)
from pikku_storage.records import (
    AgentRun,
    Thread,
)
from pikku_storage.redis import _rows as rows
from pikku_storage.redis._ai_delete import ThreadDeleter
from pikku_storage.redis._connection import RedisService
from pikku_storage.redis._errors import translated
from pikku_storage.redis._keys import AIKeys, thread_member_id

__all__ = ["RUN_CACHE", "RedisAIBase"]

RUN_CACHE: Final = 10_000  # run id -> thread id entries kept per service (run ids are UUIDs)


class RedisAIBase(RedisService):
    """The keys and hooks the three AI services share: thread and message reads, runs, the
    cascade (the constructor is `RedisService`'s)."""

    def _keys_ready(self) -> None:
        self._keys = AIKeys(self._prefix, self._buckets)
        self._deleter = ThreadDeleter(self._keys)
        self._run_threads: dict[str, str] = {}
        self._contexts: dict[str, tuple[str, tuple[str, ...]]] = {}  # save_messages' guesses

    @translated
    async def _get_thread(self, thread_id: str) -> Thread | None:
        h = rows.pairs(await self._redis.hgetall(self._keys.thread(thread_id)))
        return rows.thread(h) if h else None

    @translated
    async def _get_messages(
        self, thread_id: str, last_n: int | None, cursor: str | None
    ) -> list[StoredMessage]:
        k = self._keys
        return rows.stored_messages(
            await self._scripts(
                "ai_get_messages",
                [
                    k.msgs(thread_id),
                    k.msg(thread_id),
                    k.msg_ids(thread_id),
                    k.results(thread_id),
                    k.undelivered(thread_id),
                ],
                ["" if last_n is None else last_n, cursor or ""],
            )
        )

    @translated
    async def _delete_thread(self, thread_id: str) -> bool:
        self._contexts.pop(thread_id, None)
        return await self._deleter.delete(self._redis, self._scripts, thread_id)

    async def _threads_by_members(self, members: Sequence[object]) -> list[Thread]:
        """Thread records for index members `<seq16>:<thread id>`, in member order."""
        if not members:
            return []
        ids = [thread_member_id(rows.text(m)) for m in members]
        k = self._keys
        if k.cluster:  # threads of several buckets: one script per bucket, one pipeline
            by_bucket: dict[int, list[str]] = {}
            for t in ids:
                by_bucket.setdefault(k.bucket(t), []).append(t)
            replies = await self._scripts.many(
                [("hgetall_many", [k.thread(t) for t in ts], []) for ts in by_bucket.values()]
            )
            hashes: dict[str, dict[str, str]] = {}
            for ts, reply in zip(by_bucket.values(), replies, strict=True):
                reader = rows.Reader(reply)
                for t in ts:
                    hashes[t] = reader.take_pairs()
            return [rows.thread(hashes[t]) for t in ids if hashes[t]]
        reader = rows.Reader(
            await self._scripts("hgetall_many", [self._keys.thread(t) for t in ids])
        )
        found = []
        for _ in ids:
            h = reader.take_pairs()
            if h:  # deleted between the index read and this one
                found.append(rows.thread(h))
        return found

    async def _thread_of_run(self, run_id: str) -> str | None:
        thread_id = self._run_threads.get(run_id)
        if thread_id is None:
            k = self._keys
            found = await self._redis.hget(k.run_thread(k.bucket(run_id)), run_id)
            if found is None:
                return None
            thread_id = rows.text(found)
            if len(self._run_threads) >= RUN_CACHE:
                self._run_threads.clear()
            self._run_threads[run_id] = thread_id
        return thread_id

    async def _read_runs(self, thread_id: str, run_ids: list[str]) -> list[AgentRun]:
        k = self._keys
        keys = []
        for run_id in run_ids:
            keys += [k.run(thread_id, run_id), k.pending(thread_id, run_id)]
        if not keys:
            return []
        reader = rows.Reader(await self._scripts("hgetall_many", keys))
        runs = []
        for _ in run_ids:
            h, pending = reader.take_pairs(), reader.take_pairs()
            if h:
                runs.append(rows.agent_run(h, pending))
        return runs

    @translated
    async def _get_runs_by_thread(self, thread_id: str) -> list[AgentRun]:
        members = await self._redis.zrange(self._keys.runs(thread_id), 0, -1, desc=True)
        return await self._read_runs(thread_id, [thread_member_id(rows.text(m)) for m in members])

    async def _run(self, run_id: str) -> AgentRun | None:
        thread_id = await self._thread_of_run(run_id)
        if thread_id is None:
            return None
        found = await self._read_runs(thread_id, [run_id])
        return found[0] if found else None
