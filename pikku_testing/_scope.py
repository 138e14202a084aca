"""The namespaces and storages of one test: built on demand, closed together after it.

Both the plugin's fixtures and `pikku-storage check` use it, so "a second instance on the same
namespace" and "a fresh namespace with `isolated=True`" mean the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import pytest

from pikku_storage import Clock, Storage
from pikku_testing.providers import BackendProvider, Namespace, NamespaceRequest

__all__ = ["TestScope"]


@dataclass(slots=True)
class TestScope:
    """One test's namespace, plus every `Storage` and extra namespace it asked for.

    `main` is the test's `pikku_storage` when the fixture that opened the scope built it up
    front (one event-loop round trip for the whole set-up instead of one per fixture).
    """

    __test__ = False  # not a pytest test class despite its name

    provider: BackendProvider
    new_request: Callable[[], NamespaceRequest]
    clock: Clock
    namespace: Namespace
    stack: AsyncExitStack
    main: Storage | None = None

    @classmethod
    @asynccontextmanager
    async def open(
        cls, provider: BackendProvider, new_request: Callable[[], NamespaceRequest], clock: Clock
    ) -> AsyncIterator[TestScope]:
        """A scope on a fresh namespace; leaving it closes every storage, then every namespace
        (the extra ones first), also when the test failed."""
        async with AsyncExitStack() as stack:
            namespace = await stack.enter_async_context(provider.namespace(new_request()))
            yield cls(provider, new_request, clock, namespace, stack)

    async def storage(self, *, isolated: bool = False, **options: object) -> Storage:
        """Another initialized `Storage` on the test's namespace or, with `isolated=True`, on a
        fresh one; `options` go to the backend's `open_storage` (the `StorageFactory` protocol).
        """
        namespace = self.namespace
        if isolated:
            namespace = await self.stack.enter_async_context(
                self.provider.namespace(self.new_request())
            )
        return await self.stack.enter_async_context(namespace.storage(self.clock, **options))

    def main_storage(self) -> Storage:
        """The `Storage` built when the scope opened; fails when the test asked for it late."""
        if self.main is None:
            pytest.fail(
                "the test's storage is built while its fixtures are set up: request it as an "
                "argument, not through request.getfixturevalue()",
                pytrace=False,
            )
        return self.main

    def open_args(self) -> tuple[str, dict[str, object]]:
        """`(url, options)` opening the namespace from another OS process, or skip."""
        if self.namespace.open_args is None:
            pytest.skip(f"backend {self.provider.name} cannot be opened from another process")
        url, options = self.namespace.open_args
        return url, dict(options)
