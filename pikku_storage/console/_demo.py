"""`pikku-storage console --demo`: the demo scenario, plus what makes every page worth a look.

The scenario of `pikku-storage demo` (workflow runs with a retry, an agent thread whose refund
was approved, channels and subscriptions) runs first; then come a run whose steps took
seconds (so the timeline has shape), an agent run still waiting for approval, enough runs to
page through, and one live and one stale deployment.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Final

from rich.console import Console

from pikku_storage._cli import demo as scenario
from pikku_storage.clock import ManualClock
from pikku_storage.codec import JsonObject
from pikku_storage.records import (
    DeploymentConfig,
    Message,
    MessageRole,
    ToolCall,
    ToolCallApproval,
    Usage,
    WorkflowRunWire,
)
from pikku_storage.storage import Storage

__all__ = ["fill_demo"]

Opener = Callable[..., Storage]  # (clock=…, **backend options) -> a Storage on the store
BACKFILL_RUNS: Final = 60


async def _timed_run(storage: Storage, clock: ManualClock) -> str:
    """A completed order-fulfilment run whose card charge timed out once and was retried 5 s
    later: the run whose timeline the README shows."""
    wf = storage.workflows
    await wf.upsert_workflow_version(
        scenario.WORKFLOW, scenario.GRAPH_HASH, scenario.GRAPH, "graph"
    )
    run_id = await wf.create_run(
        scenario.WORKFLOW,
        {"orderId": "ord-7731", "items": [{"sku": "LAMP-3", "qty": 1}], "total": 89.0},
        graph_hash=scenario.GRAPH_HASH,
        wire=WorkflowRunWire(type="http", id="POST /orders"),
    )
    clock.advance(0.4)
    reserve = await wf.insert_step_state(run_id, "reserve-stock", "reserveStock", {"sku": "LAMP-3"})
    clock.advance(0.3)
    await wf.claim_step(reserve.step_id)
    clock.advance(1.6)
    await wf.set_step_result(reserve.step_id, {"reserved": 1})
    await wf.update_run_state(run_id, "reservation", {"warehouse": "ams-1", "qty": 1})
    charge = await wf.insert_step_state(
        run_id, "charge-card", "chargeCard", {"amount": 89.0}, retries=2, retry_delay="5s"
    )
    clock.advance(0.2)
    await wf.claim_step(charge.step_id)
    clock.advance(3.1)
    await wf.set_step_error(charge.step_id, TimeoutError("payment gateway timed out after 3s"))
    await wf.create_retry_attempt(charge.step_id, "pending")
    clock.advance(5.0)
    await wf.set_step_running(charge.step_id)
    clock.advance(1.2)
    await wf.set_step_result(charge.step_id, {"paymentId": "pay-7731"})
    await wf.update_run_state(run_id, "paymentId", "pay-7731")
    fraud = await wf.insert_step_state(run_id, "check-fraud", "scoreOrder", {"orderId": "ord-7731"})
    await wf.claim_step(fraud.step_id)
    clock.advance(0.8)
    await wf.set_branch_taken(fraud.step_id, "low-risk")
    await wf.set_step_result(fraud.step_id, {"score": 0.03})
    confirm = await wf.insert_step_state(run_id, "send-confirmation", "sendEmail", None)
    await wf.claim_step(confirm.step_id)
    clock.advance(2.5)
    await wf.set_step_result(confirm.step_id, None)
    await wf.update_run_status(run_id, "completed", output={"orderId": "ord-7731", "shipped": True})
    return run_id


async def _waiting_thread(storage: Storage) -> None:
    """A thread whose agent run is suspended on a tool call a human has to approve."""
    ai = storage.ai_storage
    thread = await ai.create_thread(
        "customer-4410", title="Cancel my subscription", metadata={"channel": "email"}
    )
    args: JsonObject = {"subscriptionId": "sub-4410", "refundUnusedDays": True}
    await ai.save_messages(
        thread.id,
        [
            Message(id="m1", role=MessageRole.USER, content="Please cancel my plan today."),
            Message(
                id="m2",
                role=MessageRole.ASSISTANT,
                content="I can cancel sub-4410 and refund the unused days. A colleague has "
                "to confirm first.",
                tool_calls=[ToolCall(id="call-cancel", name="cancelSubscription", args=args)],
            ),
        ],
    )
    await storage.ai_run_state.create_run(
        agent_name="support-agent",
        thread_id=thread.id,
        resource_id="customer-4410",
        status="suspended",
        suspend_reason="approval",
        pending_approvals=[
            ToolCallApproval(tool_call_id="call-cancel", tool_name="cancelSubscription", args=args)
        ],
        usage=Usage(input_tokens=640, output_tokens=71, model="gpt-4o-mini"),
    )


async def _backfill(storage: Storage) -> None:
    """Finished invoice-sync runs, enough for a second page of runs."""
    wf = storage.workflows
    for n in range(BACKFILL_RUNS):
        run_id = await wf.create_run(
            "invoice-sync",
            {"batch": n},
            wire=WorkflowRunWire(type="scheduler", id="every-15m"),
        )
        if n % 7 == 3:
            await wf.update_run_status(
                run_id, "failed", error={"message": "ledger API returned 503", "code": 503}
            )
        else:
            await wf.update_run_status(run_id, "completed", output={"invoices": n % 5})


async def fill_demo(open_storage: Opener, stack: AsyncExitStack) -> None:
    """Write the demo into the store `open_storage(clock=…)` opens; the deployments' services
    stay open on `stack` (closing them unregisters the deployments)."""
    quiet = Console(file=io.StringIO())
    clock = scenario.DemoClock()
    async with open_storage(clock=clock) as storage:
        await _backfill(storage)
        story = scenario._Story(out=quiet, token=secrets.token_hex(3))
        await scenario._workflows(storage, story)
        await scenario._agent(storage, story)
        await scenario._channels(storage, clock, story)
        await _waiting_thread(storage)
    timed = ManualClock(datetime.now(UTC) - timedelta(seconds=16))
    async with open_storage(clock=timed) as storage:
        await _timed_run(storage, timed)
    live = await stack.enter_async_context(open_storage(prune_on_heartbeat=False))
    await live.deployments.start(
        DeploymentConfig(
            deployment_id="api-1",
            endpoint="http://10.0.0.11:3000",
            functions=["createOrder", "getOrder", "issueRefund"],
        )
    )
    # A worker that crashed 95 s ago: its clock stands still, so it never looks alive again.
    crashed = await stack.enter_async_context(
        open_storage(
            clock=ManualClock(datetime.now(UTC) - timedelta(seconds=95)), prune_on_heartbeat=False
        )
    )
    await crashed.deployments.start(
        DeploymentConfig(
            deployment_id="worker-1",
            endpoint="http://10.0.0.12:3000",
            functions=["issueRefund", "sendEmail"],
        )
    )
