"""The console's pages: one handler per route, each a few public service calls and a template."""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Final, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pikku_storage.codec import JsonValue
from pikku_storage.console._svg import graph_layout, timeline_layout
from pikku_storage.errors import ChannelNotFound, InvalidValue
from pikku_storage.records import (
    AgentCallApproval,
    ApprovalStatus,
    CredentialRequestApproval,
    Message,
    MessageRole,
    WorkflowStatus,
)

if TYPE_CHECKING:
    from pikku_storage.console._app import ConsoleSettings
    from pikku_storage.interfaces import WorkflowRunService

T = TypeVar("T")

__all__ = [
    "CountCache",
    "channels",
    "delete_run",
    "deployments",
    "home",
    "render",
    "resolve_approval",
    "run",
    "runs",
    "thread",
    "threads",
]

PAGE_SIZE: Final = 50
# list costs grow with offset + limit (docs/services/workflow-runs.md): pages stop here
MAX_OFFSET: Final = 10_000
COUNT_CACHE_SIZE: Final = 64
MESSAGE_WINDOW: Final = 100  # messages per thread page (get_messages' last_n window)
RUNS_WITH_DECISIONS: Final = 20
READS_AT_ONCE: Final = 2  # per kind of per-run read on the thread page
_INT: Final = re.compile(r"^[0-9]{1,9}$")
_MAX_FORM: Final = 16_384


