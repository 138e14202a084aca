"""What every raw twin does to what it reads, as a caller of the bare driver must: JSON
payloads parsed and timestamps as aware datetimes (values, not text). No record objects: that
part of the work is what the ratio charges to the library."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

__all__ = ["EPOCH", "decode_messages", "decode_runs", "epoch", "loads", "same"]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# The C scanner, as the codec reads (no per-call setup); typeshed does not declare it.
_SCAN: Final[Callable[[str, int], tuple[Any, int]]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def loads(text: str | None) -> Any:
    """JSON text the library wrote (no surrounding whitespace) parsed at the C scanner's cost."""
    return None if text is None else _SCAN(text, 0)[0]


def epoch(ms: int) -> datetime:
    """Epoch milliseconds as an aware datetime."""
    return EPOCH + timedelta(0, 0, 0, ms)


def same(when: datetime) -> datetime:
    """A timestamp the driver already made aware (psycopg in a UTC session)."""
    return when


def decode_runs(
    rows: list[Any], when: Callable[[Any], datetime], flag: Callable[[Any], bool] = bool
) -> list[tuple[Any, ...]]:
    """Run rows (the backend's 13 columns) as values: JSON payloads parsed, `when` applied to
    the two timestamps, `flag` to the two flags (a column's 0/1; Redis stores "0"/"1")."""
    return [
        (
            run_id,
            wf,
            status,
            loads(inp),
            loads(out),
            loads(err),
            flag(inline),
            graph,
            loads(wire),
            when(created),
            when(updated),
            flag(det),
            loads(plan),
        )
        for (
            run_id,
            wf,
            status,
            inp,
            out,
            err,
            inline,
            graph,
            wire,
            created,
            updated,
            det,
            plan,
        ) in rows
    ]


def decode_messages(rows: list[Any]) -> list[tuple[Any, ...]]:
    """The message rows with their `created_at` (epoch milliseconds) as aware datetimes and
    JSON content and tool-call arguments parsed."""
    return [
        (seq, mid, role, text, loads(parts), epoch(created), cid, name, loads(args), result)
        for (seq, mid, role, text, parts, created, cid, name, args, result) in rows
    ]
