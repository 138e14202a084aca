"""Generated ids and the canonical-UUID test that turns a malformed id into an unknown one."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Final

__all__ = ["is_canonical_uuid", "new_id"]


_CANONICAL: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


_BATCH: Final = 256
"""Ids drawn from one `os.urandom` call: the system call cost more than formatting an id."""
_VARIANT: Final = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
_batch: tuple[str, Iterator[int]] = ("", iter(()))


def _refill() -> tuple[str, Iterator[int]]:
    global _batch
    digits = os.urandom(16 * _BATCH).hex()
    _batch = (digits, iter(range(0, len(digits), 32)))
    return _batch


def _forget_batch() -> None:
    """In a forked child: the parent's unused random digits are the parent's alone."""
    global _batch
    _batch = ("", iter(()))


os.register_at_fork(after_in_child=_forget_batch)


def new_id() -> str:
    """A new UUID4 string (runs, steps, agent runs, generated thread ids).

    What `str(uuid.uuid4())` gives, without building a `UUID` object: 32 random hex digits
    with the version digit set to 4 and the variant digit to one of 8, 9, a, b (RFC 4122),
    in lower-case 8-4-4-4-12 form. The random digits come from `os.urandom` a batch at a time;
    each offset of a batch is handed out once (the range iterator's step is atomic), and a
    forked child drops the parent's batch, so no two calls share digits.
    """
    digits, offsets = _batch
    at = next(offsets, -1)
    if at < 0:
        digits, offsets = _refill()
        at = next(offsets)
    return (
        f"{digits[at : at + 8]}-{digits[at + 8 : at + 12]}-4{digits[at + 13 : at + 16]}-"
        f"{_VARIANT[digits[at + 16]]}{digits[at + 17 : at + 20]}-{digits[at + 20 : at + 32]}"
    )


def is_canonical_uuid(value: str) -> bool:
    """True iff `value == str(uuid.UUID(value))`; anything else is an unknown id (D2).

    That is exactly 32 lower-case hex digits in 8-4-4-4-12 groups (any version), which a
    `fullmatch` decides without parsing.
    """
    return len(value) == 36 and _CANONICAL.fullmatch(value) is not None
