"""The differential harness's engine: two storages, one loop, id mapping and exact comparison.

Each operation runs on the model and then on the subject; results are normalized (generated
ids replaced by labels, types made explicit so `1 == True == 1.0` cannot hide a difference)
and compared, exceptions by type and message (docs/contract.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final, TypeAlias

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from pikku_storage import ManualClock, Storage
from pikku_storage.clock import TEST_START

__all__ = [
    "CLOCK_START",
    "DIFFERENTIAL_OPTIONS",
    "UNKNOWN_UUID",
    "Divergence",
    "Harness",
    "Operation",
    "SubjectFactory",
    "Translate",
]

SubjectFactory: TypeAlias = Callable[..., AbstractAsyncContextManager[Storage]]
Translate: TypeAlias = Callable[[str | None], Any]
Operation: TypeAlias = Callable[[Storage, Translate], Awaitable[object]]

CLOCK_START: Final = TEST_START
UNKNOWN_UUID: Final = "00000000-0000-4000-8000-000000000000"
# Options every factory receives besides `clock`: a heartbeat task that never fires during a
# run (it would beat on one side only) and a TTL the clock rule can cross.
DIFFERENTIAL_OPTIONS: Final[dict[str, object]] = {
    "heartbeat_interval": 3600.0,
    "heartbeat_ttl": 7200.0,
    "prune_on_heartbeat": False,
}
# Extra references every kind offers besides the ones created: unknown and non-canonical ids.
_EXTRA_REFS: Final = {
    "run": (UNKNOWN_UUID, "not-a-uuid"),
    "step": (UNKNOWN_UUID, UNKNOWN_UUID.upper()),
    "agent_run": (UNKNOWN_UUID, "run-x"),
    "thread": ("t-unknown",),
    "channel": ("ch-x",),
}


class Divergence(AssertionError):
    """The subject and the model disagreed on one operation."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Raised:
    type: str
    message: str


