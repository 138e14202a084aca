"""The Lua scripts of the backend: read once from `_lua/`, registered per client.

Each `_lua/<name>.lua` holds one atomic unit, headed by a comment listing its `KEYS`, `ARGV`
and reply; `_lua/_prelude.lua` (small `local` helpers) is prepended to each when it is read,
after the constants generated from `_keys.LUA_CONSTANTS` (the member formats' widths).
`register_script` does no I/O: redis-py sends `EVALSHA` and loads the script on `NOSCRIPT`.
See docs/operations.md#storage-layout; style §10.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources
from typing import Final

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from pikku_storage.redis._keys import LUA_CONSTANTS

__all__ = ["SCRIPT_NAMES", "Scripts", "script_source"]

_PRELUDE: Final = "_prelude"

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


class Scripts:
    """The backend's scripts registered on one client, each on first use."""

    __slots__ = ("_client", "_registered")

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._registered: dict[str, AsyncScript] = {}

    async def __call__(
        self, name: str, keys: Sequence[str], args: Sequence[str | int] = ()
    ) -> object:
        """Run script `name` with `keys` and `args`; the raw reply (bytes or str per client)."""
        script = self._registered.get(name)
        if script is None:
            script = self._registered[name] = self._client.register_script(script_source(name))
        reply: object = await script(keys=keys, args=args)  # redis-py copies them into one tuple
        return reply

    async def many(
        self, calls: Sequence[tuple[str, Sequence[str], Sequence[str | int]]]
    ) -> list[object]:
        """The replies of read-only script calls `(name, keys, args)`, in order: on a cluster
        one pipeline (redis-py sends each node its share at once), a script a node does not
        hold yet run again through `__call__` (which loads it; `NOSCRIPT` ran nothing)."""
        pipe = self._client.pipeline()
        for name, keys, args in calls:
            sha = self._sha(name)
            pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
        replies: list[object] = list(await pipe.execute(raise_on_error=False))
        for i, reply in enumerate(replies):
            if isinstance(reply, NoScriptError):
                replies[i] = await self(*calls[i])
            elif isinstance(reply, Exception):
                raise reply
        return replies

    def _sha(self, name: str) -> str:
        script = self._registered.get(name)
        if script is None:
            script = self._registered[name] = self._client.register_script(script_source(name))
        return str(script.sha)
