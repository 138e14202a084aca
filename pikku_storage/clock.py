"""Clocks and the millisecond UTC timestamp rules every backend shares (Spec: 00 §4)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol, runtime_checkable

__all__ = [
    "EPOCH",
    "Clock",
    "ManualClock",
    "SystemClock",
    "from_epoch_ms",
    "now_ms",
    "to_epoch_ms",
    "truncate_ms",
]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@runtime_checkable
class Clock(Protocol):
    """Source of the current time for every timestamp and liveness decision a service makes."""

    def now(self) -> datetime:
        """Return the current time as an aware datetime."""
        ...


class SystemClock:
    """The real wall clock, in UTC."""

    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to, so tests drive heartbeats, TTLs and leases.

    It starts at `start` (default 2026-01-01T00:00:00Z) and changes only through `advance()`
    and `set()`; it may be set backwards.
    """

    __slots__ = ("_now",)

    def __init__(self, start: datetime | None = None) -> None:
        self._now = _require_aware(start) if start is not None else datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward (or back, for a negative value) by `seconds`."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise TypeError("seconds must be a number")
        if not math.isfinite(seconds):
            raise ValueError("seconds must be finite")
        self._now = self._now + timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        """Jump to `when`, which must be timezone-aware."""
        self._now = _require_aware(when)

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()})"


def _require_aware(when: datetime) -> datetime:
    if not isinstance(when, datetime) or when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("ManualClock needs a timezone-aware datetime")
    return when.astimezone(UTC)


def truncate_ms(when: datetime) -> datetime:
    """Convert an aware datetime to UTC and drop everything below the millisecond."""
    when = when.astimezone(UTC)
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def now_ms(clock: Clock) -> datetime:
    """Read `clock` once: the instant every write of one call stamps (Spec: 01 §2)."""
    return truncate_ms(clock.now())


def to_epoch_ms(when: datetime) -> int:
    """Whole epoch milliseconds of an aware datetime (truncated, so exact in a double)."""
    delta = when.astimezone(UTC) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_epoch_ms(ms: int) -> datetime:
    """The aware UTC datetime of whole epoch milliseconds."""
    return EPOCH + timedelta(milliseconds=ms)
