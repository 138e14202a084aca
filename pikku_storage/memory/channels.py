"""PLACEHOLDER: being written by the channels helper."""

from __future__ import annotations

from pikku_storage.clock import Clock
from pikku_storage.interfaces import ChannelStore, EventHubStore


class ChannelState:
    pass


class InMemoryChannelStore(ChannelStore):
    def __init__(self, state: ChannelState | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)


class InMemoryEventHubStore(EventHubStore):
    def __init__(self, channel_store: InMemoryChannelStore) -> None:
        super().__init__(clock=channel_store.clock)
