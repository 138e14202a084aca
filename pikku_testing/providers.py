"""Backend providers: how the plugin makes an isolated namespace per test for each backend.

A provider knows which server it needs (if any), builds `Storage` objects on a namespace, and
removes everything it created when the namespace ends. Providers are looked up by backend name
and imported lazily, so a missing driver only affects its own backend.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Final

from pikku_storage import Clock, Storage
from pikku_storage.backends import TEST_BACKENDS
from pikku_testing.contract._capabilities import Capability

__all__ = [
    "PROVIDERS",
    "BackendProvider",
    "Namespace",
    "NamespaceRequest",
    "get_provider",
    "provider_names",
]


@dataclass(frozen=True, kw_only=True)
class NamespaceRequest:
    """What the plugin knows when it asks for a namespace."""

    server_url: str | None  # the resolved server URL; None for backends that need no server
    worker: str  # xdist worker id ("gw0"), or "main"
    label: str  # unique within the worker: safe to embed in schema/prefix/file names
    make_tmp_path: Callable[[], Path] = field(repr=False, compare=False)

    @cached_property
    def tmp_path(self) -> Path:
        """A temporary directory of this namespace, made on first use (only file-based
        backends need one, and making a directory per test is a large part of a fast test)."""
        return self.make_tmp_path()


@dataclass(slots=True, kw_only=True)
class Namespace:
    """One isolated namespace; `storage()` builds another `Storage` (not yet initialized) on it.

    `open_args` is `(url, options)` for `open_storage` when another OS process can reach the
    same namespace, else `None`.
    """

    provider: BackendProvider
    open_args: tuple[str, dict[str, object]] | None = None
    state: dict[str, object] = field(default_factory=dict)

    def storage(self, clock: Clock, /, **options: object) -> Storage:
        """A new `Storage` on this namespace; `options` go to the backend's `open_storage`.

        A `clock` among `options` replaces `clock` (a contract test needing a clock that fails
        on demand, docs/services/deployments.md item 41).
        """
        override = options.pop("clock", None)
        if override is not None:
            if not isinstance(override, Clock):
                raise TypeError(f"clock must be a Clock, got {type(override).__name__}")
            clock = override
        return self.provider.make_storage(self, clock, **options)


class BackendProvider(ABC):
    """How one backend is isolated per test. Subclasses set `name` and `server`."""

    name: ClassVar[str]
    server: ClassVar[str | None] = None  # "postgres", "redis", "mysql" or None
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    @abstractmethod
    def namespace(self, request: NamespaceRequest) -> AbstractAsyncContextManager[Namespace]:
        """A fresh namespace for one test; leaving it removes everything it created, even when
        the test failed. Should be cheap (reuse migrated structures per worker, truncate)."""

    @abstractmethod
    def make_storage(self, namespace: Namespace, clock: Clock, **options: object) -> Storage:
        """A new `Storage` on `namespace` with its own connection where the backend has one.

        `options` (for example `heartbeat_interval`, `heartbeat_ttl`, `prune_on_heartbeat`)
        are forwarded to the backend's `open_storage` after the namespace's own options.
        """

    async def aclose(self) -> None:  # noqa: B027  # optional hook
        """Release per-worker resources at the end of the test session."""


# name -> "module:Class", from the backend registry; each module imports its driver, so only
# used backends need theirs.
PROVIDERS: Final[dict[str, str]] = {name: test.provider for name, test in TEST_BACKENDS.items()}


def provider_names() -> list[str]:
    """Every backend name the plugin knows, in a stable order."""
    return list(PROVIDERS)


def get_provider(name: str) -> type[BackendProvider]:
    """The provider class of backend `name`; `ImportError` naming the missing module if a
    driver the backend needs (the registry's `TestBackend.modules`) is not installed."""
    try:
        target = PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown pikku backend {name!r}; known: {', '.join(PROVIDERS)}") from None
    module_name, _, class_name = target.partition(":")
    provider: type[BackendProvider] = getattr(importlib.import_module(module_name), class_name)
    test = TEST_BACKENDS.get(name)
    for required in test.modules if test is not None else ():
        importlib.import_module(required)
    return provider
