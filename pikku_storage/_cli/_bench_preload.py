"""`bench --rows N`: preload N runs and N thread messages before the timed phases.

Through the public API in batches: runs by concurrent `create_run` calls (sequential on
SQLite, whose writes serialize anyway), messages by `save_messages` calls of 1,000 messages
each, so list and window costs can be compared at 1k, 100k and 1M stored rows.
"""

from __future__ import annotations

import asyncio
from typing import Final

from rich.progress import Progress

from pikku_storage._cli._bench_ops import BenchState
from pikku_storage._cli._namespaces import NamespaceSpec, Target
from pikku_storage.records import Message, MessageRole
from pikku_storage.storage import Storage

__all__ = ["preload"]

MESSAGE_BATCH: Final = 1000
RUN_CONCURRENCY: Final = {"memory": 500, "sqlite": 1, "sqlalchemy-sqlite": 1}
DEFAULT_CONCURRENCY: Final = 32


async def preload(
    target: Target,
    spec: NamespaceSpec,
    storage: Storage,
    state: BenchState,
    rows: int,
    progress: Progress,
) -> str:
    """Store `rows` runs and `rows` messages in the bench thread; how it was done."""
    task = progress.add_task(f"{target.kind}: preload {rows:,} runs", total=rows)
    concurrency = RUN_CONCURRENCY.get(target.kind, DEFAULT_CONCURRENCY)
    wf = storage.workflows
    for start in range(0, rows, concurrency):
        n = min(concurrency, rows - start)
        await asyncio.gather(*(wf.create_run("bench-preload", {"i": start + j}) for j in range(n)))
        progress.advance(task, n)
    progress.reset(task, total=rows, description=f"{target.kind}: preload {rows:,} messages")
    for start in range(0, rows, MESSAGE_BATCH):
        n = min(MESSAGE_BATCH, rows - start)
        batch = [
            Message(
                id=f"p{start + j}",
                role=MessageRole.USER if (start + j) % 2 == 0 else MessageRole.ASSISTANT,
                content=f"preloaded message {start + j}",
            )
            for j in range(n)
        ]
        await storage.ai_storage.save_messages(state.thread_id, batch)
        progress.advance(task, n)
    progress.remove_task(task)
    return f"public API, {concurrency} concurrent create_run, save_messages of {MESSAGE_BATCH}"
