"""Parameters of the AI services' multi-row writes, and the checks made under the thread lock.

Pure functions over the validated dataclasses of `interfaces.ai`, so `ai.py` keeps only the
statement flow. See docs/services/ai-storage.md (save_messages steps 3 and 4),
docs/services/ai-run-state.md (update_run) and docs/concepts.md#concurrency (the thread lock).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Final

from pikku_storage._owners import owner_bounds
from pikku_storage._serial import encode_missing_rpcs
from pikku_storage.errors import ConflictError
from pikku_storage.interfaces.ai import AgentRunChanges, MessageBatch, NewAgentRun, NewScore
from pikku_storage.postgres._connection import Row
from pikku_storage.records import UNSET

__all__ = [
    "batch_conflict",
    "batch_save",
    "check_batch",
    "new_run",
    "new_score",
    "owner_ranges",
    "run_changes",
]

Params = dict[str, object]

# Transport of a batch's rows to `json_to_recordset` (not JSON at rest: the stored payloads are
# the codec's texts, carried inside as strings).
_json: Final = json.JSONEncoder(
    ensure_ascii=False, check_circular=False, separators=(",", ":")
).encode


def batch_save(thread_id: str, batch: MessageBatch) -> Params:
    """Parameters of `SAVE_BATCH`: the rows of the batch as three JSON texts, read back by
    `json_to_recordset` (exact: every field is a JSON string, integer, boolean or null; the
    timestamps are ISO texts with their offset). Messages in list order (`o`: 1, 2, …), their
    calls in call order (`o`: the message's ordinal), a result answering a call of the batch
    with the call, the others (`external_result_ids`, distinct) for stored calls."""
    results, undelivered = batch.results, batch.undelivered_results
    messages = []
    calls = []
    for ordinal, message in enumerate(batch.messages, start=1):
        messages.append(
            {
                "o": ordinal,
                "i": message.message_id,
                "r": message.role.value,
                "t": message.content_text,
                "p": message.content_parts,
                "c": message.created_at.isoformat(),
                "x": message.reasoning_content,
                "n": message.interrupted,
            }
        )
        for position, call in enumerate(message.tool_calls):
            call_id = call.tool_call_id
            calls.append(
                {
                    "i": call_id,
                    "o": ordinal,
                    "k": position,
                    "n": call.name,
                    "a": call.args,
                    "r": results.get(call_id),
                    "u": call_id in undelivered,
                }
            )
    external = [
        {"i": call_id, "r": results[call_id], "u": call_id in undelivered}
        for call_id in batch.external_result_ids
    ]
    return {
        "thread_id": thread_id,
        "now": batch.now,
        "count": len(batch.messages),
        "valid": batch.batch_conflict is None,
        "messages": _json(messages),
        "calls": _json(calls) if calls else "[]",
        "results": _json(external) if external else "[]",
    }


def check_batch(thread_id: str, batch: MessageBatch, found: Row) -> None:
    """The batch's stored-state checks against the ids `SAVE_BATCH` found."""
    stored_messages, stored_calls, answerable = (set(ids) for ids in found[:3])
    batch.check_stored(thread_id, stored_messages, stored_calls, answerable)


def batch_conflict(thread_id: str, batch: MessageBatch, constraint: str | None) -> ConflictError:
    """A uniqueness violation the checks under the thread lock did not foresee."""
    if constraint == "ai_tool_calls_pkey" and batch.tool_calls:
        return ConflictError.tool_call(thread_id, batch.tool_calls[0].tool_call_id)
    first = batch.messages[0].message_id if batch.messages else ""
    return ConflictError.message(thread_id, first)


def new_run(run: NewAgentRun) -> Params:
    """Parameters of `CREATE_RUN`: the run and its pending approvals in list order."""
    return {
        "run_id": run.run_id,
        "thread_id": run.thread_id,
        "agent_name": run.agent_name,
        "resource_id": run.resource_id,
        "status": run.status.value,
        "error_message": run.error_message,
        "suspend_reason": None if run.suspend_reason is None else run.suspend_reason.value,
        "missing_rpcs": encode_missing_rpcs(run.missing_rpcs),
        "input_tokens": run.usage.input_tokens,
        "output_tokens": run.usage.output_tokens,
        "model": run.usage.model,
        "now": run.now,
        "tool_call_ids": [a.tool_call_id for a in run.pending_approvals],
        "kinds": [a.kind for a in run.pending_approvals],
        "payloads": [a.payload for a in run.pending_approvals],
    }


def run_changes(run_id: str, changes: AgentRunChanges, now: datetime) -> Params:
    """Parameters of `UPDATE_RUN`: each field with a `set_…` flag (`UNSET` keeps it)."""
    usage = changes.usage
    suspend_reason = changes.suspend_reason
    missing_rpcs = changes.missing_rpcs
    return {
        "run_id": run_id,
        "now": now,
        "set_status": changes.status is not UNSET,
        "status": None if changes.status is UNSET else changes.status.value,
        "set_error_message": changes.error_message is not UNSET,
        "error_message": None if changes.error_message is UNSET else changes.error_message,
        "set_suspend_reason": suspend_reason is not UNSET,
        "suspend_reason": (
            None if suspend_reason is UNSET or suspend_reason is None else suspend_reason.value
        ),
        "set_missing_rpcs": missing_rpcs is not UNSET,
        "missing_rpcs": None if missing_rpcs is UNSET else encode_missing_rpcs(missing_rpcs),
        "set_usage": usage is not UNSET,
        "input_tokens": None if usage is UNSET else usage.input_tokens,
        "output_tokens": None if usage is UNSET else usage.output_tokens,
        "model": None if usage is UNSET else usage.model,
    }


def new_score(score: NewScore) -> Params:
    """Parameters of `SAVE_SCORE`."""
    return {
        "run_id": score.run_id,
        "scorer_name": score.scorer_name,
        "score": score.score,
        "reason": score.reason,
        "metadata": score.metadata,
        "now": score.now,
    }


def owner_ranges(owners: list[str]) -> Params:
    """Parameters of the owners listings: the exact ids and one `[low, high)` range per owner.

    An owner under another (`a:b` under `a`) is dropped: everything it matches the other
    matches too. What remains matches disjoint sets, so the union needs no deduplication.
    """
    kept = [o for o in owners if not any(o.startswith(p + ":") for p in owners)]
    bounds = [owner_bounds(o) for o in kept]
    return {
        "owners": kept,
        "lows": [low for low, _ in bounds],
        "highs": [high for _, high in bounds],
    }
