"""Fixtures `pikku-storage check` puts in front of each contract class, and its result reporter.

The generated test module subclasses `(CheckFixtures, <SomeContract>)`: the mixin's
`storage`, `storage_factory`, `storage_open_args` and `contract_capabilities` win over the
contract base's plugin-backed ones. Namespaces come from the backend's test provider
(`pikku_testing.providers`) pointed at the live URL: a schema, key prefix, table prefix or
temp file per test, migrated once and emptied between tests, all dropped at the end
(Spec: 04-testing §2-3).
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio

from pikku_storage.clock import ManualClock
from pikku_storage.storage import Storage
from pikku_testing._scope import TestScope
from pikku_testing._types import StorageFactory
from pikku_testing.contract._capabilities import Capability
from pikku_testing.providers import BackendProvider, NamespaceRequest

__all__ = ["CheckFixtures", "CheckTarget", "Outcome", "Reporter", "configure"]


@dataclass(slots=True)
class CheckTarget:
    """The provider, server URL and scratch directory the fixtures make namespaces with."""

    provider: BackendProvider
    server_url: str | None
    tmpdir: Path
    token: str
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def request(self) -> NamespaceRequest:
        """A request for one more namespace, labelled `chk<token>_<n>`."""
        n = next(self.counter)
        return NamespaceRequest(
            server_url=self.server_url,
            worker="check",
            label=f"chk{self.token}_{n}",
            make_tmp_path=lambda: Path(tempfile.mkdtemp(prefix=f"ns{n}-", dir=self.tmpdir)),
        )


_TARGET: list[CheckTarget] = []


def configure(target: CheckTarget | None) -> None:
    """Point the fixtures at `target` (the CLI calls this around `pytest.main`)."""
    _TARGET.clear()
    if target is not None:
        _TARGET.append(target)


def _target() -> CheckTarget:
    if not _TARGET:
        pytest.fail("pikku-storage check: no target configured", pytrace=False)
    return _TARGET[0]


class CheckFixtures:
    """Fresh-namespace fixtures on the configured live URL."""

    @pytest.fixture
    def contract_capabilities(self) -> frozenset[Capability]:
        return _target().provider.capabilities

    @pytest_asyncio.fixture
    async def _check_scope(
        self, request: pytest.FixtureRequest, pikku_clock: ManualClock
    ) -> AsyncIterator[TestScope]:
        target = _target()
        async with TestScope.open(target.provider, target.request, pikku_clock) as scope:
            if "storage" in request.fixturenames:
                scope.main = await scope.storage()
            yield scope

    @pytest.fixture
    def storage_factory(self, _check_scope: TestScope) -> StorageFactory:
        return _check_scope.storage

    @pytest.fixture
    def storage(self, _check_scope: TestScope) -> Storage:
        return _check_scope.main_storage()

    @pytest.fixture
    def storage_open_args(self, _check_scope: TestScope) -> tuple[str, dict[str, object]]:
        return _check_scope.open_args()


@dataclass(slots=True)
class Outcome:
    """Counts of one contract class."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (test, one-line reason)
    skip_reasons: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Reporter:
    """A pytest plugin object collecting per-class outcomes and driving a progress callback."""

    on_total: Callable[[int], None]
    on_done: Callable[[], None]
    classes: dict[str, Outcome] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.on_total(len(session.items))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors.append(f"{report.nodeid}: {_reason(report)}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        parts = report.nodeid.split("::")
        cls = parts[1] if len(parts) > 2 else parts[0]
        outcome = self.classes.setdefault(cls, Outcome())
        if report.failed:
            outcome.failed += 1
            outcome.failures.append((parts[-1], f"{report.when}: {_reason(report)}"))
        elif report.skipped:
            outcome.skipped += 1
            reason = _reason(report)
            outcome.skip_reasons[reason] = outcome.skip_reasons.get(reason, 0) + 1
        elif report.when == "call":
            outcome.passed += 1
        if report.when == "teardown":
            self.on_done()


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (file, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    text = str(message if message is not None else longrepr or "")
    lines = text.strip().splitlines()
    return lines[0] if lines else "failed"
