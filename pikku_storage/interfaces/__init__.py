"""The abstract service classes; backends subclass them and implement the `_hooks`."""

from __future__ import annotations

from pikku_storage.interfaces._base import Service
from pikku_storage.interfaces.ai import AgentRunService, AIRunStateService, AIStorageService
from pikku_storage.interfaces.channels import ChannelStore, EventHubStore
from pikku_storage.interfaces.deployments import DeploymentService
from pikku_storage.interfaces.workflows import WorkflowRunService, WorkflowService

__all__ = [
    "AIRunStateService",
    "AIStorageService",
    "AgentRunService",
    "ChannelStore",
    "DeploymentService",
    "EventHubStore",
    "Service",
    "WorkflowRunService",
    "WorkflowService",
]
