"""4 OS processes x 8 asyncio tasks on one store, hammering the same records (issue 11).

Every task of every process, at once: step results on shared steps, state keys of one run,
messages of one thread, claims of the same steps, resolutions of the same approvals, and
subscribe / unsubscribe / remove / re-add of one channel. Afterwards:

- errors: no call raised anything but its contract answer (a write that had to wait for a lock
  waited: no `StorageUnavailable`, no driver error);
- lost writes: every state key and every message written is there, each message once;
- winners: each claimed step and each resolved approval has exactly one winner.

Runs on every backend whose store several processes share (the in-process fakes cannot be
shared). The counts are printed per backend (`-s`).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from pathlib import Path
from typing import cast

import pytest

from pikku_storage import Storage
from pikku_storage.records import Channel, StepStatus, ToolCallApproval

pytestmark = [
    pytest.mark.contention,
    pytest.mark.pikku_backends(
        "postgres", "redis", "sqlite", "sqlalchemy-mysql", "sqlalchemy-postgres"
    ),
]

PROCESSES = 4
TASKS = 8
ROUNDS = 6
SHARED_STEPS = 4
CLAIMS = 6
APPROVALS = 6

WORKER = """
import asyncio, json, sys
from collections import Counter
from pathlib import Path
from pikku_storage import open_storage
from pikku_storage.errors import ChannelNotFound, ConflictError, RunNotFound
from pikku_storage.records import ApprovalStatus, Channel, Message, MessageRole

EXPECTED = (ConflictError, ChannelNotFound)  # re-adding a live channel; touching a removed one

async def main(url, options, role, barrier, plan, tasks, rounds):
    async with open_storage(url, **options) as storage:
        wf, ai, ar = storage.workflows, storage.ai_storage, storage.ai_run_state
        channels, hub = storage.channels, storage.eventhub
        ops, errors, contract = Counter(), Counter(), Counter()
        claimed, resolved, keys, messages = [], [], [], []
        Path(barrier, role).touch()
        while len(list(Path(barrier).iterdir())) < plan["processes"]:
            await asyncio.sleep(0.01)

        async def call(name, coro):
            try:
                result = await coro
            except EXPECTED as error:
                contract[type(error).__name__] += 1
                return None
            except Exception as error:
                errors[f"{name}: {type(error).__module__}.{type(error).__name__}"] += 1
                return None
            ops[name] += 1
            return result

        async def task(t):
            tag = f"{role}-{t}"
            for i in range(rounds):
                step = plan["steps"][(t + i) % len(plan["steps"])]
                await call("set_step_result", wf.set_step_result(step, {"by": tag, "i": i}))
                key = f"{tag}-{i}"
                await call("update_run_state", wf.update_run_state(plan["run_id"], key, i))
                keys.append(key)
                message = Message(id=f"m-{tag}-{i}", role=MessageRole.USER, content=key)
                await call("save_messages", ai.save_messages(plan["thread_id"], [message]))
                messages.append(message.id)
                claim = plan["claims"][i % len(plan["claims"])]
                if await call("claim_step", wf.claim_step(claim)) is not None:
                    claimed.append(claim)
                approval = plan["approvals"][i % len(plan["approvals"])]
                status = ApprovalStatus.APPROVED
                if await call("resolve_approval", ar.resolve_approval(approval, status)):
                    resolved.append(approval)
                await call("subscribe", hub.subscribe("topic", plan["channel"]))
                await call("unsubscribe", hub.unsubscribe("topic", plan["channel"]))
                if i % 3 == 2:
                    await call("remove_channels", channels.remove_channels([plan["channel"]]))
                    again = Channel(channel_id=plan["channel"], channel_name="c")
                    await call("add_channel", channels.add_channel(again))
                await call("get_messages", ai.get_messages(plan["thread_id"], last_n=20))

        await asyncio.gather(*(task(t) for t in range(tasks)))
        print(json.dumps({
            "ops": ops, "errors": errors, "contract": contract, "claimed": claimed,
            "resolved": resolved, "keys": keys, "messages": messages,
        }))

