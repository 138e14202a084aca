"""The workflow contract: `WorkflowServiceContract` and `WorkflowRunServiceContract`
(docs/contract.md).

Each numbered behaviour of docs/contract.md "Contract tests" is one or more test methods whose
docstring
names it. The white-box behaviours belong to the backends' own tests and are not here: 38
(SIGKILL), 39 [Redis], 40 [PG], 55 to 58 (layout, EXPLAIN, command spy, slots), 61 (broken
connection) and the borrowed-pool half of 60. The class names do not start with `Test`, so
pytest collects them only through a subclass (see `FullContract`).
"""

from __future__ import annotations

from pikku_testing.contract._base import ContractBase
from pikku_testing.contract._limits import ClockLimitTests, WorkflowLimitTests
from pikku_testing.contract._workflows_additions import WorkflowAdditionTests
from pikku_testing.contract._workflows_claim import WorkflowClaimTests
from pikku_testing.contract._workflows_concurrency import WorkflowConcurrencyTests
from pikku_testing.contract._workflows_console import WorkflowConsoleTests
from pikku_testing.contract._workflows_counts import WorkflowCountTests
from pikku_testing.contract._workflows_graph import WorkflowGraphTests
from pikku_testing.contract._workflows_lockhold import WorkflowLockHoldTests
from pikku_testing.contract._workflows_locks import WorkflowLockTests
from pikku_testing.contract._workflows_runs import WorkflowRunTests
from pikku_testing.contract._workflows_steps import WorkflowStepTests
from pikku_testing.contract._workflows_sweeps import WorkflowSweepTests
from pikku_testing.contract._workflows_validation import WorkflowValidationTests
from pikku_testing.contract._workflows_values import WorkflowValueTests

__all__ = ["WorkflowRunServiceContract", "WorkflowServiceContract"]


class WorkflowServiceContract(
    WorkflowValidationTests,
    WorkflowValueTests,
    WorkflowRunTests,
    WorkflowStepTests,
    WorkflowGraphTests,
    WorkflowLockTests,
    WorkflowLockHoldTests,
    WorkflowLimitTests,
    ClockLimitTests,
    WorkflowAdditionTests,
    WorkflowClaimTests,
    WorkflowSweepTests,
    ContractBase,
):
    """docs/concepts.md#values item 1 to 37: values and validation, runs and state, steps,
    transitions,
    claims and retries, graph primitives, versions and locks; spec 05 items 16 to 23, 28 to 32,
    34 (black-box) and 35."""


class WorkflowRunServiceContract(
    WorkflowConsoleTests,
    WorkflowCountTests,
    WorkflowConcurrencyTests,
    ContractBase,
):
    """docs/services/workflow-runs.md item 41 to 54, 59 and 60: console queries, deletion,
    retention, concurrency
    between two instances, namespaces and `init()`; plus behaviours 1, 4, 5 and 7 as they
    apply to `WorkflowRunService`, and `count_runs` (an addition beyond the spec)."""
