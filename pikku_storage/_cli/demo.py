"""`pikku-storage demo`: a realistic scenario over all eight services, then the console views."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import click
from rich.console import Console

from pikku_storage._cli import _views as views
from pikku_storage._cli._common import (
    console,
    display_url,
    namespace_of,
    namespace_options,
    run,
    storage_factory,
)
from pikku_storage.codec import JsonObject, JsonValue
from pikku_storage.records import (
    Channel,
    DeploymentConfig,
    DeploymentInfo,
    Message,
    MessageRole,
    ToolCall,
    ToolCallApproval,
    ToolResult,
    Usage,
    WorkflowRunWire,
)
from pikku_storage.storage import Storage

__all__ = ["DEFAULT_URL", "DemoClock", "demo", "run_demo"]

DEFAULT_URL: Final = "sqlite:///pikku-demo.db"
WORKFLOW: Final = "order-fulfilment"
TOPIC: Final = "orders.shipped"
GRAPH: Final[JsonValue] = {
    "nodes": ["reserve-stock", "charge-card", "check-fraud", "send-confirmation"],
    "edges": [
        ["reserve-stock", "charge-card"],
        ["charge-card", "check-fraud"],
        ["check-fraud", "send-confirmation"],
    ],
}
GRAPH_HASH: Final = hashlib.sha256(json.dumps(GRAPH, sort_keys=True).encode()).hexdigest()[:16]


class DemoClock:
    """The wall clock plus an offset the demo moves forward, so a deployment can go stale
    without waiting for its TTL (every service takes a `Clock`, See docs/concepts.md#values)."""

    def __init__(self) -> None:
        self._offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += timedelta(seconds=seconds)


@dataclass(slots=True)
class _Story:
    """What the scenario did, for the narration and the views."""

    out: Console
    token: str
    order_run: str = ""
    thread_id: str = ""
    agent_run: str = ""
    subscribers: list[str] = field(default_factory=list)
    live: list[DeploymentInfo] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.out.print(f"[green]✓[/green] {text}")


async def _workflows(storage: Storage, story: _Story) -> None:
    wf = storage.workflows
    new = await wf.upsert_workflow_version(WORKFLOW, GRAPH_HASH, GRAPH, "graph")
    story.say(f"workflow version {WORKFLOW}@{GRAPH_HASH} {'stored' if new else 'already stored'}")
    order = f"ord-{story.token}"
    run_id = await wf.create_run(
        WORKFLOW,
        {"orderId": order, "items": [{"sku": "MUG-01", "qty": 2}], "total": 42.5},
        graph_hash=GRAPH_HASH,
        wire=WorkflowRunWire(type="http", id="POST /orders"),
    )
    story.order_run = run_id
    async with wf.run_lock(run_id, timeout=5):
        reserve = await wf.insert_step_state(
            run_id, "reserve-stock", "reserveStock", {"sku": "MUG-01"}
        )
        await wf.claim_step(reserve.step_id)
        await wf.set_step_result(reserve.step_id, {"reserved": 2})
        await wf.update_run_state(run_id, "reservation", {"warehouse": "ams-1", "qty": 2})

        charge = await wf.insert_step_state(
            run_id, "charge-card", "chargeCard", {"amount": 42.5}, retries=2, retry_delay="5s"
        )
        await wf.claim_step(charge.step_id)
        await wf.set_step_error(charge.step_id, TimeoutError("payment gateway timed out after 10s"))
        async with wf.step_lock(run_id, "charge-card", timeout=5):
            await wf.create_retry_attempt(charge.step_id, "running")
            await wf.set_step_result(charge.step_id, {"paymentId": f"pay-{story.token}"})
        await wf.update_run_state(run_id, "paymentId", f"pay-{story.token}")

        fraud = await wf.insert_step_state(run_id, "check-fraud", "scoreOrder", {"orderId": order})
        await wf.claim_step(fraud.step_id)
        await wf.set_branch_taken(fraud.step_id, "low-risk")
        await wf.set_step_result(fraud.step_id, {"score": 0.03})

        confirm = await wf.insert_step_state(run_id, "send-confirmation", "sendEmail", None)
        await wf.set_step_scheduled(confirm.step_id)
        await wf.claim_step(confirm.step_id)
        await wf.set_step_result(confirm.step_id, None)
        graph = await wf.get_completed_graph_state(run_id)
        await wf.update_run_status(run_id, "completed", output={"orderId": order, "shipped": True})
    story.say(
        f"{WORKFLOW} run {run_id} completed: "
        f"{len(graph.completed_node_ids)} steps, charge-card retried once"
    )

    failed = await wf.create_run("nightly-report", {"day": datetime.now(UTC).date().isoformat()})
    step = await wf.insert_step_state(failed, "aggregate", "aggregateSales", None)
    await wf.claim_step(step.step_id)
    error = ConnectionError("warehouse database unreachable")
    await wf.set_step_error(step.step_id, error)
    await wf.update_run_status(failed, "failed", error=error)
    waiting = await wf.create_run(
        "invoice-sync", {"batch": 7}, wire=WorkflowRunWire(type="scheduler", id="every-15m")
    )
    await wf.update_run_status(waiting, "suspended")
    story.say(f"nightly-report run {failed} failed")
    story.say(f"invoice-sync run {waiting} suspended")


async def _agent(storage: Storage, story: _Story) -> None:
    ai, state = storage.ai_storage, storage.ai_run_state
    customer = f"customer-{story.token}"
    order = f"ord-{story.token}"
    thread = await ai.create_thread(
        customer, title=f"Refund for {order}", metadata={"channel": "web"}
    )
    story.thread_id = thread.id
    refund_args: JsonObject = {"orderId": order, "amount": 42.5}
    await ai.save_messages(
        thread.id,
        [
            Message(id="m1", role=MessageRole.SYSTEM, content="You are the shop's support agent."),
            Message(id="m2", role=MessageRole.USER, content=f"My mug arrived broken ({order})."),
            Message(
                id="m3",
                role=MessageRole.ASSISTANT,
                content="Let me look up the order.",
                tool_calls=[
                    ToolCall(id="call-lookup", name="lookupOrder", args={"orderId": order})
                ],
            ),
            Message(
                id="m3-result",
                role=MessageRole.TOOL,
                tool_results=[
                    ToolResult(
                        id="call-lookup",
                        name="lookupOrder",
                        result='{"status":"delivered","total":42.5}',
                    )
                ],
            ),
            Message(
                id="m4",
                role=MessageRole.ASSISTANT,
                content="I can refund 42.50 EUR. Shall I go ahead?",
                tool_calls=[ToolCall(id="call-refund", name="issueRefund", args=dict(refund_args))],
            ),
        ],
    )
    run_id = await state.create_run(
        agent_name="support-agent",
        thread_id=thread.id,
        resource_id=customer,
        status="suspended",
        suspend_reason="approval",
        pending_approvals=[
            ToolCallApproval(tool_call_id="call-refund", tool_name="issueRefund", args=refund_args)
        ],
        usage=Usage(input_tokens=812, output_tokens=96, model="gpt-4o-mini"),
    )
    story.agent_run = run_id
    story.say(f"agent run {run_id} suspended, waiting for approval of issueRefund")

    found = await state.find_run_by_tool_call_id("call-refund")
    await ai.save_messages(
        thread.id, [Message(id="m5", role=MessageRole.USER, content="Yes, please refund it.")]
    )
    claimed = await state.resolve_approval("call-refund", "approved", run_id=run_id)
    again = await state.resolve_approval("call-refund", "approved", run_id=run_id)
    await state.update_run(run_id, status="running", suspend_reason=None, pending_approvals=None)
    await ai.save_messages(
        thread.id,
        [
            Message(
                id="m5-result",
                role=MessageRole.TOOL,
                tool_results=[
                    ToolResult(
                        id="call-refund", name="issueRefund", result=f"refund re-{story.token}"
                    )
                ],
            ),
            Message(
                id="m6",
                role=MessageRole.ASSISTANT,
                content=f"Done: refund re-{story.token} is on its way.",
            ),
        ],
    )
    await state.update_run(
        run_id,
        status="completed",
        usage=Usage(input_tokens=1530, output_tokens=188, model="gpt-4o-mini"),
    )
    await ai.save_working_memory(thread.id, "thread", {"orderId": order, "refund": "approved"})
    await ai.save_working_memory(customer, "resource", {"preferredLanguage": "en"})
    story.say(
        f"approval found by its tool call ({found is not None}), claimed once ({claimed}, "
        f"then {again}); run resumed and completed"
    )
    await state.save_score(
        run_id,
        "helpfulness",
        0.9,
        reason="Refund issued after approval",
        metadata={"by": "demo"},
    )
    await state.save_score(run_id, "tone", 1)
    story.say(f"agent run {run_id} graded by two scorers")


async def _channels(storage: Storage, clock: DemoClock, story: _Story) -> None:
    channels, hub = storage.channels, storage.eventhub
    ids = [f"ws-{story.token}-{n}" for n in (1, 2, 3)]
    for n, channel_id in enumerate(ids, start=1):
        await channels.add_channel(
            Channel(channel_id=channel_id, channel_name="order-feed", opening_data={"user": n})
        )
    await channels.set_user_session(ids[0], {"userId": "user-1", "role": "admin"})
    await hub.subscribe(TOPIC, ids[0])
    await hub.subscribe(TOPIC, ids[1])
    await hub.subscribe("orders.refunded", ids[2])
    orphan = await hub.subscribe(TOPIC, f"ws-{story.token}-gone")
    session = await channels.get_channel_and_session(ids[0])
    await channels.touch(ids[1])
    story.subscribers = await hub.get_channel_ids_for_topic(TOPIC)
    await channels.remove_channels([ids[2]])
    stale = await channels.prune_channels(
        last_seen_before=clock.now() - timedelta(hours=1), limit=1000
    )
    story.say(
        f"3 channels connected, {ids[0]} has session {json.dumps(session.session)}, "
        f"2 subscribed to {TOPIC}"
    )
    story.say(
        f"unknown channel refused ({not orphan}), 1 channel disconnected, "
        f"{len(stale)} idle for over an hour pruned"
    )


async def _deployments(storage: Storage, worker: Storage, clock: DemoClock, story: _Story) -> None:
    api_id, worker_id = f"api-{story.token}", f"worker-{story.token}"
    await storage.deployments.start(
        DeploymentConfig(
            deployment_id=api_id,
            endpoint="http://10.0.0.11:3000",
            functions=["createOrder", "getOrder", "issueRefund"],
        )
    )
    await worker.deployments.start(
        DeploymentConfig(
            deployment_id=worker_id,
            endpoint="http://10.0.0.12:3000",
            functions=["issueRefund", "sendEmail"],
        )
    )
    before = await storage.deployments.find_function("issueRefund")
    clock.advance(20)
    await storage.deployments.heartbeat()  # the worker has crashed: no more heartbeats
    clock.advance(15)
    after = await storage.deployments.find_function("issueRefund")
    story.live = await storage.deployments.list_deployments()
    story.pruned = await storage.deployments.prune_deployments()
    story.say(f"deployments {api_id} and {worker_id} registered: issueRefund on {len(before)}")
    story.say(f"{worker_id} missed its heartbeats for 35 s (TTL 30 s): issueRefund on {len(after)}")


async def _views(storage: Storage, story: _Story) -> None:
    out = story.out
    runs = storage.workflow_runs
    out.print()
    out.print(views.runs_table(await runs.list_runs(limit=10), "Workflow runs (newest 10)"))
    out.print(
        views.history_table(
            await runs.get_run_history(story.order_run), f"Step history of run {story.order_run}"
        )
    )
    out.print(f"  run state: {json.dumps(await storage.workflows.get_run_state(story.order_run))}")
    out.print()
    agents = storage.agent_runs
    out.print(
        views.transcript_table(
            await agents.get_thread_messages(story.thread_id), f"Thread {story.thread_id}"
        )
    )
    out.print(views.thread_runs_table(await agents.get_thread_runs(story.thread_id)))
    out.print(
        views.approvals_table(
            await storage.ai_run_state.get_approval_decisions(story.agent_run),
            f"Approval decisions of run {story.agent_run}",
        )
    )
    out.print(views.ids_table(story.subscribers, f"Subscribers of topic {TOPIC}"))
    out.print(views.deployments_table(story.live))
    out.print(f"  pruned stale deployments: {', '.join(story.pruned) or 'none'}")


async def run_demo(url: str, out: Console, **options: object) -> None:
    """Run the scenario on `url` with fresh ids (so it can run again), then print the views."""
    clock = DemoClock()
    story = _Story(out=out, token=secrets.token_hex(3))
    make = storage_factory(url, clock=clock, **options)
    out.print(f"[bold]pikku-storage demo[/bold] on {display_url(url)}")
    async with make() as storage, make() as worker:
        story.say("storage initialized (schema created or migrated as needed)")
        await _workflows(storage, story)
        await _agent(storage, story)
        await _channels(storage, clock, story)
        await _deployments(storage, worker, clock, story)
        await _views(storage, story)


@click.command("demo")
@click.argument("url", default=DEFAULT_URL, metavar="[URL]")
@namespace_options
@click.pass_context
def demo(ctx: click.Context, url: str) -> None:
    """Run a realistic scenario over all eight services and print the console views.

    URL defaults to an SQLite file in the working directory (sqlite:///pikku-demo.db). The
    scenario uses new ids every time, so it can be run again on the same store.
    """
    run(run_demo(url, console(), **namespace_of(ctx)))
