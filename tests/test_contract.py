"""The whole contract suite on every backend of 04-testing §1, one test id per backend."""

from __future__ import annotations

import pytest

from pikku_testing.contract import Capability
from pikku_testing.contract.full import FullContract
from pikku_testing.providers import BackendProvider


@pytest.mark.pikku_backends("all")
class TestFullContract(FullContract):
    """`storage` and `storage_factory` come from the plugin's fixtures on the parametrized
    backend; the capabilities in force are the backend provider's."""

    @pytest.fixture
    def contract_capabilities(self, pikku_provider: BackendProvider) -> frozenset[Capability]:
        return pikku_provider.capabilities
