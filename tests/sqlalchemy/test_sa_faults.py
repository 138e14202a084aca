"""01 §6 item 61: with the connection broken a call raises `StorageUnavailable`; once the
server is reachable again a later call succeeds without restarting the service.

The server is reached through a local TCP relay the test can cut and restore, so the real
PostgreSQL and MariaDB servers are used, never a mock."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from pikku_storage import ManualClock
from pikku_storage.errors import StorageUnavailable
from pikku_storage.records import Channel
from pikku_storage.sqlalchemy import open_storage
from pikku_storage.sqlite import open_storage as open_sqlite
from tests.sqlalchemy.sa_helpers import Fresh, server_namespace


class Relay:
    """A TCP relay on 127.0.0.1 to `host:port` that can drop every connection and refuse new
    ones (`cut`), then accept again on the same port (`restore`)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._writers -= {writer, up_writer}


@pytest.mark.parametrize("server", ["postgres", "mysql"])
async def test_a_broken_connection_is_unavailable_then_recovers(
    request: pytest.FixtureRequest, server: str
) -> None:
    async with server_namespace(request, server) as namespace:
        await _break_and_recover(namespace)


async def _break_and_recover(namespace: Fresh) -> None:
    url = make_url(namespace.url)
    relay = Relay(url.host or "127.0.0.1", url.port or 0)
    await relay.restore()
    storage = open_storage(url.set(port=relay.port), clock=ManualClock(), **namespace.options)
    try:
        await storage.init()
        await storage.channels.add_channel(Channel(channel_id="before", channel_name="n"))
        await relay.cut()
        with pytest.raises(StorageUnavailable):
            await storage.channels.get_channel_and_session("before")
        with pytest.raises(StorageUnavailable):
            await storage.channels.add_channel(Channel(channel_id="during", channel_name="n"))
        await relay.restore()
        await storage.channels.add_channel(Channel(channel_id="after", channel_name="n"))
        assert (await storage.channels.get_channel_and_session("before")).channel_name == "n"
        await storage.channels.remove_channels(["before", "after"])
    finally:
        await storage.close()
        await relay.cut()


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg://postgres@127.0.0.1:1/test", "mysql+aiomysql://root@127.0.0.1:1/test"],
    ids=["postgres", "mysql"],
)
async def test_a_server_refusing_the_first_connection_is_unavailable(url: str) -> None:
    """No pooled connection to invalidate yet: the refused connect itself is translated."""
    storage = open_storage(url, clock=ManualClock())
    try:
        with pytest.raises(StorageUnavailable):
            await storage.init()
    finally:
        await storage.close()


async def test_an_unreachable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    """A database file that cannot be opened is `StorageUnavailable`, not a driver error."""
    storage = open_sqlite(tmp_path / "missing-dir" / "x.db")
    with pytest.raises(StorageUnavailable):
        await storage.init()
    await storage.close()
    # aiosqlite stops the worker thread of a failed connect without awaiting it; let it
    # finish while this loop still runs, or it reports to a closed loop.
    for thread in threading.enumerate():
        if thread.name.endswith("(_connection_worker_thread)"):
            await asyncio.to_thread(thread.join, 10)
