"""`count_runs` on the SQLAlchemy dialects: one statement, a range count of a status index per
status, with 10,000 runs stored (docs/services/workflow-runs.md).

Same method as `test_sa_explain`: the SELECT the call sends is explained on the same database
(PostgreSQL with `enable_seqscan`/`enable_sort` off: no `Seq Scan`; SQLite: no full `SCAN`;
MySQL/MariaDB: no access type `ALL`). On SQLite and MySQL/MariaDB the index also covers the
count (no table row is read): `USING COVERING INDEX`, `Using index`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from pikku_storage import Storage
from pikku_storage.records import WorkflowStatus
from pikku_storage.sqlalchemy._connection import Database
from tests.sqlalchemy import test_sa_explain as explain
from tests.sqlalchemy.sa_helpers import SEED_ROWS, Capture, seed

pytestmark = pytest.mark.pikku_backends("sqlite", "sqlalchemy-postgres", "sqlalchemy-mysql")


def _not_covered(db: Database, plan: list[tuple[object, ...]]) -> list[str]:
    """Plan rows of a runs-table access that reads table rows, not only an index."""
    runs = db.tables.workflow_runs.name
    found = []
    for row in plan:
        if db.ops.name == "sqlite":
            detail = str(row[-1])
            if runs in detail and "USING COVERING INDEX" not in detail:
                found.append(detail)
        elif db.ops.name == "mysql" and str(row[2]) == runs and "Using index" not in str(row[9]):
            found.append(f"{row[2]}: {row[9]}")
    return found


async def test_count_runs_counts_each_status_on_an_index_range(
    pikku_storage: Storage, db: Database, capture: Capture
) -> None:
    """count_runs [SQL]: index access only, no full scan, exact counts."""
    await seed(db)
    await explain._analyze(db)
    runs = pikku_storage.workflow_runs
    # the seed: run i has status i % 5 (enum order) and workflow wf-(i % 20)
    assert await runs.count_runs() == dict.fromkeys(WorkflowStatus, SEED_ROWS // 5)
    by_name = dict.fromkeys(WorkflowStatus, 0) | {WorkflowStatus.FAILED: SEED_ROWS // 20}
    assert await runs.count_runs(workflow_name="wf-3") == by_name
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "count_runs": lambda: runs.count_runs(),
        "count_runs by workflow": lambda: runs.count_runs(workflow_name="wf-3"),
    }
    report: list[str] = []
    for label, call in calls.items():
        report.extend(await explain._check(db, capture, call, label))
        assert len(capture.statements) == 1, f"{label}: one statement"
        for statement, plan in await explain._plans(db, capture.statements):
            problems = _not_covered(db, plan)
            if problems:
                report.append(f"{label}: not covered {problems}\n  {statement}")
    assert not report, "\n".join(report)
