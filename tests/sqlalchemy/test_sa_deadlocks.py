"""Writes that touch the same rows in different orders, concurrently: deadlocks and
serialization failures are re-run inside the backend, so no driver error reaches a caller
(issue 11 item 1; 00 §6, 01 §5.4).

MySQL/InnoDB is the dialect that deadlocks here (`subscribe` takes a shared lock on the channel
row and then inserts a subscription, `remove_channels` locks the channel row and deletes the
subscriptions); the same races run on PostgreSQL and the SQLite preset, which must stay just as
quiet. Every call either succeeds or returns its contract answer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest

from pikku_storage import Storage
from pikku_storage.errors import ChannelNotFound, PikkuStorageError
from pikku_storage.records import Channel, Message, MessageRole

pytestmark = pytest.mark.pikku_backends("sqlalchemy-mysql", "sqlalchemy-postgres", "sqlite")

ROUNDS = 25


async def _race(calls: list[Callable[[], Awaitable[object]]]) -> list[BaseException]:
    """Run the calls together; the exceptions that are not contract errors."""
    results = await asyncio.gather(*(call() for call in calls), return_exceptions=True)
    return [
        r for r in results if isinstance(r, BaseException) and not isinstance(r, PikkuStorageError)
    ]


def _retries(caplog: pytest.LogCaptureFixture) -> int:
    return sum("re-run" in record.getMessage() for record in caplog.records)


async def test_subscribe_races_remove_channels_without_a_leaked_deadlock(
    pikku_storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    """The reported case: `subscribe` and `remove_channels` on one channel, many at once."""
    channels, hub = pikku_storage.channels, pikku_storage.eventhub
    leaked: list[BaseException] = []
    outcomes: Counter[str] = Counter()
    with caplog.at_level(logging.DEBUG, logger="pikku_storage._retry"):
        for round_ in range(ROUNDS):
            ids = [f"ch-{round_}-a", f"ch-{round_}-b"]
            for channel_id in ids:
                await channels.add_channel(Channel(channel_id=channel_id, channel_name="n"))

            async def subscribe(topic: str, channel_id: str) -> None:
                outcomes[str(await hub.subscribe(topic, channel_id))] += 1

            calls: list[Callable[[], Awaitable[object]]] = []
            for n in range(6):
                for channel_id in ids:
                    calls.append(functools.partial(subscribe, f"t{n}", channel_id))
            calls.append(functools.partial(channels.remove_channels, ids))
            calls.append(functools.partial(channels.remove_channels, list(reversed(ids))))
            calls.append(functools.partial(hub.unsubscribe, "t0", ids[0]))
            leaked += await _race(calls)
            for channel_id in ids:
                with pytest.raises(ChannelNotFound):
                    await channels.get_channel_and_session(channel_id)
            for n in range(6):
                # A subscription never outlives its channel.
                assert set(await hub.get_channel_ids_for_topic(f"t{n}")).isdisjoint(ids)
    assert leaked == []
    print(f"subscribe outcomes {dict(outcomes)}, transactions re-run: {_retries(caplog)}")


async def test_cross_ordered_writes_on_runs_threads_and_deployments_leak_nothing(
    pikku_storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    """Other pairs that lock the same rows in different orders: step writes against run
    deletion, run state against deletion, message saves against thread deletion, two
    removals of the same channels in opposite orders."""
    wf, runs, ai = pikku_storage.workflows, pikku_storage.workflow_runs, pikku_storage.ai_storage
    agents = pikku_storage.agent_runs
    leaked: list[BaseException] = []
    with caplog.at_level(logging.DEBUG, logger="pikku_storage._retry"):
        for round_ in range(ROUNDS):
            run_id = await wf.create_run("wf", {"round": round_})
            steps = [await wf.insert_step_state(run_id, f"s{n}", "rpc", None) for n in range(4)]
            thread = await ai.create_thread(f"res-{round_}")
            calls: list[Callable[[], Awaitable[object]]] = []
            for step in steps:
                calls.append(functools.partial(wf.set_step_running, step.step_id))
                calls.append(functools.partial(wf.set_step_result, step.step_id, {"ok": True}))
            for n in range(4):
                calls.append(functools.partial(wf.update_run_state, run_id, f"k{n}", n))
            calls.append(functools.partial(runs.delete_run, run_id))
            for n in range(4):
                message = Message(id=f"m{round_}-{n}", role=MessageRole.USER, content="hi")
                calls.append(functools.partial(ai.save_messages, thread.id, [message]))
            calls.append(functools.partial(agents.delete_thread, thread.id))
            leaked += await _race(calls)
            assert await wf.get_run(run_id) is None
            assert await agents.get_thread(thread.id) is None
    assert leaked == []
    print(f"transactions re-run: {_retries(caplog)}")
