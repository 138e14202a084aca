"""`Storage`, the bundle of the eight services, and `open_storage()`, which builds one by URL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from pikku_storage.backends import open_url
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


@dataclass(slots=True, kw_only=True)
class Storage:
    """One service per area, usually of one backend and namespace (see
    docs/concepts.md#lifecycle-and-namespaces).

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
    `redis://…`/`rediss://…`/`unix://…` (a Redis socket), or an SQLAlchemy async URL with an
    explicit driver (`postgresql+psycopg://…`, `mysql+aiomysql://…`, `sqlite+aiosqlite:///…`).
    Options go to
    the backend (namespace, pool sizes, `clock`, …); `pikku_storage.backends` is the table of
    schemes. Raises: `InvalidValue` for an unknown scheme, an unknown option or a bad option
    value (before any connection is made), or a backend whose driver is not installed, saying
    what to install.
    """
    return open_url(url, **options)
