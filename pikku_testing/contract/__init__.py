"""The contract suite: one class per service, `FullContract` combining them (docs/contract.md)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

from pikku_testing.contract._base import ContractBase
from pikku_testing.contract._capabilities import Capability, requires

if TYPE_CHECKING:
    from pikku_testing.contract.ai import (
        AgentRunServiceContract,
        AIRunStateServiceContract,
        AIStorageServiceContract,
    )
    from pikku_testing.contract.channels import ChannelStoreContract, EventHubStoreContract
    from pikku_testing.contract.deployments import DeploymentServiceContract
    from pikku_testing.contract.full import FullContract
    from pikku_testing.contract.workflows import (
        WorkflowRunServiceContract,
        WorkflowServiceContract,
    )

__all__ = [
    "AIRunStateServiceContract",
    "AIStorageServiceContract",
    "AgentRunServiceContract",
    "Capability",
    "ChannelStoreContract",
    "ContractBase",
    "DeploymentServiceContract",
    "EventHubStoreContract",
    "FullContract",
    "WorkflowRunServiceContract",
    "WorkflowServiceContract",
    "requires",
]

# The test classes are imported on first use (`from pikku_testing.contract import
# FullContract`), so `import pikku_testing` (done by the pytest plugin) stays light and the
# plugin can register the test modules for assertion rewriting before they load.
_LAZY: Final = {
    "AIRunStateServiceContract": "ai",
    "AIStorageServiceContract": "ai",
    "AgentRunServiceContract": "ai",
    "ChannelStoreContract": "channels",
    "DeploymentServiceContract": "deployments",
    "EventHubStoreContract": "channels",
    "FullContract": "full",
    "WorkflowRunServiceContract": "workflows",
    "WorkflowServiceContract": "workflows",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
