"""`RedisAIStorageService`, `RedisAIRunStateService`, `RedisAgentRunService` on Redis.

A thread's keys share its hash tag `{T}` (escaped id) and namespace indexes carry `{P}`;
on a cluster a thread, its agent runs and its bucket's namespace indexes share `{P.b}`, and
lists merge the buckets (`_cluster_lists.py`). Every write is one Lua script; where the
index keys a write touches depend on stored data (the thread's resource and agents, a run's
pending ids), the client reads them first and the script re-checks them, answering "retry"
if they changed. Message windows, thread lists and run lists read sorted sets, so their cost
follows the window. See docs/operations.md#storage-layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final, cast

from pikku_storage._serial import encode_missing_rpcs
from pikku_storage.clock import to_epoch_ms
from pikku_storage.codec import JsonObject, decode, encode
from pikku_storage.errors import ConflictError, InvalidValue, RunNotFound, ThreadNotFound
from pikku_storage.interfaces.ai import (
    AgentRunChanges,
    AIRunStateService,
    AIStorageService,
    MessageBatch,
    NewAgentRun,
    NewMessage,
    NewScore,
    NewThread,
)
from pikku_storage.records import (
    UNSET,
    AgentRun,
    AgentRunScore,
    ApprovalStatus,
    PendingApproval,
    ResolvedApproval,
    Thread,
    WorkingMemoryScope,
)
from pikku_storage.redis import _cluster_lists as fan
from pikku_storage.redis import _rows as rows
from pikku_storage.redis._ai_base import RedisAIBase
from pikku_storage.redis._ai_console import RedisAgentRunService
from pikku_storage.redis._errors import translated
from pikku_storage.redis._keys import thread_member_id

__all__ = ["RedisAIRunStateService", "RedisAIStorageService", "RedisAgentRunService"]

_RETRY: Final = -1


def _length_prefixed(ids: Sequence[str]) -> str:
    """Ids joined as `<bytes>:<id>...`, which a script can split without a separator."""
    return "".join(f"{len(i.encode())}:{i}" for i in ids)


def _message_blob(message: NewMessage) -> str:
    """The stored JSON of one message; parts and args stay codec text inside it."""
    return encode(
        {
            "id": message.message_id,
            "role": message.role.value,
            "text": message.content_text,
            "parts": message.content_parts,
            "created_at": to_epoch_ms(message.created_at),
            "tool_calls": [
                {"id": c.tool_call_id, "name": c.name, "args": c.args} for c in message.tool_calls
            ],
            **(
                {}
                if message.reasoning_content is None
                else {"reasoning": message.reasoning_content}
            ),
            **({"interrupted": True} if message.interrupted else {}),
        },
        "message",
    )


def _score_entry(score: NewScore) -> str:
    """The stored JSON of one score; the score as `repr(float)` text, so it reads back `==`."""
    return encode(
        {
            "scorer": score.scorer_name,
            "score": repr(score.score),
            "reason": score.reason,
            "metadata": score.metadata,
        },
        "score",
    )


def _pending_entry(position: int, kind: str, payload: str) -> str:
    return encode({"position": position, "kind": kind, "payload": payload}, "pending")


class RedisAIStorageService(RedisAIBase, AIStorageService):
    """Threads, messages with tool calls and results, and working memory (see
    docs/services/ai-storage.md, docs/operations.md#storage-layout).

    Built from a URL it owns its client; given a client or a `RedisConnection` it borrows it.
    """

    @translated
    async def _create_thread(self, thread: NewThread) -> None:
        k = self._keys
        now = to_epoch_ms(thread.now)
        fields: list[str | int] = [
            "id",
            thread.thread_id,
            "resource_id",
            thread.resource_id,
            "created_at",
            now,
            "updated_at",
            now,
        ]
        if thread.title is not None:
            fields += ["title", thread.title]
        if thread.metadata is not None:
            fields += ["metadata", thread.metadata]
        b = k.bucket(thread.thread_id)
        args = [thread.thread_id, now, thread.resource_id, len(fields) // 2, *fields]
        if k.cluster:  # the namespace-wide order from its own slot, first (00 §4 ties)
            args.append(await self._redis.incr(k.seq()))
        created = await self._scripts(
            "ai_create_thread",
            [
                k.thread(thread.thread_id),
                k.thread(thread.thread_id) if k.cluster else k.seq(),
                k.threads(b),
                k.by_resource(thread.resource_id, b),
                k.resources(b),
            ],
            args,
        )
        if created != 1:
            raise ConflictError.thread(thread.thread_id)

    @translated
    async def _get_threads(self, resource_id: str) -> list[Thread]:
        k = self._keys
        if k.cluster:
            indexes = [k.by_resource(resource_id, b) for b in k.all_buckets()]
            chosen = await fan.top_members(self._redis, indexes, 0, None)
            return await self._threads_by_members([m for _, m in chosen])
        members = await self._redis.zrange(k.by_resource(resource_id), 0, -1, desc=True)
        return await self._threads_by_members(members)

    @translated
    async def _save_messages(self, thread_id: str, batch: MessageBatch) -> None:
        k = self._keys
        while True:
            context = rows.Reader(
                await self._scripts("ai_thread_context", [k.thread(thread_id), k.agents(thread_id)])
            )
            if not context:
                raise ThreadNotFound(thread_id)
            if batch.batch_conflict is not None:
                raise batch.batch_conflict
            if batch.empty:
                return
            resource_id = context.take()
            context.take()  # rev: agents are compared member by member instead
            agents = context.rest()
            b = k.bucket(thread_id)
            keys = [
                k.thread(thread_id),
                k.msgs(thread_id),
                k.msg(thread_id),
                k.msg_ids(thread_id),
                k.calls(thread_id),
                k.results(thread_id),
                k.undelivered(thread_id),
                k.agents(thread_id),
                k.threads(b),
                k.by_resource(resource_id, b),
            ]
            args: list[str | int] = [thread_id, resource_id, to_epoch_ms(batch.now), len(agents)]
            for agent in agents:
                keys += [k.by_agent(agent, b), k.by_agent_resource(agent, resource_id, b)]
                args.append(agent)
            args.append(len(batch.messages))
            for message in batch.messages:
                args += [
                    message.message_id,
                    to_epoch_ms(message.created_at),
                    _message_blob(message),
                    _length_prefixed([c.tool_call_id for c in message.tool_calls]),
                ]
            args += [len(batch.external_result_ids), *batch.external_result_ids]
            args.append(len(batch.results))
            undelivered = batch.undelivered_results
            for call_id, result in batch.results.items():
                args += [call_id, result, "1" if call_id in undelivered else "0"]
            reply = rows.Reader(await self._scripts("ai_save_messages", keys, args))
            outcome = reply.take_int()
            if outcome == 1:
                return
            if outcome == -1:
                raise ThreadNotFound(thread_id)
            if outcome == 2:
                raise ConflictError.message(thread_id, reply.take())
            if outcome == 3:
                raise ConflictError.tool_call(thread_id, reply.take())
            if outcome == 4:
                raise InvalidValue.unmatched_tool_result(thread_id, reply.take())
            # -2: the thread was re-created or gained an agent since the context read

    @translated
    async def _get_working_memory(self, id: str, scope: WorkingMemoryScope) -> JsonObject | None:
        stored = await self._redis.get(self._memory_key(id, scope))
        return None if stored is None else cast("JsonObject", decode(rows.text(stored)))

    @translated
    async def _save_working_memory(
        self, id: str, scope: WorkingMemoryScope, data: str, now: datetime
    ) -> None:
        if scope is WorkingMemoryScope.RESOURCE:
            await self._redis.set(self._keys.resource_memory(id), data)
            return
        k = self._keys
        saved = await self._scripts(
            "ai_save_thread_memory", [k.thread(id), k.thread_memory(id)], [data]
        )
        if saved != 1:
            raise ThreadNotFound(id)

    @translated
    async def _delete_working_memory(self, id: str, scope: WorkingMemoryScope) -> bool:
        return bool(await self._redis.delete(self._memory_key(id, scope)))

    def _memory_key(self, id: str, scope: WorkingMemoryScope) -> str:
        if scope is WorkingMemoryScope.THREAD:
            return self._keys.thread_memory(id)
        return self._keys.resource_memory(id)


class RedisAIRunStateService(RedisAIBase, AIRunStateService):
    """Agent runs, usage, suspension and pending approvals (see docs/services/ai-run-state.md,
    docs/operations.md#storage-layout)."""

    @translated
    async def _create_run(self, run: NewAgentRun) -> None:
        k = self._keys
        now = to_epoch_ms(run.now)
        fields: dict[str, str | int] = {
            "run_id": run.run_id,
            "agent_name": run.agent_name,
            "thread_id": run.thread_id,
            "resource_id": run.resource_id,
            "status": run.status.value,
            "usage_input_tokens": run.usage.input_tokens,
            "usage_output_tokens": run.usage.output_tokens,
            "usage_model": run.usage.model,
            "created_at": now,
            "updated_at": now,
        }
        if run.error_message is not None:
            fields["error_message"] = run.error_message
        if run.suspend_reason is not None:
            fields["suspend_reason"] = run.suspend_reason.value
        rpcs = encode_missing_rpcs(run.missing_rpcs)
        if rpcs is not None:
            fields["missing_rpcs"] = rpcs
        b = k.bucket(run.thread_id)
        if k.cluster:  # the run id drawn into its thread's bucket: its run-thread entry there
            run.run_id = fields["run_id"] = k.draw_id(b)
        while True:
            seq: list[int] = []
            if k.cluster:  # the thread read and the namespace sequence, one round trip
                pipe = self._redis.pipeline()
                pipe.hget(k.thread(run.thread_id), "resource_id")
                pipe.incr(k.seq())
                found, taken = await pipe.execute()
                seq.append(cast(int, taken))
            else:
                found = await self._redis.hget(k.thread(run.thread_id), "resource_id")
            if found is None:
                raise ThreadNotFound(run.thread_id)
            resource_id = rows.text(found)
            keys = [
                k.thread(run.thread_id),
                k.runs(run.thread_id),
                k.run(run.thread_id, run.run_id),
                k.pending(run.thread_id, run.run_id),
                k.agents(run.thread_id),
                k.thread(run.thread_id) if k.cluster else k.seq(),
                k.by_agent(run.agent_name, b),
                k.by_agent_resource(run.agent_name, resource_id, b),
                k.agent_names(b),
                k.run_thread(b),
            ]
            args: list[str | int] = [
                run.thread_id,
                resource_id,
                run.run_id,
                run.agent_name,
                now,
                len(fields),
                *(item for pair in fields.items() for item in pair),
            ]
            for position, approval in enumerate(run.pending_approvals):
                keys.append(k.approval(approval.tool_call_id, b))
                args += [
                    approval.tool_call_id,
                    _pending_entry(position, approval.kind, approval.payload),
                ]
            args += seq
            outcome = await self._scripts("ai_create_run", keys, args)
            if outcome == 0:
                raise ThreadNotFound(run.thread_id)
            if outcome != _RETRY:
                return

    @translated
    async def _update_run(self, run_id: str, changes: AgentRunChanges, now: datetime) -> None:
        k = self._keys
        thread_id = await self._thread_of_run(run_id)
        if thread_id is None:
            raise RunNotFound(run_id)
        sets: list[str | int] = ["updated_at", to_epoch_ms(now)]
        dels: list[str] = []
        if changes.status is not UNSET:
            sets += ["status", changes.status.value]
        rpcs = changes.missing_rpcs
        for name, value in (
            ("error_message", changes.error_message),
            ("suspend_reason", changes.suspend_reason),
            ("missing_rpcs", UNSET if rpcs is UNSET else encode_missing_rpcs(rpcs)),
        ):
            if value is UNSET:
                continue
            if value is None:
                dels.append(name)
            else:
                sets += [name, str(value)]
        if changes.usage is not UNSET:
            usage = changes.usage
            sets += [
                "usage_input_tokens",
                usage.input_tokens,
                "usage_output_tokens",
                usage.output_tokens,
                "usage_model",
                usage.model,
            ]
        pending = changes.pending_approvals
        while True:
            known: list[str] = []
            if pending is not UNSET:
                stored = await self._redis.hkeys(k.pending(thread_id, run_id))
                known = list(dict.fromkeys([rows.text(c) for c in stored]))
                known += [a.tool_call_id for a in pending if a.tool_call_id not in known]
            args: list[str | int] = [
                run_id,
                "0" if pending is UNSET else "1",
                len(sets) // 2,
                *sets,
                len(dels),
                *dels,
                len(known),
                *known,
            ]
            if pending is not UNSET:
                args.append(len(pending))
                for position, approval in enumerate(pending):
                    args += [
                        4 + known.index(approval.tool_call_id),
                        approval.tool_call_id,
                        _pending_entry(position, approval.kind, approval.payload),
                    ]
            keys = [k.run(thread_id, run_id), k.pending(thread_id, run_id), k.thread(thread_id)]
            b = k.bucket(thread_id)
            keys += [k.approval(c, b) for c in known]
            outcome = await self._scripts("ai_update_run", keys, args)
            if outcome == 0:
                raise RunNotFound(run_id)
            if outcome != _RETRY:
                return

    @translated
    async def _get_run(self, run_id: str) -> AgentRun | None:
        return await self._run(run_id)

    @translated
    async def _resolve_approval(
        self, tool_call_id: str, status: ApprovalStatus, run_id: str | None, now: datetime
    ) -> bool:
        k = self._keys
        if k.cluster:
            return await self._resolve_in_buckets(tool_call_id, status, run_id, now)
        return await self._resolve_in_bucket(tool_call_id, status, run_id, now, 0)

    async def _resolve_in_buckets(
        self, tool_call_id: str, status: ApprovalStatus, run_id: str | None, now: datetime
    ) -> bool:
        """On a cluster: the buckets whose approval index lists the tool call (one pipeline),
        each resolved by its own script; a run's approvals are in its thread's bucket."""
        k = self._keys
        if run_id is not None:
            buckets = [k.bucket(run_id)]
        else:
            pipe = self._redis.pipeline()
            for b in k.all_buckets():
                pipe.exists(k.approval(tool_call_id, b))
            listed = await pipe.execute()
            buckets = [b for b, n in zip(k.all_buckets(), listed, strict=True) if n]
        claimed = False
        for b in buckets:
            claimed = await self._resolve_in_bucket(tool_call_id, status, run_id, now, b) or claimed
        return claimed

    async def _resolve_in_bucket(
        self,
        tool_call_id: str,
        status: ApprovalStatus,
        run_id: str | None,
        now: datetime,
        b: int,
    ) -> bool:
        k = self._keys
        while True:
            if run_id is not None:
                thread_id = await self._thread_of_run(run_id)
                if thread_id is None:
                    return False
                runs = [(run_id, thread_id)]
            else:
                members = await self._redis.zrange(k.approval(tool_call_id, b), 0, -1)
                run_ids = [thread_member_id(rows.text(m)) for m in members]
                if not run_ids:
                    return False
                threads = await self._redis.hmget(k.run_thread(b), run_ids)
                runs = [(r, rows.text(t)) for r, t in zip(run_ids, threads, strict=True) if t]
            keys = [k.approval(tool_call_id, b)]
            for run, thread_id in runs:
                keys += [
                    k.run(thread_id, run),
                    k.pending(thread_id, run),
                    k.decisions(thread_id, run),
                ]
            claimed = await self._scripts(
                "ai_resolve_approval",
                keys,
                [
                    tool_call_id,
                    status.value,
                    to_epoch_ms(now),
                    "1" if run_id is None else "0",
                    *(run for run, _ in runs),
                ],
            )
            if claimed != _RETRY:
                return cast(int, claimed) > 0

    @translated
    async def _find_run_by_tool_call_id(
        self, tool_call_id: str
    ) -> tuple[AgentRun, PendingApproval] | None:
        k = self._keys
        while True:
            if k.cluster:  # the newest listing over every bucket
                indexes = [k.approval(tool_call_id, b) for b in k.all_buckets()]
                members: Sequence[object] = [
                    m for _, m in await fan.top_members(self._redis, indexes, 0, 1)
                ]
            else:
                members = await self._redis.zrange(k.approval(tool_call_id), 0, 0, desc=True)
            if not members:
                return None
            run = await self._run(thread_member_id(rows.text(members[0])))
            for approval in run.pending_approvals if run is not None else []:
                if approval.tool_call_id == tool_call_id:
                    assert run is not None
                    return run, approval
            # resolved or replaced between the two reads: look again

    @translated
    async def _save_score(self, score: NewScore) -> None:
        k = self._keys
        thread_id = await self._thread_of_run(score.run_id)
        if thread_id is None:
            raise RunNotFound(score.run_id)
        stored = await self._scripts(
            "ai_save_score",
            [k.run(thread_id, score.run_id), k.scores(thread_id, score.run_id)],
            [to_epoch_ms(score.now), _score_entry(score)],
        )
        if stored != 1:
            raise RunNotFound(score.run_id)

    @translated
    async def _get_scores(self, run_id: str) -> list[AgentRunScore]:
        thread_id = await self._thread_of_run(run_id)
        if thread_id is None:
            return []
        # redis-py types zrange's reply loosely; WITHSCORES gives (member, score) pairs
        entries = cast(
            "list[tuple[bytes | str, float]]",
            await self._redis.zrange(self._keys.scores(thread_id, run_id), 0, -1, withscores=True),
        )
        return [rows.agent_run_score(run_id, rows.text(m), s) for m, s in entries]

    @translated
    async def _get_approval_decisions(self, run_id: str) -> list[ResolvedApproval]:
        thread_id = await self._thread_of_run(run_id)
        if thread_id is None:
            return []
        entries = await self._redis.lrange(self._keys.decisions(thread_id, run_id), 0, -1)
        return [rows.resolved_approval(run_id, rows.text(e)) for e in entries]
