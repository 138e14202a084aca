"""The in-memory backend: the model every other backend is compared with, and the fast fake."""

from __future__ import annotations

from dataclasses import dataclass, field

from pikku_storage.clock import Clock
from pikku_storage.errors import InvalidValue
from pikku_storage.interfaces.deployments import DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_TTL
from pikku_storage.memory.ai import (
    AIStore,
    InMemoryAgentRunService,
    InMemoryAIRunStateService,
    InMemoryAIStorageService,
)
from pikku_storage.memory.channels import ChannelState, InMemoryChannelStore, InMemoryEventHubStore
from pikku_storage.memory.deployments import DeploymentState, InMemoryDeploymentService
from pikku_storage.memory.workflows import (
    InMemoryWorkflowRunService,
    InMemoryWorkflowService,
    WorkflowStore,
)
from pikku_storage.storage import Storage

__all__ = [
    "AIStore",
    "ChannelState",
    "DeploymentState",
    "InMemoryAIRunStateService",
    "InMemoryAIStorageService",
    "InMemoryAgentRunService",
    "InMemoryChannelStore",
    "InMemoryDeploymentService",
    "InMemoryEventHubStore",
    "InMemoryStore",
    "InMemoryWorkflowRunService",
    "InMemoryWorkflowService",
    "WorkflowStore",
    "open_storage",
]


@dataclass(slots=True)
class InMemoryStore:
    """One namespace of in-memory data: every `Storage` built on it sees the same records."""

    workflows: WorkflowStore = field(default_factory=WorkflowStore)
    ai: AIStore = field(default_factory=AIStore)
    channels: ChannelState = field(default_factory=ChannelState)
    deployments: DeploymentState = field(default_factory=DeploymentState)


def open_storage(
    url: str = "memory://",
    *,
    clock: Clock | None = None,
    store: InMemoryStore | None = None,
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
    heartbeat_ttl: float = DEFAULT_HEARTBEAT_TTL,
    prune_on_heartbeat: bool = True,
) -> Storage:
    """Every service over `store` (a new, empty one by default); `url` is `memory://`."""
    if store is not None and not isinstance(store, InMemoryStore):
        raise InvalidValue(f"store must be an InMemoryStore, got {type(store).__name__}")
    store = store if store is not None else InMemoryStore()
    channels = InMemoryChannelStore(store.channels, clock=clock)
    return Storage(
        workflows=InMemoryWorkflowService(store.workflows, clock=clock),
        workflow_runs=InMemoryWorkflowRunService(store.workflows, clock=clock),
        ai_storage=InMemoryAIStorageService(store.ai, clock=clock),
        ai_run_state=InMemoryAIRunStateService(store.ai, clock=clock),
        agent_runs=InMemoryAgentRunService(store.ai, clock=clock),
        channels=channels,
        eventhub=InMemoryEventHubStore(channels),
        deployments=InMemoryDeploymentService(
            store.deployments,
            heartbeat_interval=heartbeat_interval,
            heartbeat_ttl=heartbeat_ttl,
            prune_on_heartbeat=prune_on_heartbeat,
            clock=clock,
        ),
    )
