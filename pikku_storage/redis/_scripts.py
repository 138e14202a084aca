"""The Lua scripts of the backend: read once from `_lua/`, registered per client.

Each `_lua/<name>.lua` holds one atomic unit, headed by a comment listing its `KEYS`, `ARGV`
and reply; `_lua/_prelude.lua` (small `local` helpers) is prepended to each when it is read,
after the constants generated from `_keys.LUA_CONSTANTS` (the member formats' widths).
`register_script` does no I/O: redis-py sends `EVALSHA` and loads the script on `NOSCRIPT`.
With `wait_replicas` (docs/operations.md#replica-acknowledged-writes) a script that may write
is followed by `WAIT` on the same connection, in the same round trip.
See docs/operations.md#storage-layout; style §10.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Final, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pikku_storage.errors import StorageUnavailable
from pikku_storage.redis._keys import LUA_CONSTANTS

__all__ = ["SCRIPT_NAMES", "ReplicaWait", "Scripts", "script_source", "writes"]

_PRELUDE: Final = "_prelude"
# replies of a node that no longer serves the slot (or is failing over): send through redis-py
_REROUTE: Final = (
    MovedError,
    AskError,
    TryAgainError,
    ClusterDownError,
    RedisConnectionError,
    RedisTimeoutError,
)

SCRIPT_NAMES: Final = frozenset(
    path.name.removesuffix(".lua")
    for path in resources.files(__package__).joinpath("_lua").iterdir()
    if path.name.endswith(".lua") and not path.name.startswith("_")
)


@functools.cache
def _read(name: str) -> str:
    return resources.files(__package__).joinpath("_lua", f"{name}.lua").read_text("utf-8")


@functools.cache
def script_source(name: str) -> str:
    """The full text sent to Redis for script `name`: the prelude, then the script."""
    if name not in SCRIPT_NAMES:
        raise KeyError(f"no Lua script named {name!r}")
    return f"{_constants()}{_read(_PRELUDE)}\n{_read(name)}"


@functools.cache
def _constants() -> str:
    """The Lua constants shared with Python (`_keys.LUA_CONSTANTS`), one `local` each."""
    return "".join(f"local {name} = {value}\n" for name, value in LUA_CONSTANTS.items())


# commands that only read; any other (or one a script computes) counts as a write
_READS: Final = frozenset(
    {
        *("EXISTS", "GET", "HEXISTS", "HGET", "HGETALL", "HKEYS", "HLEN", "HMGET", "HVALS"),
        *("LLEN", "LRANGE", "MGET", "SCARD", "SISMEMBER", "SMEMBERS", "ZCARD", "ZCOUNT"),
        *("ZRANGE", "ZRANGEBYSCORE", "ZRANK", "ZREVRANGE", "ZSCORE"),
    }
)
_CALL: Final = re.compile(r"redis\.p?call\(\s*(['\"]?)(\w+)")
_FUNCTION: Final = re.compile(r"^local function (\w+)\(", re.MULTILINE)


def _names_a_write(text: str) -> bool:
    return any(not quote or cmd.upper() not in _READS for quote, cmd in _CALL.findall(text))


@functools.cache
def _writing_helpers() -> frozenset[str]:
    """The prelude's functions that may write."""
    prelude = _read(_PRELUDE)
    starts = [m.start() for m in _FUNCTION.finditer(prelude)] + [len(prelude)]
    bodies = [prelude[a:b] for a, b in itertools.pairwise(starts)]
    return frozenset(
        cast(re.Match[str], _FUNCTION.match(body)).group(1)
        for body in bodies
        if _names_a_write(body)
    )


@functools.cache
def writes(name: str) -> bool:
    """Whether script `name` may write: its own text or a prelude helper it calls names a
    command outside the read-only ones."""
    own = _read(name)
    return _names_a_write(own) or any(
        re.search(rf"\b{helper}\(", own) for helper in _writing_helpers()
    )


@dataclass(frozen=True, slots=True)
class ReplicaWait:
    """`WAIT replicas timeout_ms` after every write: the write is acknowledged by that many
    replicas, or the call raises `StorageUnavailable` (the write itself stays applied)."""

    replicas: int
    timeout_ms: int


async def _on_node(node: ClusterNode, commands: Sequence[tuple[object, ...]]) -> list[object]:
    """`commands` in one pipeline on one cluster node's connection; each reply or its error."""
    sent = [PipelineCommand(i, *args) for i, args in enumerate(commands)]
    await node.execute_pipeline(sent)
    return [command.result for command in sent]


