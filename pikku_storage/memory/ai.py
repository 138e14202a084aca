"""PLACEHOLDER: being written by the AI helper."""

from __future__ import annotations

from pikku_storage.clock import Clock
from pikku_storage.interfaces import AgentRunService, AIRunStateService, AIStorageService


class AIStore:
    pass


class InMemoryAIStorageService(AIStorageService):
    def __init__(self, store: AIStore | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)


class InMemoryAIRunStateService(AIRunStateService):
    def __init__(self, store: AIStore | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)


class InMemoryAgentRunService(AgentRunService):
    def __init__(self, store: AIStore | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
