"""A primary of a private Redis Cluster killed (SIGKILL) under a stream of writes.

One `Storage` on `redis+cluster://` (never reopened) and writer tasks doing create_run,
insert_step_state + set_step_result and save_messages; once they are under way the primary
they load most is killed and its replica takes over (cluster node timeout 2 s,
scripts/redis-cluster). The stream and its report are the failover bench's
(benchmarks/failover.py, `python -m benchmarks failover`), so the printed figures (`-s`) are
the ones the bench prints. Checked: (a) every error the caller saw is a pikku_storage error,
`StorageUnavailable`, never a raw redis-py exception or a hung call (redis-py's own connection
race, an AttributeError inside redis-py, is translated too: tests/redis/
test_redis_connection_race.py); (b) the same `Storage`
writes again after the promotion, every writer completing clean rounds within a liveness bound
(30 s from the kill, not a speed target). Acknowledged writes lost with the killed primary are
counted and printed, never asserted zero: replication is asynchronous. Spec: 00 §6; issue 15
(must show: a primary killed during a stream of writes).
"""

from __future__ import annotations

import pytest

from benchmarks._cluster import PrivateCluster
from benchmarks.failover import RECOVERY_BOUND, measure_failover

# One cluster per module and one such test at a time on the machine (the file lock of
# `private_cluster`); the group keeps xdist's `loadgroup` from splitting the module.
pytestmark = [
    pytest.mark.faults,
    pytest.mark.real_time,
    pytest.mark.xdist_group("redis-cluster-failover"),
]


async def test_a_killed_primary_is_storage_unavailable_then_the_same_storage_writes_again(
    private_redis_cluster: PrivateCluster,
) -> None:
    """(a) only `StorageUnavailable` reaches the caller, (b) the open `Storage` recovers by
    itself once the replica is promoted; lost acknowledged writes are reported."""
    report = await measure_failover(private_redis_cluster)
    print("\n" + report.text())
    assert report.acked_before > 0
    assert not report.foreign_errors, report.text()
    assert not report.connection_race, report.text()
    assert set(report.calls) <= {"ok", "StorageUnavailable"}, report.text()
    assert report.promoted_s is not None, f"no replica took over in {RECOVERY_BOUND:.0f} s"
    assert report.settled, report.text()
