"""Inspection commands: `runs`, `threads`, `channels` and `deployments` against a URL."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, TypeVar

import click

from pikku_storage._cli import _views as views
from pikku_storage._cli._common import (
    DURATION,
    console,
    cutoff,
    display_url,
    echo_json,
    namespace_options,
)
from pikku_storage._cli._env import UrlDefaultGroup
from pikku_storage._cli._store import confirm, with_storage
from pikku_storage.codec import JsonValue
from pikku_storage.records import (
    FINISHED_STATUSES,
    AgentRunRow,
    AgentRunScore,
    Message,
    RunStep,
    StepHistoryEntry,
    Thread,
    WorkflowRun,
    WorkflowStatus,
)
from pikku_storage.storage import Storage

__all__ = ["channels", "deployments", "runs", "threads"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def _URL(command: F) -> F:
    return click.argument("url")(namespace_options(command))


_STATUSES = [status.value for status in WorkflowStatus]
_FINISHED = [status.value for status in FINISHED_STATUSES]
_PAGE: Final = 1000
_YES = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
_DRY_RUN = click.option(
    "--dry-run", is_flag=True, help="Only say what would be deleted; change nothing."
)


class _Seconds(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click
    """Seconds as a plain number (`30`, `0.5`) or a duration (`30s`, `2m`)."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = float(str(value))
        except ValueError:
            seconds = DURATION.convert(value, param, ctx).total_seconds()
        if seconds <= 0:
            self.fail(f"must be positive: {value!r}", param, ctx)
        return seconds


def _preview(ids: list[str], what: str, cutoff_: dict[str, datetime], as_json: bool) -> None:
    """What a `--dry-run` prints: how many it would delete, or their ids and the cutoff."""
    if as_json:
        echo_json({"would_delete": ids, **cutoff_})
    else:
        click.echo(f"would delete {len(ids)} {what}")


async def _prunable_runs(
    storage: Storage, statuses: tuple[str, ...], before: datetime
) -> list[WorkflowRun]:
    """The runs `prune_runs` would delete, read page by page (for `--dry-run`)."""
    found: list[WorkflowRun] = []
    for status in statuses:
        offset = 0
        while page := await storage.workflow_runs.list_runs(
            status=status, limit=_PAGE, offset=offset
        ):
            found += [run_ for run_ in page if run_.updated_at < before]
            offset += len(page)
    return found


async def _prunable_threads(storage: Storage, before: datetime) -> list[Thread]:
    """The threads `prune_threads` would delete, read page by page (for `--dry-run`)."""
    found: list[Thread] = []
    offset = 0
    while page := await storage.agent_runs.list_threads(limit=_PAGE, offset=offset):
        found += [thread for thread in page if thread.updated_at < before]
        offset += len(page)
    return found


@dataclass(slots=True)
class _RunDetail:
    """What `runs show` prints (and its JSON)."""

    run: WorkflowRun
    steps: list[RunStep]
    history: list[StepHistoryEntry]
    state: dict[str, JsonValue]
    child_runs: list[views.ChildRun]


@dataclass(slots=True)
class _ThreadDetail:
    """What `threads show` prints (and its JSON)."""

    thread: Thread
    messages: list[Message]
    runs: list[AgentRunRow]
    scores: list[AgentRunScore]


async def _thread_scores(storage: Storage, runs: list[AgentRunRow]) -> list[AgentRunScore]:
    """Every score of the thread's runs, run by run in run order."""
    scores: list[AgentRunScore] = []
    for row in runs:
        scores += await storage.ai_run_state.get_scores(row.run_id)
    return scores


# --- runs --------------------------------------------------------------------------------


@click.group("runs", cls=UrlDefaultGroup)
def runs() -> None:
    """List, show, delete and prune workflow runs (see docs/services/workflow-runs.md)."""


