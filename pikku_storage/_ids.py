"""Generated ids and the canonical-UUID test that turns a malformed id into an unknown one."""

from __future__ import annotations

import os
import re
from typing import Final

__all__ = ["is_canonical_uuid", "new_id"]


_CANONICAL: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def new_id() -> str:
    """A new UUID4 string (runs, steps, agent runs, generated thread ids).

    What `str(uuid.uuid4())` gives, without building a `UUID` object: 16 random bytes with the
    version (4) and variant (RFC 4122) bits set, in lower-case 8-4-4-4-12 form.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def is_canonical_uuid(value: str) -> bool:
    """True iff `value == str(uuid.UUID(value))`; anything else is an unknown id (D2).

    That is exactly 32 lower-case hex digits in 8-4-4-4-12 groups (any version), which a
    `fullmatch` decides without parsing.
    """
    return len(value) == 36 and _CANONICAL.fullmatch(value) is not None
