"""The keys and reads both Redis workflow services share (see `workflows.py`)."""

from __future__ import annotations

from pikku_storage.records import (
    StepHistoryEntry,
    WorkflowRun,
    WorkflowVersion,
)
from pikku_storage.redis import _rows as rows
from pikku_storage.redis._connection import RedisService
from pikku_storage.redis._errors import translated
from pikku_storage.redis._keys import WorkflowKeys

__all__ = ["RedisWorkflowBase", "flatten", "rest_pairs"]


class RedisWorkflowBase(RedisService):
    """The keys and reads both workflow services share (the constructor is `RedisService`'s)."""

    def _keys_ready(self) -> None:
        self._keys = WorkflowKeys(self._prefix, self._buckets)

    @translated
    async def _get_run(self, run_id: str) -> WorkflowRun | None:
        found = await self._redis.hmget(self._keys.run(run_id), rows.RUN_FIELDS)
        return rows.workflow_run(run_id, found) if found[0] is not None else None

    @translated
    async def _get_run_history(self, run_id: str) -> list[StepHistoryEntry]:
        k = self._keys
        reader = rows.Reader(
            await self._scripts(
                "wf_run_steps", [k.history(run_id), k.steps(run_id), k.attempts(run_id)]
            )
        )
        members = reader.take_list()
        steps = rows.split_fields(reader.take_pairs())
        attempts = reader.take_pairs()
        entries = []
        for member in members:
            _, step_id, n = member.split(":")
            prefix = f"{step_id}:{n}:"
            fields = {f[len(prefix) :]: val for f, val in attempts.items() if f.startswith(prefix)}
            entries.append(rows.history_entry(step_id, int(n), fields, steps[step_id]))
        return entries

    @translated
    async def _get_workflow_version(self, name: str, graph_hash: str) -> WorkflowVersion | None:
        stored = await self._redis.get(self._keys.version(name, graph_hash))
        return None if stored is None else rows.workflow_version(rows.text(stored))

    async def _run_status(self, run_id: str) -> tuple[str, str, str] | None:
        """`(workflow, status, rev)` of a run, read before a script that moves its indexes."""
        found = await self._redis.hmget(self._keys.run(run_id), ["workflow", "status", "rev"])
        if found[0] is None:
            return None
        workflow, status, rev = (rows.text(item) for item in found)
        return workflow, status, rev


def flatten(fields: dict[str, str | int]) -> list[str | int]:
    return [item for pair in fields.items() for item in pair]


def rest_pairs(reader: rows.Reader) -> dict[str, str]:
    found: dict[str, str] = {}
    while reader:
        name = reader.take()
        found[name] = reader.take()
    return found
