"""Generated ids and the canonical-UUID test that turns a malformed id into an unknown one."""

from __future__ import annotations

import uuid

__all__ = ["is_canonical_uuid", "new_id"]


def new_id() -> str:
    """A new UUID4 string (runs, steps, agent runs, generated thread ids)."""
    return str(uuid.uuid4())


def is_canonical_uuid(value: str) -> bool:
    """True iff `value == str(uuid.UUID(value))`; anything else is an unknown id (D2)."""
    if len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
