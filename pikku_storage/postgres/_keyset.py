"""Keyset bounds of the sweeper queries over `uuid` keys (docs/services/workflows.md#sweepers).

A sweeper's `after` cursor compares its id by code point, and need not be a stored id or even
a canonical UUID. Canonical UUID texts sort exactly as the `uuid` values do (fixed hyphens,
lowercase hex), so "ids after `text`" is "ids after the largest canonical UUID `<= text`":
one row comparison on the index, whatever the caller passed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

__all__ = ["MAX_UUID", "after_bound", "uuid_floor"]

_HEX: Final = "0123456789abcdef"
_HYPHENS: Final = frozenset({8, 13, 18, 23})
_LENGTH: Final = 36
MAX_UUID: Final = "ffffffff-ffff-ffff-ffff-ffffffffffff"
_MICROSECOND: Final = timedelta(microseconds=1)


def _allowed(position: int) -> str:
    return "-" if position in _HYPHENS else _HEX


def _highest_from(prefix: str) -> str:
    """`prefix` (a canonical prefix) completed with the highest characters."""
    return prefix + MAX_UUID[len(prefix) :]


def _below(prefix: str) -> str | None:
    """The largest canonical UUID text sorting before every extension of `prefix`."""
    for position in range(len(prefix) - 1, -1, -1):
        char = prefix[position]
        if position in _HYPHENS or char == "0":
            continue
        return _highest_from(prefix[:position] + _HEX[_HEX.index(char) - 1])
    return None


def uuid_floor(text: str) -> str | None:
    """The largest canonical UUID text `<= text` by code point, `None` when there is none."""
    for position, char in enumerate(text[:_LENGTH]):
        allowed = _allowed(position)
        if char in allowed:
            continue
        lower = [c for c in allowed if c < char]
        if lower:
            return _highest_from(text[:position] + lower[-1])
        return _below(text[:position])
    if len(text) >= _LENGTH:
        return text[:_LENGTH]  # canonical itself, or a canonical prefix of a longer text
    return _below(text)  # a proper canonical prefix: all its extensions sort after it


def after_bound(at: datetime, key: str) -> tuple[datetime, str] | None:
    """`(at, uuid)` such that `(t, id) > (at, uuid)` iff `(t, text(id)) > (at, key)`.

    `None` when every entry qualifies (no key sorts below the cursor's at its first instant).
    """
    floor = uuid_floor(key)
    if floor is not None:
        return at, floor
    try:
        return at - _MICROSECOND, MAX_UUID  # every id at `at` or later
    except OverflowError:
        return None
