"""`runs show` lists a run's planned steps and the child runs its steps' attempts started."""

from __future__ import annotations

from rich.console import Console

from pikku_storage import PlannedStep, open_storage
from pikku_storage._cli import _views as views
from pikku_storage.clock import TEST_START, ManualClock


def _render(table: object) -> str:
    out = Console(width=200, record=True)
    out.print(table)
    return out.export_text()


async def test_child_runs_come_from_every_attempt_in_history_order() -> None:
    async with open_storage("memory://", clock=ManualClock(TEST_START)) as storage:
        wf = storage.workflows
        run_id = await wf.create_run(
            "wf", None, deterministic=True, planned_steps=[PlannedStep(step_name="sub")]
        )
        step = await wf.insert_step_state(run_id, "sub", None, None)
        await wf.set_step_child_run_id(step.step_id, "child-1")
        await wf.set_step_error(step.step_id, {"message": "m"})
        await wf.create_retry_attempt(step.step_id, "running")
        await wf.set_step_child_run_id(step.step_id, "child-2")
        await wf.insert_step_state(run_id, "plain", None, None)
        children = views.child_runs(await storage.workflow_runs.get_run_history(run_id))
    assert children == [
        views.ChildRun(step_name="sub", attempt_count=1, child_run_id="child-1"),
        views.ChildRun(step_name="sub", attempt_count=2, child_run_id="child-2"),
    ]
    text = _render(views.child_runs_table(children))
    assert "child-1" in text
    assert "child-2" in text


def test_planned_steps_table_keeps_order_and_duplicates() -> None:
    plan = [
        PlannedStep(step_name="a", display_name="First"),
        PlannedStep(step_name="b"),
        PlannedStep(step_name="a", display_name=""),
    ]
    lines = [line for line in _render(views.planned_steps_table(plan)).splitlines() if line]
    rows = [line.split() for line in lines[2:]]
    assert [row[:2] for row in rows[-3:]] == [["1", "a"], ["2", "b"], ["3", "a"]]
    assert "First" in lines[-3]
