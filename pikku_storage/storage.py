"""`Storage`, the bundle of the eight services, and `open_storage()`, which builds one by URL."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Self
from urllib.parse import urlsplit

from pikku_storage.errors import InvalidValue
from pikku_storage.interfaces import (
    AgentRunService,
    AIRunStateService,
    AIStorageService,
    ChannelStore,
    DeploymentService,
    EventHubStore,
    Service,
    WorkflowRunService,
    WorkflowService,
)

__all__ = ["Storage", "open_storage"]

# scheme -> (module, extra to install). A `dialect+driver` scheme goes to SQLAlchemy.
_BACKENDS: Final = {
    "memory": ("pikku_storage.memory", None),
    "sqlite": ("pikku_storage.sqlite", "sqlalchemy"),
    "postgresql": ("pikku_storage.postgres", "postgres"),
    "postgres": ("pikku_storage.postgres", "postgres"),
    "redis": ("pikku_storage.redis", "redis"),
    "rediss": ("pikku_storage.redis", "redis"),
}

# missing driver module -> the extra that installs it (for `dialect+driver` URLs).
_DRIVER_EXTRAS: Final = {
    "psycopg": "postgres",
    "psycopg_pool": "postgres",
    "aiomysql": "mysql",
    "asyncmy": "mysql",
    "pymysql": "mysql",
}


@dataclass(slots=True, kw_only=True)
class Storage:
    """One service per area, usually of one backend and namespace (Spec: 00 §5).

    `async with` initializes every service and closes them all, then whatever the bundle owns
    (`resources`: closers for a pool, client or engine the services share).
    """

    workflows: WorkflowService
    workflow_runs: WorkflowRunService
    ai_storage: AIStorageService
    ai_run_state: AIRunStateService
    agent_runs: AgentRunService
    channels: ChannelStore
    eventhub: EventHubStore
    deployments: DeploymentService
    resources: list[Callable[[], Awaitable[None]]] = field(default_factory=list, repr=False)

    def services(self) -> Iterator[Service]:
        """The eight services, in attribute order."""
        yield self.workflows
        yield self.workflow_runs
        yield self.ai_storage
        yield self.ai_run_state
        yield self.agent_runs
        yield self.channels
        yield self.eventhub
        yield self.deployments

    async def init(self) -> None:
        """Initialize every service (idempotent)."""
        for service in self.services():
            await service.init()

    async def close(self) -> None:
        """Close every service, then the resources the bundle owns; each step runs even if an
        earlier one raised."""
        async with AsyncExitStack() as stack:
            for resource in self.resources:
                stack.push_async_callback(resource)
            for service in self.services():
                stack.push_async_callback(service.close)
        self.resources.clear()

    async def __aenter__(self) -> Self:
        try:
            await self.init()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def open_storage(url: str, **options: object) -> Storage:
    """Build every service for one URL; no I/O until `init()` or `async with`.

    `memory://`, `sqlite:///path/file.db` (or `sqlite://:memory:`), `postgresql://…`,
    `redis://…`/`rediss://…`, or an SQLAlchemy async URL with an explicit driver
    (`postgresql+psycopg://…`, `mysql+aiomysql://…`, `sqlite+aiosqlite:///…`). Options go to
    the backend (namespace, pool sizes, `clock`, …). Raises: `InvalidValue` for an unknown
    scheme or a backend whose driver is not installed, saying what to install.
    """
    if not isinstance(url, str):
        raise InvalidValue(f"url must be a str, got {type(url).__name__}")
    scheme = urlsplit(url).scheme.lower()
    extra: str | None
    if "+" in scheme:
        module_name = "pikku_storage.sqlalchemy"
        extra = "mysql" if scheme.startswith(("mysql", "mariadb")) else "sqlalchemy"
    elif scheme in _BACKENDS:
        module_name, extra = _BACKENDS[scheme]
    else:
        known = ", ".join(sorted(f"{s}://" for s in _BACKENDS))
        raise InvalidValue(
            f"unknown storage URL scheme {scheme!r}: use one of {known} or an SQLAlchemy URL "
            "with an explicit driver such as postgresql+psycopg://"
        )
    try:
        module = importlib.import_module(module_name)
        opener: Callable[..., Storage] = module.open_storage
        # SQLAlchemy imports the async driver (aiosqlite, aiomysql, psycopg) only when the
        # backend builds its engine, so a missing driver surfaces here too.
        return opener(url, **options)
    except ImportError as exc:
        extra = _DRIVER_EXTRAS.get((exc.name or "").partition(".")[0], extra)
        raise InvalidValue(
            f"the {scheme}:// backend needs extra packages ({exc.name} is missing): "
            f"pip install 'pikku-storage[{extra}]'"
        ) from exc
