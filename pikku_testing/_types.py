"""Types shared by the plugin and the contract suite."""

from __future__ import annotations

from typing import Protocol

from pikku_storage import Storage

__all__ = ["StorageFactory"]


class StorageFactory(Protocol):
    """Builds another initialized `Storage` on the test's namespace (or a fresh one).

    `options` go to the backend's `open_storage` (for example `heartbeat_interval`,
    `heartbeat_ttl`, `prune_on_heartbeat`); everything built is closed after the test.
    """

    async def __call__(self, *, isolated: bool = False, **options: object) -> Storage: ...
