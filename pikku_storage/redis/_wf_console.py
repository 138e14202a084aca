"""`RedisWorkflowRunService`: console queries, deletion and retention (re-exported by
`workflows.py`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Final, cast

from pikku_storage.clock import to_epoch_ms
from pikku_storage.interfaces.workflows import (
    WorkflowRunService,
)
from pikku_storage.records import (
    RunStep,
    WorkflowRun,
    WorkflowStatus,
)
from pikku_storage.redis import _cluster_lists as fan
from pikku_storage.redis import _rows as rows
from pikku_storage.redis._errors import translated
from pikku_storage.redis._keys import run_member_id
from pikku_storage.redis._wf_base import RedisWorkflowBase

__all__ = ["RedisWorkflowRunService"]

logger = logging.getLogger(__name__)

_RETRY: Final = -1


class RedisWorkflowRunService(RedisWorkflowBase, WorkflowRunService):
    """Console queries, deletion and retention over the workflow keys (see
    docs/services/workflow-runs.md, docs/operations.md#storage-layout)."""

    @translated
    async def _list_runs(
        self, workflow_name: str | None, status: WorkflowStatus | None, limit: int, offset: int
    ) -> list[WorkflowRun]:
        k = self._keys

        def index(b: int) -> str:
            if workflow_name is None:
                return k.runs(b) if status is None else k.by_status(status.value, b)
            if status is None:
                return k.by_workflow(workflow_name, b)
            return k.by_workflow_status(status.value, workflow_name, b)

        if k.cluster:
            return await fan.list_runs(self._redis, self._scripts, k, index, limit, offset)
        before, after = k.run_prefix()
        return rows.workflow_runs(
            await self._scripts(
                "wf_list_runs", [index(0)], [offset, offset + limit - 1, before, after]
            )
        )

    @translated
    async def _count_runs(self, workflow_name: str | None) -> dict[WorkflowStatus, int]:
        """`ZCARD` of each status's index keys (by workflow: the workflow+status ones), summed
        per status, all in one `MULTI`/`EXEC` so the counts are one snapshot. On a cluster each
        bucket's keys are counted by one script (atomic in its slot; a run never leaves its
        bucket, so every run is counted once), the buckets in one pipeline."""
        k = self._keys

        def index(status: WorkflowStatus, b: int) -> str:
            if workflow_name is None:
                return k.by_status(status.value, b)
            return k.by_workflow_status(status.value, workflow_name, b)

        statuses = list(WorkflowStatus)
        if k.cluster:
            replies = await self._scripts.many(
                [("wf_count_runs", [index(s, b) for s in statuses], []) for b in k.all_buckets()]
            )
            per_bucket = [cast("list[int]", reply) for reply in replies]
            return {s: sum(int(counts[i]) for counts in per_bucket) for i, s in enumerate(statuses)}
        async with self._redis.pipeline(transaction=True) as pipe:
            for s in statuses:
                pipe.zcard(index(s, 0))
            counted = cast("list[int]", await pipe.execute())
        return {s: int(n) for s, n in zip(statuses, counted, strict=True)}

    @translated
    async def _get_run_steps(self, run_id: str) -> list[RunStep]:
        k = self._keys
        reader = rows.Reader(
            await self._scripts("wf_run_steps", [k.order(run_id), k.steps(run_id)])
        )
        members = reader.take_list()
        steps = rows.split_fields(reader.take_pairs())
        result = []
        for member in members:
            step_id = member.partition(":")[2]
            result.append(rows.run_step(step_id, steps[step_id]))
        return result

    @translated
    async def _get_distinct_workflow_names(self) -> list[str]:
        k = self._keys
        if k.cluster:
            return await fan.union_sorted(self._redis, [k.names(b) for b in k.all_buckets()])
        names = await self._redis.zrange(k.names(), 0, -1)
        return [rows.text(name) for name in names]

    @translated
    async def _delete_run(self, run_id: str) -> bool:
        while True:
            current = await self._run_status(run_id)
            if current is None:
                return False
            workflow, status, rev = current
            b = self._keys.bucket(run_id)
            outcome = await self._scripts(
                "wf_delete_runs",
                [*self._shared_delete_keys(b), *self._run_delete_keys(run_id, workflow, status)],
                ["delete", "", run_id, status, rev, workflow],
            )
            if outcome != _RETRY:
                return outcome == 1

    @translated
    async def _prune_runs(
        self, cutoff: datetime, statuses: tuple[WorkflowStatus, ...], batch_size: int
    ) -> int:
        k = self._keys
        cutoff_ms = to_epoch_ms(cutoff)
        deleted = 0
        for status, b in ((s, b) for s in statuses for b in k.all_buckets()):
            previous: Sequence[object] = []
            while True:
                members = await self._redis.zrangebyscore(
                    k.updated(status.value, b), "-inf", f"({cutoff_ms}", start=0, num=batch_size
                )
                if not members or members == previous:
                    break  # nothing left, or a batch that made no progress twice
                previous = members
                run_ids = [run_member_id(rows.text(m)) for m in members]
                reader = rows.Reader(
                    await self._scripts("hgetall_many", [k.run(r) for r in run_ids])
                )
                keys = self._shared_delete_keys(b)
                args: list[str | int] = ["prune", cutoff_ms]
                for run_id in run_ids:
                    h = reader.take_pairs()
                    if h:
                        keys += self._run_delete_keys(run_id, h["workflow"], status.value)
                        args += [run_id, status.value, h["rev"], h["workflow"]]
                count = await self._scripts("wf_delete_runs", keys, args) if len(keys) > 6 else 0
                deleted += cast(int, count)
                logger.debug("pruned %s %s runs in one batch", count, status.value)
        return deleted

    def _shared_delete_keys(self, b: int) -> list[str]:
        k = self._keys
        return [k.runs(b), k.names(b), k.namecount(b), k.steprefs(b), k.idle(b), k.undispatched(b)]

    def _run_delete_keys(self, run_id: str, workflow: str, status: str) -> list[str]:
        k = self._keys
        return [*k.run_data(run_id), *k.run_indexes(workflow, status, k.bucket(run_id))]
