"""The commands the Redis backend sends: never SCAN or KEYS, and list reads of constant cost.

A spy wraps the client's `execute_command` (no MONITOR), so every command of every call is
seen, scripts by name. Spec: 01 §6 item 57, 02 §6 item 66, 03 §7 (backend-specific checks).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import timedelta
from importlib import resources

import pytest
from redis.asyncio import Redis

from pikku_storage import (
    AgentCallApproval,
    Channel,
    ConflictError,
    DeploymentConfig,
    InvalidValue,
    ManualClock,
    Message,
    MessageRole,
    RunNotFound,
    StepNotFound,
    Storage,
    ThreadNotFound,
    ToolCall,
    ToolCallApproval,
    ToolResult,
    Usage,
)
from pikku_storage.redis import open_storage
from tests.redis._redis_support import CommandSpy, PrivateRedis, client_of

BACKENDS = pytest.mark.pikku_backends("redis", "fakeredis")


async def _tour(storage: Storage, clock: ManualClock) -> None:
    """Every public method of the eight services, on success and failure paths."""
    wf, runs = storage.workflows, storage.workflow_runs
    run_id = await wf.create_run("flow", {"n": 1}, graph_hash="g1")
    await wf.update_run_state(run_id, "k", [1])
    await wf.get_run_state(run_id)
    step = await wf.insert_step_state(run_id, "a", "rpc", {"d": 1}, retries=1, retry_delay=5)
    with pytest.raises(ConflictError):
        await wf.insert_step_state(run_id, "a", None, None)
    await wf.get_step_state(run_id, "a")
    with pytest.raises(StepNotFound):
        await wf.get_step_state(run_id, "missing")
    await wf.set_step_scheduled(step.step_id)
    await wf.claim_step(step.step_id)
    await wf.claim_step(step.step_id)
    await wf.set_step_running(step.step_id)
    await wf.set_step_error(step.step_id, {"message": "no"})
    await wf.create_retry_attempt(step.step_id, "pending")
    await wf.set_step_result(step.step_id, {"ok": True})
    await wf.set_branch_taken(step.step_id, "left")
    with pytest.raises(StepNotFound):
        await wf.set_step_running("00000000-0000-4000-8000-000000000000")
    await wf.get_completed_graph_state(run_id)
    await wf.get_nodes_without_steps(run_id, ["a", "b"])
    await wf.get_node_results(run_id, ["a", "b"])
    await wf.upsert_workflow_version("flow", "g1", {"nodes": []}, "dsl")
    await wf.get_workflow_version("flow", "g1")
    async with wf.run_lock(run_id, timeout=0), wf.step_lock(run_id, "a", timeout=0):
        pass
    await wf.with_run_lock(run_id, lambda: asyncio.sleep(0), timeout=0)
    await wf.update_run_status(run_id, "completed", output=1)
    with pytest.raises(RunNotFound):
        await wf.update_run_status("00000000-0000-4000-8000-000000000000", "failed")
    await runs.list_runs()
    await runs.list_runs(workflow_name="flow", status="completed", limit=5, offset=1)
    await runs.get_run(run_id)
    await runs.get_run_steps(run_id)
    await runs.get_run_history(run_id)
    await runs.get_distinct_workflow_names()
    await runs.get_workflow_version("flow", "g1")
    other = await wf.create_run("flow", None)
    await runs.delete_run(other)
    clock.advance(60)
    await runs.prune_runs(finished_before=clock.now(), batch_size=1)

    ai, state, console = storage.ai_storage, storage.ai_run_state, storage.agent_runs
    await ai.create_thread("res", thread_id="t:1", title="T", metadata={"m": 1})
    with pytest.raises(ConflictError):
        await ai.create_thread("res", thread_id="t:1")
    await ai.get_thread("t:1")
    await ai.get_threads("res")
    call = ToolCall(id="c1", name="search", args={"q": "x"})
    await ai.save_messages(
        "t:1",
        [
            Message(id="m1", role=MessageRole.USER, content="hi"),
            Message(
                id="m2", role=MessageRole.ASSISTANT, content=[{"type": "text"}], tool_calls=[call]
            ),
        ],
    )
    await ai.save_messages(
        "t:1",
        [
            Message(
                id="r",
                role=MessageRole.TOOL,
                tool_results=[ToolResult(id="c1", name="search", result="found")],
            )
        ],
    )
    with pytest.raises(InvalidValue):
        await ai.save_messages(
            "t:1",
            [
                Message(
                    id="r",
                    role=MessageRole.TOOL,
                    tool_results=[ToolResult(id="nope", name="search", result="x")],
                )
            ],
        )
    with pytest.raises(ThreadNotFound):
        await ai.save_messages("t:missing", [])
    await ai.get_messages("t:1")
    await ai.get_messages("t:1", last_n=1)
    await ai.get_messages("t:1", cursor="m2")
    await ai.save_working_memory("t:1", "thread", {"w": 1})
    await ai.save_working_memory("res", "resource", {"w": 2})
    await ai.get_working_memory("t:1", "thread")
    await ai.delete_working_memory("res", "resource")
    run = await state.create_run(
        agent_name="agent",
        thread_id="t:1",
        resource_id="res",
        pending_approvals=[ToolCallApproval(tool_call_id="c1", tool_name="search", args={})],
    )
    await state.update_run(
        run,
        status="suspended",
        usage=Usage(input_tokens=1),
        pending_approvals=[
            AgentCallApproval(
                tool_call_id="c2",
                agent_name="sub",
                agent_run_id="r2",
                display_tool_name="d",
                display_args=None,
            )
        ],
    )
    await state.get_run(run)
    await state.get_runs_by_thread("t:1")
    await state.find_run_by_tool_call_id("c2")
    await state.resolve_approval("c2", "approved")
    await state.resolve_approval("c2", "denied", run_id=run)
    await state.get_approval_decisions(run)
    await console.list_threads(agent_name="agent", resource_id="res")
    await console.get_thread("t:1")
    await console.get_thread_messages("t:1")
    await console.get_thread_runs("t:1")
    await console.get_distinct_agent_names()
    await ai.create_thread("res", thread_id="t:2")
    await ai.delete_thread("t:2")
    await console.delete_thread("t:1")
    await ai.create_thread("res", thread_id="t:3")
    clock.advance(60)
    await console.prune_threads(updated_before=clock.now(), batch_size=1)

    channels, hub, deployments = storage.channels, storage.eventhub, storage.deployments
    await channels.add_channel(Channel(channel_id="ch", channel_name="n", opening_data={}))
    await channels.set_user_session("ch", {"u": 1})
    await channels.get_channel_and_session("ch")
    await channels.touch("ch")
    await hub.subscribe("topic", "ch")
    await hub.get_channel_ids_for_topic("topic")
    await hub.unsubscribe("topic", "ch")
    await hub.subscribe("topic", "ch")
    await channels.remove_channels(["ch"])
    await channels.add_channel(Channel(channel_id="old", channel_name="n"))
    clock.advance(60)
    await channels.prune_channels(last_seen_before=clock.now() - timedelta(seconds=1), limit=5)
    await deployments.start(
        DeploymentConfig(deployment_id="d", endpoint="http://x", functions=["f"])
    )
    await deployments.heartbeat()
    await deployments.find_function("f")
    await deployments.list_deployments()
    clock.advance(3600)
    await deployments.prune_deployments()
    await deployments.heartbeat()
    await deployments.stop()


@BACKENDS
async def test_no_method_sends_scan_or_keys(
    pikku_storage: Storage, pikku_clock: ManualClock
) -> None:
    """01 §6 item 57, 02 §6 item 66: the recorded commands of every method hold no SCAN/KEYS."""
    spy = CommandSpy(client_of(pikku_storage))
    with spy.recording():
        await _tour(pikku_storage, pikku_clock)
    assert len(spy.commands) > 100
    assert spy.forbidden() == []


def test_no_lua_script_calls_scan_or_keys() -> None:
    """Commands inside scripts are invisible to a client spy: the script texts are checked."""
    pattern = re.compile(r"""redis\.p?call\(\s*['"](SCAN|KEYS)['"]""", re.IGNORECASE)
    scripts = resources.files("pikku_storage.redis").joinpath("_lua")
    texts = {p.name: p.read_text() for p in scripts.iterdir() if p.name.endswith(".lua")}
    assert len(texts) > 30
    assert {name for name, text in texts.items() if pattern.search(text)} == set()


async def _spied(storage: Storage, call: object) -> tuple[list[str], object]:
    spy = CommandSpy(client_of(storage))
    with spy.recording():
        result = await call  # type: ignore[misc]  # an awaitable made by the caller
    return spy.names, result


async def _create_runs(storage: Storage, count: int) -> None:
    for start in range(0, count, 200):
        await asyncio.gather(
            *(
                storage.workflows.create_run("bulk" if i % 2 else "other", {"i": i})
                for i in range(start, min(count, start + 200))
            )
        )


@BACKENDS
async def test_list_runs_sends_as_many_commands_with_5000_runs_as_with_60(
    pikku_storage: Storage, pikku_backend_name: str, record_property: Callable[[str, object], None]
) -> None:
    """01 §6 item 57: `list_runs(limit=50)` costs the same whatever the number of runs (5000 on
    a server; 600 on the in-process fake, which runs scripts a hundred times slower)."""
    runs = pikku_storage.workflow_runs
    await _create_runs(pikku_storage, 60)
    await runs.list_runs(limit=1)  # the script is loaded on the server from here on
    small, small_runs = await _spied(pikku_storage, runs.list_runs(limit=50))
    small_filtered, _ = await _spied(pikku_storage, runs.list_runs(workflow_name="bulk", limit=20))
    await _create_runs(pikku_storage, (5000 if pikku_backend_name == "redis" else 600) - 60)
    large, large_runs = await _spied(pikku_storage, runs.list_runs(limit=50))
    large_filtered, _ = await _spied(pikku_storage, runs.list_runs(workflow_name="bulk", limit=20))
    record_property("list_runs_commands", f"60 runs: {small}; 5000 runs: {large}")
    assert small == large == ["EVALSHA:wf_list_runs"]
    assert small_filtered == large_filtered == ["EVALSHA:wf_list_runs"]
    assert len(small_runs) == len(large_runs) == 50  # type: ignore[arg-type]


async def _fill_thread(storage: Storage, thread_id: str, count: int) -> None:
    await storage.ai_storage.create_thread("res", thread_id=thread_id)
    for start in range(0, count, 100):
        batch = []
        for i in range(start, min(count, start + 100)):
            calls = [ToolCall(id=f"c{i}", name="tool")] if i % 3 == 0 else []
            batch.append(
                Message(
                    id=f"m{i}", role=MessageRole.ASSISTANT, content=f"text {i}", tool_calls=calls
                )
            )
        await storage.ai_storage.save_messages(thread_id, batch)


@BACKENDS
async def test_get_messages_window_sends_as_many_commands_on_2000_messages_as_on_30(
    pikku_storage: Storage, record_property: Callable[[str, object], None]
) -> None:
    """02 §2 cost rule, §6 item 66: a `last_n=20` window or a cursor costs the same on a
    thread of 30 or 2,000 messages."""
    await _fill_thread(pikku_storage, "small", 30)
    await _fill_thread(pikku_storage, "large", 2000)
    ai = pikku_storage.ai_storage
    await ai.get_messages("small", last_n=1)  # the script is loaded on the server from here on
    small, small_msgs = await _spied(pikku_storage, ai.get_messages("small", last_n=20))
    large, large_msgs = await _spied(pikku_storage, ai.get_messages("large", last_n=20))
    small_cursor, _ = await _spied(pikku_storage, ai.get_messages("small", cursor="m25", last_n=20))
    large_cursor, _ = await _spied(
        pikku_storage, ai.get_messages("large", cursor="m1000", last_n=20)
    )
    record_property("get_messages_commands", f"30: {small}; 2000: {large}")
    assert small == large == small_cursor == large_cursor == ["EVALSHA:ai_get_messages"]
    assert [m.id for m in large_msgs if not m.id.startswith("tool")] == [  # type: ignore[attr-defined]
        f"m{i}" for i in range(1980, 2000)
    ]
    assert len([m for m in small_msgs if not m.id.startswith("tool")]) == 20  # type: ignore[attr-defined]


@BACKENDS
async def test_list_threads_sends_as_many_commands_with_1000_threads_as_with_60(
    pikku_storage: Storage, record_property: Callable[[str, object], None]
) -> None:
    """02 §4, §5.4: `list_threads` reads a window of an index, then the window's threads."""
    ai, console = pikku_storage.ai_storage, pikku_storage.agent_runs

    async def create(count: int, start: int) -> None:
        for first in range(start, start + count, 100):
            await asyncio.gather(
                *(
                    ai.create_thread(f"r{i % 2}", thread_id=f"t{i}")
                    for i in range(first, min(start + count, first + 100))
                )
            )

    await create(60, 0)
    await console.list_threads(limit=1)  # the script is loaded on the server from here on
    small, _ = await _spied(pikku_storage, console.list_threads(limit=50))
    small_filtered, _ = await _spied(pikku_storage, console.list_threads(resource_id="r1"))
    await create(940, 60)
    large, threads = await _spied(pikku_storage, console.list_threads(limit=50))
    large_filtered, _ = await _spied(pikku_storage, console.list_threads(resource_id="r1"))
    record_property("list_threads_commands", f"60: {small}; 1000: {large}")
    assert small == large == ["ZREVRANGE", "EVALSHA:hgetall_many"]
    assert small_filtered == large_filtered == ["ZREVRANGE", "EVALSHA:hgetall_many"]
    assert len(threads) == 50  # type: ignore[arg-type]


async def _server_calls(client: Redis, call: object) -> dict[str, int]:
    """Commands the server ran for one call, scripts' inner commands included
    (`INFO commandstats` of a private server, whose only client is this test)."""

    async def stats() -> dict[str, int]:
        info = await client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in info.items()}

    before = await stats()
    await call  # type: ignore[misc]  # an awaitable made by the caller
    after = await stats()
    delta = {name: after[name] - before.get(name, 0) for name in after}
    delta["info"] -= 1  # the second INFO itself
    return {name: count for name, count in delta.items() if count}


