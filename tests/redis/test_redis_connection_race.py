"""redis-py's own connection race on a cluster failover (issue 15 must-show: nothing raw
reaches the caller): redis-py 8.1's cluster client closes pooled connections that another
task is still sending on, which then fails inside redis-py with `AttributeError: 'NoneType'
object has no attribute 'writelines'` (redis-py 8.2 raises `ConnectionError` at that line
instead). tests/faults/test_redis_cluster_failover.py meets it for real; here redis-py's send
is driven on a connection whose writer is gone, on any redis-py version."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from redis.asyncio.connection import Connection

from pikku_storage import StorageUnavailable
from pikku_storage.redis._errors import is_connection_race, translate_errors, translated


async def _send_on_a_broken_writer() -> None:
    """redis-py's `_send_packed_command` on a connection whose writer is not a stream any
    more: an `AttributeError` raised in redis-py's own frame, as in the race."""
    broken: Any = SimpleNamespace(_writer=object())
    await Connection._send_packed_command(broken, [b"PING\r\n"])


async def test_an_attribute_error_inside_redis_py_is_a_connection_race() -> None:
    with pytest.raises(AttributeError) as raised:
        await _send_on_a_broken_writer()
    assert is_connection_race(raised.value)


async def test_translate_errors_makes_it_storage_unavailable() -> None:
    with pytest.raises(StorageUnavailable, match="connection closed under a running command"):
        async with translate_errors():
            await _send_on_a_broken_writer()


async def test_the_hook_wrapper_translates_it_too() -> None:
    @translated
    async def hook() -> None:
        await _send_on_a_broken_writer()

    with pytest.raises(StorageUnavailable, match="connection closed under a running command"):
        await hook()


async def test_a_never_connected_connection_is_unavailable_on_any_redis_py() -> None:
    with pytest.raises(StorageUnavailable):
        async with translate_errors():
            await Connection()._send_packed_command([b"PING\r\n"])


async def test_the_same_error_raised_by_our_own_code_stays_a_bug() -> None:
    @translated
    async def hook() -> None:
        value: object = None
        value.writelines  # type: ignore[attr-defined]  # noqa: B018  # the bug under test

    with pytest.raises(AttributeError):
        await hook()
    with pytest.raises(TypeError):
        async with translate_errors():
            len(1)  # type: ignore[arg-type]
