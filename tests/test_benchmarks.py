"""The benchmarks package (`python -m benchmarks`) runs and reports; no timing is asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest

from benchmarks._namespace import Namespace
from benchmarks._workload import ours, prepare
from benchmarks.compare import run_compare
from benchmarks.ops import Options, _twin, run_ops

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("url", ["memory://", "sqlite:///unused.db"], ids=["memory", "sqlite"])
async def test_ops_reports_a_positive_p50_for_every_operation(url: str) -> None:
    results, text = await run_ops(url, Options(ops=6, block=3))
    assert [r.name for r in results] == [
        "create_run",
        "step",
        "list_runs",
        "save_messages",
        "get_messages",
        "subscribe",
        "heartbeat",
    ]
    assert all(len(r.ours) == 6 and min(r.ours) > 0 for r in results)
    assert "| operation |" in text


async def test_ops_gives_positive_ratios_on_sqlite() -> None:
    results, _ = await run_ops("sqlite:///unused.db", Options(ops=6, block=3))
    with_twin = {r.name: r.ratio for r in results if r.ratio is not None}
    assert set(with_twin) == {"create_run", "step", "list_runs", "save_messages", "get_messages"}
    assert all(ratio > 0 for ratio in with_twin.values())


def test_command_prints_a_markdown_table_with_ratios() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks", "sqlite:///unused.db", "--ops", "4", "--block", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    assert "| operation | ours ops/s | ours p50 ms | raw ops/s | raw p50 ms | ours/raw p50 |" in out
    ratios = [float(x) for x in re.findall(r"\| (\d+\.\d+)x \|", out)]
    assert len(ratios) == 5
    assert all(ratio > 0 for ratio in ratios)


def test_fleet_on_sqlite_runs_every_step_once() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "fleet",
            "sqlite:///unused.db",
            "--workers",
            "1,2",
            "--runs",
            "3",
            "--steps",
            "4",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    rows = re.findall(
        r"^\| (\d+) \| (\d+) \| [\d.]+ \| [\d,]+ \| (\d+) \| (\d+) \| [\d.]+ \| [\d.]+ \|$",
        out,
        re.M,
    )
    assert rows == [("1", "12", "0", "0"), ("2", "12", "0", "0")]


async def test_against_compares_ours_on_two_urls_interleaved() -> None:
    results, text = await run_compare("memory://", "sqlite:///unused.db", Options(ops=6, block=3))
    assert all(len(r.ours) == 6 and len(r.raw) == 6 for r in results)
    assert all(r.ratio is not None and r.ratio > 0 for r in results)
    assert "| operation | memory ops/s | memory p50 ms | sqlite ops/s |" in text


@pytest.mark.parametrize("server", ["pikku_postgres_url", "pikku_redis_url"])
async def test_the_server_twins_list_what_the_backend_lists(
    server: str, request: pytest.FixtureRequest
) -> None:
    """The psycopg and redis-py twins' `list_runs` read the backend's runs, as values
    (JSON parsed, timestamps aware), newest first: the same page as ours; the redis-py
    twin's `get_messages` the same window of the bench thread."""
    ns = Namespace(request.getfixturevalue(server))
    try:
        async with ns.open() as storage:
            state = await prepare(storage, channels=2)
            mine = ours(storage, state)
            for i in range(30):
                await mine["create_run"](i)
                await mine["save_messages"](i)
            twin = _twin(ns, state, 1)
            assert twin is not None
            await twin.open()
            try:
                raw_runs = cast("list[tuple[Any, ...]]", await twin.ops()["list_runs"](0))
                runs = await storage.workflow_runs.list_runs(limit=50)
                assert [(r[0], r[3], r[9]) for r in raw_runs] == [
                    (run.id, run.input, run.created_at) for run in runs
                ]
                if ns.kind == "redis":
                    raw_messages = cast("list[dict[str, Any]]", await twin.ops()["get_messages"](0))
                    messages = await storage.ai_storage.get_messages(state.thread_id, last_n=20)
                    assert [(m["id"], m["text"], m["created_at"]) for m in raw_messages] == [
                        (m.id, m.content, m.created_at) for m in messages
                    ]
            finally:
                await twin.close()
            await storage.deployments.stop()
    finally:
        await ns.drop()
