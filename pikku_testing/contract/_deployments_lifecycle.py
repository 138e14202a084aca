"""`DeploymentService` stop, close, pruning and multi-instance tests (docs/contract.md item 43-46),
the
base of `DeploymentServiceContract`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.errors import DeploymentNotStarted, PikkuStorageError
from pikku_testing._types import StorageFactory
from pikku_testing.contract._base import ContractBase
from pikku_testing.contract._builders_channels import config, heartbeat_tasks, info, ms

__all__ = ["DeploymentLifecycleContract"]


class DeploymentLifecycleContract(ContractBase):
    """How a deployment leaves discovery: `stop`, `close`, `prune_deployments`
    (docs/services/deployments.md)."""

    async def test_stop_ends_the_task_and_unregisters_at_once(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/services/deployments.md item 43."""
        observer = await storage_factory()
        await storage.deployments.start(config())
        assert len(heartbeat_tasks()) == 1
        await storage.deployments.stop()
        assert heartbeat_tasks() == []
        assert await observer.deployments.list_deployments() == []
        assert await observer.deployments.find_function("fn") == []

    async def test_close_of_a_started_service_unregisters(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/services/deployments.md item 43."""
        other = await storage_factory()
        await other.deployments.start(config())
        await other.deployments.close()
        assert heartbeat_tasks() == []
        assert await storage.deployments.list_deployments() == []
        assert await storage.deployments.find_function("fn") == []

    async def test_stop_twice_without_start_or_after_a_prune_raises_nothing(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 43."""
        await storage.deployments.stop()
        await storage.deployments.start(config())
        await storage.deployments.stop()
        await storage.deployments.stop()
        await storage.deployments.start(config())
        pikku_clock.advance(storage.deployments.heartbeat_ttl)
        assert await storage.deployments.prune_deployments() == ["d1"]
        await storage.deployments.stop()
        assert await storage.deployments.list_deployments() == []

    async def test_heartbeat_before_start_raises_deployment_not_started(
        self, storage: Storage
    ) -> None:
        """docs/services/deployments.md item 44."""
        with pytest.raises(DeploymentNotStarted) as raised:
            await storage.deployments.heartbeat()
        assert isinstance(raised.value, PikkuStorageError)
        assert isinstance(raised.value, RuntimeError)
        assert str(raised.value) == "Deployment service not started"
        assert await storage.deployments.list_deployments() == []

    async def test_heartbeat_after_stop_raises_and_reads_and_restart_still_work(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 44."""
        await storage.deployments.start(config("d1"))
        await storage.deployments.stop()
        with pytest.raises(DeploymentNotStarted):
            await storage.deployments.heartbeat()
        assert await storage.deployments.list_deployments() == []
        assert await storage.deployments.find_function("fn") == []
        pikku_clock.advance(1)
        await storage.deployments.start(config("d2"))
        expected = [info("d2", last_heartbeat=pikku_clock.now())]
        assert await storage.deployments.list_deployments() == expected
        assert await storage.deployments.find_function("fn") == expected
        await storage.deployments.heartbeat()

    async def test_prune_deployments_returns_stale_ids_sorted_and_keeps_live_ones(
        self, storage: Storage, storage_factory: StorageFactory, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 45."""
        t0 = pikku_clock.now()
        ttl = timedelta(seconds=storage.deployments.heartbeat_ttl)
        services = [(await storage_factory()).deployments for _ in range(3)]
        await services[0].start(config("d-c"))
        await services[1].start(config("d-a"))
        pikku_clock.set(t0 + ttl / 2)
        await services[2].start(config("d-b"))
        pikku_clock.set(t0 + ttl + ms(1))
        assert await storage.deployments.prune_deployments() == ["d-a", "d-c"]
        assert await storage.deployments.list_deployments() == [
            info("d-b", last_heartbeat=t0 + ttl / 2)
        ]
        assert await storage.deployments.prune_deployments() == []
        assert await storage.deployments.find_function("fn") == [
            info("d-b", last_heartbeat=t0 + ttl / 2)
        ]

    async def test_prune_deployments_removes_a_registration_at_exactly_ttl(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 45."""
        t0 = pikku_clock.now()
        ttl = timedelta(seconds=storage.deployments.heartbeat_ttl)
        await storage.deployments.start(config())
        pikku_clock.set(t0 + ttl - ms(1))
        assert await storage.deployments.prune_deployments() == []
        pikku_clock.set(t0 + ttl)
        assert await storage.deployments.prune_deployments() == ["d1"]
        pikku_clock.set(t0)
        assert await storage.deployments.list_deployments() == []

    async def test_instances_are_visible_to_a_third_and_stop_removes_only_their_own(
        self, storage: Storage, storage_factory: StorageFactory, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 46."""
        second = (await storage_factory()).deployments
        observer = (await storage_factory()).deployments  # never started
        t0 = pikku_clock.now()
        await storage.deployments.start(config("d-a"))
        await second.start(config("d-b"))
        both = [info("d-a", last_heartbeat=t0), info("d-b", last_heartbeat=t0)]
        assert await observer.list_deployments() == both
        assert await observer.find_function("fn") == both
        await storage.deployments.stop()
        assert await observer.list_deployments() == [info("d-b", last_heartbeat=t0)]
        await second.stop()
        assert await observer.list_deployments() == []
