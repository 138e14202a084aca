"""The Hypothesis differential test: any `Storage` against the in-memory model (docs/contract.md).

Hypothesis generates sequences of operations over all eight services (runs, steps, claims,
retries, state, versions, paging; threads, messages, runs, approvals; channels,
subscriptions, prunes; deployments with the clock moving), applies each to the model and to
the subject, and compares every result and exception exactly, mapping only generated ids
(run, step, agent run and generated thread ids). A divergence is a bug in one of them.

A backend turns it on in one line, from a plain (sync) test::

    def test_my_backend_matches_memory():
        run_differential(functools.partial(open_my_fresh_storage, "my://server"))

`make_subject(**options)` is called once per generated example with `clock=` and the options
of `DIFFERENTIAL_OPTIONS`, and returns an async context manager giving a `Storage` on an
**empty** namespace; a `Storage` itself is one (`async with` initializes and closes it).
Everything runs on one event loop the harness owns; the model and the subject share one
`ManualClock`, so both see every clock move.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, Final

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from pikku_storage.memory import open_storage as open_memory_storage
from pikku_testing._differential_ai import AIRules
from pikku_testing._differential_channels import ChannelRules, DeploymentRules
from pikku_testing._differential_core import (
    DIFFERENTIAL_OPTIONS,
    Divergence,
    Harness,
    SubjectFactory,
)
from pikku_testing._differential_workflows import WorkflowRules

__all__ = [
    "AREAS",
    "DIFFERENTIAL_OPTIONS",
    "Divergence",
    "SubjectFactory",
    "differential_machine",
    "memory_model",
    "run_differential",
]

AREAS: Final[dict[str, type[Harness]]] = {
    "workflows": WorkflowRules,
    "ai": AIRules,
    "channels": ChannelRules,
    "deployments": DeploymentRules,
}


def memory_model(**options: object) -> SubjectFactory:
    """The default model: a fresh in-memory `Storage` per example."""
    extra: dict[str, Any] = dict(options)  # checked by the backend's open_storage
    return functools.partial(open_memory_storage, **extra)


def differential_machine(
    make_subject: SubjectFactory,
    *,
    make_model: SubjectFactory | None = None,
    areas: Iterable[str] = tuple(AREAS),
) -> type[Harness]:
    """The state machine class comparing `make_subject` with `make_model` (memory by default)
    over the rules of `areas` (`workflows`, `ai`, `channels`, `deployments`)."""
    chosen = list(dict.fromkeys(areas))
    unknown = [area for area in chosen if area not in AREAS]
    if unknown or not chosen:
        raise ValueError(f"areas must be a non-empty selection of {', '.join(AREAS)}: {unknown}")
    namespace = {
        "make_model": staticmethod(make_model if make_model is not None else memory_model()),
        "make_subject": staticmethod(make_subject),
    }
    return type("DifferentialMachine", tuple(AREAS[area] for area in chosen), namespace)


def run_differential(
    make_subject: SubjectFactory,
    *,
    make_model: SubjectFactory | None = None,
    areas: Iterable[str] = tuple(AREAS),
    max_examples: int = 25,
    step_count: int = 40,
    **settings_options: object,
) -> None:
    """Run the differential machine of each area in turn (`max_examples` sequences of up to
    `step_count` operations each); raises `Divergence` (an `AssertionError`) with the shrunk
    sequence of operations when the subject and the model disagree.

    The areas share nothing but the clock, so one machine per area spends every step where it
    can find something. `settings_options` go to Hypothesis `settings` (for example
    `database=None`, `derandomize=True`).
    """
    options: dict[str, Any] = {
        "max_examples": max_examples,
        "stateful_step_count": step_count,
        "deadline": None,
        "suppress_health_check": [
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
        **settings_options,
    }
    for area in dict.fromkeys(areas):
        machine = differential_machine(make_subject, make_model=make_model, areas=[area])
        run_state_machine_as_test(machine, settings=settings(**options))
