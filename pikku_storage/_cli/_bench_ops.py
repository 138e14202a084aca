"""The benchmark workload: one fixed, sequential operation per hot path, on the public API.

Every operation takes its 0-based iteration `i` and awaits the calls of one logical unit
(for example insert_step_state + set_step_running + set_step_result); the raw-driver twins in
`_bench_raw_pg`/`_bench_raw_redis` implement the same units with the same statements.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from pikku_storage.records import Channel, DeploymentConfig, Message, MessageRole
from pikku_storage.storage import Storage

__all__ = ["OPERATIONS", "BenchState", "Operation", "prepare", "public_ops"]

Op = Callable[[int], Awaitable[object]]

OPERATIONS: Final = (
    ("create_run", "create_run"),
    ("step", "insert_step_state + set_step_running + set_step_result"),
    ("list_runs", "list_runs limit 50"),
    ("save_messages", "save_messages (2 messages)"),
    ("get_messages", "get_messages last_n 20"),
    ("subscribe", "subscribe + get_channel_ids_for_topic"),
    ("heartbeat", "heartbeat + find_function"),
)
TOPICS: Final = 20
FUNCTIONS: Final = [f"fn-{n}" for n in range(50)]
WORKFLOW: Final = "bench-order"


@dataclass(slots=True)
class BenchState:
    """Ids the operations share: runs made by `create_run`, the thread, channels."""

    ops: int
    thread_id: str = ""
    run_ids: list[str] = field(default_factory=list)
    channel_ids: list[str] = field(default_factory=list)
    deployment_id: str = "bench-deployment"


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    label: str
    call: Op


async def prepare(storage: Storage, state: BenchState, token: str) -> None:
    """Untimed setup: the bench thread, one channel per iteration, a started deployment."""
    thread = await storage.ai_storage.create_thread(f"bench-{token}", title="bench")
    state.thread_id = thread.id
    state.channel_ids = [f"ch-{token}-{i}" for i in range(state.ops)]
    for channel_id in state.channel_ids:
        await storage.channels.add_channel(
            Channel(channel_id=channel_id, channel_name="bench", opening_data={"i": 1})
        )
    await storage.deployments.start(
        DeploymentConfig(
            deployment_id=state.deployment_id,
            endpoint="http://127.0.0.1:3000",
            functions=FUNCTIONS,
        )
    )


def message_pair(i: int, tag: str = "") -> list[Message]:
    """The two messages `save_messages` stores per iteration."""
    return [
        Message(
            id=f"u{tag}{i}", role=MessageRole.USER, content=f"question {i}: where is my order?"
        ),
        Message(
            id=f"a{tag}{i}",
            role=MessageRole.ASSISTANT,
            content=f"answer {i}: it ships tomorrow.",
        ),
    ]


def public_ops(storage: Storage, state: BenchState) -> list[Operation]:
    """The workload on the public API of `storage`."""
    wf, runs, ai = storage.workflows, storage.workflow_runs, storage.ai_storage
    hub, deployments = storage.eventhub, storage.deployments

    async def create_run(i: int) -> None:
        state.run_ids.append(await wf.create_run(WORKFLOW, {"orderId": i, "total": 42.5}))

    async def step(i: int) -> None:
        run_id = state.run_ids[i % len(state.run_ids)]
        live = await wf.insert_step_state(run_id, f"step-{i}", "chargeCard", {"amount": i})
        await wf.set_step_running(live.step_id)
        await wf.set_step_result(live.step_id, {"paymentId": f"pay-{i}"})

    async def list_runs(i: int) -> None:
        await runs.list_runs(limit=50)

    async def save_messages(i: int) -> None:
        await ai.save_messages(state.thread_id, message_pair(i))

    async def get_messages(i: int) -> None:
        await ai.get_messages(state.thread_id, last_n=20)

    async def subscribe(i: int) -> None:
        topic = f"topic-{i % TOPICS}"
        await hub.subscribe(topic, state.channel_ids[i])
        await hub.get_channel_ids_for_topic(topic)

    async def heartbeat(i: int) -> None:
        await deployments.heartbeat()
        await deployments.find_function(FUNCTIONS[i % len(FUNCTIONS)])

    calls: dict[str, Op] = {
        "create_run": create_run,
        "step": step,
        "list_runs": list_runs,
        "save_messages": save_messages,
        "get_messages": get_messages,
        "subscribe": subscribe,
        "heartbeat": heartbeat,
    }
    return [Operation(name, label, calls[name]) for name, label in OPERATIONS]
