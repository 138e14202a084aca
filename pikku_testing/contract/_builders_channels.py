"""Builders and small helpers of the channel, event hub and deployment contract tests."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest

from pikku_storage import Clock
from pikku_storage.codec import JsonValue
from pikku_storage.records import Channel, ChannelAndSession, DeploymentConfig, DeploymentInfo

__all__ = [
    "BAD_IDS",
    "DAY",
    "HEARTBEAT_TASK",
    "LONG",
    "NON_JSON",
    "ODD_IDS",
    "SwitchableClock",
    "assert_same_json",
    "channel",
    "config",
    "eventually",
    "heartbeat_tasks",
    "info",
    "ms",
    "read",
    "unchecked",
]

HEARTBEAT_TASK: Final = "pikku-deployment-heartbeat"
# Seconds `eventually()` polls before it gives up. A check that holds returns at once, so only
# a failing test waits this long; it is a margin for loaded machines, where a 0.05 s heartbeat
# tick plus its round trips took longer than the 0.2 s once allowed (issue 11 item 5).
EVENTUALLY_DEADLINE: Final = 10.0
DAY: Final = timedelta(days=1)
LONG: Final = "x" * 255
# Invalid identifiers (docs/concepts.md#values): empty, too long, U+0000, a lone surrogate, not a
# `str`.
BAD_IDS: Final = [
    pytest.param("", id="empty"),
    pytest.param("x" * 256, id="256-chars"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\ud800", id="lone-surrogate"),
    pytest.param(5, id="int"),
    pytest.param(None, id="none"),
]
# Ids that a careless backend would merge or mangle (docs/services/channels.md item 5).
ODD_IDS: Final = ["a", "a ", "A", "a:b", "a:b:c", "it's", "100%", "back\\slash", "é", "😀"]
# Values the codec rejects (docs/concepts.md#values).
NON_JSON: Final = [
    pytest.param({1, 2}, id="set"),
    pytest.param(b"bytes", id="bytes"),
    pytest.param(datetime(2026, 1, 1, tzinfo=UTC), id="datetime"),
    pytest.param(math.nan, id="nan"),
    pytest.param(math.inf, id="infinity"),
    pytest.param({1: "x"}, id="int-key"),
    pytest.param({"a": [1, {"b": object()}]}, id="nested-object"),
    pytest.param("a\ud800", id="lone-surrogate"),
]


def channel(
    channel_id: str = "ch-1", *, name: str = "chat", opening_data: JsonValue = None
) -> Channel:
    """A `Channel` with defaults."""
    return Channel(channel_id=channel_id, channel_name=name, opening_data=opening_data)


def read(
    channel_id: str = "ch-1",
    *,
    name: str = "chat",
    opening_data: JsonValue = None,
    session: dict[str, JsonValue] | None = None,
) -> ChannelAndSession:
    """The `ChannelAndSession` that `channel(...)` with these values reads back as."""
    return ChannelAndSession(
        channel_id=channel_id, channel_name=name, opening_data=opening_data, session=session
    )


def config(
    deployment_id: str = "d1", *, endpoint: str | None = None, functions: tuple[str, ...] = ("fn",)
) -> DeploymentConfig:
    """A `DeploymentConfig` with defaults; the endpoint is derived from the id."""
    return DeploymentConfig(
        deployment_id=deployment_id,
        endpoint=endpoint if endpoint is not None else f"http://{deployment_id}.internal:8080",
        functions=list(functions),
    )


def info(
    deployment_id: str = "d1", *, last_heartbeat: datetime, endpoint: str | None = None
) -> DeploymentInfo:
    """The `DeploymentInfo` a registration made by `config(deployment_id, ...)` reads as."""
    return DeploymentInfo(
        deployment_id=deployment_id,
        endpoint=endpoint if endpoint is not None else f"http://{deployment_id}.internal:8080",
        last_heartbeat=last_heartbeat,
    )


def ms(milliseconds: float) -> timedelta:
    """A `timedelta` of `milliseconds`."""
    return timedelta(milliseconds=milliseconds)


def unchecked(value: object) -> Any:
    """Pass a deliberately ill-typed argument past the type checker (bad-input tests)."""
    return value


def assert_same_json(actual: object, expected: object) -> None:
    """Equal with the same types all the way down (`0`, `0.0` and `False` differ)."""
    assert type(actual) is type(expected), f"{actual!r} is not of the type of {expected!r}"
    if isinstance(expected, dict):
        assert isinstance(actual, dict)
        assert actual.keys() == expected.keys()
        for key, item in expected.items():
            assert_same_json(actual[key], item)
    elif isinstance(expected, list):
        assert isinstance(actual, list)
        assert len(actual) == len(expected)
        for got, want in zip(actual, expected, strict=True):
            assert_same_json(got, want)
    else:
        assert actual == expected


def heartbeat_tasks() -> list[asyncio.Task[Any]]:
    """The running (not finished) heartbeat tasks of the current event loop."""
    return [
        task
        for task in asyncio.all_tasks()
        if task.get_name() == HEARTBEAT_TASK and not task.done()
    ]


async def eventually(check: Callable[[], Awaitable[bool]]) -> bool:
    """Poll `check` every 10 ms of real time until it holds, or give up after
    `EVENTUALLY_DEADLINE` (real-time tests: a background task has to act)."""
    deadline = time.monotonic() + EVENTUALLY_DEADLINE
    while True:
        if await check():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.01)


class SwitchableClock:
    """A clock that reads `base` and raises `RuntimeError` while `failing` is set."""

    def __init__(self, base: Clock) -> None:
        self.base = base
        self.failing = False

    def now(self) -> datetime:
        if self.failing:
            raise RuntimeError("clock failure requested by the test")
        return self.base.now()
