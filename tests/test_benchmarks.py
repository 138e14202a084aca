"""The benchmarks package (`python -m benchmarks`) runs and reports; no timing is asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.compare import run_compare
from benchmarks.ops import Options, run_ops

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