@runs.command("list")
@_URL
@click.option("--workflow", help="Only runs of this workflow name.")
@click.option("--status", type=click.Choice(_STATUSES), help="Only runs with this status.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@_JSON
def runs_list(
    url: str, workflow: str | None, status: str | None, limit: int, offset: int, as_json: bool
) -> None:
    """Runs newest first, filtered exactly, then paged."""
    found = with_storage(
        url,
        lambda s: s.workflow_runs.list_runs(
            workflow_name=workflow, status=status, limit=limit, offset=offset
        ),
    )
    if as_json:
        echo_json(found)
    else:
        console().print(views.runs_table(found))


@runs.command("show")
@_URL
@click.argument("run_id")
@_JSON
def runs_show(url: str, run_id: str, as_json: bool) -> None:
    """A run with its steps, full attempt history and state bag."""

    async def body(storage: Storage) -> _RunDetail | None:
        run_ = await storage.workflow_runs.get_run(run_id)
        if run_ is None:
            return None
        history = await storage.workflow_runs.get_run_history(run_id)
        return _RunDetail(
            run=run_,
            steps=await storage.workflow_runs.get_run_steps(run_id),
            history=history,
            state=await storage.workflows.get_run_state(run_id),
            child_runs=views.child_runs(history),
        )

    found = with_storage(url, body)
    if found is None:
        raise click.ClickException(f"Run not found: {run_id}")
    if as_json:
        echo_json(found)
        return
    out = console()
    out.print(views.runs_table([found.run], "Run"))
    out.print(f"  wire: {found.run.wire.type} {found.run.wire.id or ''}".rstrip())
    if found.run.deterministic:
        out.print("  deterministic: yes")
    if found.run.planned_steps:
        out.print(views.planned_steps_table(found.run.planned_steps))
    out.print(views.steps_table(found.steps))
    out.print(views.history_table(found.history))
    if found.child_runs:
        out.print(views.child_runs_table(found.child_runs))
    out.print(f"  state: {json.dumps(found.state, ensure_ascii=False)}")


@runs.command("delete")
@_URL
@click.argument("run_id")
@_DRY_RUN
@_YES
@_JSON
def runs_delete(url: str, run_id: str, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Delete one run with its steps, history and state; exit 1 if it did not exist."""
    if dry_run:
        found = with_storage(url, lambda s: s.workflow_runs.get_run(run_id))
        if found is None:
            raise click.ClickException(f"Run not found: {run_id}")
        if as_json:
            echo_json({"run_id": run_id, "deleted": False, "would_delete": True})
        else:
            click.echo(f"would delete run {run_id} ({found.workflow}, {found.status.value})")
        return
    confirm(f"Delete run {run_id} from {display_url(url)}?", yes)
    deleted = with_storage(url, lambda s: s.workflow_runs.delete_run(run_id))
    if as_json:
        echo_json({"run_id": run_id, "deleted": deleted})
    elif deleted:
        click.echo(f"deleted run {run_id}")
    if not deleted:
        raise click.ClickException(f"Run not found: {run_id}")


@runs.command("prune")
@_URL
@click.option(
    "--older-than",
    type=DURATION,
    required=True,
    help="Delete runs last updated longer ago than this (30s, 15m, 2h, 7d).",
)
@click.option(
    "--status",
    "statuses",
    type=click.Choice(_FINISHED),
    multiple=True,
    help="Finished statuses to prune (repeatable); default: all of them. Unfinished runs "
    "(running, pending, scheduled, suspended) are never pruned.",
)
@click.option("--batch-size", type=click.IntRange(1, 10000), default=1000, show_default=True)
@_DRY_RUN
@_YES
@_JSON
def runs_prune(
    url: str,
    older_than: timedelta,
    statuses: tuple[str, ...],
    batch_size: int,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Delete finished runs last updated before now minus --older-than."""
    chosen = statuses or tuple(_FINISHED)
    when = cutoff(older_than)
    what = f"runs ({', '.join(chosen)}) updated before {when:%Y-%m-%d %H:%M:%S} UTC"
    if dry_run:
        runs_ = with_storage(url, lambda s: _prunable_runs(s, chosen, when))
        _preview([r.id for r in runs_], what, {"finished_before": when}, as_json)
        return
    confirm(f"Delete {what} from {display_url(url)}?", yes)
    count = with_storage(
        url,
        lambda s: s.workflow_runs.prune_runs(
            finished_before=when, statuses=chosen, batch_size=batch_size
        ),
    )
    if as_json:
        echo_json({"deleted": count, "finished_before": when, "statuses": list(chosen)})
    else:
        click.echo(f"deleted {count} {what}")


# --- threads ------------------------------------------------------------------------------


@click.group("threads", cls=UrlDefaultGroup)
def threads() -> None:
    """List, show and prune agent threads (see docs/services/agent-runs.md)."""


@threads.command("list")
@_URL
@click.option("--agent", help="Only threads with a run of this agent.")
@click.option("--resource", help="Only threads of this resource id.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@_JSON
def threads_list(
    url: str, agent: str | None, resource: str | None, limit: int, offset: int, as_json: bool
) -> None:
    """Threads most recently updated first, filtered, then paged."""
    found = with_storage(
        url,
        lambda s: s.agent_runs.list_threads(
            agent_name=agent, resource_id=resource, limit=limit, offset=offset
        ),
    )
    if as_json:
        echo_json(found)
    else:
        console().print(views.threads_table(found))


@threads.command("show")
@_URL
@click.argument("thread_id")
@_JSON
def threads_show(url: str, thread_id: str, as_json: bool) -> None:
    """A thread with its transcript, agent runs and their scores."""

    async def body(storage: Storage) -> _ThreadDetail | None:
        thread = await storage.agent_runs.get_thread(thread_id)
        if thread is None:
            return None
        agent_runs = await storage.agent_runs.get_thread_runs(thread_id)
        return _ThreadDetail(
            thread=thread,
            messages=await storage.agent_runs.get_thread_messages(thread_id),
            runs=agent_runs,
            scores=await _thread_scores(storage, agent_runs),
        )

    found = with_storage(url, body)
    if found is None:
        raise click.ClickException(f"Thread not found: {thread_id}")
    if as_json:
        echo_json(found)
        return
    out = console()
    out.print(views.threads_table([found.thread], "Thread"))
    out.print(views.transcript_table(found.messages))
    out.print(views.thread_runs_table(found.runs))
    if found.scores:
        out.print(views.scores_table(found.scores))


@threads.command("prune")
@_URL
@click.option(
    "--older-than",
    type=DURATION,
    required=True,
    help="Delete threads last updated longer ago than this (30s, 15m, 2h, 7d).",
)
@click.option("--batch-size", type=click.IntRange(1, 10000), default=1000, show_default=True)
@_DRY_RUN
@_YES
@_JSON
def threads_prune(
    url: str, older_than: timedelta, batch_size: int, dry_run: bool, yes: bool, as_json: bool
) -> None:
    """Delete threads (with messages, runs and thread memory) updated before the cutoff."""
    when = cutoff(older_than)
    what = f"threads updated before {when:%Y-%m-%d %H:%M:%S} UTC"
    if dry_run:
        threads_ = with_storage(url, lambda s: _prunable_threads(s, when))
        _preview([t.id for t in threads_], what, {"updated_before": when}, as_json)
        return
    confirm(f"Delete {what} (with their messages and runs) from {display_url(url)}?", yes)
    count = with_storage(
        url, lambda s: s.agent_runs.prune_threads(updated_before=when, batch_size=batch_size)
    )
    if as_json:
        echo_json({"deleted": count, "updated_before": when})
    else:
        click.echo(f"deleted {count} {what}")


# --- channels and deployments --------------------------------------------------------------


@click.group("channels", cls=UrlDefaultGroup)
def channels() -> None:
    """Maintain WebSocket channels (see docs/services/channels.md)."""


@channels.command("prune")
@_URL
@click.option(
    "--older-than",
    type=DURATION,
    required=True,
    help="Remove channels last seen longer ago than this (30s, 15m, 2h, 7d).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Remove at most this many.")
@_YES
@_JSON
def channels_prune(
    url: str, older_than: timedelta, limit: int | None, yes: bool, as_json: bool
) -> None:
    """Remove channels (and their subscriptions) last seen before the cutoff, oldest first.

    No --dry-run: a channel's last-seen time is not readable, only acted on by the prune.
    """
    when = cutoff(older_than)
    confirm(
        f"Remove channels last seen before {when:%Y-%m-%d %H:%M:%S} UTC from {display_url(url)}?",
        yes,
    )
    removed = with_storage(
        url, lambda s: s.channels.prune_channels(last_seen_before=when, limit=limit)
    )
    if as_json:
        echo_json({"removed": removed, "last_seen_before": when})
    else:
        console().print(views.ids_table(removed, f"Removed {len(removed)} channels"))


@click.group("deployments", cls=UrlDefaultGroup)
def deployments() -> None:
    """Look at registered deployments (see docs/services/deployments.md)."""


@deployments.command("list")
@_URL
@click.option(
    "--ttl",
    type=_Seconds(),
    help="Heartbeat TTL that decides liveness: 30s, 2m, or plain seconds (default: 30s).",
)
@_JSON
def deployments_list(url: str, ttl: float | None, as_json: bool) -> None:
    """Live deployments, freshest heartbeat first."""
    options: dict[str, object] = {}
    if ttl is not None:
        options = {"heartbeat_ttl": ttl, "heartbeat_interval": ttl / 3}
    found = with_storage(url, lambda s: s.deployments.list_deployments(), **options)
    if as_json:
        echo_json(found)
    else:
        console().print(views.deployments_table(found))
