"""`DeploymentService`: registration, the heartbeat task and liveness, shared by every backend.

The lifecycle (one heartbeat task, serialized start/heartbeat/stop, logging) and the liveness
rule live here once; backends implement the atomic writes and index-backed reads (see
docs/services/deployments.md).
"""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from datetime import datetime
from typing import Final

from pikku_storage import _validate as v
from pikku_storage.clock import Clock, clamp_ms, to_epoch_ms
from pikku_storage.errors import DeploymentNotStarted, InvalidValue
from pikku_storage.interfaces._base import Service
from pikku_storage.records import DeploymentConfig, DeploymentInfo

__all__ = ["DEFAULT_HEARTBEAT_INTERVAL", "DEFAULT_HEARTBEAT_TTL", "DeploymentService"]

logger = logging.getLogger("pikku_storage.deployments")

TASK_NAME: Final = "pikku-deployment-heartbeat"
DEFAULT_HEARTBEAT_INTERVAL: Final = 10.0
"""Seconds between heartbeats unless a constructor is told otherwise
(docs/services/deployments.md)."""
DEFAULT_HEARTBEAT_TTL: Final = 30.0
"""Seconds after its last heartbeat a registration turns stale unless told otherwise
(docs/services/deployments.md)."""
MAX_ENDPOINT: Final = 2048
MIN_TTL: Final = 0.001
CANCEL_RETRY: Final = 0.05  # seconds between cancellations of a heartbeat task that ignores one


def _config(config: object) -> DeploymentConfig:
    if not isinstance(config, DeploymentConfig):
        raise InvalidValue(f"config must be a DeploymentConfig, got {type(config).__name__}")
    endpoint = config.endpoint
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > MAX_ENDPOINT:
        raise InvalidValue(f"endpoint must be a non-empty str of at most {MAX_ENDPOINT} characters")
    v.plain_text("endpoint", endpoint)  # no U+0000 or lone surrogate: no store holds them
    return DeploymentConfig(
        deployment_id=v.identifier("deployment_id", config.deployment_id),
        endpoint=endpoint,
        functions=sorted(set(v.identifier_list("functions", config.functions))),
    )


async def _cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel `task` until it ends.

    A driver may swallow a cancellation (on Python 3.11 `asyncio.wait_for` can return the
    result when both arrive together), and the task would then wait for the lock `stop()`
    holds; cancelling again interrupts that wait. `asyncio.wait` never swallows a
    cancellation of the caller itself.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_RETRY)


def _order(infos: list[DeploymentInfo]) -> list[DeploymentInfo]:
    """Freshest heartbeat first, then id in code-point order (docs/services/deployments.md)."""
    infos.sort(key=lambda info: info.deployment_id)
    infos.sort(key=lambda info: info.last_heartbeat, reverse=True)
    return infos


