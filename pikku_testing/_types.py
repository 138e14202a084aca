"""Types shared by the plugin and the contract suite."""

from __future__ import annotations

from typing import Protocol

from pikku_storage import Storage

__all__ = ["StorageFactory"]


class StorageFactory(Protocol):
    """Builds another initialized `Storage` on the test's namespace (or a fresh one)."""

    async def __call__(self, *, isolated: bool = False) -> Storage: ...
