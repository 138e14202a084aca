"""The Hypothesis differential harness: every backend against the in-memory model (04 §3),
the model against itself, and planted divergences proving the harness can fail."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import pytest
from hypothesis import Phase

from pikku_storage import JsonValue, ManualClock, RunStep, Storage
from pikku_storage import open_storage as open_any_storage
from pikku_storage.memory import (
    InMemoryChannelStore,
    InMemoryStore,
    InMemoryWorkflowRunService,
    InMemoryWorkflowService,
    open_storage,
)
from pikku_testing.differential import Divergence, memory_model, run_differential
from pikku_testing.plugin import namespace_request, resolve_backend
from pikku_testing.providers import provider_names

# Modest on purpose: the suite stays fast; run a backend alone with more examples to dig.
EXAMPLES = 8
STEPS = 30


@pytest.mark.parametrize("backend", [name for name in provider_names() if name != "memory"])
def test_backend_matches_the_memory_model(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    provider, server_url = resolve_backend(request, backend)

    @asynccontextmanager
    async def subject(*, clock: ManualClock, **options: object) -> AsyncIterator[Storage]:
        ns_request = namespace_request(request.config, server_url, tmp_path_factory)
        async with (
            provider.namespace(ns_request) as namespace,
            namespace.storage(clock, **options) as storage,
        ):
            yield storage

    run_differential(subject, max_examples=EXAMPLES, step_count=STEPS)


def test_memory_matches_itself_through_open_storage() -> None:
    """The one-line form a backend author writes, with the memory backend as the subject."""
    run_differential(
        functools.partial(open_any_storage, "memory://"), max_examples=EXAMPLES, step_count=STEPS
    )


# --- planted divergences -----------------------------------------------------------------------


class _ReversedSteps(InMemoryWorkflowRunService):
    """`get_run_steps` newest first instead of in creation order."""

    async def _get_run_steps(self, run_id: str) -> list[RunStep]:
        return list(reversed(await super()._get_run_steps(run_id)))


def _ints_to_floats(value: JsonValue) -> JsonValue:
    if isinstance(value, list):
        return [_ints_to_floats(item) for item in value]
    if isinstance(value, dict):
        return {key: _ints_to_floats(item) for key, item in value.items()}
    return float(value) if type(value) is int else value


class _FloatState(InMemoryWorkflowService):
    """State values read back with floats where ints were written (`2 == 2.0` in Python), as
    a store that parses JSON numbers as doubles would."""

    async def _get_run_state(self, run_id: str) -> dict[str, JsonValue]:
        state = await super()._get_run_state(run_id)
        return {key: _ints_to_floats(value) for key, value in state.items()}


class _LenientTouch(InMemoryChannelStore):
    """`touch` on an unknown channel does nothing instead of raising `ChannelNotFound`."""

    async def _touch(self, channel_id: str, now: datetime) -> None:
        if await self._get_channel_and_session(channel_id) is not None:
            await super()._touch(channel_id, now)


def _planted(replace: Callable[[InMemoryStore, Storage, ManualClock], None]) -> Any:
    def factory(*, clock: ManualClock, **options: Any) -> Storage:
        store = InMemoryStore()
        storage = open_storage(clock=clock, store=store, **options)
        replace(store, storage, clock)
        return storage

    return factory


def _reversed_steps(store: InMemoryStore, storage: Storage, clock: ManualClock) -> None:
    storage.workflow_runs = _ReversedSteps(store.workflows, clock=clock)


def _float_state(store: InMemoryStore, storage: Storage, clock: ManualClock) -> None:
    storage.workflows = _FloatState(store.workflows, clock=clock)


def _lenient_touch(store: InMemoryStore, storage: Storage, clock: ManualClock) -> None:
    storage.channels = _LenientTouch(store.channels, clock=clock)


@pytest.mark.parametrize(
    ("replace", "area", "operation"),
    [
        (_reversed_steps, "workflows", "steps"),
        (_float_state, "workflows", "get_run_state"),
        (_lenient_touch, "channels", "touch"),
    ],
    ids=["misordered-list", "int-read-as-float", "missing-error"],
)
def test_the_harness_reports_a_planted_divergence(
    replace: Callable[[InMemoryStore, Storage, ManualClock], None], area: str, operation: str
) -> None:
    with pytest.raises(Divergence, match=operation):
        run_differential(
            _planted(replace),
            areas=[area],
            max_examples=1000,
            database=None,
            derandomize=True,  # the same sequences every run: the same (short) time to find it
            phases=[Phase.generate],  # found is enough; shrinking is Hypothesis's business
        )


def test_the_harness_compares_with_a_custom_model_and_rejects_unknown_areas() -> None:
    run_differential(
        memory_model(), make_model=memory_model(), areas=["deployments"], max_examples=3
    )
    with pytest.raises(ValueError, match="areas"):
        run_differential(memory_model(), areas=["nope"])