def _settings(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.console
    return settings


def render(
    request: Request, name: str, context: Mapping[str, object], status: int = 200
) -> Response:
    """A page from the package's templates; every value in `context` is autoescaped."""
    settings = _settings(request)
    root = request.scope.get("root_path", "")
    full = {
        "root": root,
        "csrf": settings.csrf,
        "allow_actions": settings.allow_actions,
        "refresh": 0,
        **context,
    }
    response: Response = request.app.state.templates.TemplateResponse(
        request, name, full, status_code=status
    )
    return response


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not _INT.match(raw):
        raise InvalidValue(f"{name} must be a whole number: {raw!r}")
    return int(raw)


def _text_param(request: Request, name: str) -> str | None:
    """A filter from the query string; an empty form field means no filter."""
    raw = request.query_params.get(name)
    return raw if raw else None


def _paging(request: Request) -> tuple[int, int]:
    limit = _int_param(request, "limit", PAGE_SIZE)
    offset = _int_param(request, "offset", 0)
    if offset > MAX_OFFSET:
        raise InvalidValue(f"offset must be at most {MAX_OFFSET}: narrow the filters instead")
    return limit, offset


def _page_links(request: Request, limit: int, offset: int, shown: int) -> dict[str, str | None]:
    def link(new_offset: int) -> str:
        params = dict(request.query_params)
        params["offset"] = str(new_offset)
        params["limit"] = str(limit)
        return "?" + urlencode(params)

    prev = link(max(offset - limit, 0)) if offset > 0 else None
    more = shown == limit and offset + limit <= MAX_OFFSET
    return {"prev": prev, "next": link(offset + limit) if more else None}


def _quote(value: str) -> str:
    return quote(value, safe="")


async def _bounded(calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """The calls' results in order, at most `READS_AT_ONCE` running at a time (a page never
    takes more than a few connections of a pool it may share with the application)."""
    gate = asyncio.Semaphore(READS_AT_ONCE)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return list(await asyncio.gather(*(one(call) for call in calls)))


async def home(request: Request) -> Response:
    return RedirectResponse(request.scope.get("root_path", "") + "/runs", status_code=303)


@dataclass(slots=True)
class CountCache:
    """Exact counts by status per workflow filter (`count_runs`), kept `ttl` seconds.

    `ttl` is the auto-refresh interval: however many tabs reload the runs page, the store
    counts each filter at most once per interval (a SQL count reads one index entry per run).
    With `ttl` 0 (auto-refresh off) every page view counts afresh.
    """

    ttl: float
    entries: dict[str | None, tuple[float, datetime, dict[WorkflowStatus, int]]] = field(
        default_factory=dict
    )

    async def counts(
        self, service: WorkflowRunService, workflow: str | None
    ) -> tuple[datetime, dict[WorkflowStatus, int]]:
        now = time.monotonic()
        cached = self.entries.get(workflow)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1], cached[2]
        taken = datetime.now(UTC)
        counts = await service.count_runs(workflow_name=workflow)
        if self.ttl > 0:
            if len(self.entries) >= COUNT_CACHE_SIZE:
                self.entries.clear()
            self.entries[workflow] = (now, taken, counts)
        return taken, counts


async def runs(request: Request) -> Response:
    """Runs newest first, filtered by workflow and status, with exact counts by status (of the
    workflow filter, kept for the refresh interval); the three reads at once."""
    service = _settings(request).storage.workflow_runs
    workflow, status = _text_param(request, "workflow"), _text_param(request, "status")
    limit, offset = _paging(request)
    cache: CountCache = request.app.state.counts
    found, names, (counted_at, counts) = await asyncio.gather(
        service.list_runs(workflow_name=workflow, status=status, limit=limit, offset=offset),
        service.get_distinct_workflow_names(),
        cache.counts(service, workflow),
    )
    return render(
        request,
        "runs.html",
        {
            "runs": found,
            "workflow": workflow,
            "status": status,
            "names": names,
            "statuses": [s.value for s in WorkflowStatus],
            "counts": [(s.value, n) for s, n in counts.items()],
            "counted_at": counted_at,
            "offset": offset,
            "limit": limit,
            "pages": _page_links(request, limit, offset, len(found)),
            "refresh": _settings(request).refresh_seconds,
        },
    )


async def run(request: Request) -> Response:
    """One run: fields, payloads, state, steps with every attempt, timeline and graph."""
    storage = _settings(request).storage
    run_id = request.path_params["run_id"]
    found = await storage.workflow_runs.get_run(run_id)
    if found is None:
        raise HTTPException(404, f"No run {run_id}")
    steps, history, state = await asyncio.gather(
        storage.workflow_runs.get_run_steps(run_id),
        storage.workflow_runs.get_run_history(run_id),
        storage.workflows.get_run_state(run_id),
    )
    version = None
    if found.graph_hash is not None:
        version = await storage.workflow_runs.get_workflow_version(found.workflow, found.graph_hash)
    statuses = {step.step_name: step.status.value for step in steps}
    attempts: dict[str, list[object]] = {}
    for entry in history:
        attempts.setdefault(entry.step_id, []).append(entry)
    return render(
        request,
        "run.html",
        {
            "run": found,
            "steps": steps,
            "attempts": attempts,
            "state": state,
            "timeline": timeline_layout(history, datetime.now(UTC)),
            "version": version,
            "graph": graph_layout(version.graph, statuses) if version is not None else None,
        },
    )


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded POST body, checked against the app's CSRF token and the Origin header."""
    settings = _settings(request)
    if not settings.allow_actions:
        raise HTTPException(403, "Actions are disabled: start the console with --allow-actions")
    origin = request.headers.get("origin")
    host = (request.headers.get("host") or "").lower()
    if origin is not None and origin != "null" and urlsplit(origin).netloc.lower() != host:
        raise HTTPException(403, "Cross-origin form refused")
    body = await request.body()
    if len(body) > _MAX_FORM:
        raise HTTPException(413, "Form too large")
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    given = form.get("csrf", "")
    if not hmac.compare_digest(given.encode(), settings.csrf.encode()):
        raise HTTPException(403, "Missing or wrong CSRF token: reload the page and try again")
    return form


async def delete_run(request: Request) -> Response:
    """Delete one run (steps, history and state with it), then go back to the runs list."""
    await _form(request)
    run_id = request.path_params["run_id"]
    if not await _settings(request).storage.workflow_runs.delete_run(run_id):
        raise HTTPException(404, f"No run {run_id}")
    return RedirectResponse(request.scope.get("root_path", "") + "/runs", status_code=303)


async def resolve_approval(request: Request) -> Response:
    """Approve or deny one pending approval through `resolve_approval` (claimed at most once)."""
    form = await _form(request)
    run_id, tool_call_id, thread_id = (
        form.get(k, "") for k in ("run_id", "tool_call_id", "thread_id")
    )
    decision = form.get("decision", "")
    if decision not in (ApprovalStatus.APPROVED, ApprovalStatus.DENIED):
        raise InvalidValue(f"decision must be approved or denied: {decision!r}")
    claimed = await _settings(request).storage.ai_run_state.resolve_approval(
        tool_call_id, decision, run_id=run_id
    )
    if not claimed:
        raise HTTPException(409, f"Approval {tool_call_id} is no longer pending")
    target = request.scope.get("root_path", "") + "/threads/" + _quote(thread_id)
    return RedirectResponse(target, status_code=303)


async def threads(request: Request) -> Response:
    """Threads newest first, by agent and by resource (the two reads at once)."""
    service = _settings(request).storage.agent_runs
    agent, resource = _text_param(request, "agent"), _text_param(request, "resource")
    limit, offset = _paging(request)
    found, agents = await asyncio.gather(
        service.list_threads(agent_name=agent, resource_id=resource, limit=limit, offset=offset),
        service.get_distinct_agent_names(),
    )
    return render(
        request,
        "threads.html",
        {
            "threads": found,
            "agent": agent,
            "resource": resource,
            "agents": agents,
            "offset": offset,
            "limit": limit,
            "pages": _page_links(request, limit, offset, len(found)),
            "refresh": _settings(request).refresh_seconds,
        },
    )


def _content(message: Message) -> list[dict[str, str]]:
    """A message's content as text blocks: a string, text parts, other parts as JSON."""
    if message.content is None:
        return []
    if isinstance(message.content, str):
        return [{"kind": "text", "text": message.content}]
    out = []
    for part in message.content:
        text = part.get("text")
        if part.get("type") == "text" and isinstance(text, str):
            out.append({"kind": "text", "text": text})
        else:
            out.append({"kind": "json", "text": json.dumps(part, indent=2, ensure_ascii=False)})
    return out


def _result_text(result: str) -> str:
    try:
        value: JsonValue = json.loads(result)
    except ValueError:
        return result
    return json.dumps(value, indent=2, ensure_ascii=False)


async def thread(request: Request) -> Response:
    """A thread: its transcript window, its agent runs, their pending approvals and decisions
    (after the thread itself, the reads that do not depend on each other run at once)."""
    storage = _settings(request).storage
    thread_id = request.path_params["thread_id"]
    found = await storage.agent_runs.get_thread(thread_id)
    if found is None:
        raise HTTPException(404, f"No thread {thread_id}")
    before = _text_param(request, "before")
    messages, agent_runs = await asyncio.gather(
        storage.ai_storage.get_messages(thread_id, last_n=MESSAGE_WINDOW, cursor=before),
        storage.ai_run_state.get_runs_by_thread(thread_id),
    )
    shown = [agent_run.run_id for agent_run in agent_runs[:RUNS_WITH_DECISIONS]]
    state = storage.ai_run_state
    run_decisions, run_scores = await asyncio.gather(
        _bounded([partial(state.get_approval_decisions, r) for r in shown]),
        _bounded([partial(state.get_scores, r) for r in shown]),
    )
    decisions = dict(zip(shown, run_decisions, strict=True))
    scores = dict(zip(shown, run_scores, strict=True))
    pending = [
        (agent_run, approval)
        for agent_run in agent_runs
        for approval in agent_run.pending_approvals
    ]
    pending_ids = {approval.tool_call_id for _, approval in pending}
    older = messages[0].id if len(messages) >= MESSAGE_WINDOW else None
    return render(
        request,
        "thread.html",
        {
            "thread": found,
            "messages": [
                {
                    "message": m,
                    "blocks": _content(m),
                    "results": [(r, _result_text(r.result)) for r in m.tool_results],
                    "tool": m.role == MessageRole.TOOL,
                }
                for m in messages
            ],
            "agent_runs": agent_runs,
            "decisions": decisions,
            "scores": scores,
            "pending": [
                {
                    "run": agent_run,
                    "approval": approval,
                    "kind": type(approval).TYPE,
                    "name": approval.display_tool_name
                    if isinstance(approval, AgentCallApproval)
                    else approval.tool_name,
                    "args": approval.display_args
                    if isinstance(approval, AgentCallApproval)
                    else approval.args,
                    "credential": approval
                    if isinstance(approval, CredentialRequestApproval)
                    else None,
                }
                for agent_run, approval in pending
            ],
            "pending_ids": pending_ids,
            "older": older,
            "before": before,
        },
    )


async def deployments(request: Request) -> Response:
    """Registered deployments with heartbeat age, live or stale, and a function lookup."""
    settings = _settings(request)
    service = settings.storage.deployments
    now = datetime.now(UTC)
    rows = [
        {
            "info": info,
            "age": max((now - info.last_heartbeat).total_seconds(), 0.0),
            "live": (now - info.last_heartbeat).total_seconds() < settings.live_ttl,
        }
        for info in await service.list_deployments()
    ]
    function = _text_param(request, "function")
    serving = await service.find_function(function) if function is not None else None
    return render(
        request,
        "deployments.html",
        {
            "rows": rows,
            "live_count": sum(1 for row in rows if row["live"]),
            "live_ttl": settings.live_ttl,
            "window": service.heartbeat_ttl,
            "function": function,
            "serving": serving,
            "refresh": settings.refresh_seconds,
        },
    )


async def channels(request: Request) -> Response:
    """Lookups of a topic's subscribers and of one channel with its session."""
    storage = _settings(request).storage
    topic, channel_id = _text_param(request, "topic"), _text_param(request, "channel")
    subscribers = (
        await storage.eventhub.get_channel_ids_for_topic(topic) if topic is not None else None
    )
    channel = None
    missing = False
    if channel_id is not None:
        try:
            channel = await storage.channels.get_channel_and_session(channel_id)
        except ChannelNotFound:
            missing = True
    return render(
        request,
        "channels.html",
        {
            "topic": topic,
            "subscribers": subscribers,
            "channel_id": channel_id,
            "channel": channel,
            "missing": missing,
        },
    )
