"""Record builders the stored backends share: pages of runs decoded in one JSON parse.

A page of runs (`list_runs`, 50 by default) used to cost two or four JSON parses per run, a
quarter of the read. Here every JSON column of a page goes through one `codec.decode` of the
columns' texts joined into one array, so the parse runs once in C. The texts are the codec's
own (the store gives back what it was given), so joining them is exact. The wire column
repeats (almost every run is "unknown"): its parsed fields are kept per text and each record
gets its own `WorkflowRunWire`, so no read aliases another. See docs/concepts.md#values,
docs/services/workflows.md; style §6.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, TypeAlias, cast

from pikku_storage._serial import decode_wire
from pikku_storage.codec import JsonValue, decode
from pikku_storage.records import AgentRunScore, WorkflowRun, WorkflowRunWire, WorkflowStatus

__all__ = ["RunColumns", "agent_run_score", "decode_page", "wire", "workflow_runs"]

# id, workflow, status, input, output, error, inline, graph_hash, wire, created_at, updated_at;
# JSON columns as the codec's text (`None` for SQL NULL / an absent field).
RunColumns: TypeAlias = tuple[
    str,
    str,
    str,
    str | None,
    str | None,
    str | None,
    bool,
    str | None,
    str,
    datetime,
    datetime,
]
# timestamps aware; converted to UTC here when a session speaks another zone

_WIRE_CACHE: Final = 256  # distinct wire texts kept (most runs share one)
_wires: dict[str, WorkflowRunWire] = {}
_STATUS: Final = WorkflowStatus._value2member_map_


def decode_page(texts: Sequence[str | None]) -> list[JsonValue]:
    """Parse many codec texts in one call; `None` stays `None`, order is kept."""
    present = [index for index, text in enumerate(texts) if text is not None]
    values: list[JsonValue] = [None] * len(texts)
    if len(present) == 1:  # one record with one JSON column set: no array to build
        values[present[0]] = decode(cast(str, texts[present[0]]))
    elif present:
        parsed = decode(f"[{','.join([cast(str, texts[index]) for index in present])}]")
        assert isinstance(parsed, list)
        for index, value in zip(present, parsed, strict=True):
            values[index] = value
    return values


def _copy(w: WorkflowRunWire) -> WorkflowRunWire:
    return WorkflowRunWire(
        type=w.type,
        id=w.id,
        parent_run_id=w.parent_run_id,
        parent_step_id=w.parent_step_id,
        pikku_user_id=w.pikku_user_id,
    )


def wire(text: str) -> WorkflowRunWire:
    """The stored wire as a new record, parsed once per distinct text."""
    parsed = _wires.get(text)
    if parsed is None:
        parsed = decode_wire(text)
        if len(_wires) >= _WIRE_CACHE:
            _wires.clear()
        _wires[text] = parsed
    return _copy(parsed)  # a new record: callers may mutate theirs


def workflow_runs(rows: Sequence[RunColumns]) -> list[WorkflowRun]:
    """Runs from their stored columns, in the order given."""
    values = decode_page([text for row in rows for text in row[3:6]])
    wires, status_of, utc = _wires, _STATUS, UTC
    runs = []
    n = 0
    for run_id, workflow, status, _, _, _, inline, graph_hash, w, created, updated in rows:
        error = values[n + 2]
        assert error is None or isinstance(error, dict)
        cached = wires.get(w)
        runs.append(
            WorkflowRun(
                id=run_id,
                workflow=workflow,
                status=status_of[status],  # type: ignore[arg-type]  # a WorkflowStatus member
                input=values[n],
                output=values[n + 1],
                error=error,
                inline=inline,
                graph_hash=graph_hash,
                wire=wire(w) if cached is None else _copy(cached),
                created_at=created if created.tzinfo is utc else created.astimezone(utc),
                updated_at=updated if updated.tzinfo is utc else updated.astimezone(utc),
            )
        )
        n += 3
    return runs


def agent_run_score(
    run_id: str,
    scorer_name: str,
    score: float,
    reason: str | None,
    metadata_text: str | bytes | None,
    created_at: datetime,
) -> AgentRunScore:
    """One stored score as a record: `metadata` decoded, `score` a `float`, `created_at` UTC."""
    metadata = None if metadata_text is None else decode(metadata_text)
    assert metadata is None or isinstance(metadata, dict)
    return AgentRunScore(
        run_id=run_id,
        scorer_name=scorer_name,
        score=float(score) + 0.0,
        reason=reason,
        metadata=metadata,
        created_at=created_at if created_at.tzinfo is UTC else created_at.astimezone(UTC),
    )
