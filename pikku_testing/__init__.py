"""pikku_testing: the pytest plugin and the contract suite of pikku-storage."""

from __future__ import annotations

from pikku_testing._types import StorageFactory
from pikku_testing.contract._capabilities import Capability, requires
from pikku_testing.providers import BackendProvider, Namespace, get_provider, provider_names

__all__ = [
    "BackendProvider",
    "Capability",
    "Namespace",
    "StorageFactory",
    "get_provider",
    "provider_names",
    "requires",
]
