"""Clocks and the millisecond UTC timestamp rules every backend shares (see
docs/concepts.md#values)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol, runtime_checkable

from pikku_storage.errors import InvalidValue

__all__ = [
    "EARLIEST",
    "EPOCH",
    "LATEST",
    "TEST_START",
    "Clock",
    "ManualClock",
    "SystemClock",
    "clamp_ms",
    "from_epoch_ms",
    "now_ms",
    "to_epoch_ms",
    "truncate_ms",
]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
EARLIEST: Final = datetime.min.replace(tzinfo=UTC)
LATEST: Final = datetime.max.replace(microsecond=999_000, tzinfo=UTC)  # whole milliseconds
TEST_START: Final = datetime(2026, 1, 1, tzinfo=UTC)
"""Where a `ManualClock` starts by default, and with it the `pikku_clock` fixture."""


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
        self._now = _require_aware(start) if start is not None else TEST_START

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


_SUB_MS: Final = tuple(timedelta(microseconds=us) for us in range(1000))
"""`timedelta(microseconds=n)` for n < 1000: subtracting one costs a tenth of `replace()`."""


def truncate_ms(when: datetime) -> datetime:
    """Convert an aware datetime to UTC and drop everything below the millisecond."""
    if when.tzinfo is not UTC:
        when = when.astimezone(UTC)
    sub_ms = when.microsecond % 1000
    if sub_ms == 0:
        return when
    if type(when) is datetime:
        return when - _SUB_MS[sub_ms]
    return when.replace(microsecond=when.microsecond - sub_ms)  # a subclass keeps its type


def now_ms(clock: Clock) -> datetime:
    """Read `clock` once: the instant every write of one call stamps (see
    docs/services/workflows.md).

    The one place a service reads its clock: a naive datetime (which would be read as local
    time) or anything else that is not an aware datetime raises `InvalidValue`.
    """
    when = clock.now()
    if type(when) is datetime and when.tzinfo is UTC:  # SystemClock, ManualClock: aware UTC
        return truncate_ms(when)
    if not isinstance(when, datetime) or when.tzinfo is None or when.utcoffset() is None:
        raise InvalidValue(
            f"{type(clock).__name__}.now() must return a timezone-aware datetime, got {when!r}"
        )
    try:
        return truncate_ms(when)
    except OverflowError:
        raise InvalidValue(
            f"{type(clock).__name__}.now() is outside year 1..9999 in UTC: {when!r}"
        ) from None


def clamp_ms(ms: int) -> datetime:
    """The aware UTC datetime of epoch milliseconds, saturated at year 1 and year 9999, so a
    cutoff computed back from a clock near year 1 never overflows."""
    if ms <= _EARLIEST_MS:
        return EARLIEST
    if ms >= _LATEST_MS:
        return LATEST
    return from_epoch_ms(ms)


def to_epoch_ms(when: datetime) -> int:
    """Whole epoch milliseconds of an aware datetime (truncated, so exact in a double)."""
    delta = when.astimezone(UTC) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_epoch_ms(ms: int) -> datetime:
    """The aware UTC datetime of whole epoch milliseconds."""
    return EPOCH + timedelta(0, 0, 0, ms)  # positional: half the cost of milliseconds=ms


_EARLIEST_MS: Final = to_epoch_ms(EARLIEST)
_LATEST_MS: Final = to_epoch_ms(LATEST)
