"""A second OS process for the Redis lock tests: holds a lock, or contends for locks and claims.

Usage: python _lock_worker.py hold URL PREFIX RUN_ID
       python _lock_worker.py contend URL PREFIX RUN_ID ROUNDS STEP_IDS_CSV OUT_JSON
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from pikku_storage.redis import open_storage


async def hold(url: str, prefix: str, run_id: str) -> None:
    """Take the run lock with a short lease, say so, then wait to be killed."""
    storage = open_storage(url, key_prefix=prefix, lock_lease=0.2)
    async with storage, storage.workflows.run_lock(run_id, timeout=5):
        print("held", flush=True)
        await asyncio.Event().wait()


async def contend(url: str, prefix: str, run_id: str, rounds: int, steps: str, out: str) -> None:
    """Take the run lock `rounds` times recording when it was held, and claim every step."""
    intervals: list[tuple[float, float]] = []
    claimed: list[str] = []
    async with open_storage(url, key_prefix=prefix) as storage:
        wf = storage.workflows
        print("ready", flush=True)
        sys.stdin.readline()  # both processes start together
        step_ids = steps.split(",")
        for index in range(rounds):
            async with wf.run_lock(run_id, timeout=10):
                start = time.monotonic()
                count = (await wf.get_run_state(run_id)).get("count", 0)
                await asyncio.sleep(0.002)
                await wf.update_run_state(run_id, "count", count + 1)  # type: ignore[operator]
                intervals.append((start, time.monotonic()))
            for step_id in step_ids[index::rounds]:
                if await wf.claim_step(step_id) is not None:
                    claimed.append(step_id)
        for step_id in step_ids:
            if await wf.claim_step(step_id) is not None:
                claimed.append(step_id)
    await asyncio.to_thread(
        Path(out).write_text, json.dumps({"intervals": intervals, "claimed": claimed})
    )


def main() -> None:
    mode, url, prefix, run_id, *rest = sys.argv[1:]
    if mode == "hold":
        asyncio.run(hold(url, prefix, run_id))
    else:
        rounds, steps, out = rest
        asyncio.run(contend(url, prefix, run_id, int(rounds), steps, out))


if __name__ == "__main__":
    main()