url, options, role, barrier, plan, tasks, rounds = sys.argv[1:]
options, plan = json.loads(options), json.loads(plan)
asyncio.run(main(url, options, role, barrier, plan, int(tasks), int(rounds)))
"""


@pytest.mark.real_time  # the workers poll a file barrier every 10 ms
async def test_four_processes_of_eight_tasks_lose_nothing_and_raise_nothing(
    pikku_storage: Storage,
    pikku_storage_open_args: tuple[str, dict[str, object]],
    pikku_backend_name: str,
    tmp_path: Path,
) -> None:
    url, options = pikku_storage_open_args
    wf, ai = pikku_storage.workflows, pikku_storage.ai_storage
    run_id = await wf.create_run("contention", None)
    steps = [
        (await wf.insert_step_state(run_id, f"shared-{n}", None, None)).step_id
        for n in range(SHARED_STEPS)
    ]
    claims = [
        (await wf.insert_step_state(run_id, f"claim-{n}", None, None)).step_id
        for n in range(CLAIMS)
    ]
    thread = await ai.create_thread("contention")
    approvals = [f"call-{n}" for n in range(APPROVALS)]
    await pikku_storage.ai_run_state.create_run(
        agent_name="agent",
        thread_id=thread.id,
        resource_id="contention",
        pending_approvals=[
            ToolCallApproval(tool_call_id=call_id, tool_name="tool", args={})
            for call_id in approvals
        ],
    )
    await pikku_storage.channels.add_channel(Channel(channel_id="hot", channel_name="c"))
    plan = {
        "processes": PROCESSES,
        "run_id": run_id,
        "steps": steps,
        "claims": claims,
        "thread_id": thread.id,
        "approvals": approvals,
        "channel": "hot",
    }
    barrier = tmp_path / "barrier"
    barrier.mkdir()

    async def worker(role: str) -> dict[str, object]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            url,
            json.dumps(options),
            role,
            str(barrier),
            json.dumps(plan),
            str(TASKS),
            str(ROUNDS),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        result: dict[str, object] = json.loads(out.decode().strip().splitlines()[-1])
        return result

    results = await asyncio.gather(*(worker(f"p{n}") for n in range(PROCESSES)))

    ops: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    contract: Counter[str] = Counter()
    claimed: Counter[str] = Counter()
    resolved: Counter[str] = Counter()
    keys: list[str] = []
    messages: list[str] = []
    for result in results:
        ops.update(cast(dict[str, int], result["ops"]))
        errors.update(cast(dict[str, int], result["errors"]))
        contract.update(cast(dict[str, int], result["contract"]))
        claimed.update(cast(dict[str, int], result["claimed"]))
        resolved.update(cast(dict[str, int], result["resolved"]))
        keys += result["keys"]  # type: ignore[arg-type]
        messages += result["messages"]  # type: ignore[arg-type]

    state = await wf.get_run_state(run_id)
    lost_state = sorted(set(keys) - set(state))
    stored = [m.id for m in await ai.get_messages(thread.id)]
    lost_messages = sorted(set(messages) - set(stored))
    duplicated = sorted(m for m, n in Counter(stored).items() if n > 1)
    claim_winners = {step: claimed[step] for step in claims}
    approval_winners = {call_id: resolved[call_id] for call_id in approvals}
    print(
        f"\n{pikku_backend_name}: {sum(ops.values())} ops done ({dict(ops)}), "
        f"contract answers {dict(contract)}, errors {dict(errors)}, "
        f"lost state keys {len(lost_state)}, lost messages {len(lost_messages)}, "
        f"duplicate messages {len(duplicated)}, claim winners {sorted(claim_winners.values())}, "
        f"approval winners {sorted(approval_winners.values())}"
    )
    assert dict(errors) == {}
    assert lost_state == []
    assert lost_messages == []
    assert duplicated == []
    assert len(stored) == PROCESSES * TASKS * ROUNDS
    assert all(n == 1 for n in claim_winners.values()), claim_winners
    assert all(n == 1 for n in approval_winners.values()), approval_winners
    # Every shared step ends succeeded with one of the results written to it.
    for n in range(SHARED_STEPS):
        step = await wf.get_step_state(run_id, f"shared-{n}")
        assert step is not None
        assert step.status is StepStatus.SUCCEEDED
        assert isinstance(step.result, dict)
        assert set(step.result) == {"by", "i"}
