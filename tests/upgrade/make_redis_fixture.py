"""Write the Redis upgrade fixture with the library of commit 6c7f177 (layout 1).

Run from the repository root with the old library first on the path:

    git archive 6c7f177 pikku_storage | tar -x -C /tmp/old-redis
    PYTHONPATH=/tmp/old-redis python tests/upgrade/make_redis_fixture.py

It fills a fakeredis namespace through the old public API (runs running with a pending step,
running with a succeeded step, completed with a pending step; a version; threads of two
owners with messages and an agent run) and dumps every key as JSON, the namespace replaced by
`PREFIX` so the test can load it under any prefix. Spec: 05 §5 item 36.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, cast

import fakeredis

from pikku_storage import ManualClock, Message, MessageRole, ToolCall, ToolResult
from pikku_storage.redis import LATEST_VERSION, storage_from_client

PREFIX: Final = "upg05fixture"
PLACEHOLDER: Final = "PREFIX"
OUT: Final = Path(__file__).parent / "fixtures" / "redis" / "layout1.json"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _write(client: fakeredis.FakeAsyncRedis) -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    async with storage_from_client(client, key_prefix=PREFIX, clock=clock) as storage:
        wf = storage.workflows
        waiting = await wf.create_run("flow", {"n": 1}, graph_hash="g1")
        await wf.insert_step_state(waiting, "queued", "rpc.queued", {"d": 1})
        clock.advance(1)
        idle = await wf.create_run("flow", None)
        step = await wf.insert_step_state(idle, "done", "rpc.done", None, retries=2)
        await wf.set_step_running(step.step_id)
        await wf.set_step_result(step.step_id, {"ok": True})
        clock.advance(1)
        settled = await wf.create_run("other", None)
        await wf.insert_step_state(settled, "left", None, None)
        await wf.update_run_status(settled, "completed", output=1)
        await wf.upsert_workflow_version("flow", "g1", {"nodes": [1.5]}, "dsl")
        ai, state = storage.ai_storage, storage.ai_run_state
        for thread_id, resource in (("t1", "owner-alice"), ("t2", "owner-alice:p1"), ("t3", "bob")):
            clock.advance(1)
            await ai.create_thread(resource, thread_id=thread_id, title=thread_id)
            await ai.save_messages(
                thread_id,
                [
                    Message(id=f"{thread_id}-u", role=MessageRole.USER, content="hi"),
                    Message(
                        id=f"{thread_id}-a",
                        role=MessageRole.ASSISTANT,
                        content="ok",
                        tool_calls=[ToolCall(id=f"{thread_id}-c", name="tool", args={})],
                    ),
                    Message(
                        id=f"{thread_id}-r",
                        role=MessageRole.TOOL,
                        tool_results=[ToolResult(id=f"{thread_id}-c", name="tool", result="r")],
                    ),
                ],
            )
        await state.create_run(agent_name="agent", thread_id="t1", resource_id="owner-alice")
    assert LATEST_VERSION == 1


async def _dump(client: fakeredis.FakeAsyncRedis) -> dict[str, object]:
    out: dict[str, object] = {}
    async for raw in client.scan_iter(match=f"{PREFIX}:*"):
        key = _text(raw)
        kind = _text(await client.type(key))
        value: object
        if kind == "hash":
            value = {_text(k): _text(v) for k, v in (await client.hgetall(key)).items()}
        elif kind == "zset":
            pairs = cast(
                "list[tuple[bytes, float]]", await client.zrange(key, 0, -1, withscores=True)
            )
            value = [[_text(m), s] for m, s in pairs]
        elif kind == "set":
            value = sorted(_text(m) for m in await client.smembers(key))
        elif kind == "list":
            value = [_text(m) for m in await client.lrange(key, 0, -1)]
        else:
            value = _text(cast(bytes, await client.get(key)))
        out[key.replace(PREFIX, PLACEHOLDER)] = {"type": kind, "value": value}
    return dict(sorted(out.items()))


async def main() -> None:
    client = fakeredis.FakeAsyncRedis()
    await _write(client)
    dump = await _dump(client)
    text = json.dumps(dump, indent=1, ensure_ascii=False)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text.replace(PREFIX, PLACEHOLDER) + "\n", encoding="utf-8")
    print(f"wrote {len(dump)} keys to {OUT}")


if __name__ == "__main__":
    asyncio.run(main())
