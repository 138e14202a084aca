"""Provider of the `memory` backend: a fresh `InMemoryStore` per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pikku_storage import Clock, Storage
from pikku_storage.memory import InMemoryStore, open_storage
from pikku_testing.providers import BackendProvider, Namespace, NamespaceRequest

__all__ = ["MemoryProvider"]


class MemoryProvider(BackendProvider):
    name = "memory"

    @asynccontextmanager
    async def namespace(self, request: NamespaceRequest) -> AsyncIterator[Namespace]:
        yield Namespace(provider=self, state={"store": InMemoryStore()})

    def make_storage(self, namespace: Namespace, clock: Clock) -> Storage:
        store = namespace.state["store"]
        assert isinstance(store, InMemoryStore)
        return open_storage(clock=clock, store=store)
