"""Lifecycle shared by every service: clock, idempotent init/close, async context manager."""

from __future__ import annotations

from abc import ABC
from datetime import datetime
from types import TracebackType
from typing import Self

from pikku_storage.clock import Clock, SystemClock, now_ms

__all__ = ["Service"]


class Service(ABC):  # noqa: B024  # abstract hooks live in the subclasses
    """Base of the eight service classes.

    Constructors store configuration only; `init()` creates or migrates what the backend needs
    and `close()` releases what it owns. Both are idempotent (Spec: 00 §5). Backends implement
    `_init` and `_close`.
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()

    @property
    def clock(self) -> Clock:
        """The clock that stamps every write of this service."""
        return self._clock

    def _now(self) -> datetime:
        """The one instant a call stamps, aware UTC in whole milliseconds (01 §2)."""
        return now_ms(self._clock)

    async def init(self) -> None:
        """Create or migrate the backend's structures; idempotent and safe concurrently."""
        await self._init()

    async def close(self) -> None:
        """Release what this service owns (a borrowed pool, client or engine stays open)."""
        await self._close()

    async def _init(self) -> None:  # noqa: B027
        """Backend hook of `init()`; nothing to do by default."""

    async def _close(self) -> None:  # noqa: B027
        """Backend hook of `close()`; nothing to do by default."""

    async def __aenter__(self) -> Self:
        await self.init()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
