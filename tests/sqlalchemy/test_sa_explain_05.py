"""05 §5 items 11 and 33 on the SQLAlchemy dialects: owner-scoped listing, scores and the two
sweepers are index range scans with 10,000+ rows stored.

Same method as `test_sa_explain`: every SELECT a call sends is explained on the same database
(PostgreSQL with `enable_seqscan`/`enable_sort` off: no `Seq Scan`, no `Sort`; SQLite: no full
`SCAN`, no temporary B-tree; MySQL/MariaDB: no access type `ALL`, no `Using filesort`). Owner
queries may sort the matched set (05 §2.2), so only their scans are judged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from pikku_storage import Storage
from pikku_storage.records import StalledRun, UndispatchedStep
from pikku_storage.sqlalchemy._connection import Database
from tests.sqlalchemy import test_sa_explain as explain
from tests.sqlalchemy.sa_helpers import SEED_BASE, Capture, seed

pytestmark = pytest.mark.pikku_backends("sqlite", "sqlalchemy-postgres", "sqlalchemy-mysql")

OWNER_CALLS = frozenset({"list_threads owners", "list_threads two owners", "owners and agent"})


async def test_owner_score_and_sweeper_queries_use_indexes(
    pikku_storage: Storage, db: Database, capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """05 §5 items 11 and 33 ([SQL]): index access, no full scan; sweepers without a sort."""
    seeded = await seed(db)
    await explain._analyze(db)
    monkeypatch.setattr(explain, "SORT_ALLOWED_CALLS", explain.SORT_ALLOWED_CALLS | OWNER_CALLS)
    s = pikku_storage
    older = SEED_BASE + timedelta(days=1)
    stalled_after = StalledRun(run_id=seeded["run_ids"][5], workflow="wf-5", idle_since=SEED_BASE)
    step_after = UndispatchedStep(
        run_id=seeded["run_ids"][0],
        step_id=seeded["run_ids"][0],
        step_name="s0",
        rpc_name=None,
        pending_since=SEED_BASE,
    )
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "list_threads owners": lambda: s.agent_runs.list_threads(owners=["r7"]),
        "list_threads two owners": lambda: s.agent_runs.list_threads(owners=["r7", "r8"], limit=5),
        "owners and agent": lambda: s.agent_runs.list_threads(owners=["r7"], agent_name="agent-7"),
        "get_scores": lambda: s.ai_run_state.get_scores(seeded["agent_run"]),
        "find_stalled_runs": lambda: s.workflows.find_stalled_runs(older_than=older, limit=10),
        "find_stalled_runs after": lambda: s.workflows.find_stalled_runs(
            older_than=older, limit=10, after=stalled_after
        ),
        "find_undispatched_steps": lambda: s.workflows.find_undispatched_steps(
            older_than=older, limit=10
        ),
        "find_undispatched_steps after": lambda: s.workflows.find_undispatched_steps(
            older_than=older, limit=10, after=step_after
        ),
    }
    report: list[str] = []
    for label, call in calls.items():
        report.extend(await explain._check(db, capture, call, label))
    assert not report, "\n".join(report)
