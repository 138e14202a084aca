"""Server time per console page on a large store: p50/p90 over 50 requests per page.

    .venv/bin/python scripts/bench_console.py URL [--runs 100000] [--messages 100000]

Fills URL (a fresh namespace: a PostgreSQL schema or an SQLite file) through the public API
with RUNS workflow runs (one in ten failed) and MESSAGES messages (half in one long thread,
half in threads of 1,000), unless it already holds them, then requests each page in-process
through the ASGI app (no network, no browser): what is timed is routing, the service calls
and the template, which is the server's share of a page view.

On PostgreSQL the namespace's tables are `VACUUM (ANALYZE)`d before timing (`--no-vacuum` to
skip it): what autovacuum does within a minute of a bulk load, and what lets the counts by
status be index-only scans. Test servers often run with autovacuum off; a never-vacuumed
table is the slow case to look at with `--no-vacuum`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any
from urllib.parse import quote

import httpx2
import psycopg
from psycopg import sql

from pikku_storage.console import create_app
from pikku_storage.records import Message, MessageRole, ToolCall
from pikku_storage.storage import Storage, open_storage

REQUESTS = 50


async def _fill_runs(storage: Storage, count: int, concurrency: int) -> None:
    wf = storage.workflows
    done = 0

    async def one(n: int) -> None:
        run_id = await wf.create_run(f"wf-{n % 8}", {"n": n, "payload": "x" * 64})
        if n % 10 == 0:
            await wf.update_run_status(run_id, "failed", error={"message": f"failed {n}"})

    sem = asyncio.Semaphore(concurrency)

    async def guarded(n: int) -> None:
        async with sem:
            await one(n)

    while done < count:
        batch = range(done, min(done + 2000, count))
        await asyncio.gather(*(guarded(n) for n in batch))
        done = batch.stop
        print(f"  runs {done}/{count}", flush=True)


async def _fill_messages(storage: Storage, count: int) -> str:
    ai = storage.ai_storage
    big = await ai.create_thread("bench-user", title="long thread")
    await storage.ai_run_state.create_run(
        agent_name="bench-agent",
        thread_id=big.id,
        resource_id="bench-user",
        status="completed",
    )
    remaining = count // 2
    seq = 0
    while remaining > 0:
        size = min(1000, remaining)
        batch = []
        for _ in range(size):
            seq += 1
            if seq % 10 == 0:
                batch.append(
                    Message(
                        id=f"m{seq}",
                        role=MessageRole.ASSISTANT,
                        content=f"calling a tool ({seq})",
                        tool_calls=[ToolCall(id=f"c{seq}", name="lookup", args={"n": seq})],
                    )
                )
            else:
                role = MessageRole.USER if seq % 2 else MessageRole.ASSISTANT
                batch.append(Message(id=f"m{seq}", role=role, content=f"message {seq} " * 4))
        await ai.save_messages(big.id, batch)
        remaining -= size
    for t in range((count - count // 2) // 1000):
        thread = await ai.create_thread(f"user-{t % 20}", title=f"thread {t}")
        await ai.save_messages(
            thread.id,
            [Message(id=f"t{i}", role=MessageRole.USER, content=f"hello {i}") for i in range(1000)],
        )
    print(f"  messages {count}", flush=True)
    return big.id


async def _run_with_steps(storage: Storage) -> str:
    """A run of 10 steps, each failed twice and then succeeded: 30 attempts to draw."""
    wf = storage.workflows
    run_id = await wf.create_run("bench-steps", {"n": 1})
    for k in range(10):
        step = await wf.insert_step_state(run_id, f"step-{k}", "work", {"k": k}, retries=3)
        await wf.claim_step(step.step_id)
        for _ in range(2):
            await wf.set_step_error(step.step_id, {"message": "transient"})
            await wf.create_retry_attempt(step.step_id, "running")
        await wf.set_step_result(step.step_id, {"k": k})
    await wf.update_run_status(run_id, "completed", output={"ok": True})
    return run_id


async def _vacuum(url: str, schema: str) -> None:
    """`VACUUM (ANALYZE)` every table of `schema`, as autovacuum would (the raw driver)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", (schema,)
        )
        for (table,) in await cur.fetchall():
            await conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(schema, table)))
    print(f"  vacuumed and analyzed schema {schema}", flush=True)


async def main(
    url: str, runs: int, messages: int, options: dict[str, Any], vacuum: bool = True
) -> None:
    async with open_storage(url, **options) as storage:
        existing = await storage.workflow_runs.list_runs(limit=1, offset=max(runs - 1, 0))
        if not existing:
            print(f"filling {url}: {runs} runs, {messages} messages", flush=True)
            started = time.perf_counter()
            # SQLite has one writer: concurrent writers only wait on its lock (and time out)
            concurrency = 1 if url.startswith("sqlite") else 32
            await _fill_runs(storage, runs, concurrency)
            await _fill_messages(storage, messages)
            print(f"  filled in {time.perf_counter() - started:.0f} s", flush=True)
        if vacuum and url.startswith(("postgresql://", "postgres://")):
            await _vacuum(url, str(options.get("schema", "pikku")))  # the default schema
        threads = await storage.agent_runs.list_threads(agent_name="bench-agent", limit=1)
        big = threads[0].id
        run = (await storage.workflow_runs.list_runs(limit=1, offset=runs // 2))[0]
        stepped = await _run_with_steps(storage)
        app = create_app(storage)
        pages = [
            "/runs",
            "/runs#counts-recomputed",
            "/runs?workflow=wf-3#counts-recomputed",
            "/runs?status=failed",
            "/runs?workflow=wf-3&status=running",
            "/runs?offset=5000",
            f"/runs/{run.id}",
            f"/runs/{stepped}#10-steps-30-attempts",
            "/threads",
            "/threads?agent=bench-agent",
            f"/threads/{quote(big, safe='')}",
            "/deployments",
            "/channels?topic=orders",
        ]
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            print(f"\n{url}: {runs} runs, {messages} messages; ms per request")
            print("| page | p50 | p90 | bytes |")
            print("|---|---:|---:|---:|")
            for page in pages:
                await c.get(page)  # warm caches once
                times = []
                size = 0
                for _ in range(REQUESTS):
                    if page.endswith("#counts-recomputed"):
                        app.state.counts.entries.clear()
                    start = time.perf_counter()
                    response = await c.get(page)
                    times.append((time.perf_counter() - start) * 1000)
                    assert response.status_code == 200, (page, response.status_code)
                    size = len(response.content)
                times.sort()
                p90 = times[int(len(times) * 0.9) - 1]
                shown = page if len(page) < 40 else page[:37] + "…"
                print(f"| `{shown}` | {statistics.median(times):.1f} | {p90:.1f} | {size} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--schema", default=None)
    parser.add_argument(
        "--no-vacuum", action="store_true", help="PostgreSQL: time the tables as they are"
    )
    args = parser.parse_args()
    opts: dict[str, Any] = {"schema": args.schema} if args.schema else {}
    asyncio.run(main(args.url, args.runs, args.messages, opts, vacuum=not args.no_vacuum))
