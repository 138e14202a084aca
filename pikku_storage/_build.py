"""Record builders every backend shares: pages of runs decoded in one JSON parse, and
`record_builder`, which builds a record without the class-call overhead.

A page of runs (`list_runs`, 50 by default) used to cost two or four JSON parses per run, a
quarter of the read. Here every JSON column of a page goes through one `codec.decode` of the
columns' texts joined into one array, so the parse runs once in C. The texts are the codec's
own (the store gives back what it was given), so joining them is exact. The wire column
repeats (almost every run is "unknown"): its parsed fields are kept per text and each record
gets its own `WorkflowRunWire`, so no read aliases another. See docs/concepts.md#values,
docs/services/workflows.md; style §6.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import MISSING
from datetime import UTC, datetime
from typing import Any, Final, ParamSpec, TypeAlias, TypeVar, cast

from pikku_storage._serial import decode_wire
from pikku_storage.codec import JsonValue, decode
from pikku_storage.records import AgentRunScore, WorkflowRun, WorkflowRunWire, WorkflowStatus

__all__ = [
    "RunColumns",
    "agent_run_score",
    "decode_page",
    "new_run",
    "record_builder",
    "wire",
    "workflow_runs",
]

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

P = ParamSpec("P")
R = TypeVar("R")


def record_builder(cls: Callable[P, R]) -> Callable[P, R]:
    """A function that builds `cls` (a slots dataclass record) as its `__init__` would.

    Calling a class with keywords costs CPython 3.11 about 0.3 µs for the call protocol
    alone (the keywords become a dict for `__init__`), more than setting the fields; a page
    of 50 runs paid that 50 times. The builder is a plain function with the same keyword-only
    parameters and defaults, generated from the dataclass's fields (as `dataclasses`
    generates `__init__`), so it cannot drift from the record; it refuses classes whose
    `__init__` does more than assign (frozen, `__post_init__`, `init=False` fields).
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{cls!r} is not a dataclass")
    params = dataclasses.fields(cls)
    frozen = cls.__dataclass_params__.frozen  # type: ignore[attr-defined]  # set by @dataclass
    if frozen or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: only plain dataclass records get a builder")
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_MISSING": MISSING}
    signature: list[str] = []
    body: list[str] = []
    for f in params:
        if not f.init or not f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name}: only keyword-only init fields")
        name = f.name
        if f.default is not MISSING:
            namespace[f"_d_{name}"] = f.default
            signature.append(f"{name}=_d_{name}")
            body.append(f"    self.{name} = {name}")
        elif f.default_factory is not MISSING:
            namespace[f"_f_{name}"] = f.default_factory
            signature.append(f"{name}=_MISSING")
            body.append(f"    self.{name} = _f_{name}() if {name} is _MISSING else {name}")
        else:
            signature.append(name)
            body.append(f"    self.{name} = {name}")
    source = (
        f"def build_{cls.__name__}(*, {', '.join(signature)}):\n"
        "    self = _new(_cls)\n" + "\n".join(body) + "\n    return self\n"
    )
    exec(source, namespace)  # generated from the dataclass's field names only
    built: Callable[P, R] = namespace[f"build_{cls.__name__}"]
    built.__doc__ = f"Build a `{cls.__name__}` as `{cls.__name__}(...)` does, faster."
    return built


_new_wire: Final = record_builder(WorkflowRunWire)
new_run: Final = record_builder(WorkflowRun)  # `WorkflowRun(...)` at half the cost

_WIRE_CACHE: Final = 256  # distinct wire texts kept (most runs share one)
_WireFields: TypeAlias = tuple[str, str | None, str | None, str | None, str | None]
_wires: dict[str, _WireFields] = {}
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


def wire(text: str) -> WorkflowRunWire:
    """The stored wire as a new record, parsed once per distinct text."""
    fields = _wires.get(text)
    if fields is None:
        parsed = decode_wire(text)
        fields = (
            parsed.type,
            parsed.id,
            parsed.parent_run_id,
            parsed.parent_step_id,
            parsed.pikku_user_id,
        )
        if len(_wires) >= _WIRE_CACHE:
            _wires.clear()
        _wires[text] = fields
    return _wire(fields)


def _wire(fields: _WireFields) -> WorkflowRunWire:
    return _new_wire(
        type=fields[0],
        id=fields[1],
        parent_run_id=fields[2],
        parent_step_id=fields[3],
        pikku_user_id=fields[4],
    )


def workflow_runs(rows: Sequence[RunColumns]) -> list[WorkflowRun]:
    """Runs from their stored columns, in the order given."""
    values = decode_page([text for row in rows for text in row[3:6]])
    wires, status_of, utc = _wires, _STATUS, UTC
    runs = []
    n = 0
    for run_id, workflow, status, _, _, _, inline, graph_hash, w, created, updated in rows:
        error = values[n + 2]
        assert error is None or isinstance(error, dict)
        fields = wires.get(w)
        runs.append(
            new_run(
                id=run_id,
                workflow=workflow,
                status=status_of[status],  # type: ignore[arg-type]  # a WorkflowStatus member
                input=values[n],
                output=values[n + 1],
                error=error,
                inline=inline,
                graph_hash=graph_hash,
                wire=wire(w) if fields is None else _wire(fields),
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
