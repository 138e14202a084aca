"""`create_app(storage)`: the console's Starlette app, with its guard (token, hosts, headers)."""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pikku_storage.console import _pages as pages
from pikku_storage.errors import InvalidValue, StorageUnavailable
from pikku_storage.storage import Storage

__all__ = ["CONTENT_SECURITY_POLICY", "TOKEN_COOKIE", "ConsoleSettings", "create_app"]

logger = logging.getLogger(__name__)

TOKEN_COOKIE: Final = "pikku_console_token"
# Only the app's own script and stylesheet run; nothing inline, no frames, forms post home.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS: Final = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    ("cross-origin-opener-policy", "same-origin"),
)


@dataclass(slots=True, kw_only=True, frozen=True)
class ConsoleSettings:
    """What a console instance allows and how it judges liveness (kept on `app.state`)."""

    storage: Storage
    token: str | None
    allow_actions: bool
    csrf: str
    live_ttl: float
    refresh_seconds: int


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class _Guard:
    """Adds the security headers to every response, checks the Host header against
    `allowed_hosts` (DNS rebinding) and, with a token, refuses any request without it.

    The token comes as `Authorization: Bearer …`, as the cookie this guard sets, or once as
    `?token=…`, which sets the cookie and redirects to the same page without it.
    """

    def __init__(self, app: ASGIApp, *, token: str | None, allowed_hosts: Sequence[str] | None):
        self.app = app
        self.token = token
        self.allowed_hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS:
                    headers[name] = value
            await send(message)

        request = Request(scope)
        refused = self._refusal(request)
        if refused is not None:
            await refused(scope, receive, send_secured)
            return
        await self.app(scope, receive, send_secured)

    def _refusal(self, request: Request) -> Response | None:
        if self.allowed_hosts is not None:
            host = (request.headers.get("host") or "").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if host not in self.allowed_hosts and name not in self.allowed_hosts:
                return PlainTextResponse("Unknown Host header", status_code=400)
        if self.token is None:
            return None
        query_token = request.query_params.get("token")
        if request.method == "GET" and _same(query_token, self.token):
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(
                TOKEN_COOKIE,
                self.token,
                httponly=True,
                samesite="strict",
                path=request.scope.get("root_path") or "/",
            )
            return response
        bearer = request.headers.get("authorization", "")
        if bearer.startswith("Bearer ") and _same(bearer[7:], self.token):
            return None
        if _same(request.cookies.get(TOKEN_COOKIE), self.token):
            return None
        return PlainTextResponse(
            "This console needs its token: open it once as /?token=<token> "
            "(or send Authorization: Bearer <token>).",
            status_code=401,
        )


def _json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _time(when: datetime | None) -> str:
    if when is None:
        return "-"
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _templates() -> Jinja2Templates:
    env = Environment(
        loader=PackageLoader("pikku_storage.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["json"] = _json
    env.filters["time"] = _time
    env.filters["q"] = lambda value: quote(str(value), safe="")
    return Jinja2Templates(env=env)


async def _error_page(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        status, detail = exc.status_code, exc.detail
    elif isinstance(exc, InvalidValue):
        status, detail = 400, str(exc)
    elif isinstance(exc, StorageUnavailable):
        logger.warning("console: storage unavailable: %s", exc)
        status, detail = 503, "The storage is unavailable; try again in a moment."
    else:
        raise exc
    return pages.render(request, "error.html", {"status": status, "detail": detail}, status)


def create_app(
    storage: Storage,
    *,
    token: str | None = None,
    allow_actions: bool = False,
    allowed_hosts: Sequence[str] | None = None,
    live_ttl: float = 30.0,
    refresh_seconds: int = 10,
) -> Starlette:
    """The console as an ASGI app over an initialized `storage`, to serve or mount.

    Read-only unless `allow_actions` (then a run can be deleted and a pending tool approval
    approved or denied, each a POST carrying the app's CSRF token). With `token`, every
    request must carry it; `allowed_hosts` limits the Host header (the command passes its
    loopback names). `live_ttl` is the heartbeat age (seconds) up to which a deployment is
    shown as live; the storage's own `heartbeat_ttl` bounds what it lists at all. List pages
    reload every `refresh_seconds` (0: never), and the runs page's counts by status are
    counted at most once per interval per workflow filter (0: on every view).
    """
    if token is not None and not token:
        raise InvalidValue("token must be a non-empty string")
    settings = ConsoleSettings(
        storage=storage,
        token=token,
        allow_actions=allow_actions,
        csrf=secrets.token_urlsafe(32),
        live_ttl=live_ttl,
        refresh_seconds=refresh_seconds,
    )
    routes = [
        Route("/", pages.home, name="home"),
        Route("/runs", pages.runs, name="runs"),
        Route("/runs/{run_id}", pages.run, name="run"),
        Route("/runs/{run_id}/delete", pages.delete_run, methods=["POST"], name="delete_run"),
        Route("/threads", pages.threads, name="threads"),
        Route("/threads/{thread_id:path}", pages.thread, name="thread"),
        Route("/approvals", pages.resolve_approval, methods=["POST"], name="resolve_approval"),
        Route("/deployments", pages.deployments, name="deployments"),
        Route("/channels", pages.channels, name="channels"),
        Mount(
            "/static", StaticFiles(packages=[("pikku_storage.console", "static")]), name="static"
        ),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: _error_page,
            InvalidValue: _error_page,
            StorageUnavailable: _error_page,
        },
    )
    app.state.console = settings
    app.state.templates = _templates()
    app.state.counts = pages.CountCache(ttl=float(refresh_seconds))
    app.add_middleware(_Guard, token=token, allowed_hosts=allowed_hosts)
    return app