async def test_scripts_read_only_the_window_on_a_server(private_redis: PrivateRedis) -> None:
    """02 §6 item 66: `get_messages(last_n=20)` reads no more than the window's blobs and
    results, and `list_runs(limit=50)` 50 run hashes, however much is stored (the server's
    own command statistics count the commands run inside scripts)."""
    clock = ManualClock()
    async with open_storage(private_redis.url, clock=clock) as storage:
        client = client_of(storage)
        await _fill_thread(storage, "small", 30)
        await _fill_thread(storage, "large", 2000)
        ai = storage.ai_storage
        await ai.get_messages("small", last_n=20)
        small = await _server_calls(client, ai.get_messages("small", last_n=20))
        large = await _server_calls(client, ai.get_messages("large", last_n=20))
        cursor = await _server_calls(client, ai.get_messages("large", cursor="m999", last_n=20))
        cursor_zrank = cursor.pop("zrank"), cursor.pop("hget")
        assert cursor_zrank == (1, 1)
        # one HMGET for the window's blobs and call lists, one per message with calls (their
        # results): nothing outside the window is read
        for calls, window in ((small, range(10, 30)), (large, range(1980, 2000))):
            assert calls.pop("hmget") == 1 + len([i for i in window if i % 3 == 0])
        assert cursor.pop("hmget") == 1 + len([i for i in range(979, 999) if i % 3 == 0])
        assert small == large == cursor == {"evalsha": 1, "zrange": 1}
        await _create_runs(storage, 60)
        await storage.workflow_runs.list_runs()
        few = await _server_calls(client, storage.workflow_runs.list_runs(limit=50))
        await _create_runs(storage, 2000)
        many = await _server_calls(client, storage.workflow_runs.list_runs(limit=50))
        assert few == many
        assert few["hmget"] == 50  # one per run in the window


@BACKENDS
async def test_the_providers_clients_refuse_scan_and_keys(pikku_storage: Storage) -> None:
    """01 §6 item 57 for the whole suite: every client the providers hand to a `Storage`
    fails a test that sends SCAN or KEYS, so the contract and differential runs prove it."""
    client = client_of(pikku_storage)
    with pytest.raises(AssertionError, match="SCAN"):
        await client.scan(0)
    with pytest.raises(AssertionError, match="KEYS"):
        await client.keys("*")
