"""The benchmark workload written directly on redis-py, for the our/raw ratios on Redis.

It sends the Redis backend's own Lua scripts (`redis/_lua/*.lua`, by EVALSHA) and plain
commands with the same keys and arguments the backend builds (`redis/_keys.py`), on one
plain client: the same commands, in the fewest round trips a caller who already knows the
run of each step can manage (the backend may first read the step-id map, once per step).
What the ratio measures is the library's own cost: validation, the codec, key building,
reply parsing and record building.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from pikku_storage._cli._bench_ops import FUNCTIONS, TOPICS, WORKFLOW, BenchState
from pikku_storage._cli._namespaces import NamespaceSpec
from pikku_storage.clock import to_epoch_ms
from pikku_storage.codec import encode
from pikku_storage.redis._keys import AIKeys, ChannelKeys, DeploymentKeys, WorkflowKeys
from pikku_storage.redis._scripts import script_source

__all__ = ["RawRedis"]

_WIRE: Final = json.dumps({"type": "unknown", "id": None, "parent_run_id": None})
_TTL: Final = timedelta(seconds=30)


def _flat(fields: dict[str, str | int]) -> list[str | int]:
    return [item for pair in fields.items() for item in pair]


def _now_ms() -> int:
    return to_epoch_ms(datetime.now(UTC))


class RawRedis:
    """The seven operations on redis-py, in the bench namespace (its key prefix)."""

    def __init__(self, spec: NamespaceSpec, state: BenchState) -> None:
        self._url = spec.url
        prefix = str(spec.options["key_prefix"])
        self._wf, self._ai = WorkflowKeys(prefix), AIKeys(prefix)
        self._ch, self._dep = ChannelKeys(prefix), DeploymentKeys(prefix)
        self._state = state
        self._runs: list[str] = []
        self._client: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}

    async def open(self) -> None:
        self._client = Redis.from_url(self._url)
        for name in (
            "wf_create_run",
            "wf_insert_step",
            "wf_set_step",
            "wf_list_runs",
            "ai_thread_context",
            "ai_save_messages",
            "ai_get_messages",
            "ch_subscribe",
            "dep_register",
            "dep_find_function",
        ):
            self._scripts[name] = self._client.register_script(script_source(name))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def _run(self, name: str, keys: list[str], args: list[str | int] | None = None) -> object:
        reply: object = await self._scripts[name](keys=keys, args=args or [])
        return reply

    def _create_run_call(
        self, run_id: str, workflow: str, i: int, now: int
    ) -> tuple[list[str], list[str | int]]:
        k = self._wf
        fields: dict[str, str | int] = {
            "workflow": workflow,
            "status": "running",
            "inline": "0",
            "wire": _WIRE,
            "created_at": now,
            "updated_at": now,
            "rev": 0,
            "step_seq": 0,
            "attempt_seq": 0,
            "input": json.dumps({"orderId": i, "total": 42.5}),
        }
        keys = [
            k.run(run_id),
            k.seq(),
            k.runs(),
            *k.run_indexes(workflow, "running"),
            k.names(),
            k.namecount(),
        ]
        return keys, [run_id, workflow, now, len(fields), *_flat(fields)]

    async def create_run(self, i: int) -> None:
        run_id = str(uuid.uuid4())
        keys, args = self._create_run_call(run_id, WORKFLOW, i, _now_ms())
        await self._run("wf_create_run", keys, args)
        self._runs.append(run_id)

    async def create_runs(self, start: int, n: int, t0: datetime) -> None:
        """Preload `n` runs in one pipelined round trip (`bench --rows`)."""
        assert self._client is not None
        pipe = self._client.pipeline(transaction=False)
        script = self._scripts["wf_create_run"]
        base = to_epoch_ms(t0)
        for j in range(start, start + n):
            keys, args = self._create_run_call(str(uuid.uuid4()), "bench-preload", j, base + j)
            await script(keys=keys, args=args, client=pipe)
        await pipe.execute()

    async def step(self, i: int) -> None:
        k, step_id, now = self._wf, str(uuid.uuid4()), _now_ms()
        run_id = self._runs[i % len(self._runs)]
        live: dict[str, str | int] = {
            "name": f"step-{i}",
            "status": "pending",
            "attempt": 1,
            "created_at": now,
            "updated_at": now,
            "rpc_name": "chargeCard",
            "data": json.dumps({"amount": i}),
        }
        attempt: dict[str, str | int] = {"status": "pending", "created_at": now, "updated_at": now}
        await self._run(
            "wf_insert_step",
            [
                k.run(run_id),
                k.steps(run_id),
                k.stepids(run_id),
                k.order(run_id),
                k.attempts(run_id),
                k.history(run_id),
                k.steprefs(),
            ],
            [
                run_id,
                step_id,
                f"step-{i}",
                now,
                len(live),
                *_flat(live),
                len(attempt),
                *_flat(attempt),
            ],
        )
        step_keys = [k.steps(run_id), k.attempts(run_id)]
        await self._run(
            "wf_set_step", step_keys, [step_id, "running", "running_at", _now_ms(), "0", "", ""]
        )
        result = json.dumps({"paymentId": f"pay-{i}"})
        await self._run(
            "wf_set_step",
            step_keys,
            [step_id, "succeeded", "succeeded_at", _now_ms(), "1", result, ""],
        )

    async def list_runs(self, i: int) -> None:
        before, after = self._wf.run_prefix()
        await self._run("wf_list_runs", [self._wf.runs()], [0, 49, before, after])

    async def save_messages(self, i: int) -> None:
        k, thread_id, now = self._ai, self._state.thread_id, _now_ms()
        context = await self._run("ai_thread_context", [k.thread(thread_id), k.agents(thread_id)])
        assert isinstance(context, list)
        resource_id = context[0].decode() if isinstance(context[0], bytes) else str(context[0])
        args: list[str | int] = [thread_id, resource_id, now, 0, 2]
        for message_id, role, text in (
            (f"ru{i}", "user", f"question {i}: where is my order?"),
            (f"ra{i}", "assistant", f"answer {i}: it ships tomorrow."),
        ):
            blob = encode(
                {
                    "id": message_id,
                    "role": role,
                    "text": text,
                    "parts": None,
                    "created_at": now,
                    "tool_calls": [],
                },
                "message",
            )
            args += [message_id, now, blob, ""]
        args += [0, 0]
        keys = [
            k.thread(thread_id),
            k.msgs(thread_id),
            k.msg(thread_id),
            k.msg_ids(thread_id),
            k.calls(thread_id),
            k.results(thread_id),
            k.agents(thread_id),
            k.threads(),
            k.by_resource(resource_id),
        ]
        await self._run("ai_save_messages", keys, args)

    async def get_messages(self, i: int) -> None:
        k, thread_id = self._ai, self._state.thread_id
        await self._run(
            "ai_get_messages",
            [k.msgs(thread_id), k.msg(thread_id), k.msg_ids(thread_id), k.results(thread_id)],
            [20, ""],
        )

    async def subscribe(self, i: int) -> None:
        k, topic = self._ch, f"raw-topic-{i % TOPICS}"
        channel_id = self._state.channel_ids[i]
        await self._run(
            "ch_subscribe",
            [k.channel(channel_id), k.channel_topics(channel_id), k.topic(topic)],
            [topic, channel_id],
        )
        assert self._client is not None
        await self._client.smembers(k.topic(topic))

    async def heartbeat(self, i: int) -> None:
        k, deployment_id, now = self._dep, self._state.deployment_id, datetime.now(UTC)
        await self._run(
            "dep_register",
            [k.deployments(), k.deployment(deployment_id), k.functions_of(deployment_id)],
            [
                "heartbeat",
                deployment_id,
                "http://127.0.0.1:3000",
                to_epoch_ms(now),
                k.function_prefix(),
                "",
                *FUNCTIONS,
            ],
        )
        await self._run(
            "dep_find_function",
            [k.function(FUNCTIONS[i % len(FUNCTIONS)]), k.deployments()],
            [to_epoch_ms(now - _TTL), k.deployment_prefix()],
        )
