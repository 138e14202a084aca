"""Rich tables of what a console shows: runs, steps, history, transcripts, deployments."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from pikku_storage._cli._common import fmt_clock, fmt_seconds, fmt_time
from pikku_storage.codec import JsonValue
from pikku_storage.records import (
    AgentRunRow,
    AgentRunScore,
    DeploymentInfo,
    Message,
    PlannedStep,
    ResolvedApproval,
    RunStep,
    StepHistoryEntry,
    Thread,
    WorkflowRun,
)

__all__ = [
    "ChildRun",
    "approvals_table",
    "child_runs",
    "child_runs_table",
    "deployments_table",
    "history_table",
    "ids_table",
    "planned_steps_table",
    "runs_table",
    "scores_table",
    "steps_table",
    "thread_runs_table",
    "threads_table",
    "transcript_table",
]

_WRAPPING = frozenset({"message", "error", "result / error", "reason"})
_SHORT = frozenset({"status", "attempt", "decision", "kind"})
# Ids users paste into other commands: never cut, never folded (the other columns give way).
_IDS = frozenset({"run id", "thread id", "resource", "tool call", "deployment", "channel id"})
_STATUS_STYLE = {
    "running": "cyan",
    "pending": "white",
    "scheduled": "blue",
    "suspended": "yellow",
    "completed": "green",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "magenta",
    "interrupted": "magenta",
    "approved": "green",
    "denied": "red",
}


def _status(value: str) -> Text:
    return Text(value, style=_STATUS_STYLE.get(value, ""))


def _json(value: JsonValue, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Titled(Table):
    """A table whose title is printed above it, unwrapped, however narrow the table is; its
    id columns are as wide as their longest id, so a narrow terminal never cuts one."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for column in self.columns:
            if column.header in _IDS:
                column.min_width = max((len(str(cell)) for cell in column.cells), default=0)
        title, self.title = self.title, None
        try:
            if title is not None:
                yield Text(str(title), style="bold")
            yield from super().__rich_console__(console, options)
        finally:
            self.title = title


def _table(title: str, *columns: str) -> Table:
    table = _Titled(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1),
        collapse_padding=True,
        pad_edge=False,
    )
    for column in columns:
        if column in _WRAPPING:
            table.add_column(column, overflow="fold", ratio=1)
        elif column in _IDS or column in _SHORT:
            table.add_column(column, no_wrap=True)
        else:  # wraps at spaces, then folds, before an id column would shrink
            table.add_column(column, overflow="fold")
    return table


def runs_table(runs: Sequence[WorkflowRun], title: str = "Workflow runs") -> Table:
    """One row per run, newest first as `list_runs` returns them (see
    docs/services/workflow-runs.md)."""
    table = _table(title, "run id", "workflow", "status", "created (UTC)", "updated (UTC)")
    for run in runs:
        table.add_row(
            run.id,
            run.workflow,
            _status(run.status.value),
            fmt_seconds(run.created_at),
            fmt_seconds(run.updated_at),
        )
    return table


def steps_table(steps: Sequence[RunStep], title: str = "Steps") -> Table:
    """One row per step with its current attempt (see docs/services/workflow-runs.md
    get_run_steps)."""
    table = _table(title, "step", "rpc", "status", "attempt", "result / error", "updated (UTC)")
    for step in steps:
        outcome = step.error.get("message") if step.error else step.result
        table.add_row(
            step.step_name,
            step.rpc_name or "-",
            _status(step.status.value),
            str(step.attempt_count),
            _json(outcome) if outcome is not None else "-",
            fmt_time(step.updated_at),
        )
    return table


@dataclass(slots=True)
class ChildRun:
    """A child run started by one attempt of a step (`runs show`)."""

    step_name: str
    attempt_count: int
    child_run_id: str


def child_runs(history: Sequence[StepHistoryEntry]) -> list[ChildRun]:
    """Each attempt's child run, in history order (a retried sub-workflow step has several)."""
    return [
        ChildRun(
            step_name=entry.step_name,
            attempt_count=entry.attempt_count,
            child_run_id=entry.child_run_id,
        )
        for entry in history
        if entry.child_run_id is not None
    ]


def child_runs_table(children: Sequence[ChildRun], title: str = "Child runs") -> Table:
    """One row per attempt that started a child run."""
    table = _table(title, "step", "attempt", "run id")
    for child in children:
        table.add_row(child.step_name, str(child.attempt_count), child.child_run_id)
    return table


