"""In-memory `DeploymentService`: several instances on one `DeploymentState` (see
docs/operations.md#storage-layout)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pikku_storage.clock import Clock, from_epoch_ms, to_epoch_ms
from pikku_storage.interfaces import DeploymentService
from pikku_storage.interfaces.deployments import DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_TTL
from pikku_storage.records import DeploymentConfig, DeploymentInfo

__all__ = ["DeploymentState", "InMemoryDeploymentService"]


@dataclass(slots=True)
class _Registration:
    endpoint: str
    functions: frozenset[str]
    heartbeat_ms: int


@dataclass(slots=True)
class DeploymentState:
    """The registrations of one namespace; each service built on it models one deployment.

    `functions` maps a function name to the ids registering it, the index `find_function`
    reads; it never holds an id whose registration is gone (see docs/operations.md#storage-layout).
    """

    registrations: dict[str, _Registration] = field(default_factory=dict)
    functions: dict[str, set[str]] = field(default_factory=dict)

    def upsert(self, config: DeploymentConfig, heartbeat_ms: int) -> None:
        """Store `config` with exactly its functions, replacing what the id had."""
        self.delete(config.deployment_id)
        functions = frozenset(config.functions)
        self.registrations[config.deployment_id] = _Registration(
            endpoint=config.endpoint, functions=functions, heartbeat_ms=heartbeat_ms
        )
        for name in functions:
            self.functions.setdefault(name, set()).add(config.deployment_id)

    def delete(self, deployment_id: str) -> bool:
        registration = self.registrations.pop(deployment_id, None)
        if registration is None:
            return False
        for name in registration.functions:
            ids = self.functions[name]
            ids.discard(deployment_id)
            if not ids:
                del self.functions[name]
        return True

    def info(self, deployment_id: str) -> DeploymentInfo:
        registration = self.registrations[deployment_id]
        return DeploymentInfo(
            deployment_id=deployment_id,
            endpoint=registration.endpoint,
            last_heartbeat=from_epoch_ms(registration.heartbeat_ms),
        )


class InMemoryDeploymentService(DeploymentService):
    """Registrations in process memory; hooks run without an `await`, so each is atomic."""

    def __init__(
        self,
        state: DeploymentState | None = None,
        *,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        heartbeat_ttl: float = DEFAULT_HEARTBEAT_TTL,
        prune_on_heartbeat: bool = True,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            heartbeat_interval=heartbeat_interval,
            heartbeat_ttl=heartbeat_ttl,
            prune_on_heartbeat=prune_on_heartbeat,
            clock=clock,
        )
        self._state = state if state is not None else DeploymentState()

    async def _register(
        self, config: DeploymentConfig, previous_id: str | None, now: datetime
    ) -> None:
        if previous_id is not None:
            self._state.delete(previous_id)
        self._state.upsert(config, to_epoch_ms(now))

    async def _heartbeat(self, config: DeploymentConfig, now: datetime) -> None:
        registration = self._state.registrations.get(config.deployment_id)
        if registration is not None:
            registration.heartbeat_ms = to_epoch_ms(now)
        else:
            self._state.upsert(config, to_epoch_ms(now))

    async def _unregister(self, deployment_id: str) -> None:
        self._state.delete(deployment_id)

    async def _find_function(self, name: str, cutoff: datetime) -> list[DeploymentInfo]:
        state = self._state
        cutoff_ms = to_epoch_ms(cutoff)
        return [
            state.info(deployment_id)
            for deployment_id in state.functions.get(name, ())
            if state.registrations[deployment_id].heartbeat_ms > cutoff_ms
        ]

    async def _list_deployments(self, cutoff: datetime) -> list[DeploymentInfo]:
        cutoff_ms = to_epoch_ms(cutoff)
        return [
            self._state.info(deployment_id)
            for deployment_id, registration in self._state.registrations.items()
            if registration.heartbeat_ms > cutoff_ms
        ]

    async def _prune_deployments(self, cutoff: datetime) -> list[str]:
        cutoff_ms = to_epoch_ms(cutoff)
        stale = [
            deployment_id
            for deployment_id, registration in self._state.registrations.items()
            if registration.heartbeat_ms <= cutoff_ms
        ]
        for deployment_id in stale:
            self._state.delete(deployment_id)
        return stale
