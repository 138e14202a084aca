"""`RedisDeploymentService`: deployment registrations and function discovery on Redis.

A registration is a hash (endpoint), a set of its functions, one member per function set and
a score (`last_heartbeat`, epoch ms) in one sorted set; liveness is decided from that score and
a cutoff computed from the injected clock. No key has a TTL. See docs/services/deployments.md,
docs/operations.md#storage-layout.
"""

from __future__ import annotations

from datetime import datetime

from pikku_storage.clock import Clock, to_epoch_ms
from pikku_storage.interfaces.deployments import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_HEARTBEAT_TTL,
    DeploymentService,
)
from pikku_storage.records import DeploymentConfig, DeploymentInfo
from pikku_storage.redis import _rows as rows
from pikku_storage.redis._connection import RedisBase, RedisSource
from pikku_storage.redis._errors import translated
from pikku_storage.redis._keys import DeploymentKeys

__all__ = ["RedisDeploymentService"]


class RedisDeploymentService(RedisBase, DeploymentService):
    """Service discovery for remote RPC between instances, on Redis (see
    docs/services/deployments.md, docs/operations.md#storage-layout).

    Built from a URL it owns its client; given a client or a `RedisConnection` it borrows it.
    """

    def __init__(
        self,
        redis: RedisSource,
        *,
        key_prefix: str = "pikku",
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        heartbeat_ttl: float = DEFAULT_HEARTBEAT_TTL,
        prune_on_heartbeat: bool = True,
        clock: Clock | None = None,
        **client_options: object,
    ) -> None:
        super().__init__(
            heartbeat_interval=heartbeat_interval,
            heartbeat_ttl=heartbeat_ttl,
            prune_on_heartbeat=prune_on_heartbeat,
            clock=clock,
        )
        self._setup(redis, key_prefix, client_options)
        self._keys = DeploymentKeys.of(self._prefix, self._buckets > 0)

    async def _write(
        self, mode: str, config: DeploymentConfig, previous_id: str | None, now: datetime
    ) -> None:
        k = self._keys
        keys = [
            k.deployments(),
            k.deployment(config.deployment_id),
            k.functions_of(config.deployment_id),
        ]
        if previous_id is not None:
            keys += [k.deployment(previous_id), k.functions_of(previous_id)]
        await self._scripts(
            "dep_register",
            keys,
            [
                mode,
                config.deployment_id,
                config.endpoint,
                to_epoch_ms(now),
                k.function_prefix(),
                previous_id or "",
                *config.functions,
            ],
        )

    @translated
    async def _register(
        self, config: DeploymentConfig, previous_id: str | None, now: datetime
    ) -> None:
        await self._write("start", config, previous_id, now)

    @translated
    async def _heartbeat(self, config: DeploymentConfig, now: datetime) -> None:
        await self._write("heartbeat", config, None, now)

    @translated
    async def _unregister(self, deployment_id: str) -> None:
        k = self._keys
        await self._scripts(
            "dep_unregister",
            [k.deployments(), k.deployment(deployment_id), k.functions_of(deployment_id)],
            [deployment_id, k.function_prefix()],
        )

    @translated
    async def _find_function(self, name: str, cutoff: datetime) -> list[DeploymentInfo]:
        k = self._keys
        reply = await self._scripts(
            "dep_find_function",
            [k.function(name), k.deployments()],
            [to_epoch_ms(cutoff), k.deployment_prefix()],
        )
        return list(rows.deployment_info(rows.Reader(reply)))

    @translated
    async def _list_deployments(self, cutoff: datetime) -> list[DeploymentInfo]:
        k = self._keys
        reply = await self._scripts(
            "dep_list", [k.deployments()], [to_epoch_ms(cutoff), k.deployment_prefix()]
        )
        return list(rows.deployment_info(rows.Reader(reply)))

    @translated
    async def _prune_deployments(self, cutoff: datetime) -> list[str]:
        k = self._keys
        removed = await self._scripts(
            "dep_prune",
            [k.deployments()],
            [
                to_epoch_ms(cutoff),
                k.deployment_prefix(),
                k.functions_of_prefix(),
                k.function_prefix(),
            ],
        )
        return [rows.text(item) for item in removed] if isinstance(removed, list) else []