class Scripts:
    """The backend's scripts registered on one client, each on first use."""

    __slots__ = ("_client", "_registered", "_wait")

    def __init__(self, client: Redis, wait: ReplicaWait | None = None) -> None:
        self._client = client
        self._registered: dict[str, AsyncScript] = {}
        self._wait = wait

    async def __call__(
        self, name: str, keys: Sequence[str], args: Sequence[str | int] = ()
    ) -> object:
        """Run script `name` with `keys` and `args`; the raw reply (bytes or str per client)."""
        if self._wait is not None and writes(name):
            return await self._call_and_wait(self._wait, name, keys, args)
        script = self._registered.get(name)
        if script is None:
            script = self._registered[name] = self._client.register_script(script_source(name))
        reply: object = await script(keys=keys, args=args)  # redis-py copies them into one tuple
        return reply

    async def many(
        self, calls: Sequence[tuple[str, Sequence[str], Sequence[str | int]]]
    ) -> list[object]:
        """The replies of read-only script calls `(name, keys, args)`, in order, in one round
        trip: one pipeline, on a cluster one per primary at once (`_many_by_node`); a script
        a node does not hold yet run again through `__call__` (which loads it; `NOSCRIPT`
        ran nothing)."""
        replies: list[object] | None = None
        if isinstance(self._client, RedisCluster):
            replies = await self._many_by_node(self._client, calls)
        if replies is None:
            pipe = self._client.pipeline()
            for name, keys, args in calls:
                sha = self._sha(name)
                pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
            replies = list(await pipe.execute(raise_on_error=False))
        for i, reply in enumerate(replies):
            if isinstance(reply, NoScriptError):
                replies[i] = await self(*calls[i])
            elif isinstance(reply, Exception):
                raise reply
        return replies

    async def _many_by_node(
        self, client: RedisCluster, calls: Sequence[tuple[str, Sequence[str], Sequence[str | int]]]
    ) -> list[object] | None:
        """Read-only calls on a cluster: each primary's share in one pipeline of its own, all
        primaries at once (redis-py's cluster pipeline resolves a routing policy per command
        in Python: a third of a 16-bucket list's time). `None` when a slot was redirected
        (MOVED, ASK) or a node failed: the caller then sends the calls again through redis-py's
        cluster pipeline, which follows redirections; reads, so sending twice is harmless."""
        shares: dict[str, tuple[ClusterNode, list[int], list[tuple[object, ...]]]] = {}
        for i, (name, keys, args) in enumerate(calls):
            node = client.get_node_from_key(keys[0])
            if node is None:
                return None
            _, positions, commands = shares.setdefault(node.name, (node, [], []))
            positions.append(i)
            commands.append(("EVALSHA", self._sha(name), len(keys), *keys, *args))
        try:
            answers = await asyncio.gather(
                *(_on_node(node, commands) for node, _, commands in shares.values())
            )
        except (RedisConnectionError, RedisTimeoutError):
            return None
        replies: list[object] = [None] * len(calls)
        for (_, positions, _), answered in zip(shares.values(), answers, strict=True):
            for i, reply in zip(positions, answered, strict=True):
                if isinstance(reply, _REROUTE):
                    return None
                replies[i] = reply
        return replies

    async def _call_and_wait(
        self, wait: ReplicaWait, name: str, keys: Sequence[str], args: Sequence[str | int]
    ) -> object:
        """The script, then `WAIT` on the same connection in one round trip: a pipeline on a
        standalone server; on a cluster, the pipeline of the primary that owns the keys' slot
        (redis-py's cluster client would send a bare `WAIT` to every primary, on other
        connections, where it proves nothing)."""
        commands: list[tuple[object, ...]] = [
            ("EVALSHA", self._sha(name), len(keys), *keys, *args),
            ("WAIT", wait.replicas, wait.timeout_ms),
        ]
        for attempt in range(3):  # NOSCRIPT and MOVED ran nothing: load or re-route, again
            reply, acked = await self._pipeline(commands, keys)
            if isinstance(reply, NoScriptError):
                await self._client.script_load(script_source(name))
            elif isinstance(reply, MovedError) and attempt < 2:
                await cast(RedisCluster, self._client).nodes_manager.initialize()
            else:
                break
        if isinstance(reply, Exception):
            raise reply
        if isinstance(acked, Exception):
            raise acked
        if int(cast(int, acked)) < wait.replicas:
            raise StorageUnavailable(
                f"{acked} of {wait.replicas} replicas acknowledged the write within "
                f"{wait.timeout_ms} ms (wait_replicas); the write is applied on the primary "
                "and is lost if that primary fails before a replica copies it"
            )
        return reply

    async def _pipeline(
        self, commands: list[tuple[object, ...]], keys: Sequence[str]
    ) -> list[object]:
        if isinstance(self._client, RedisCluster):
            node = self._client.get_node_from_key(keys[0])
            assert node is not None
            return await _on_node(node, commands)
        pipe = self._client.pipeline(transaction=False)
        for args in commands:
            pipe.execute_command(*args)
        return list(await pipe.execute(raise_on_error=False))

    def _sha(self, name: str) -> str:
        script = self._registered.get(name)
        if script is None:
            script = self._registered[name] = self._client.register_script(script_source(name))
        return str(script.sha)
