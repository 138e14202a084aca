"""The Redis key layout: slots, leftovers, failed calls, TTLs, the layout version.

Spec: 01 §5.3 and §6 items 53, 58; 02 §5.4; 03 §6.3 (no TTL); 00 §5 (layout version).
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from redis.crc import key_slot

from pikku_storage import (
    Channel,
    ConflictError,
    DeploymentConfig,
    InvalidValue,
    ManualClock,
    Message,
    MessageRole,
    NotFoundError,
    SchemaMismatch,
    StepNotFound,
    Storage,
    ToolCall,
    ToolCallApproval,
)
from pikku_storage.redis._keys import bucket_of, layout_key
from tests.redis._redis_support import buckets_of, client_of, key_count, prefix_of, snapshot

BACKENDS = pytest.mark.pikku_backends("redis", "redis-cluster", "fakeredis")


def _slots(keys: list[str]) -> set[int]:
    return {key_slot(key.encode()) for key in keys}


async def _members_naming(storage: Storage, needle: str) -> list[str]:
    """Index entries (zset members, hash fields or values, set members) holding `needle`."""
    found = []
    for key, (kind, value, _) in (await snapshot(client_of(storage), prefix_of(storage))).items():
        if kind == "zset":
            assert isinstance(value, list)
            items = [member for member, _ in value]
        elif kind == "hash":
            assert isinstance(value, dict)
            items = [*value, *value.values()]
        elif kind in ("set", "list"):
            assert isinstance(value, list)
            items = list(value)
        else:
            items = []
        found += [f"{key} -> {item}" for item in items if needle in item]
    return found


async def _full_run(storage: Storage) -> tuple[str, list[str]]:
    wf = storage.workflows
    run_id = await wf.create_run("flow", {"x": 1}, graph_hash="g")
    await wf.update_run_state(run_id, "k", 1)
    step_ids = []
    for name in ("a", "b:c", "名前"):
        step = await wf.insert_step_state(run_id, name, None, None, retries=1)
        step_ids.append(step.step_id)
        await wf.set_step_error(step.step_id, {"message": "x"})
        await wf.create_retry_attempt(step.step_id, "running")
        await wf.set_step_result(step.step_id, 1)
        await wf.set_branch_taken(step.step_id, "left")
    await wf.update_run_status(run_id, "completed")
    return run_id, step_ids


@BACKENDS
async def test_a_runs_keys_share_one_slot_and_delete_run_leaves_nothing(
    pikku_storage: Storage,
) -> None:
    """01 §6 item 58: a run's data keys share its slot; after `delete_run` no key, index entry
    or step reference names the run."""
    run_id, step_ids = await _full_run(pikku_storage)
    keep_id, _ = await _full_run(pikku_storage)
    client, prefix = client_of(pikku_storage), prefix_of(pikku_storage)
    run_keys = [key for key in await snapshot(client, prefix) if run_id in key]
    assert sorted(key.rsplit(":", 1)[1] for key in run_keys) == sorted(
        ["run", "state", "steps", "stepids", "order", "attempts", "history"]
    )
    assert len(_slots(run_keys)) == 1
    assert await _members_naming(pikku_storage, run_id) != []
    assert await pikku_storage.workflow_runs.delete_run(run_id)
    assert [key for key in await snapshot(client, prefix) if run_id in key] == []
    assert await _members_naming(pikku_storage, run_id) == []
    for step_id in step_ids:
        assert await _members_naming(pikku_storage, step_id) == []
    assert await pikku_storage.workflow_runs.get_run(keep_id) is not None
    assert await pikku_storage.workflow_runs.get_distinct_workflow_names() == ["flow"]


@BACKENDS
async def test_prune_runs_leaves_no_key_or_index_entry_of_a_pruned_run(
    pikku_storage: Storage, pikku_clock: ManualClock
) -> None:
    """01 §6 items 47, 58: pruning removes whole runs, index entries and names included."""
    run_ids = [(await _full_run(pikku_storage))[0] for _ in range(3)]
    pikku_clock.advance(10)
    pruned = await pikku_storage.workflow_runs.prune_runs(
        finished_before=pikku_clock.now(), batch_size=2
    )
    assert pruned == 3
    client, prefix = client_of(pikku_storage), prefix_of(pikku_storage)
    left = sorted(key.removeprefix(prefix) for key in await snapshot(client, prefix))
    if buckets_of(pikku_storage):  # cluster: the sequence in its own tag, the bucket count
        assert left == [":layout", ":layout-buckets", f":wf:{{{prefix}.seq}}:seq"]
    else:
        assert left == [":layout", f":wf:{{{prefix}}}:seq"]
    for run_id in run_ids:
        assert await _members_naming(pikku_storage, run_id) == []
    assert await pikku_storage.workflow_runs.get_distinct_workflow_names() == []


@BACKENDS
async def test_delete_run_racing_step_writes_leaves_no_key_of_the_run(
    pikku_storage: Storage,
) -> None:
    """01 §6 item 53: each racing write lands before the delete or raises `StepNotFound`, and
    no key, index entry or step reference of the run remains."""
    wf = pikku_storage.workflows
    for _ in range(5):
        run_id = await wf.create_run("race", None)
        steps = [await wf.insert_step_state(run_id, f"s{i}", None, None) for i in range(4)]

        async def write(step_id: str) -> None:
            with contextlib.suppress(StepNotFound):
                await wf.set_step_running(step_id)
                await wf.claim_step(step_id)
                await wf.create_retry_attempt(step_id, "pending")
                await wf.set_step_result(step_id, 1)

        await asyncio.gather(
            *(write(s.step_id) for s in steps), pikku_storage.workflow_runs.delete_run(run_id)
        )
        client, prefix = client_of(pikku_storage), prefix_of(pikku_storage)
        assert [key for key in await snapshot(client, prefix) if run_id in key] == []
        assert await _members_naming(pikku_storage, run_id) == []
        for step in steps:
            assert await _members_naming(pikku_storage, step.step_id) == []


@BACKENDS
async def test_a_threads_keys_share_one_slot_and_delete_thread_leaves_nothing(
    pikku_storage: Storage,
) -> None:
    """02 §5.4: a thread's keys share its (escaped) slot; its deletion leaves no key or index
    entry, and an id that looks like a hash tag or separator cannot escape it."""
    ai, state = pikku_storage.ai_storage, pikku_storage.ai_run_state
    thread_id = "t}{:%x"
    await ai.create_thread("res:{1}", thread_id=thread_id, title="t", metadata={"a": 1})
    await ai.save_messages(
        thread_id,
        [
            Message(id="m1", role=MessageRole.USER, content="hi"),
            Message(
                id="m2",
                role=MessageRole.ASSISTANT,
                content=None,
                tool_calls=[ToolCall(id="c:1", name="n", args={})],
            ),
        ],
    )
    await ai.save_working_memory(thread_id, "thread", {"w": 1})
    run_id = await state.create_run(
        agent_name="agent{x}",
        thread_id=thread_id,
        resource_id="r",
        pending_approvals=[ToolCallApproval(tool_call_id="c:1", tool_name="n", args={})],
    )
    await state.resolve_approval("c:1", "approved")
    await state.update_run(
        run_id, pending_approvals=[ToolCallApproval(tool_call_id="c:2", tool_name="n", args=1)]
    )
    client, prefix = client_of(pikku_storage), prefix_of(pikku_storage)
    tag = "{t%7D%7B%3A%25x}"
    if buckets := buckets_of(pikku_storage):  # cluster: the bucket's tag, then the escaped id
        tag = f"{{{prefix}.{bucket_of(thread_id, buckets)}}}:t%7D%7B%3A%25x"
    thread_keys = [key for key in await snapshot(client, prefix) if tag in key]
    assert sorted(key.split(tag + ":", 1)[1].replace(run_id, "R") for key in thread_keys) == [
        "agents",
        "calls",
        "memory",
        "msg",
        "msg-ids",
        "msgs",
        "run:R",
        "run:R:decisions",
        "run:R:pending",
        "runs",
        "thread",
    ]  # no `results` key: no result was saved
    assert len(_slots(thread_keys)) == 1
    assert await pikku_storage.agent_runs.delete_thread(thread_id)
    assert [key for key in await snapshot(client, prefix) if tag in key] == []
    assert await _members_naming(pikku_storage, thread_id) == []
    assert await _members_naming(pikku_storage, run_id) == []
    assert await pikku_storage.agent_runs.get_distinct_agent_names() == []


async def _failing_calls(storage: Storage, clock: ManualClock) -> None:
    """Calls that must raise (or find nothing) and write nothing."""
    wf, runs = storage.workflows, storage.workflow_runs
    ai, state, channels = storage.ai_storage, storage.ai_run_state, storage.channels
    unknown = "00000000-0000-4000-8000-000000000000"
    run_id = (await runs.list_runs(limit=1))[0].id
    attempts = [
        wf.update_run_status(unknown, "failed"),
        wf.update_run_state(unknown, "k", 1),
        wf.insert_step_state(unknown, "a", None, None),
        wf.insert_step_state(run_id, "a", None, None),
        wf.set_step_running(unknown),
        wf.claim_step(unknown),
        wf.create_retry_attempt(unknown, "pending"),
        wf.set_branch_taken(unknown, "b"),
        wf.update_run_status(run_id, "bogus"),
        wf.update_run_state(run_id, "k", {1, 2}),  # type: ignore[arg-type]  # not JSON: refused
        wf.get_step_state(run_id, "missing"),
        ai.create_thread("res", thread_id="t1"),
        ai.save_messages("missing", [Message(id="x", role=MessageRole.USER, content="x")]),
        ai.save_messages("t1", [Message(id="m1", role=MessageRole.USER, content="again")]),
        ai.save_messages(
            "t1",
            [Message(id="n", role=MessageRole.ASSISTANT, tool_calls=[ToolCall(id="c1", name="n")])],
        ),
        ai.save_working_memory("missing", "thread", {"a": 1}),
        state.create_run(agent_name="a", thread_id="missing", resource_id="r"),
        state.update_run(unknown, status="completed"),
        state.update_run(unknown, status="paused"),
        channels.add_channel(Channel(channel_id="c", channel_name="n")),
        channels.set_user_session("missing", {"a": 1}),
        channels.touch("missing"),
        channels.get_channel_and_session("missing"),
        channels.remove_channels("c"),
    ]
    for attempt in attempts:
        with pytest.raises((NotFoundError, ConflictError, InvalidValue)):
            await attempt
    assert not await storage.eventhub.subscribe("topic", "missing")
    assert not await storage.eventhub.unsubscribe("topic", "c")
    assert not await storage.agent_runs.delete_thread("missing")
    assert not await runs.delete_run(unknown)
    assert not await state.resolve_approval("nope", "approved")
    assert await runs.prune_runs(finished_before=clock.now()) == 0


@BACKENDS
async def test_failed_calls_leave_every_key_unchanged(
    pikku_storage: Storage, pikku_clock: ManualClock, pikku_backend_name: str
) -> None:
    """01 §6 item 58, 00 §6: calls on unknown ids, conflicts and bad input leave the key count
    (DBSIZE of the namespace) and every key's content as they were."""
    wf, ai = pikku_storage.workflows, pikku_storage.ai_storage
    run_id = await wf.create_run("flow", None)
    await wf.insert_step_state(run_id, "a", None, None)
    await ai.create_thread("res", thread_id="t1")
    await ai.save_messages(
        "t1",
        [
            Message(id="m1", role=MessageRole.USER, content="x"),
            Message(id="m2", role=MessageRole.ASSISTANT, tool_calls=[ToolCall(id="c1", name="n")]),
        ],
    )
    await pikku_storage.channels.add_channel(Channel(channel_id="c", channel_name="n"))
    client, prefix = client_of(pikku_storage), prefix_of(pikku_storage)
    before, count = await snapshot(client, prefix), await key_count(client, prefix)
    dbsize = await client.dbsize()
    await _failing_calls(pikku_storage, pikku_clock)
    assert await key_count(client, prefix) == count
    after = await snapshot(client, prefix)
    if buckets_of(pikku_storage):
        # on a cluster a create takes its insertion number from `{P.seq}` before its script
        # runs, so a refused create leaves a gap in that counter (never read as data)
        counters = {key for key in before if f"{{{prefix}.seq}}" in key}
        assert counters
        assert set(after) >= counters
        before = {key: value for key, value in before.items() if key not in counters}
        after = {key: value for key, value in after.items() if key not in counters}
    assert after == before
    if pikku_backend_name == "fakeredis":
        assert await client.dbsize() == dbsize  # a private server: DBSIZE itself is exact


