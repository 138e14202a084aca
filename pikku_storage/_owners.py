"""The owner rule of `list_threads(owners=...)`, in one place for every backend.

A resource matches an owner `o` iff it equals `o` or starts with `o + ":"`, by code point. The
prefix set is exactly the half-open range `[o + ":", o + ";")` (`;` follows `:`), so backends
read an exact key plus one range instead of a `LIKE`/`GLOB` pattern, whose wildcards (`_`, `%`,
`*`) would need escaping (docs/services/agent-runs.md#owners).
"""

from __future__ import annotations

from typing import Final

from pikku_storage import _validate as v
from pikku_storage.errors import InvalidValue

__all__ = ["MAX_OWNERS", "check_owners", "owner_bounds", "resource_in_owners"]

MAX_OWNERS: Final = 100


def check_owners(owners: object) -> list[str]:
    """A `list`/`tuple` of 0 to 100 identifiers, duplicates dropped (first kept, in order)."""
    if not isinstance(owners, list | tuple):
        raise InvalidValue(f"owners must be a list or tuple of str, got {type(owners).__name__}")
    if len(owners) > MAX_OWNERS:
        raise InvalidValue(f"owners holds more than {MAX_OWNERS} owners: {len(owners)}")
    return list(dict.fromkeys(v.identifier(f"owners[{i}]", o) for i, o in enumerate(owners)))


def owner_bounds(owner: str) -> tuple[str, str]:
    """The range `[low, high)` holding every resource id under `owner:` (not `owner` itself)."""
    return owner + ":", owner + ";"


def resource_in_owners(resource_id: str, owners: list[str] | tuple[str, ...]) -> bool:
    """True iff `resource_id` is one of `owners` or lies under one (`owner:...`).

    The rule of `AgentRunService.list_threads(owners=...)`, for a caller checking one thread
    (`get_thread`, its messages or runs) before serving it; `owners` is validated the same way
    (a bare `str` is `InvalidValue`, not a list of characters).
    """
    v.identifier("resource_id", resource_id)
    for owner in check_owners(owners):
        if resource_id == owner or resource_id.startswith(owner + ":"):
            return True
    return False
