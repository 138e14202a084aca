"""PLACEHOLDER: being written by the workflows helper."""

from __future__ import annotations

from pikku_storage.clock import Clock
from pikku_storage.interfaces import WorkflowRunService, WorkflowService


class WorkflowStore:
    pass


class InMemoryWorkflowService(WorkflowService):
    def __init__(self, store: WorkflowStore | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)


class InMemoryWorkflowRunService(WorkflowRunService):
    def __init__(self, store: WorkflowStore | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
