"""Limits every backend enforces alike: JSON depth and int size, integer arguments, lock
timeouts, clocks at the edge of the calendar (see docs/concepts.md#values,
docs/services/workflows.md#locks; issue 17).

The limits are the shared codec's and validation's (`MAX_JSON_DEPTH`, `MAX_INT_DIGITS`,
`INT64_END`, `INT32_END`, `MAX_LOCK_WAIT`): a value past one is `InvalidValue` before any
write, and a value at one round-trips, on every backend.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

from pikku_storage import Storage
from pikku_storage._validate import INT32_END, INT64_END, MAX_LOCK_WAIT
from pikku_storage.clock import ManualClock
from pikku_storage.codec import MAX_INT_DIGITS, MAX_JSON_DEPTH, JsonValue
from pikku_storage.errors import InvalidValue
from pikku_storage.records import Channel, DeploymentConfig, DeploymentInfo, Message, MessageRole
from pikku_testing._types import StorageFactory
from pikku_testing.contract._builders_workflows import (
    expect_invalid,
    json_identical,
    new_run,
    new_step,
)

__all__ = [
    "ChannelLimitTests",
    "ClockLimitTests",
    "DeploymentLimitTests",
    "MessageLimitTests",
    "WorkflowLimitTests",
]

CALL_STACK_DEPTH = 400
"""Frames a caller may already have used when it reads (a framework, middleware, a test
runner): reads of the deepest storable value must still not recurse out."""


def nested(depth: int) -> JsonValue:
    """A value of exactly `depth` containers, alternating lists and objects, around a leaf."""
    value: JsonValue = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


async def _at_depth(frames: int, call: Awaitable[object]) -> object:
    """Await `call` from `frames` nested coroutine frames deeper than the caller."""
    if frames == 0:
        return await call
    return await _at_depth(frames - 1, call)


class WorkflowLimitTests:
    """JSON depth and int size on every workflow payload, integer bounds of `retries` and of
    `list_runs` paging, and lock timeouts past what a server can wait."""

    async def test_json_at_the_depth_limit_round_trips(self, storage: Storage) -> None:
        """docs/concepts.md#values: a value nested `MAX_JSON_DEPTH` levels is stored and read back
        exactly."""
        value = nested(MAX_JSON_DEPTH)
        run_id = await new_run(storage, input=value)
        run = await storage.workflows.get_run(run_id)
        assert run is not None
        assert json_identical(run.input, value)
        await storage.workflows.update_run_state(run_id, "deep", value)
        assert json_identical((await storage.workflows.get_run_state(run_id))["deep"], value)

    async def test_json_one_level_past_the_depth_limit_is_invalid_and_not_stored(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values: one level deeper is `InvalidValue` naming the limit, before any
        write."""
        too_deep = nested(MAX_JSON_DEPTH + 1)
        error = await expect_invalid("create_run", storage.workflows.create_run, "wf", too_deep)
        assert str(MAX_JSON_DEPTH) in str(error)
        assert await storage.workflow_runs.list_runs() == []
        run_id = await new_run(storage)
        await expect_invalid(
            "update_run_state", storage.workflows.update_run_state, run_id, "k", too_deep
        )
        await expect_invalid(
            "insert_step_state", storage.workflows.insert_step_state, run_id, "s", None, too_deep
        )
        await expect_invalid(
            "update_run_status",
            lambda: storage.workflows.update_run_status(
                run_id, "completed", output=nested(MAX_JSON_DEPTH + 50)
            ),
        )
        assert await storage.workflows.get_run_state(run_id) == {}
        assert await storage.workflow_runs.get_run_steps(run_id) == []
        run = await storage.workflows.get_run(run_id)
        assert run is not None
        assert run.status == "running"

    async def test_json_far_past_the_depth_limit_is_invalid_not_a_recursion_error(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values: a value nested 10,000 deep is refused like any other bad
        value."""
        await expect_invalid("create_run", storage.workflows.create_run, "wf", nested(10_000))

    async def test_deepest_value_reads_back_from_a_deep_call_stack(self, storage: Storage) -> None:
        """docs/concepts.md#values: reads stay far below the recursion limit, whatever stack the
        caller has."""
        value = nested(MAX_JSON_DEPTH)
        run_id = await new_run(storage, input=value)
        await storage.workflows.update_run_state(run_id, "deep", value)
        run = await _at_depth(CALL_STACK_DEPTH, storage.workflow_runs.get_run(run_id))
        listed = await _at_depth(CALL_STACK_DEPTH, storage.workflow_runs.list_runs())
        state = await _at_depth(CALL_STACK_DEPTH, storage.workflows.get_run_state(run_id))
        assert run is not None
        assert json_identical(run.input, value)  # type: ignore[attr-defined]  # a WorkflowRun
        assert [r.id for r in listed] == [run_id]  # type: ignore[attr-defined]  # a list
        assert json_identical(state["deep"], value)  # type: ignore[index]  # a dict

    async def test_ints_up_to_the_digit_limit_round_trip_and_longer_are_invalid(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values: ints of `MAX_INT_DIGITS` digits round-trip; one digit more is
        `InvalidValue`."""
        largest = 10**MAX_INT_DIGITS - 1
        for value in (largest, -largest, [largest]):
            run = await storage.workflows.get_run(await new_run(storage, input=value))
            assert run is not None
            assert json_identical(run.input, value)
        before = await storage.workflow_runs.list_runs()
        for value in (10**MAX_INT_DIGITS, -(10**MAX_INT_DIGITS), {"n": 10**MAX_INT_DIGITS}):
            error = await expect_invalid("create_run", storage.workflows.create_run, "wf", value)
            assert str(MAX_INT_DIGITS) in str(error)
        assert await storage.workflow_runs.list_runs() == before

    async def test_retries_up_to_int32_are_stored_and_larger_are_invalid(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md: `retries` fits an `int` column: 2**31 - 1 reads back, 2**31
        and 2**63 are
        `InvalidValue` on every backend."""
        run_id = await new_run(storage)
        live = await new_step(storage, run_id, "max", retries=INT32_END - 1)
        assert live.retries == INT32_END - 1
        state = await storage.workflows.get_step_state(run_id, "max")
        assert state.retries == INT32_END - 1
        for retries in (INT32_END, INT64_END, 2**100):
            await expect_invalid(
                f"retries={retries}",
                lambda r: storage.workflows.insert_step_state(run_id, "big", None, None, retries=r),
                retries,
            )
        steps = await storage.workflow_runs.get_run_steps(run_id)
        assert [step.step_name for step in steps] == ["max"]

    async def test_list_runs_offset_up_to_int64_works_and_larger_is_invalid(
        self, storage: Storage
    ) -> None:
        """docs/services/workflow-runs.md: `offset` is signed 64-bit: 2**63 - 1 gives `[]`, 2**63 is
        `InvalidValue`."""
        await new_run(storage)
        assert await storage.workflow_runs.list_runs(offset=INT64_END - 1) == []
        assert await storage.workflow_runs.list_runs(limit=1000, offset=INT64_END - 1) == []
        for offset in (INT64_END, 2**100):
            await expect_invalid(
                f"offset={offset}",
                lambda o: storage.workflow_runs.list_runs(offset=o),
                offset,
            )

    async def test_lock_timeout_longer_than_a_server_can_wait_acquires_a_free_lock(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#locks: a timeout past `MAX_LOCK_WAIT` (~24.8 days) waits
        without a deadline, on
        every backend alike (PostgreSQL once refused it even on a free lock)."""
        run_id = await new_run(storage)
        for timeout in (MAX_LOCK_WAIT + 1, 10.0**12, 10**30):
            async with storage.workflows.run_lock(run_id, timeout=timeout):
                pass
            async with storage.workflows.step_lock(run_id, "s", timeout=timeout):
                pass
            assert await storage.workflows.with_run_lock(run_id, _one, timeout=timeout) == 1
        async with storage.workflows.run_lock(run_id, timeout=MAX_LOCK_WAIT):
            pass


async def _one() -> int:
    return 1


class NaiveClock:
    """A `Clock` whose `now()` has no timezone: the mistake `datetime.now()` makes."""

    def now(self) -> datetime:
        return datetime(2026, 1, 1, 12, 0)  # naive on purpose


class ClockLimitTests:
    """A clock that returns naive datetimes is refused where it is read, on every service."""

    async def test_a_clock_returning_naive_datetimes_is_invalid_and_nothing_is_written(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#values: timestamps are aware UTC; a naive `now()` (local time of unknown
        zone) is
        `InvalidValue` at the first stamped write, never stored as a guess."""
        try:
            naive = await storage_factory(clock=NaiveClock())
        except InvalidValue:  # a backend whose init() stamps its schema version refuses there
            naive = None
        if naive is not None:
            await expect_invalid("create_run", naive.workflows.create_run, "wf", None)
            await expect_invalid("create_thread", lambda: naive.ai_storage.create_thread("r"))
            await expect_invalid(
                "add_channel",
                naive.channels.add_channel,
                Channel(channel_id="ch", channel_name="c"),
            )
            await expect_invalid(
                "start",
                naive.deployments.start,
                DeploymentConfig(deployment_id="d", endpoint="http://a", functions=["f"]),
            )
            await expect_invalid("list_deployments", naive.deployments.list_deployments)
        assert await storage.workflow_runs.list_runs() == []
        assert await storage.ai_storage.get_threads("r") == []
        assert (
            await storage.channels.prune_channels(last_seen_before=datetime.max.replace(tzinfo=UTC))
            == []
        )
        assert await storage.deployments.list_deployments() == []


class MessageLimitTests:
    """`last_n` bounds and JSON limits on message payloads."""

    async def test_get_messages_last_n_up_to_int64_works_and_larger_is_invalid(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-storage.md: `last_n` is signed 64-bit: 2**63 - 1 gives every message,
        2**63 is
        `InvalidValue` on every backend."""
        ai = storage.ai_storage
        thread = await ai.create_thread("r", thread_id="t-1")
        await ai.save_messages(
            thread.id,
            [
                Message(id="m1", role=MessageRole.USER, content="one"),
                Message(id="m2", role=MessageRole.ASSISTANT, content="two"),
            ],
        )
        got = await ai.get_messages(thread.id, last_n=INT64_END - 1)
        assert [message.id for message in got] == ["m1", "m2"]
        got = await ai.get_messages(thread.id, last_n=INT64_END - 1, cursor="m2")
        assert [message.id for message in got] == ["m1"]
        for last_n in (INT64_END, 2**100):
            await expect_invalid(
                f"last_n={last_n}", lambda n: ai.get_messages(thread.id, last_n=n), last_n
            )

    async def test_message_metadata_past_the_depth_limit_is_invalid_and_not_stored(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values: the codec's depth limit applies to every payload; nothing is
        written."""
        ai = storage.ai_storage
        thread = await ai.create_thread("r", thread_id="t-1")
        await expect_invalid(
            "create_thread metadata",
            lambda: ai.create_thread("r", thread_id="t-2", metadata={"m": nested(MAX_JSON_DEPTH)}),
        )
        await expect_invalid(
            "save_messages parts",
            ai.save_messages,
            thread.id,
            [Message(id="m1", role=MessageRole.USER, content=[{"type": "x", "v": nested(500)}])],
        )
        assert await ai.get_messages(thread.id) == []
        assert [t.id for t in await ai.get_threads("r")] == ["t-1"]


class ChannelLimitTests:
    """Integer bounds of `prune_channels` and JSON limits on opening data."""

    async def test_prune_channels_limit_up_to_int64_works_and_larger_is_invalid(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/channels.md: `limit` is signed 64-bit like every count."""
        await storage.channels.add_channel(Channel(channel_id="ch-1", channel_name="c"))
        cutoff = pikku_clock.now() + timedelta(seconds=1)
        for limit in (INT64_END, 2**100):
            await expect_invalid(
                f"limit={limit}",
                lambda n: storage.channels.prune_channels(last_seen_before=cutoff, limit=n),
                limit,
            )
        got = await storage.channels.prune_channels(last_seen_before=cutoff, limit=INT64_END - 1)
        assert got == ["ch-1"]

    async def test_opening_data_past_the_depth_limit_is_invalid_and_not_stored(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values: one level past the limit is `InvalidValue`; the channel is not
        created."""
        await expect_invalid(
            "add_channel",
            storage.channels.add_channel,
            Channel(channel_id="ch-1", channel_name="c", opening_data=nested(MAX_JSON_DEPTH + 1)),
        )
        await storage.channels.add_channel(
            Channel(channel_id="ch-1", channel_name="c", opening_data=nested(MAX_JSON_DEPTH))
        )


class DeploymentLimitTests:
    """Liveness with a clock at the start of the calendar."""

    async def test_a_clock_near_year_one_reads_and_prunes_without_overflow(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/deployments.md: the staleness cutoff (now - ttl) saturates at year 1
        instead of overflowing;
        a registration made then is live."""
        start = datetime(1, 1, 1, 0, 0, 1, tzinfo=UTC)
        pikku_clock.set(start)
        deployments = storage.deployments
        assert await deployments.list_deployments() == []
        assert await deployments.prune_deployments() == []
        await deployments.start(
            DeploymentConfig(deployment_id="d1", endpoint="http://a", functions=["f"])
        )
        expected = [DeploymentInfo(deployment_id="d1", endpoint="http://a", last_heartbeat=start)]
        try:
            assert await deployments.find_function("f") == expected
            assert await deployments.list_deployments() == expected
            assert await deployments.prune_deployments() == []
            pikku_clock.advance(deployments.heartbeat_ttl)
            assert await deployments.list_deployments() == []
            assert await deployments.prune_deployments() == ["d1"]
        finally:
            await deployments.stop()
