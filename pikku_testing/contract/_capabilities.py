"""Optional behaviour a backend declares on its contract class (style §20)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TypeVar

import pytest

__all__ = ["Capability", "requires"]

F = TypeVar("F", bound=Callable[..., object])


class Capability(enum.Enum):
    """What a backend may lack; tests needing it skip with the reason, never pass silently."""

    CROSS_PROCESS = "cross-process: another OS process can open the same namespace"
    CROSS_PROCESS_LOCKS = "cross_process_locks: locks exclude other processes"
    PERSISTENT = "persistent: a second instance with its own connection sees the data"


def requires(*capabilities: Capability) -> Callable[[F], F]:
    """Mark a contract test as needing `capabilities`."""
    return pytest.mark.pikku_requires(*capabilities)
