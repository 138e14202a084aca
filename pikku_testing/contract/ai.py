"""The AI contract: `AIStorageServiceContract`, `AIRunStateServiceContract`,
`AgentRunServiceContract` (docs/contract.md; docs/contract.md).

Each numbered behaviour of docs/contract.md "Contract tests" (1-63) is at least one test method
whose
docstring names the item; the methods live in the private `_ai_*` modules by topic and are
gathered here by service. Tests use only the public API and the `storage`, `storage_factory`
and `pikku_clock` fixtures. Items 64-66 (index use) are each backend's own tests.
"""

from __future__ import annotations

from pikku_testing.contract._ai_additions import MessageFlagTests, RunAdditionTests
from pikku_testing.contract._ai_approvals import ApprovalTests, RunConcurrencyTests
from pikku_testing.contract._ai_concurrency import StorageConcurrencyTests
from pikku_testing.contract._ai_console import ConsoleTests
from pikku_testing.contract._ai_messages import SaveMessageTests
from pikku_testing.contract._ai_owners import OwnerTests
from pikku_testing.contract._ai_reading import ReadMessageTests
from pikku_testing.contract._ai_runs import RunTests
from pikku_testing.contract._ai_scores import ScoreTests
from pikku_testing.contract._ai_threads import ThreadTests, WorkingMemoryTests
from pikku_testing.contract._ai_values import StorageValueTests
from pikku_testing.contract._ai_values_runs import ConsoleValueTests, RunValueTests
from pikku_testing.contract._base import ContractBase
from pikku_testing.contract._limits import MessageLimitTests

__all__ = ["AIRunStateServiceContract", "AIStorageServiceContract", "AgentRunServiceContract"]


class AIStorageServiceContract(
    ThreadTests,
    SaveMessageTests,
    ReadMessageTests,
    WorkingMemoryTests,
    StorageValueTests,
    StorageConcurrencyTests,
    MessageLimitTests,
    MessageFlagTests,
    ContractBase,
):
    """Threads, messages, working memory, identifiers and concurrent writes (docs/contract.md,
    52-59, 62)."""


class AIRunStateServiceContract(
    RunTests,
    ApprovalTests,
    RunValueTests,
    RunConcurrencyTests,
    ScoreTests,
    RunAdditionTests,
    ContractBase,
):
    """Runs, pending approvals, decisions and scores (docs/contract.md, 53-56, 60-61; spec 05
    1-5, 15)."""


class AgentRunServiceContract(ConsoleTests, ConsoleValueTests, OwnerTests, ContractBase):
    """Console listing, owner scoping, reading, deletion, agent names and retention
    (docs/contract.md, 53, 63; spec 05 6-10)."""
