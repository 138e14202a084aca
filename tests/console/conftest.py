"""A console over a demo store (memory and SQLite), driven by Starlette's TestClient.

The storage is opened on the TestClient's own event loop (its portal), so SQLite's
connections live on the loop that serves the requests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from pikku_storage.console import create_app
from pikku_storage.console._demo import fill_demo
from pikku_storage.memory import InMemoryStore
from pikku_storage.storage import Storage, open_storage
from tests.console._seed import seed_hostile

T = TypeVar("T")


@dataclass
class _Switch:
    """An ASGI app that forwards to whichever console app the test configured last."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # nothing to start: the fixture opens the storage
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]  # startup or shutdown
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        assert self.app is not None
        await self.app(scope, receive, send)


@dataclass
class Console:
    client: TestClient
    storage: Storage
    switch: _Switch
    hostile_run: str = ""
    hostile_thread: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run `fn()` on the loop that serves the requests."""
        return self.client.portal.call(fn)  # type: ignore[union-attr]

    def configure(self, **options: Any) -> None:
        """Serve a new console app over the same storage with these `create_app` options."""
        self.switch.app = create_app(self.storage, **options)


@pytest.fixture(params=["memory", "sqlite"])
def console(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Console]:
    if request.param == "memory":
        store = InMemoryStore()

        def opener(**more: Any) -> Storage:
            return open_storage("memory://", store=store, **more)
    else:
        url = f"sqlite:///{tmp_path / 'console.db'}"

        def opener(**more: Any) -> Storage:
            return open_storage(url, **more)

    storage = opener(heartbeat_ttl=3600.0, heartbeat_interval=1200.0)
    switch = _Switch()
    stack = AsyncExitStack()
    with TestClient(switch, base_url="http://127.0.0.1") as client:
        env = Console(client=client, storage=storage, switch=switch)

        async def start() -> tuple[str, str]:
            await fill_demo(opener, stack)
            await stack.enter_async_context(storage)
            return await seed_hostile(storage)

        env.hostile_run, env.hostile_thread = env.call(start)
        env.configure()
        try:
            yield env
        finally:
            env.call(stack.aclose)
