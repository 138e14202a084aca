"""Provider of the `memory` backend: a fresh `InMemoryStore` per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pikku_storage import Clock, Storage
from pikku_storage.memory import InMemoryStore, open_storage
from pikku_testing.contract._capabilities import Capability
from pikku_testing.providers import BackendProvider, Namespace, NamespaceRequest

__all__ = ["MemoryProvider"]


class MemoryProvider(BackendProvider):
    """Every `Storage` of a namespace shares one `InMemoryStore`, so a second instance sees the
    data (`PERSISTENT`); nothing crosses an OS process, locks included."""

    name = "memory"
    capabilities = frozenset({Capability.PERSISTENT})

    @asynccontextmanager
    async def namespace(self, request: NamespaceRequest) -> AsyncIterator[Namespace]:
        yield Namespace(provider=self, state={"store": InMemoryStore()})

    def make_storage(self, namespace: Namespace, clock: Clock, **options: object) -> Storage:
        store = namespace.state["store"]
        assert isinstance(store, InMemoryStore)
        extra: dict[str, Any] = dict(options)  # checked by the backend's open_storage
        return open_storage(clock=clock, store=store, **extra)
