"""Raw twin on redis-py: the same units as plain Redis commands, one client (pool) per run.

Writes go to keys under the bench namespace's key prefix plus `raw:` (dropped with it), each
the fewest round trips redis-py allows: one MULTI pipeline (hashes plus the sorted set index).
On a standalone server the two list reads read what the backend stored, as the psycopg twin
reads the backend's tables: `list_runs` the backend's run index and run hashes (the fields a
record needs, as `HMGET`s), `get_messages` the bench thread's message index and blobs (one
`HMGET`), each one small Lua script, its reply turned into values as every twin does
(`benchmarks._decode`: JSON parsed, timestamps aware; no record objects). Until
2026-12-04 they read the twin's own run hashes, 7 fields instead of the 13 the backend keeps
(05's `deterministic`, `planned_steps`, ...), so the ratio counted the spec's larger record
as library cost. The ratio measures what the library adds: validation, the codec, key
building, reply parsing, records.

On a Redis Cluster (`redis+cluster://`) the twin runs through redis-py's `RedisCluster` with
every key, the list reads' too, under one hash tag (`{<prefix>raw}:`): one slot, so every unit
stays legal and one round trip (the backend's run index is spread over buckets); there the
list reads read the twin's own hashes and keep the reply as redis-py parses it, a floor.
Each MULTI becomes one call of a generic script running the same commands (`_Atomic`):
redis-py's cluster MULTI pipeline spends several round trips (0.78 ms p50 for HSET + 2 ZADD
against 0.13 ms for the script, measured 2026-12-04). One tag puts the twin's whole namespace
on one primary: a latency floor for one call, not a layout that spreads (ours shards its
indexes).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.typing import EncodableT, FieldT

from benchmarks._decode import decode_runs, epoch, loads
from benchmarks._workload import FUNCTIONS, TOPICS, WORKFLOW, Op, State, message_texts
from pikku_storage.redis._keys import RUN_SEQ_WIDTH, AIKeys, WorkflowKeys
from pikku_storage.redis._rows import RUN_FIELDS

__all__ = ["RawRedis"]

WIRE: Final = json.dumps({"type": "unknown", "id": None, "parent_run_id": None})
# KEYS[1] a sorted set of hash keys; ARGV[1] how many, newest first. Reply: flat HGETALLs.
_NEWEST: Final = """
local ids = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local out = {}
for _, key in ipairs(ids) do out[#out + 1] = redis.call('HGETALL', key) end
return out
"""

# The backend's keys (standalone). KEYS[1] a run index (members "<seq>:<run id>"); ARGV[1]
# how many, newest first; ARGV[2], ARGV[3] what goes before and after a run id in its hash
# key; ARGV[4] where the run id starts in a member; ARGV[5..] the fields. Reply: per run its
# id, then its HMGET.
_STORED_RUNS: Final = """
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'REV')
local start = tonumber(ARGV[4])
local out = {}
for _, m in ipairs(ids) do
  local id = string.sub(m, start)
  local values = redis.call('HMGET', ARGV[2] .. id .. ARGV[3], unpack(ARGV, 5))
  table.insert(values, 1, id)
  out[#out + 1] = values
end
return out
"""
# KEYS[1] a thread's message index (members "<seq>"), KEYS[2] its blobs (fields "<seq>" and
# "<seq>:calls"); ARGV[1] how many, the latest. Reply: one HMGET, blob and calls per message.
_STORED_MESSAGES: Final = """
local seqs = redis.call('ZRANGE', KEYS[1], -tonumber(ARGV[1]), -1)
if #seqs == 0 then return {} end
local fields = {}
for _, s in ipairs(seqs) do
  fields[#fields + 1] = s
  fields[#fields + 1] = s .. ':calls'
end
return redis.call('HMGET', KEYS[2], unpack(fields))
"""

# KEYS[k] the key of the k-th command; ARGV per command: its name, how many arguments
# follow the key, those arguments. Runs them in order. Reply: 1.
_ATOMIC: Final = """
local a = 1
for k = 1, #KEYS do
  local n = tonumber(ARGV[a + 1])
  redis.call(ARGV[a], KEYS[k], unpack(ARGV, a + 2, a + 1 + n))
  a = a + 2 + n
end
return 1
"""


def _runs(reply: list[list[str | None]]) -> list[tuple[Any, ...]]:
    """The backend's run hashes as values (`benchmarks._decode`): JSON parsed, stamps (epoch
    ms text) aware, flags as bools; absent fields `None`."""
    return decode_runs(reply, lambda ms: epoch(int(ms)), lambda value: value == "1")


def _messages(reply: list[str | None]) -> list[dict[str, Any]]:
    """The backend's message blobs parsed, `created_at` aware (the bench has no tool calls,
    so the call lists are all absent)."""
    messages = []
    for blob in reply[0::2]:
        message = loads(blob)
        message["created_at"] = epoch(message["created_at"])
        messages.append(message)
    return messages


def _ms() -> int:
    return int(time.time() * 1000)


class _Atomic:
    """The keyed writes of one MULTI, sent as one `_ATOMIC` script call (cluster mode)."""

    def __init__(self, script: AsyncScript) -> None:
        self._script = script
        self._keys: list[str] = []
        self._argv: list[EncodableT] = []

    def _add(self, name: str, key: str, *args: EncodableT) -> None:
        self._keys.append(key)
        self._argv += [name, len(args), *args]

    def hset(self, key: str, *, mapping: Mapping[FieldT, EncodableT]) -> None:
        self._add("HSET", key, *(x for item in mapping.items() for x in item))

    def zadd(self, key: str, mapping: Mapping[str, int]) -> None:
        self._add("ZADD", key, *(x for member, score in mapping.items() for x in (score, member)))

    def rpush(self, key: str, value: str) -> None:
        self._add("RPUSH", key, value)

    def sadd(self, key: str, value: str) -> None:
        self._add("SADD", key, value)

    def hincrby(self, key: str, field: str, amount: int) -> None:
        self._add("HINCRBY", key, field, amount)

    async def execute(self) -> None:
        await self._script(keys=self._keys, args=self._argv)


class RawRedis:
    """The units on redis-py with a connection pool of `size`."""

    def __init__(
        self, url: str, key_prefix: str, state: State, size: int, *, cluster: bool = False
    ) -> None:
        self._url, self._state, self._size, self._cluster = url, state, size, cluster
        self._p = f"{{{key_prefix}raw}}:" if cluster else f"{key_prefix}raw:"
        self._wf, self._ai = WorkflowKeys(key_prefix), AIKeys(key_prefix)
        self._client: Redis | RedisCluster | None = None

    async def open(self) -> None:
        """Make the client and register the read script."""
        size = max(self._size, 2)
        if self._cluster:  # redis-py's cluster client takes redis:// (any node), no db
            parts = urlsplit(self._url)
            url = urlunsplit(("redis", parts.netloc, "", "", ""))
            self._client = RedisCluster.from_url(url, max_connections=size)
        else:
            self._client = Redis.from_url(self._url, max_connections=size, decode_responses=True)
        self._newest = self._client.register_script(_NEWEST)
        self._stored_runs = self._client.register_script(_STORED_RUNS)
        self._stored_messages = self._client.register_script(_STORED_MESSAGES)
        self._atomic = self._client.register_script(_ATOMIC)
        async with self._client.pipeline(transaction=False) as pipe:
            for name in FUNCTIONS:  # the registration heartbeat's find_function reads
                pipe.sadd(f"{self._p}fn:{name}", self._state.deployment_id)
            await pipe.execute()

    async def close(self) -> None:
        """Close the client."""
        if self._client is not None:
            await self._client.aclose()

    @property
    def client(self) -> Redis | RedisCluster:
        assert self._client is not None
        return self._client

    @asynccontextmanager
    async def _multi(self) -> AsyncIterator[Pipeline | _Atomic]:
        """A MULTI pipeline (standalone) or its one-script twin (cluster), to `execute()`."""
        if isinstance(self._client, Redis):
            async with self._client.pipeline(transaction=True) as pipe:
                yield pipe
        else:
            yield _Atomic(self._atomic)

    def ops(self) -> dict[str, Op]:
        """The twins of every workload operation."""
        p, state, r = self._p, self._state, self.client
        runs = [str(uuid.uuid4()) for _ in range(50)]

        async def create_run(i: int) -> None:
            run_id, now = str(uuid.uuid4()), _ms()
            async with self._multi() as pipe:
                pipe.hset(
                    f"{p}run:{run_id}",
                    mapping={
                        "workflow": WORKFLOW,
                        "status": "running",
                        "inline": "0",
                        "wire": WIRE,
                        "created_at": now,
                        "updated_at": now,
                        "input": json.dumps({"orderId": i, "total": 42.5}),
                    },
                )
                pipe.zadd(f"{p}runs", {f"{p}run:{run_id}": now})
                pipe.zadd(f"{p}runs:{WORKFLOW}:running", {run_id: now})
                await pipe.execute()

        async def step(i: int) -> None:
            run_id, step_id, now = runs[i % len(runs)], str(uuid.uuid4()), _ms()
            async with self._multi() as pipe:
                pipe.hset(
                    f"{p}step:{step_id}",
                    mapping={
                        "run": run_id,
                        "name": f"step-{i}",
                        "status": "pending",
                        "attempt": 1,
                        "rpc_name": "chargeCard",
                        "data": json.dumps({"amount": i}),
                        "created_at": now,
                        "updated_at": now,
                    },
                )
                pipe.hset(
                    f"{p}attempt:{step_id}:1", mapping={"status": "pending", "created_at": now}
                )
                pipe.rpush(f"{p}order:{run_id}", step_id)
                await pipe.execute()
            for status in ("running", "succeeded"):
                now = _ms()
                fields: dict[FieldT, EncodableT] = {
                    "status": status,
                    f"{status}_at": now,
                    "updated_at": now,
                }
                if status == "succeeded":
                    fields["result"] = json.dumps({"paymentId": f"pay-{i}"})
                async with self._multi() as pipe:
                    pipe.hset(f"{p}step:{step_id}", mapping=fields)
                    pipe.hset(f"{p}attempt:{step_id}:1", mapping=fields)
                    await pipe.execute()

        run_head, run_tail = self._wf.run_prefix()
        stored_runs_args: list[EncodableT] = [50, run_head, run_tail, RUN_SEQ_WIDTH + 2]
        stored_runs_args += RUN_FIELDS

        async def list_runs(i: int) -> object:
            if self._cluster:
                return await self._newest(keys=[f"{p}runs"], args=[50])
            return _runs(await self._stored_runs(keys=[self._wf.runs()], args=stored_runs_args))

        async def save_messages(i: int) -> None:
            now, thread = _ms(), f"{p}thread:{state.thread_id}"
            question, answer = message_texts(i)
            seq = 2 * i
            async with self._multi() as pipe:
                pipe.hincrby(thread, "message_seq", 2)
                for n, (mid, role, text) in enumerate(
                    ((f"ru{i}", "user", question), (f"ra{i}", "assistant", answer))
                ):
                    key = f"{thread}:msg:{mid}"
                    blob = json.dumps({"id": mid, "role": role, "text": text, "created_at": now})
                    pipe.hset(key, mapping={"m": blob})
                    pipe.zadd(f"{thread}:msgs", {key: seq + n})
                await pipe.execute()

        thread_keys = [self._ai.msgs(state.thread_id), self._ai.msg(state.thread_id)]

        async def get_messages(i: int) -> object:
            if self._cluster:
                return await self._newest(keys=[f"{p}thread:{state.thread_id}:msgs"], args=[20])
            return _messages(await self._stored_messages(keys=thread_keys, args=[20]))

        async def subscribe(i: int) -> None:
            topic, channel = f"{p}topic:{i % TOPICS}", state.channel_ids[i % state.channels]
            async with self._multi() as pipe:
                pipe.sadd(topic, channel)
                pipe.sadd(f"{p}channel:{channel}:topics", topic)
                await pipe.execute()
            await r.smembers(topic)

        async def heartbeat(i: int) -> None:
            now = _ms()
            async with self._multi() as pipe:
                pipe.hset(f"{p}deployment:{state.deployment_id}", mapping={"heartbeat": now})
                pipe.zadd(f"{p}deployments", {state.deployment_id: now})
                await pipe.execute()
            name = FUNCTIONS[i % len(FUNCTIONS)]
            members = await r.smembers(f"{p}fn:{name}")
            if members:
                names = [m.decode() if isinstance(m, bytes) else m for m in members]
                await r.zmscore(f"{p}deployments", names)

        return {
            "create_run": create_run,
            "step": step,
            "list_runs": list_runs,
            "save_messages": save_messages,
            "get_messages": get_messages,
            "subscribe": subscribe,
            "heartbeat": heartbeat,
        }
