"""Contract of `DeploymentService` (see docs/services/deployments.md, docs/contract.md, 53-56).

Every test names its spec item in its docstring. Deployment services with other options come
from `storage_factory(heartbeat_interval=..., heartbeat_ttl=..., prune_on_heartbeat=...,
clock=...)`: the factory forwards its keyword options to the backend's `open_storage`, where
every backend accepts them (docs/services/deployments.md), and a `clock` option replaces
`pikku_clock`. Each `Storage`
has its own `DeploymentService` instance, so two storages on one namespace model two
deployments. Real-time tests carry `@pytest.mark.real_time` and wait at most 0.2 s each.
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Final

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.errors import DeploymentNotStarted, InvalidValue
from pikku_storage.records import DeploymentConfig
from pikku_testing._types import StorageFactory
from pikku_testing.contract._builders_channels import (
    LONG,
    SwitchableClock,
    config,
    eventually,
    heartbeat_tasks,
    info,
    ms,
    unchecked,
)
from pikku_testing.contract._capabilities import Capability, requires
from pikku_testing.contract._deployments_lifecycle import DeploymentLifecycleContract
from pikku_testing.contract._limits import DeploymentLimitTests

__all__ = ["DeploymentServiceContract"]

FAST_INTERVAL: Final = 0.05  # seconds, real-time tests (docs/services/deployments.md item 40-42)
FAST_TTL: Final = 0.2
BAD_CONFIGS: Final = [
    pytest.param({"deployment_id": ""}, id="empty-id"),
    pytest.param({"deployment_id": "x" * 256}, id="256-char-id"),
    pytest.param({"deployment_id": 5}, id="int-id"),
    pytest.param({"endpoint": ""}, id="empty-endpoint"),
    pytest.param({"endpoint": "h" * 2049}, id="2049-char-endpoint"),
    pytest.param({"endpoint": "http://a\x00"}, id="nul-endpoint"),
    pytest.param({"endpoint": "http://a\ud800"}, id="lone-surrogate-endpoint"),
    pytest.param({"endpoint": None}, id="none-endpoint"),
    pytest.param({"functions": "fn"}, id="bare-str-functions"),
    pytest.param({"functions": ["fn", ""]}, id="empty-function"),
    pytest.param({"functions": ["fn", 5]}, id="int-function"),
    pytest.param({"functions": ["x" * 256]}, id="256-char-function"),
    pytest.param({"functions": 5}, id="int-functions"),
]


def _bad_config(change: dict[str, object]) -> DeploymentConfig:
    fields: dict[str, object] = {
        "deployment_id": "d1",
        "endpoint": "http://d1.internal:8080",
        "functions": ["fn"],
        **change,
    }
    return DeploymentConfig(**unchecked(fields))


class DeploymentServiceContract(DeploymentLimitTests, DeploymentLifecycleContract):
    """`DeploymentService`: registration, heartbeats, liveness and discovery
    (docs/services/deployments.md)."""

    # -- 28: constructor options --------------------------------------------------------------

    @pytest.mark.parametrize("interval", [0, -1, 0.0, math.nan, math.inf, -math.inf, True, "10"])
    async def test_constructor_rejects_a_bad_heartbeat_interval(
        self, storage_factory: StorageFactory, interval: object
    ) -> None:
        """docs/services/deployments.md item 28 (bad input)."""
        with pytest.raises(InvalidValue):
            await storage_factory(heartbeat_interval=interval)

    @pytest.mark.parametrize(
        ("interval", "ttl"),
        [
            pytest.param(10.0, 10.0, id="equal"),
            pytest.param(10.0, 5.0, id="below-interval"),
            pytest.param(0.0005, 0.0009, id="below-1ms"),
            pytest.param(10.0, math.nan, id="nan"),
            pytest.param(10.0, math.inf, id="infinite"),
            pytest.param(10.0, "30", id="str"),
        ],
    )
    async def test_constructor_rejects_a_bad_heartbeat_ttl(
        self, storage_factory: StorageFactory, interval: float, ttl: object
    ) -> None:
        """docs/services/deployments.md item 28 (bad input)."""
        with pytest.raises(InvalidValue):
            await storage_factory(heartbeat_interval=interval, heartbeat_ttl=ttl)

    @pytest.mark.parametrize("flag", [1, "yes", None])
    async def test_constructor_rejects_a_prune_on_heartbeat_that_is_not_a_bool(
        self, storage_factory: StorageFactory, flag: object
    ) -> None:
        """docs/services/deployments.md item 28 (bad input: wrong type)."""
        with pytest.raises(InvalidValue):
            await storage_factory(prune_on_heartbeat=flag)

    async def test_default_heartbeat_interval_and_ttl_are_10_and_30_seconds(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/services/deployments.md item 28."""
        assert storage.deployments.heartbeat_interval == 10.0
        assert storage.deployments.heartbeat_ttl == 30.0
        fast = await storage_factory(heartbeat_interval=FAST_INTERVAL, heartbeat_ttl=FAST_TTL)
        assert (fast.deployments.heartbeat_interval, fast.deployments.heartbeat_ttl) == (0.05, 0.2)

    # -- 29-32: registration and discovery ----------------------------------------------------

    async def test_start_registers_the_endpoint_with_last_heartbeat_now_in_whole_ms(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 29."""
        pikku_clock.set(datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC))
        await storage.deployments.start(config(functions=("f1", "f2")))
        expected = [info(last_heartbeat=datetime(2026, 3, 4, 5, 6, 7, 123000, tzinfo=UTC))]
        assert await storage.deployments.find_function("f1") == expected
        assert await storage.deployments.find_function("f2") == expected
        listed = await storage.deployments.list_deployments()
        assert listed == expected
        assert listed[0].last_heartbeat.utcoffset() == timedelta(0)

    async def test_reads_of_an_empty_store_return_nothing_without_start(
        self, storage: Storage
    ) -> None:
        """docs/services/deployments.md item 30."""
        assert await storage.deployments.find_function("unknown") == []
        assert await storage.deployments.list_deployments() == []
        assert await storage.deployments.prune_deployments() == []

    @pytest.mark.parametrize("name", ["", "x" * 256, "a\x00", 5, None])
    async def test_find_function_rejects_a_bad_name(self, storage: Storage, name: object) -> None:
        """docs/services/deployments.md item 30 (bad input)."""
        with pytest.raises(InvalidValue):
            await storage.deployments.find_function(unchecked(name))

    @pytest.mark.parametrize("change", BAD_CONFIGS)
    async def test_start_rejects_a_bad_config_and_registers_nothing(
        self, storage: Storage, change: dict[str, object]
    ) -> None:
        """docs/services/deployments.md item 31 (bad input)."""
        with pytest.raises(InvalidValue):
            await storage.deployments.start(_bad_config(change))
        assert await storage.deployments.list_deployments() == []
        assert await storage.deployments.find_function("fn") == []
        assert heartbeat_tasks() == []
        with pytest.raises(DeploymentNotStarted):
            await storage.deployments.heartbeat()

    async def test_start_rejects_a_value_that_is_not_a_config_and_registers_nothing(
        self, storage: Storage
    ) -> None:
        """docs/services/deployments.md item 31 (bad input: wrong type)."""
        record = {"deployment_id": "d1", "endpoint": "http://d1", "functions": ["fn"]}
        with pytest.raises(InvalidValue):
            await storage.deployments.start(unchecked(record))
        assert await storage.deployments.list_deployments() == []

    @pytest.mark.parametrize("change", BAD_CONFIGS)
    async def test_rejected_start_leaves_the_previous_registration_unchanged(
        self, storage: Storage, pikku_clock: ManualClock, change: dict[str, object]
    ) -> None:
        """docs/services/deployments.md item 31 (bad input)."""
        t0 = pikku_clock.now()
        await storage.deployments.start(config("d0", functions=("fn", "other")))
        pikku_clock.advance(5)
        with pytest.raises(InvalidValue):
            await storage.deployments.start(_bad_config(change))
        assert await storage.deployments.list_deployments() == [info("d0", last_heartbeat=t0)]
        assert await storage.deployments.find_function("other") == [info("d0", last_heartbeat=t0)]
        await storage.deployments.heartbeat()
        now = pikku_clock.now()
        assert await storage.deployments.list_deployments() == [info("d0", last_heartbeat=now)]

    async def test_deployment_without_functions_is_listed_but_never_found(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 32."""
        await storage.deployments.start(config(functions=()))
        t0 = pikku_clock.now()
        assert await storage.deployments.list_deployments() == [info(last_heartbeat=t0)]
        assert await storage.deployments.find_function("fn") == []

    async def test_duplicate_function_names_give_one_entry(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 32."""
        await storage.deployments.start(config(functions=("fn", "fn", "fn")))
        t0 = pikku_clock.now()
        assert await storage.deployments.find_function("fn") == [info(last_heartbeat=t0)]

    async def test_function_names_with_colons_unicode_and_spaces_are_distinct(
        self, storage: Storage, storage_factory: StorageFactory, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 32."""
        names = ["addon:fn", "fn", "fn ", "Fn", "fünktion", "😀", LONG]
        await storage.deployments.start(config("d1", functions=tuple(names[::2])))
        other = await storage_factory()
        await other.deployments.start(config("d2", functions=tuple(names[1::2])))
        t0 = pikku_clock.now()
        for index, name in enumerate(names):
            owner = "d1" if index % 2 == 0 else "d2"
            assert await storage.deployments.find_function(name) == [info(owner, last_heartbeat=t0)]
        assert await storage.deployments.find_function("addon") == []
        assert await storage.deployments.find_function("addon:fn ") == []

    # -- 33-38: liveness, heartbeats, order, restarts -----------------------------------------

    async def test_registration_is_live_before_ttl_and_stale_at_exactly_ttl(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 33."""
        t0 = pikku_clock.now()
        ttl = timedelta(seconds=storage.deployments.heartbeat_ttl)
        await storage.deployments.start(config())
        pikku_clock.set(t0 + ttl - ms(1))
        assert await storage.deployments.find_function("fn") == [info(last_heartbeat=t0)]
        assert await storage.deployments.list_deployments() == [info(last_heartbeat=t0)]
        pikku_clock.set(t0 + ttl)
        assert await storage.deployments.find_function("fn") == []
        assert await storage.deployments.list_deployments() == []

    async def test_heartbeat_stamps_now_and_extends_liveness(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 34."""
        t0 = pikku_clock.now()
        await storage.deployments.start(config())
        pikku_clock.set(t0 + timedelta(seconds=20))
        await storage.deployments.heartbeat()
        pikku_clock.set(t0 + timedelta(seconds=40))
        expected = [info(last_heartbeat=t0 + timedelta(seconds=20))]
        assert await storage.deployments.list_deployments() == expected
        assert await storage.deployments.find_function("fn") == expected

    async def test_heartbeat_revives_a_stale_registration(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 35."""
        await storage.deployments.start(config(functions=("f1", "f2")))
        pikku_clock.advance(storage.deployments.heartbeat_ttl)
        assert await storage.deployments.list_deployments() == []
        await storage.deployments.heartbeat()
        expected = [info(last_heartbeat=pikku_clock.now())]
        assert await storage.deployments.list_deployments() == expected
        assert await storage.deployments.find_function("f1") == expected
        assert await storage.deployments.find_function("f2") == expected

    async def test_heartbeat_recreates_a_pruned_registration_with_every_function(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 35."""
        await storage.deployments.start(config(endpoint="http://e", functions=("f1", "f2", "f3")))
        pikku_clock.advance(storage.deployments.heartbeat_ttl + 1)
        assert await storage.deployments.prune_deployments() == ["d1"]
        await storage.deployments.heartbeat()
        expected = [info(last_heartbeat=pikku_clock.now(), endpoint="http://e")]
        for name in ("f1", "f2", "f3"):
            assert await storage.deployments.find_function(name) == expected
        assert await storage.deployments.list_deployments() == expected

    async def test_deployments_list_freshest_heartbeat_first(
        self, storage: Storage, storage_factory: StorageFactory, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 36."""
        t0 = pikku_clock.now()
        services = [storage.deployments]
        services += [(await storage_factory()).deployments for _ in range(2)]
        for offset, (service, deployment_id) in enumerate(zip(services, "bca", strict=True)):
            pikku_clock.set(t0 + timedelta(seconds=offset))
            await service.start(config(deployment_id))
        expected = [
            info("a", last_heartbeat=t0 + timedelta(seconds=2)),
            info("c", last_heartbeat=t0 + timedelta(seconds=1)),
            info("b", last_heartbeat=t0),
        ]
        assert await storage.deployments.list_deployments() == expected
        assert await storage.deployments.find_function("fn") == expected

    async def test_deployments_with_the_same_heartbeat_list_by_id(
        self, storage: Storage, storage_factory: StorageFactory, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 36."""
        t0 = pikku_clock.now()
        other = await storage_factory()
        await storage.deployments.start(config("d-z"))
        pikku_clock.advance(0.0005)  # the same millisecond
        await other.deployments.start(config("d-m"))
        expected = [info("d-m", last_heartbeat=t0), info("d-z", last_heartbeat=t0)]
        assert await storage.deployments.list_deployments() == expected
        assert await storage.deployments.find_function("fn") == expected

    async def test_restart_replaces_functions_and_endpoint_exactly(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 37."""
        await storage.deployments.start(config(endpoint="http://one", functions=("a", "b")))
        pikku_clock.advance(5)
        await storage.deployments.start(config(endpoint="http://two", functions=("b", "c")))
        expected = [info(last_heartbeat=pikku_clock.now(), endpoint="http://two")]
        assert await storage.deployments.find_function("a") == []
        assert await storage.deployments.find_function("b") == expected
        assert await storage.deployments.find_function("c") == expected
        assert await storage.deployments.list_deployments() == expected

    async def test_restart_under_another_id_removes_the_earlier_id(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 38."""
        await storage.deployments.start(config("d1", functions=("f1",)))
        await storage.deployments.start(config("d2", functions=("f2",)))
        expected = [info("d2", last_heartbeat=pikku_clock.now())]
        assert await storage.deployments.list_deployments() == expected
        assert await storage.deployments.find_function("f1") == []
        assert await storage.deployments.find_function("f2") == expected

    # -- 39-42: the heartbeat task ------------------------------------------------------------

    async def test_repeated_start_keeps_exactly_one_heartbeat_task(self, storage: Storage) -> None:
        """docs/services/deployments.md item 39."""
        for endpoint in ("http://1", "http://2", "http://3"):
            await storage.deployments.start(config(endpoint=endpoint))
        assert len(heartbeat_tasks()) == 1

    @pytest.mark.real_time
    async def test_heartbeat_task_stamps_the_clock_time(
        self, storage_factory: StorageFactory, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 40."""
        fast = await storage_factory(heartbeat_interval=FAST_INTERVAL, heartbeat_ttl=FAST_TTL)
        await fast.deployments.start(config())
        pikku_clock.advance(100)
        expected = [info(last_heartbeat=pikku_clock.now())]

        async def beaten() -> bool:
            return await fast.deployments.list_deployments() == expected

        assert await eventually(beaten)

    @pytest.mark.real_time
    async def test_heartbeat_task_logs_failures_and_keeps_beating(
        self,
        storage: Storage,
        storage_factory: StorageFactory,
        pikku_clock: ManualClock,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """docs/services/deployments.md item 41."""
        clock = SwitchableClock(pikku_clock)
        fast = await storage_factory(
            clock=clock, heartbeat_interval=FAST_INTERVAL, heartbeat_ttl=FAST_TTL
        )
        await fast.deployments.start(config())
        caplog.set_level(logging.WARNING, logger="pikku_storage.deployments")
        clock.failing = True

        async def warned() -> bool:
            return any(
                record.name == "pikku_storage.deployments"
                and record.levelno == logging.WARNING
                and record.exc_info is not None
                and "d1" in record.getMessage()
                for record in caplog.records
            )

        assert await eventually(warned)
        assert len(heartbeat_tasks()) == 1
        clock.failing = False
        pikku_clock.advance(100)
        expected = [info(last_heartbeat=pikku_clock.now())]

        async def beaten() -> bool:
            return await storage.deployments.list_deployments() == expected

        assert await eventually(beaten)

    @pytest.mark.real_time
    async def test_heartbeat_task_prunes_stale_registrations_when_enabled(
        self, storage: Storage, storage_factory: StorageFactory, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 42."""
        await storage.deployments.start(config("slow"))  # interval 10 s: it never beats here
        fast = await storage_factory(
            prune_on_heartbeat=True, heartbeat_interval=FAST_INTERVAL, heartbeat_ttl=FAST_TTL
        )
        await fast.deployments.start(config("fast"))
        pikku_clock.advance(1)  # "slow" is stale by the fast instance's ttl only

        async def pruned() -> bool:
            listed = await storage.deployments.list_deployments()
            return [entry.deployment_id for entry in listed] == ["fast"]

        assert await eventually(pruned)
        assert await fast.deployments.prune_deployments() == []

    @pytest.mark.real_time
    async def test_heartbeat_task_keeps_stale_registrations_when_pruning_is_off(
        self, storage: Storage, storage_factory: StorageFactory, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md item 42."""
        await storage.deployments.start(config("slow"))
        fast = await storage_factory(
            prune_on_heartbeat=False, heartbeat_interval=FAST_INTERVAL, heartbeat_ttl=FAST_TTL
        )
        await fast.deployments.start(config("fast"))
        for _ in range(2):  # after the second beat the first tick has fully run
            pikku_clock.advance(1)
            expected = [info("fast", last_heartbeat=pikku_clock.now())]

            async def beaten(expected: object = expected) -> bool:
                return await fast.deployments.list_deployments() == expected

            assert await eventually(beaten)
        assert await fast.deployments.prune_deployments() == ["slow"]

    # -- 53-56: concurrency, isolation, persistence -------------------------------------------

    async def test_concurrent_starts_keep_one_task_and_one_whole_config(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/concepts.md#concurrency item 53."""
        configs = [config(f"d{i}", endpoint=f"http://e{i}", functions=(f"f{i}",)) for i in range(3)]
        await asyncio.gather(*(storage.deployments.start(c) for c in configs))
        assert len(heartbeat_tasks()) == 1
        listed = await storage.deployments.list_deployments()
        assert len(listed) == 1
        winner = next(c for c in configs if c.deployment_id == listed[0].deployment_id)
        now = pikku_clock.now()
        assert listed == [info(winner.deployment_id, last_heartbeat=now, endpoint=winner.endpoint)]
        for c in configs:
            found = await storage.deployments.find_function(c.functions[0])
            assert found == (listed if c is winner else [])

    async def test_heartbeat_racing_prune_leaves_the_registration_live(
        self, storage: Storage, storage_factory: StorageFactory, pikku_clock: ManualClock
    ) -> None:
        """docs/concepts.md#concurrency item 54."""
        other = await storage_factory()
        await storage.deployments.start(config())
        pikku_clock.advance(storage.deployments.heartbeat_ttl)
        await asyncio.gather(storage.deployments.heartbeat(), other.deployments.prune_deployments())
        expected = [info(last_heartbeat=pikku_clock.now())]
        assert await other.deployments.list_deployments() == expected
        assert await other.deployments.find_function("fn") == expected

    async def test_stop_racing_heartbeat_leaves_no_registration(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 54."""
        other = await storage_factory()
        await storage.deployments.start(config())
        stopped, beat = await asyncio.gather(
            storage.deployments.stop(), storage.deployments.heartbeat(), return_exceptions=True
        )
        assert stopped is None
        assert beat is None or isinstance(beat, DeploymentNotStarted)
        assert await other.deployments.list_deployments() == []
        assert await other.deployments.find_function("fn") == []

    async def test_deployments_of_another_namespace_are_invisible(
        self, storage: Storage, storage_factory: StorageFactory, pikku_clock: ManualClock
    ) -> None:
        """docs/concepts.md#lifecycle-and-namespaces item 55."""
        isolated = await storage_factory(isolated=True)
        await storage.deployments.start(config("d1"))
        assert await isolated.deployments.list_deployments() == []
        assert await isolated.deployments.find_function("fn") == []
        await isolated.deployments.start(config("d2"))
        pikku_clock.advance(storage.deployments.heartbeat_ttl)
        assert await isolated.deployments.prune_deployments() == ["d2"]
        assert await storage.deployments.prune_deployments() == ["d1"]

    @requires(Capability.PERSISTENT)
    async def test_second_instance_sees_registrations(
        self, storage: Storage, storage_factory: StorageFactory, pikku_clock: ManualClock
    ) -> None:
        """docs/concepts.md#lifecycle-and-namespaces item 56."""
        await storage.deployments.start(config(endpoint="http://e", functions=("f1", "f2")))
        other = await storage_factory()
        expected = [info(last_heartbeat=pikku_clock.now(), endpoint="http://e")]
        assert await other.deployments.list_deployments() == expected
        assert await other.deployments.find_function("f2") == expected