def planned_steps_table(plan: Sequence[PlannedStep], title: str = "Planned steps") -> Table:
    """A deterministic run's plan in order, duplicates kept."""
    table = _table(title, "#", "step", "display name")
    for index, step in enumerate(plan, 1):
        table.add_row(str(index), step.step_name, step.display_name if step.display_name else "-")
    return table


def history_table(history: Sequence[StepHistoryEntry], title: str = "Step history") -> Table:
    """Every attempt of every step, oldest first (see docs/services/workflow-runs.md
    get_run_history)."""
    table = _table(title, "step", "attempt", "status", "running (UTC)", "finished", "error")
    for entry in history:
        finished = entry.succeeded_at or entry.failed_at
        error = entry.error.get("message") if entry.error else None
        table.add_row(
            entry.step_name,
            str(entry.attempt_count),
            _status(entry.status.value),
            fmt_clock(entry.running_at),
            fmt_clock(finished),
            str(error) if error is not None else "",
        )
    return table


def threads_table(threads: Sequence[Thread], title: str = "Threads") -> Table:
    """Threads in thread order (see docs/services/agent-runs.md list_threads)."""
    table = _table(title, "thread id", "resource", "title", "created (UTC)", "updated (UTC)")
    for thread in threads:
        table.add_row(
            thread.id,
            thread.resource_id,
            thread.title or "-",
            fmt_seconds(thread.created_at),
            fmt_seconds(thread.updated_at),
        )
    return table


def _content(message: Message) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    parts: list[JsonValue] = list(message.content)
    return _json(parts, 200)


def transcript_table(messages: Sequence[Message], title: str = "Transcript") -> Table:
    """Messages in stored order with tool calls and the synthetic tool-result messages
    (docs/services/ai-storage.md)."""
    table = _table(title, "role", "message")
    for message in messages:
        lines = [_content(message)] if message.content is not None else []
        lines += [f"→ {call.name}({_json(call.args, 80)})" for call in message.tool_calls]
        lines += [f"← {res.name}: {res.result}" for res in message.tool_results]
        table.add_row(Text(message.role.value, style="bold"), "\n".join(lines))
    return table


def thread_runs_table(runs: Sequence[AgentRunRow], title: str = "Agent runs") -> Table:
    """A thread's runs in run order, flat (see docs/services/agent-runs.md get_thread_runs)."""
    table = _table(title, "run id", "agent", "status", "suspended for", "tokens in/out", "model")
    for row in runs:
        table.add_row(
            row.run_id,
            row.agent_name,
            _status(row.status.value),
            row.suspend_reason.value if row.suspend_reason else "-",
            f"{row.usage_input_tokens}/{row.usage_output_tokens}",
            row.usage_model or "-",
        )
    return table


def scores_table(scores: Sequence[AgentRunScore], title: str = "Scores") -> Table:
    """The runs' grades, each run's in `created_at` order (see docs/services/ai-run-state.md
    get_scores)."""
    table = _table(title, "run id", "scorer", "score", "reason", "created (UTC)")
    for score in scores:
        table.add_row(
            score.run_id,
            score.scorer_name,
            f"{score.score:.3f}",
            score.reason or "-",
            fmt_time(score.created_at),
        )
    return table


def approvals_table(decisions: Sequence[ResolvedApproval], title: str = "Approvals") -> Table:
    """A run's decision log in claim order (see docs/services/ai-run-state.md
    get_approval_decisions)."""
    table = _table(title, "tool call", "kind", "decision", "resolved at (UTC)")
    for decision in decisions:
        table.add_row(
            decision.approval.tool_call_id,
            type(decision.approval).TYPE,
            _status(decision.status.value),
            fmt_time(decision.resolved_at),
        )
    return table


def ids_table(ids: Sequence[str], title: str, column: str = "channel id") -> Table:
    """A plain list of ids (topic subscribers, pruned channels)."""
    table = _table(title, column)
    for value in ids:
        table.add_row(value)
    return table


def deployments_table(infos: Sequence[DeploymentInfo], title: str = "Live deployments") -> Table:
    """Live registrations, freshest heartbeat first (see docs/services/deployments.md)."""
    table = _table(title, "deployment", "endpoint", "last heartbeat (UTC)")
    for info in infos:
        table.add_row(info.deployment_id, info.endpoint, fmt_time(info.last_heartbeat))
    return table
