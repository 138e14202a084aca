"""Helpers of the Redis white-box tests: raw client access, a command spy, key snapshots."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, cast

import redis
from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pikku_storage import Storage
from pikku_storage.redis._connection import RedisBase
from pikku_storage.redis._scripts import SCRIPT_NAMES, script_source

__all__ = [
    "FORBIDDEN",
    "CommandSpy",
    "PrivateRedis",
    "buckets_of",
    "client_of",
    "key_count",
    "prefix_of",
    "snapshot",
]

FORBIDDEN: Final = frozenset({"SCAN", "KEYS"})

_SHA_TO_SCRIPT: Final = {
    hashlib.sha1(script_source(name).encode()).hexdigest(): name for name in SCRIPT_NAMES
}


def _base(storage: Storage) -> RedisBase:
    service = storage.workflows
    assert isinstance(service, RedisBase)
    return service


def buckets_of(storage: Storage) -> int:
    """The cluster bucket count of `storage`'s connection (0: the standalone layout)."""
    return _base(storage)._buckets


def client_of(storage: Storage) -> Redis:
    """The client every service of `storage` shares."""
    return _base(storage)._redis


def prefix_of(storage: Storage) -> str:
    return _base(storage).key_prefix


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class CommandSpy:
    """Records every command a client sends (scripts by name), without MONITOR."""

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.commands: list[tuple[str, ...]] = []

    @contextmanager
    def recording(self) -> Iterator[CommandSpy]:
        original: Callable[..., Awaitable[Any]] = self.client.execute_command

        async def spy(*args: Any, **options: Any) -> Any:
            self.commands.append(tuple(_text(a) for a in args))
            return await original(*args, **options)

        previous = self.client.__dict__.get("execute_command")  # the provider's SCAN guard
        self.client.execute_command = spy  # type: ignore[method-assign]  # the spy wraps it
        try:
            yield self
        finally:
            if previous is None:
                del self.client.execute_command
            else:
                self.client.execute_command = previous  # type: ignore[method-assign]

    def clear(self) -> None:
        self.commands.clear()

    @property
    def names(self) -> list[str]:
        """Command names, an `EVALSHA` shown as `EVALSHA:<script name>`."""
        out = []
        for command in self.commands:
            name = command[0].upper()
            if name == "EVALSHA":
                name = f"EVALSHA:{_SHA_TO_SCRIPT.get(command[1], command[1])}"
            out.append(name)
        return out

    def forbidden(self) -> list[str]:
        return [n for n in self.names if n.split(" ")[0] in FORBIDDEN]


@contextmanager
def _unguarded(client: Redis) -> Iterator[Redis]:
    """The client without the provider's SCAN guard, for the tests' own scans."""
    guard = client.__dict__.pop("execute_command", None)
    try:
        yield client
    finally:
        if guard is not None:
            client.execute_command = guard  # type: ignore[method-assign]


async def _keys(client: Redis, prefix: str) -> list[str]:
    with _unguarded(client):
        return [_text(key) async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]


async def key_count(client: Redis, prefix: str) -> int:
    """How many keys namespace `prefix` holds (tests only: it scans)."""
    return len(await _keys(client, prefix))


async def snapshot(client: Redis, prefix: str) -> dict[str, tuple[str, object, int]]:
    """Every key of namespace `prefix` with its type, full content and TTL (tests only)."""
    out: dict[str, tuple[str, object, int]] = {}
    for key in await _keys(client, prefix):
        kind = _text(await client.type(key))
        value: object
        if kind == "hash":
            value = {_text(k): _text(v) for k, v in (await client.hgetall(key)).items()}
        elif kind == "zset":
            # redis-py types zrange's reply loosely; WITHSCORES gives (member, score) pairs
            pairs = cast(
                "list[tuple[bytes, float]]", await client.zrange(key, 0, -1, withscores=True)
            )
            value = [(_text(m), s) for m, s in pairs]
        elif kind == "set":
            value = sorted(_text(m) for m in await client.smembers(key))
        elif kind == "list":
            value = [_text(m) for m in await client.lrange(key, 0, -1)]
        else:
            value = _text(await client.get(key))
        out[key] = (kind, value, await client.ttl(key))
    return out


class PrivateRedis:
    """A `redis-server` on a free loopback port, started, restarted and killed by the test.

    `append_only=True` (the default) keeps an append-only file written before each reply, so
    a SIGKILL and restart reloads exactly what the server acknowledged. `append_only=False`
    runs with `--save '' --appendonly no` (nothing written on its own); `restart()` then stops
    it with `SHUTDOWN SAVE`, which snapshots what it holds once, and starts it again.
    """

    def __init__(self, directory: Path, *, append_only: bool = True) -> None:
        self.directory = directory
        self.append_only = append_only
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (reloading what it persisted) and wait until it answers."""
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]  # no fsync needed for SIGKILL
            if self.append_only
            else ["--appendonly", "no"]
        )
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                *persistence,
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            for _ in range(200):
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    time.sleep(0.02)
            raise RuntimeError("private redis-server did not start")
        finally:
            client.close()

    def stop(self) -> None:
        """Take the server down: SIGKILL with an append-only file, else `SHUTDOWN SAVE`."""
        if self.process is None:
            return
        if self.append_only:
            self.kill()
            return
        # No retry: redis-py's default would resend SHUTDOWN to the dying server for seconds.
        client = redis.Redis(port=self.port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
        try:
            client.shutdown(save=True)
        finally:
            client.close()
        self.process.wait(timeout=30)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL the server and wait until it is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
