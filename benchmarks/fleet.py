"""`python -m benchmarks fleet URL`: K worker processes executing one shared backlog of steps.

The parent makes `runs` runs of `steps` pending steps each; K spawned OS processes, each with
its own `Storage` and a started deployment (heartbeating), take step indexes from a shared
counter that hands every index out twice, so two workers race to `claim_step` each step and
exactly one may win; the winner executes it (`set_step_result`). Afterwards the parent checks
through the public API that every step succeeded with exactly one attempt and that no step
was claimed twice or never: duplicates 0, lost 0. Each worker also reports the CPU time of its
claim loop: summed over the K workers and divided by the wall time, it is how many of the
machine's cores the workers kept busy (the rest went to the server and everything else).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event

from benchmarks._namespace import Namespace
from pikku_storage import open_storage
from pikku_storage.records import DeploymentConfig, StepStatus

__all__ = ["FleetRow", "run_fleet"]


@dataclass(frozen=True, slots=True)
class FleetRow:
    """One fleet size's outcome."""

    workers: int
    steps: int
    seconds: float
    duplicates: int
    lost: int
    cpu: float = 0.0  # CPU seconds the workers spent in their claim loops, summed

    @property
    def rate(self) -> float:
        """Executed steps per second of wall time."""
        return self.steps / self.seconds if self.seconds else 0.0


async def _work(
    n: int,
    url: str,
    options: dict[str, object],
    step_ids: list[str],
    counter: Synchronized[int],
    ready: mp.Queue[int],
    go: Event,
) -> tuple[list[str], float]:
    won: list[str] = []
    async with open_storage(url, **options) as storage:
        await storage.deployments.start(
            DeploymentConfig(
                deployment_id=f"fleet-worker-{n}",
                endpoint=f"http://127.0.0.1:{4000 + n}",
                functions=["chargeCard"],
            )
        )
        wf = storage.workflows
        ready.put(n)
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        cpu = time.process_time()
        while True:
            with counter.get_lock():
                slot = counter.value
                counter.value += 1
            if slot >= 2 * len(step_ids):
                break
            step_id = step_ids[slot // 2]
            claimed = await wf.claim_step(step_id)
            if claimed is not None:
                await wf.set_step_result(step_id, {"worker": n})
                won.append(step_id)
        cpu = time.process_time() - cpu
        await storage.deployments.stop()
    return won, cpu


def _worker(
    n: int,
    url: str,
    options: dict[str, object],
    step_ids: list[str],
    counter: Synchronized[int],
    ready: mp.Queue[int],
    go: Event,
    out: mp.Queue[tuple[list[str], float]],
) -> None:
    out.put(asyncio.run(_work(n, url, options, step_ids, counter, ready, go)))


async def _backlog(ns: Namespace, runs: int, steps: int) -> tuple[list[str], list[str]]:
    run_ids: list[str] = []
    step_ids: list[str] = []
    async with ns.open() as storage:
        wf = storage.workflows
        for r in range(runs):
            run_id = await wf.create_run("fleet", {"run": r})
            run_ids.append(run_id)
            for s in range(steps):
                live = await wf.insert_step_state(run_id, f"s{s}", "chargeCard", {"s": s})
                step_ids.append(live.step_id)
    return run_ids, step_ids


async def _verify(ns: Namespace, run_ids: list[str]) -> tuple[int, int]:
    """Steps not succeeded on exactly one attempt (lost), and extra attempts (ran twice)."""
    lost = twice = 0
    async with ns.open() as storage:
        for run_id in run_ids:
            history = await storage.workflows.get_run_history(run_id)
            attempts = Counter(entry.step_id for entry in history)
            twice += sum(count - 1 for count in attempts.values())
            for step in await storage.workflow_runs.get_run_steps(run_id):
                if step.status is not StepStatus.SUCCEEDED:
                    lost += 1
    return lost, twice


def _one(ns: Namespace, workers: int, runs: int, steps: int) -> FleetRow:
    run_ids, step_ids = asyncio.run(_backlog(ns, runs, steps))
    ctx = mp.get_context("spawn")
    counter: Synchronized[int] = ctx.Value("q", 0)
    ready: mp.Queue[int] = ctx.Queue()
    out: mp.Queue[tuple[list[str], float]] = ctx.Queue()
    go = ctx.Event()
    procs = [
        ctx.Process(
            target=_worker,
            args=(n, ns.url, ns.options, step_ids, counter, ready, go, out),
            daemon=True,
        )
        for n in range(workers)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=120)
    started = time.perf_counter()
    go.set()
    won: list[str] = []
    cpu = 0.0
    for _ in procs:
        got, spent = out.get(timeout=600)
        won += got
        cpu += spent
    seconds = time.perf_counter() - started
    for proc in procs:
        proc.join(timeout=30)
    claims = Counter(won)
    duplicates = sum(count - 1 for count in claims.values())
    lost_claims = len(set(step_ids) - set(claims))
    lost, twice = asyncio.run(_verify(ns, run_ids))
    return FleetRow(
        workers=workers,
        steps=len(won),
        seconds=seconds,
        duplicates=duplicates + twice,
        lost=max(lost, lost_claims),
        cpu=cpu,
    )


def run_fleet(url: str, workers: list[int], *, runs: int, steps: int) -> str:
    """The fleet table (markdown) for each K in `workers`, in one fresh namespace."""
    ns = Namespace(url)
    if not ns.portable:
        raise SystemExit(f"fleet needs a backend other processes can open, not {url}")
    rows: list[FleetRow] = []
    try:
        for k in workers:
            rows.append(_one(ns, k, runs, steps))
    finally:
        asyncio.run(ns.drop())
    lines = [
        f"**fleet on {ns.kind}: {runs} runs x {steps} steps per K, every step offered to two"
        " workers (claim_step + set_step_result)**",
        "",
        "| workers K | steps | seconds | steps/s | duplicates | lost | worker CPU s |"
        " worker cores busy |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        busy = row.cpu / row.seconds if row.seconds else 0.0
        lines.append(
            f"| {row.workers} | {row.steps} | {row.seconds:.2f} | {row.rate:,.0f} |"
            f" {row.duplicates} | {row.lost} | {row.cpu:.2f} | {busy:.2f} |"
        )
    return "\n".join(lines)
