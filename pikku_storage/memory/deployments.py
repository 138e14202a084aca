"""PLACEHOLDER: being written by the channels helper."""

from __future__ import annotations

from pikku_storage.clock import Clock
from pikku_storage.interfaces import DeploymentService


class DeploymentState:
    pass


class InMemoryDeploymentService(DeploymentService):
    def __init__(
        self,
        state: DeploymentState | None = None,
        *,
        heartbeat_interval: float = 10.0,
        heartbeat_ttl: float = 30.0,
        prune_on_heartbeat: bool = True,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            heartbeat_interval=heartbeat_interval,
            heartbeat_ttl=heartbeat_ttl,
            prune_on_heartbeat=prune_on_heartbeat,
            clock=clock,
        )