@BACKENDS
async def test_no_channel_or_deployment_key_has_a_ttl(
    pikku_storage: Storage, pikku_clock: ManualClock
) -> None:
    """03 D11, §6.3: every channel, subscription and deployment key has TTL -1."""
    channels, hub, deployments = (
        pikku_storage.channels,
        pikku_storage.eventhub,
        pikku_storage.deployments,
    )
    await channels.add_channel(Channel(channel_id="c1", channel_name="n", opening_data=[1]))
    await channels.set_user_session("c1", {"s": 1})
    await hub.subscribe("topic", "c1")
    await deployments.start(DeploymentConfig(deployment_id="d", endpoint="e", functions=["f"]))
    pikku_clock.advance(1)
    await channels.touch("c1")
    await deployments.heartbeat()
    keys = await snapshot(client_of(pikku_storage), prefix_of(pikku_storage))
    at = 3 if buckets_of(pikku_storage) else 1  # cluster: after `P:ch:{P.ch}` / `P:dep:{P.dep}`
    families = {parts[at] for parts in (key.split(":") for key in keys) if len(parts) > at}
    assert {"channel", "channels-seen", "channel-topics", "topic"} <= families
    assert {"deployment", "deployments", "deployment-functions", "function"} <= families
    assert {key: ttl for key, (_, _, ttl) in keys.items() if ttl != -1} == {}
    await deployments.stop()


@BACKENDS
async def test_init_records_the_layout_version_and_refuses_a_newer_one(
    pikku_storage: Storage,
) -> None:
    """00 §5: a layout-version key per prefix; a newer layout raises `SchemaMismatch`."""
    client, prefix = client_of(pikku_storage), prefix_of(pikku_storage)
    assert await client.get(layout_key(prefix)) in (b"2", "2")
    await client.set(layout_key(prefix), "3")
    for service in pikku_storage.services():
        with pytest.raises(SchemaMismatch, match="version 3"):
            await service.init()
    await client.set(layout_key(prefix), "2")
    await pikku_storage.init()
