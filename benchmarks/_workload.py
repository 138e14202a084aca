"""The workload on the public API: one logical unit per operation, keyed by iteration `i`.

Each operation awaits the calls of one unit (for example the step triple insert_step_state +
set_step_running + set_step_result); the raw twins implement the same units on the drivers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from pikku_storage import Storage
from pikku_storage.records import Channel, DeploymentConfig, Message, MessageRole

__all__ = [
    "FUNCTIONS",
    "OPERATIONS",
    "TOPICS",
    "WORKFLOW",
    "Op",
    "State",
    "message_texts",
    "ours",
    "preload",
    "prepare",
]

Op = Callable[[int], Awaitable[object]]

OPERATIONS: Final = (
    ("create_run", "create_run"),
    ("step", "step triple (insert_step_state + set_step_running + set_step_result)"),
    ("list_runs", "list_runs limit 50"),
    ("save_messages", "save_messages (2 messages)"),
    ("get_messages", "get_messages last_n 20"),
    ("subscribe", "subscribe + get_channel_ids_for_topic"),
    ("heartbeat", "heartbeat + find_function"),
)
TOPICS: Final = 20
FUNCTIONS: Final = tuple(f"fn-{n}" for n in range(50))
WORKFLOW: Final = "bench-order"
DEPLOYMENT: Final = "bench-deployment"


@dataclass(slots=True)
class State:
    """Ids the operations share: the thread, the channels, the runs `create_run` made."""

    channels: int
    thread_id: str = ""
    deployment_id: str = DEPLOYMENT
    channel_ids: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)


def message_texts(i: int) -> tuple[str, str]:
    """The user and assistant texts `save_messages` stores at iteration `i`."""
    return f"question {i}: where is my order?", f"answer {i}: it ships tomorrow."


async def prepare(storage: Storage, channels: int) -> State:
    """Untimed setup: the thread, `channels` channels (ours and raw), a started deployment."""
    state = State(channels=channels)
    thread = await storage.ai_storage.create_thread("bench-resource", title="bench")
    state.thread_id = thread.id
    state.channel_ids = [f"ch-{i}" for i in range(channels)]
    for channel_id in state.channel_ids:
        await storage.channels.add_channel(
            Channel(channel_id=channel_id, channel_name="bench", opening_data={"i": 1})
        )
    await storage.deployments.start(
        DeploymentConfig(
            deployment_id=state.deployment_id,
            endpoint="http://127.0.0.1:3000",
            functions=list(FUNCTIONS),
        )
    )
    # list_runs and the step triple need runs from the start
    for i in range(50):
        state.run_ids.append(await storage.workflows.create_run(WORKFLOW, {"orderId": -i}))
    return state


async def preload(storage: Storage, state: State, rows: int, batch: int = 100) -> None:
    """Untimed: `rows` more runs and `rows` more messages in the bench thread, through the
    public API (`batch` calls at a time), so the lists are measured over stored rows."""
    wf, ai = storage.workflows, storage.ai_storage
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        await asyncio.gather(*(wf.create_run("bench-preload", {"n": start + j}) for j in range(n)))
        await ai.save_messages(
            state.thread_id,
            [
                Message(id=f"p{start + j}", role=MessageRole.USER, content=f"preload {start + j}")
                for j in range(n)
            ],
        )


def ours(storage: Storage, state: State) -> dict[str, Op]:
    """The operations on the public API of `storage`."""
    wf, runs, ai = storage.workflows, storage.workflow_runs, storage.ai_storage
    hub, deployments = storage.eventhub, storage.deployments
    run_ids = list(state.run_ids)

    async def create_run(i: int) -> None:
        await wf.create_run(WORKFLOW, {"orderId": i, "total": 42.5})

    async def step(i: int) -> None:
        run_id = run_ids[i % len(run_ids)]
        live = await wf.insert_step_state(run_id, f"step-{i}", "chargeCard", {"amount": i})
        await wf.set_step_running(live.step_id)
        await wf.set_step_result(live.step_id, {"paymentId": f"pay-{i}"})

    async def list_runs(i: int) -> None:
        await runs.list_runs(limit=50)

    async def save_messages(i: int) -> None:
        question, answer = message_texts(i)
        await ai.save_messages(
            state.thread_id,
            [
                Message(id=f"u{i}", role=MessageRole.USER, content=question),
                Message(id=f"a{i}", role=MessageRole.ASSISTANT, content=answer),
            ],
        )

    async def get_messages(i: int) -> None:
        await ai.get_messages(state.thread_id, last_n=20)

    async def subscribe(i: int) -> None:
        topic = f"topic-{i % TOPICS}"
        await hub.subscribe(topic, state.channel_ids[i % state.channels])
        await hub.get_channel_ids_for_topic(topic)

    async def heartbeat(i: int) -> None:
        await deployments.heartbeat()
        await deployments.find_function(FUNCTIONS[i % len(FUNCTIONS)])

    return {
        "create_run": create_run,
        "step": step,
        "list_runs": list_runs,
        "save_messages": save_messages,
        "get_messages": get_messages,
        "subscribe": subscribe,
        "heartbeat": heartbeat,
    }