class DeploymentService(Service):
    """Service discovery for remote RPC between instances (see docs/services/deployments.md)."""

    def __init__(
        self,
        *,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        heartbeat_ttl: float = DEFAULT_HEARTBEAT_TTL,
        prune_on_heartbeat: bool = True,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self._interval = v.positive_seconds("heartbeat_interval", heartbeat_interval)
        self._ttl = v.positive_seconds("heartbeat_ttl", heartbeat_ttl)
        if self._ttl <= self._interval or self._ttl < MIN_TTL:
            raise InvalidValue(
                f"heartbeat_ttl must exceed heartbeat_interval and be >= {MIN_TTL}: {self._ttl}"
            )
        self._prune_on_heartbeat = v.boolean("prune_on_heartbeat", prune_on_heartbeat)
        self._ttl_ms = round(self._ttl * 1000)
        self._config: DeploymentConfig | None = None
        self._task: asyncio.Task[None] | None = None
        self._state_lock: asyncio.Lock | None = None

    @property
    def heartbeat_interval(self) -> float:
        return self._interval

    @property
    def heartbeat_ttl(self) -> float:
        return self._ttl

    def _lock(self) -> asyncio.Lock:
        if self._state_lock is None:
            self._state_lock = asyncio.Lock()
        return self._state_lock

    def _cutoff(self) -> datetime:
        """Registrations with `last_heartbeat` at or before this are stale."""
        return clamp_ms(to_epoch_ms(self._now()) - self._ttl_ms)  # a clock near year 1: year 1

    async def start(self, config: DeploymentConfig) -> None:
        """Register (replacing an earlier id of this instance) and keep one heartbeat task."""
        checked = _config(config)
        async with self._lock():
            previous = self._config.deployment_id if self._config is not None else None
            if previous == checked.deployment_id:
                previous = None
            await self._register(checked, previous, self._now())
            self._config = checked
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._beat_forever(), name=TASK_NAME)

    async def heartbeat(self) -> None:
        """Stamp this registration now, re-creating it if it vanished. Raises:
        `DeploymentNotStarted`."""
        async with self._lock():
            if self._config is None:
                raise DeploymentNotStarted
            await self._heartbeat(self._config, self._now())

    async def stop(self) -> None:
        """End the heartbeat task, then remove this registration; a no-op when not started.

        The task is taken under the lock, so a concurrent `start` cannot leave a task behind.
        """
        async with self._lock():
            task, self._task = self._task, None
            config, self._config = self._config, None
            if task is not None:
                await _cancel_and_wait(task)
            if config is not None:
                await self._unregister(config.deployment_id)

    async def find_function(self, name: str) -> list[DeploymentInfo]:
        """Live registrations listing `name`, freshest first; never writes."""
        v.identifier("name", name)
        return _order(await self._find_function(name, self._cutoff()))

    async def list_deployments(self) -> list[DeploymentInfo]:
        """Every live registration, freshest first."""
        return _order(await self._list_deployments(self._cutoff()))

    async def prune_deployments(self) -> list[str]:
        """Delete every stale registration (re-checked at deletion); the ids, sorted."""
        return sorted(await self._prune_deployments(self._cutoff()))

    async def close(self) -> None:
        """Stop if started (a failed delete is logged), then release an owned connection."""
        if self._config is not None or self._task is not None:
            try:
                await self.stop()
            except Exception:
                logger.warning("deployment could not unregister on close", exc_info=True)
        await self._close()

    async def _beat_forever(self) -> None:
        while self._task is asyncio.current_task():
            await asyncio.sleep(self._interval)
            config = self._config
            try:
                await self.heartbeat()
                if self._prune_on_heartbeat:
                    await self.prune_deployments()
            except Exception:
                logger.warning(
                    "heartbeat of deployment %s failed",
                    config.deployment_id if config is not None else None,
                    exc_info=True,
                )

    @abstractmethod
    async def _register(
        self, config: DeploymentConfig, previous_id: str | None, now: datetime
    ) -> None:
        """One atomic write: delete `previous_id`, upsert `config` with exactly its functions."""

    @abstractmethod
    async def _heartbeat(self, config: DeploymentConfig, now: datetime) -> None:
        """Atomically stamp the registration, or re-create it from `config` if it vanished."""

    @abstractmethod
    async def _unregister(self, deployment_id: str) -> None:
        """Delete the registration and its functions; no error if already gone."""

    @abstractmethod
    async def _find_function(self, name: str, cutoff: datetime) -> list[DeploymentInfo]:
        """Registrations listing `name` with `last_heartbeat > cutoff`."""

    @abstractmethod
    async def _list_deployments(self, cutoff: datetime) -> list[DeploymentInfo]:
        """Registrations with `last_heartbeat > cutoff`."""

    @abstractmethod
    async def _prune_deployments(self, cutoff: datetime) -> list[str]:
        """Delete registrations with `last_heartbeat <= cutoff`, re-checked at deletion."""
