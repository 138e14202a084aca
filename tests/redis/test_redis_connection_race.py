"""redis-py's own connection race on a cluster failover (issue 15 must-show: nothing raw
reaches the caller): its cluster client closes pooled connections that another task is still
sending on, which then fails inside redis-py with `AttributeError: 'NoneType' object has no
attribute 'writelines'`. tests/faults/test_redis_cluster_failover.py meets it for real in
about half of its runs; here the same redis-py line is driven directly."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection

from pikku_storage import StorageUnavailable
from pikku_storage.redis._errors import translate_errors, translated


async def test_an_error_raised_inside_redis_py_on_a_closed_connection_is_unavailable() -> None:
    closed = Connection()  # never connected: its writer is None, as after redis-py's reset
    with pytest.raises(StorageUnavailable, match="connection closed under a running command"):
        async with translate_errors():
            await closed._send_packed_command([b"PING\r\n"])


async def test_the_hook_wrapper_translates_it_too() -> None:
    @translated
    async def hook() -> None:
        await Connection()._send_packed_command([b"PING\r\n"])

    with pytest.raises(StorageUnavailable, match="writelines"):
        await hook()


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