def _type_name(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


class Harness(RuleBasedStateMachine):
    """Base of the differential machine: subclasses set `make_model` and `make_subject`.

    Everything async runs on one `asyncio.Runner` the machine owns, so the sync Hypothesis
    engine can drive it; both storages share one `ManualClock`, advanced by the clock rule.
    """

    make_model: ClassVar[SubjectFactory]
    make_subject: ClassVar[SubjectFactory]

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(CLOCK_START)
        self.runner = asyncio.Runner()
        self.stack = AsyncExitStack()
        self.labels: tuple[dict[str, str], dict[str, str]] = ({}, {})
        self.ids: dict[str, tuple[str, str]] = {}
        self.known: dict[str, list[str]] = {kind: [] for kind in _EXTRA_REFS}
        self.gone: dict[str, list[str]] = {kind: [] for kind in _EXTRA_REFS}
        self.last_ok = True  # whether the last `both` call succeeded (on both sides)
        try:
            self.model = self._open(type(self).make_model)
            self.subject = self._open(type(self).make_subject)
        except BaseException:
            self.teardown()
            raise

    def _open(self, factory: SubjectFactory) -> Storage:
        manager = factory(clock=self.clock, **DIFFERENTIAL_OPTIONS)
        return self.runner.run(self.stack.enter_async_context(manager))

    def teardown(self) -> None:
        try:
            self.runner.run(self.stack.aclose())
        finally:
            self.runner.close()

    # --- references ---------------------------------------------------------------------

    def has(self, kind: str) -> bool:
        """Whether a live reference of `kind` exists (the precondition of rules using one)."""
        return bool(self.known[kind])

    def pick(self, data: st.DataObject, kind: str) -> str:
        """A reference of `kind`: mostly a live one (newer ones likelier), sometimes a deleted
        or unknown one; shrinks towards the newest live reference."""
        known = self.known[kind]
        if known and data.draw(st.integers(0, 7), label=f"{kind}: gone?") < 7:
            back = data.draw(st.integers(0, len(known) - 1), label=f"{kind}: age")
            return known[-1 - back]
        return data.draw(st.sampled_from([*_EXTRA_REFS[kind], *self.gone[kind]]), label=kind)

    def remember(self, kind: str, ref: str) -> None:
        """`ref` exists now (created, or re-created after a delete)."""
        if ref in self.gone[kind]:
            self.gone[kind].remove(ref)
        if ref not in self.known[kind]:
            self.known[kind].append(ref)

    def forget(self, kind: str, ref: str) -> None:
        """`ref` was deleted: later picks use it only as a known-deleted reference."""
        if ref in self.known[kind]:
            self.known[kind].remove(ref)
            self.gone[kind].append(ref)

    def refresh(self, kind: str, exists: Callable[[Storage, str], Awaitable[bool]]) -> None:
        """Forget the references of `kind` the model no longer has (after a cascade or a
        prune); bookkeeping only, never compared."""
        translate = self._translator(0)
        for ref in list(self.known[kind]):
            if not self.runner.run(_exists(exists, self.model, translate(ref))):
                self.forget(kind, ref)

    def _register(self, kind: str, model_id: str, subject_id: str) -> None:
        label = f"<{kind}#{len(self.ids) + 1}>"
        self.ids[label] = (model_id, subject_id)
        self.labels[0][model_id] = label
        self.labels[1][subject_id] = label
        self.known[kind].append(label)

    def _translator(self, side: int) -> Translate:
        def translate(ref: str | None) -> Any:
            if ref is not None and ref in self.ids:
                return self.ids[ref][side]
            return ref

        return translate

    # --- running and comparing -----------------------------------------------------------

    def both(
        self,
        what: str,
        operation: Operation,
        *,
        new: Callable[[Any], list[tuple[str, str]]] | None = None,
    ) -> Any:
        """Run `operation` on the model, then the subject; raise `Divergence` unless both give
        the same normalized result or raise the same error.

        Returns the model's result (`None` when both raised; `last_ok` tells which). `new`
        extracts `(kind, id)` pairs of generated ids from a result; they are registered on
        both sides before comparing."""
        outcomes: list[tuple[bool, Any]] = []
        for side, storage in enumerate((self.model, self.subject)):
            try:
                value = self.runner.run(_call(operation, storage, self._translator(side)))
            except Exception as exc:
                outcomes.append((False, exc))
            else:
                outcomes.append((True, value))
        (model_ok, model_value), (subject_ok, subject_value) = outcomes
        if model_ok and subject_ok and new is not None:
            created = new(model_value), new(subject_value)
            if [k for k, _ in created[0]] == [k for k, _ in created[1]]:
                for (kind, model_id), (_, subject_id) in zip(*created, strict=True):
                    self._register(kind, model_id, subject_id)
        expected = self._normal(0, model_ok, model_value)
        actual = self._normal(1, subject_ok, subject_value)
        if expected != actual:
            cause = subject_value if isinstance(subject_value, BaseException) else None
            raise Divergence(
                f"{what}:\n  model:   {_show(model_ok, model_value)}\n"
                f"  subject: {_show(subject_ok, subject_value)}"
            ) from cause
        self.last_ok = model_ok
        return model_value if model_ok else None

    def _normal(self, side: int, ok: bool, value: Any) -> object:
        if ok:
            return self._norm(side, value)
        message = str(value)
        for generated, label in self.labels[side].items():
            message = message.replace(generated, label)
        return _Raised(_type_name(value), message)

    def _norm(self, side: int, value: Any) -> object:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, enum.Enum):
            return (type(value).__name__, value.value)
        if isinstance(value, str):
            return self.labels[side].get(value, value)
        if isinstance(value, int):
            return ("int", value)
        if isinstance(value, float):
            return ("float", repr(value))
        if isinstance(value, datetime):
            return ("datetime", value.isoformat())
        if isinstance(value, list | tuple):
            return (type(value).__name__, tuple(self._norm(side, item) for item in value))
        if isinstance(value, dict):
            return ("dict", {self._norm(side, k): self._norm(side, v) for k, v in value.items()})
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return (
                type(value).__name__,
                {
                    f.name: self._norm(side, getattr(value, f.name))
                    for f in dataclasses.fields(value)
                },
            )
        return ("other", type(value).__name__, repr(value))

    # --- the clock -----------------------------------------------------------------------

    @rule(seconds=st.sampled_from([0, 0.0005, 0.001, 0.5, 1, 30, 61, -1, 3600, 7199.999, 7201]))
    def advance_clock(self, seconds: float) -> None:
        """Move the shared clock (same-millisecond ties, TTL edges, a step backwards)."""
        self.clock.advance(seconds)

    def at(self, offset_seconds: float) -> datetime:
        """The clock's instant plus an offset, for cutoffs."""
        return self.clock.now() + timedelta(seconds=offset_seconds)


async def _call(operation: Operation, storage: Storage, translate: Translate) -> object:
    return await operation(storage, translate)


async def _exists(
    exists: Callable[[Storage, str], Awaitable[bool]], storage: Storage, ref: str
) -> bool:
    return await exists(storage, ref)


def _show(ok: bool, value: object) -> str:
    if ok:
        return repr(value)
    assert isinstance(value, BaseException)
    return f"raised {_type_name(value)}: {value}"
