"""The base of every contract class: its fixtures and capability checks."""

from __future__ import annotations

from typing import ClassVar

import pytest

from pikku_storage import Storage
from pikku_testing._types import StorageFactory
from pikku_testing.contract._capabilities import Capability

__all__ = ["ContractBase", "StorageFactory"]


class ContractBase:
    """Fixtures the contract tests use; a backend author overrides `storage` and
    `storage_factory` (and `storage_open_args` for cross-process tests), and lists
    `capabilities`.

    - `storage`: an initialized `Storage` on a fresh namespace, with the `pikku_clock`.
    - `storage_factory(isolated=False)`: another initialized `Storage` on the same namespace
      (a second instance: its own pool or client), or on a fresh one with `isolated=True`;
      closed after the test.
    - `storage_open_args`: `(url, options)` for `open_storage` in another OS process.
    """

    pytestmark = pytest.mark.asyncio  # works in pytest-asyncio strict and auto mode
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    @pytest.fixture
    def storage(self, pikku_storage: Storage) -> Storage:
        return pikku_storage

    @pytest.fixture
    def storage_factory(self, pikku_storage_factory: StorageFactory) -> StorageFactory:
        return pikku_storage_factory

    @pytest.fixture
    def storage_open_args(
        self, pikku_storage_open_args: tuple[str, dict[str, object]]
    ) -> tuple[str, dict[str, object]]:
        return pikku_storage_open_args

    @pytest.fixture
    def contract_capabilities(self) -> frozenset[Capability]:
        """The capabilities in force; `tests/` overrides it with the provider's."""
        return self.capabilities

    @pytest.fixture(autouse=True)
    def _pikku_check_capabilities(
        self, request: pytest.FixtureRequest, contract_capabilities: frozenset[Capability]
    ) -> None:
        for marker in request.node.iter_markers("pikku_requires"):
            for capability in marker.args:
                if capability not in contract_capabilities:
                    pytest.skip(f"backend lacks {capability.value}")
