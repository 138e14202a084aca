"""`threads show` lists the scores of the thread's runs (spec 05 §2.1), on the memory backend."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from pikku_storage import ManualClock
from pikku_storage._cli import _views as views
from pikku_storage._cli.inspect import _thread_scores
from pikku_storage.memory import open_storage

pytestmark = pytest.mark.asyncio


async def test_thread_scores_lists_every_run_s_scores_in_run_order() -> None:
    async with open_storage(clock=ManualClock()) as storage:
        await storage.ai_storage.create_thread("res-1", thread_id="t-1")
        first = await storage.ai_run_state.create_run(
            agent_name="a", thread_id="t-1", resource_id="res-1"
        )
        second = await storage.ai_run_state.create_run(
            agent_name="a", thread_id="t-1", resource_id="res-1"
        )
        await storage.ai_run_state.save_score(first, "tone", 0.25, reason="curt")
        await storage.ai_run_state.save_score(second, "helpfulness", 1)
        rows = await storage.agent_runs.get_thread_runs("t-1")
        scores = await _thread_scores(storage, rows)
    assert [(s.run_id, s.scorer_name, s.score) for s in scores] == [
        (second, "helpfulness", 1.0),
        (first, "tone", 0.25),
    ]
    out = io.StringIO()
    Console(file=out, width=200).print(views.scores_table(scores))
    text = out.getvalue()
    assert "helpfulness" in text
    assert "0.250" in text
    assert "curt" in text
