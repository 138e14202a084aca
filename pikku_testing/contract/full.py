"""`FullContract`: every service's contract in one class (docs/contract.md)."""

from __future__ import annotations

from pikku_testing.contract.ai import (
    AgentRunServiceContract,
    AIRunStateServiceContract,
    AIStorageServiceContract,
)
from pikku_testing.contract.channels import ChannelStoreContract, EventHubStoreContract
from pikku_testing.contract.deployments import DeploymentServiceContract
from pikku_testing.contract.workflows import WorkflowRunServiceContract, WorkflowServiceContract

__all__ = ["FullContract"]


class FullContract(
    WorkflowServiceContract,
    WorkflowRunServiceContract,
    AIStorageServiceContract,
    AIRunStateServiceContract,
    AgentRunServiceContract,
    ChannelStoreContract,
    EventHubStoreContract,
    DeploymentServiceContract,
):
    """Every contract test; subclass it as `Test…` and override the fixtures (see README)."""
