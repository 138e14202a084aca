"""`python -m benchmarks peers URL ...`: a conversation turn against LangGraph's checkpoint savers.

One turn appends a user and an assistant message and reads the latest 20. Ours:
`save_messages` (2) then `get_messages(last_n=20)`. LangGraph: `aput` of a checkpoint whose
`messages` channel holds the conversation so far (that is how a LangGraph agent keeps its
history) then `aget_tuple` and the last 20 of it. Same file (SQLite: the saver gets a second
file in the same directory, as it owns its schema) or same server and schema (PostgreSQL),
interleaved in one run. Needs the `peers` extra (langgraph-checkpoint-sqlite/-postgres).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from benchmarks._measure import Result, measure, table
from benchmarks._namespace import Namespace
from benchmarks._workload import Op, message_texts
from benchmarks.ops import Options
from pikku_storage.records import Message, MessageRole

__all__ = ["run_peers"]


@contextlib.asynccontextmanager
async def _saver(ns: Namespace) -> AsyncIterator[Any]:
    """LangGraph's saver for the namespace: AsyncSqliteSaver or AsyncPostgresSaver."""
    if ns.kind == "sqlite":
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        path = ns.sqlite_path.removesuffix(".db") + "-langgraph.db"
        async with AsyncSqliteSaver.from_conn_string(path) as saver:
            await saver.setup()
            yield saver
    elif ns.kind == "postgres":
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        sep = "&" if "?" in ns.url else "?"
        url = f"{ns.url}{sep}options={quote('-c search_path=' + ns.option('schema'))}"
        async with AsyncPostgresSaver.from_conn_string(url) as saver:
            await saver.setup()
            yield saver
    else:
        raise SystemExit(f"peers compares sqlite and postgres only, not {ns.kind}")


def _langgraph_turns(saver: Any) -> tuple[Op, Op]:
    from langgraph.checkpoint.base import empty_checkpoint

    config: dict[str, Any] = {"configurable": {"thread_id": "bench", "checkpoint_ns": ""}}
    history: list[dict[str, str]] = []
    latest = [config]

    async def write(i: int) -> None:
        question, answer = message_texts(i)
        history.extend(
            [
                {"id": f"u{i}", "role": "user", "content": question},
                {"id": f"a{i}", "role": "assistant", "content": answer},
            ]
        )
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"messages": list(history)}
        checkpoint["channel_versions"] = {"messages": i + 1}
        latest[0] = await saver.aput(
            latest[0], checkpoint, {"source": "loop", "step": i}, {"messages": i + 1}
        )

    async def read(i: int) -> None:
        found = await saver.aget_tuple(config)
        assert found is not None
        _ = found.checkpoint["channel_values"]["messages"][-20:]

    return write, read


async def run_peers(url: str, options: Options) -> tuple[list[Result], str]:
    """The turn's write and read, ours against LangGraph's saver, interleaved."""
    ns = Namespace(url)
    try:
        async with ns.open() as storage, _saver(ns) as saver:
            ai = storage.ai_storage
            thread = await ai.create_thread("bench-resource", title="peers")

            async def write(i: int) -> None:
                question, answer = message_texts(i)
                await ai.save_messages(
                    thread.id,
                    [
                        Message(id=f"u{i}", role=MessageRole.USER, content=question),
                        Message(id=f"a{i}", role=MessageRole.ASSISTANT, content=answer),
                    ],
                )

            async def read(i: int) -> None:
                await ai.get_messages(thread.id, last_n=20)

            lg_write, lg_read = _langgraph_turns(saver)
            results = [
                await measure(
                    "write",
                    "turn write: 2 messages",
                    write,
                    lg_write,
                    ops=options.ops,
                    concurrency=1,
                    block=options.block,
                ),
                await measure(
                    "read",
                    "turn read: latest 20",
                    read,
                    lg_read,
                    ops=options.ops,
                    concurrency=1,
                    block=options.block,
                ),
            ]
    finally:
        await ns.drop()
    title = f"{ns.kind}: ours vs LangGraph's checkpoint saver, {options.ops} turns per side"
    return results, table(results, title, other="LangGraph")
