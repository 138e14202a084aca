"""Hostile strings written through the public API, for the escaping tests (route and browser)."""

from __future__ import annotations

from typing import Final

from pikku_storage.records import (
    Channel,
    Message,
    MessageRole,
    ToolCall,
    ToolCallApproval,
    ToolResult,
    WorkflowRunWire,
)
from pikku_storage.storage import Storage

SCRIPT: Final = "<script>alert(1)</script>"
IMG: Final = '"><img src=x onerror=alert(1)>'
HOSTILE_THREAD: Final = f"thread-{SCRIPT}"
HOSTILE_TOPIC: Final = f"topic-{IMG}"
HOSTILE_CHANNEL: Final = f"ws-{SCRIPT}"


async def seed_hostile(storage: Storage) -> tuple[str, str]:
    """A run and a thread full of markup in ids, names and payloads; their ids."""
    wf = storage.workflows
    run_id = await wf.create_run(
        SCRIPT,
        {"note": IMG, SCRIPT: [SCRIPT]},
        wire=WorkflowRunWire(type=IMG, id=SCRIPT),
    )
    step = await wf.insert_step_state(run_id, IMG, SCRIPT, {"x": IMG})
    await wf.claim_step(step.step_id)
    await wf.set_step_error(step.step_id, {"message": SCRIPT, "name": IMG, "stack": SCRIPT})
    await wf.update_run_state(run_id, SCRIPT, IMG)
    await wf.update_run_status(run_id, "failed", error={"message": IMG, "name": SCRIPT})
    ai = storage.ai_storage
    thread = await ai.create_thread(
        IMG, thread_id=HOSTILE_THREAD, title=SCRIPT, metadata={IMG: SCRIPT}
    )
    await ai.save_messages(
        thread.id,
        [
            Message(id=IMG, role=MessageRole.USER, content=SCRIPT),
            Message(
                id="a1",
                role=MessageRole.ASSISTANT,
                content=[{"type": "text", "text": IMG}, {"type": "image", "url": SCRIPT}],
                tool_calls=[
                    ToolCall(id=SCRIPT, name=IMG, args={"q": SCRIPT}),
                    ToolCall(id="call-2", name=SCRIPT, args={"q": IMG}),
                ],
            ),
            Message(
                id="r1",
                role=MessageRole.TOOL,
                tool_results=[ToolResult(id=SCRIPT, name=IMG, result=IMG)],
            ),
        ],
    )
    await storage.ai_run_state.create_run(
        agent_name=SCRIPT,
        thread_id=thread.id,
        resource_id=IMG,
        status="suspended",
        suspend_reason="approval",
        pending_approvals=[ToolCallApproval(tool_call_id="call-2", tool_name=SCRIPT, args=IMG)],
    )
    await storage.channels.add_channel(
        Channel(channel_id=HOSTILE_CHANNEL, channel_name=IMG, opening_data={"x": SCRIPT})
    )
    await storage.channels.set_user_session(HOSTILE_CHANNEL, {SCRIPT: IMG})
    await storage.eventhub.subscribe(HOSTILE_TOPIC, HOSTILE_CHANNEL)
    return run_id, thread.id
