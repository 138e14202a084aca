"""Re-running a whole transaction after a transient conflict, in one place for every backend.

`retry(body, retryable, policy)` awaits `body()` and, while it raises an error `retryable`
accepts, sleeps a jittered, growing delay and runs it again, at most `policy.attempts` times in
all. The last error propagates unchanged; the caller translates it (a deadlock that never
cleared is `StorageUnavailable`). Delays run on real time (`asyncio.sleep`), never on a service
clock, so a stopped `ManualClock` cannot hang a retry (see docs/concepts.md#values,
docs/concepts.md#errors, docs/operations.md#storage-layout).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar

__all__ = ["DEFAULT_POLICY", "RetryPolicy", "retry"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently a transaction is re-run.

    `attempts` counts every run (the first included); the delay before run `n + 1` is drawn
    uniformly from `[delay / 2, delay]` with `delay = min(first_delay * 2**(n - 1), max_delay)`.
    """

    attempts: int = 6
    first_delay: float = 0.002
    max_delay: float = 0.1

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.first_delay < 0 or self.max_delay < self.first_delay:
            raise ValueError(f"invalid retry policy: {self}")

    def delay(self, attempt: int) -> float:
        """The pause after failed run number `attempt` (1-based), jittered."""
        ceiling = min(self.first_delay * 2 ** (attempt - 1), self.max_delay)
        return random.uniform(ceiling / 2, ceiling)


DEFAULT_POLICY: Final = RetryPolicy()


async def retry(
    body: Callable[[], Awaitable[T]],
    retryable: Callable[[BaseException], bool],
    policy: RetryPolicy = DEFAULT_POLICY,
) -> T:
    """`await body()`, re-run after each error `retryable` accepts, at most `policy.attempts`
    runs; the last error (or any other) propagates as raised."""
    attempt = 1
    while True:
        try:
            return await body()
        except Exception as error:
            if attempt >= policy.attempts or not retryable(error):
                raise
            logger.debug(
                "transaction re-run after %s (%d/%d)",
                type(error).__name__,
                attempt,
                policy.attempts,
            )
        await asyncio.sleep(policy.delay(attempt))
        attempt += 1
