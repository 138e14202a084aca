"""Fixtures `pikku-storage check` puts in front of each contract class, and its result reporter.

The generated test module subclasses `(CheckFixtures, <SomeContract>)`: the mixin's
`storage`, `storage_factory`, `storage_open_args` and `contract_capabilities` win over the
contract base's plugin-backed ones, so every test runs on a fresh namespace of the live URL
the CLI configured in-process (Spec: 04-testing §3).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import pytest
import pytest_asyncio

from pikku_storage.clock import ManualClock
from pikku_storage.storage import Storage
from pikku_storage._cli._namespaces import NamespaceSpec, Target
from pikku_testing._types import StorageFactory
from pikku_testing.contract._capabilities import Capability

__all__ = ["CheckFixtures", "Reporter", "configure"]


@dataclass(slots=True)
class _Config:
    target: Target | None = None
    capabilities: frozenset[Capability] = frozenset()


_CONFIG = _Config()


def configure(target: Target | None, capabilities: frozenset[Capability]) -> None:
    """Point the fixtures at `target` (the CLI calls this before `pytest.main`)."""
    _CONFIG.target = target
    _CONFIG.capabilities = capabilities


def _target() -> Target:
    if _CONFIG.target is None:
        pytest.fail("pikku-storage check: no target configured", pytrace=False)
    return _CONFIG.target


class CheckFixtures:
    """Fresh-namespace fixtures on the configured live URL."""

    @pytest.fixture
    def contract_capabilities(self) -> frozenset[Capability]:
        return _CONFIG.capabilities

    @pytest.fixture
    def _check_namespace(self) -> NamespaceSpec:
        return _target().new_namespace()

    @pytest_asyncio.fixture
    async def storage_factory(
        self, _check_namespace: NamespaceSpec, pikku_clock: ManualClock
    ) -> AsyncIterator[StorageFactory]:
        target = _target()
        async with AsyncExitStack() as stack:

            async def factory(*, isolated: bool = False, **options: object) -> Storage:
                spec = target.new_namespace() if isolated else _check_namespace
                storage = target.open(spec, pikku_clock, **options)
                return await stack.enter_async_context(storage)

            yield factory

    @pytest_asyncio.fixture
    async def storage(self, storage_factory: StorageFactory) -> Storage:
        return await storage_factory()

    @pytest.fixture
    def storage_open_args(
        self, _check_namespace: NamespaceSpec
    ) -> tuple[str, dict[str, object]]:
        if not _check_namespace.portable:
            pytest.skip("this backend cannot be opened from another process")
        return _check_namespace.url, dict(_check_namespace.options)


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
        test = parts[-1]
        if report.failed:
            outcome.failed += 1
            outcome.failures.append((test, f"{report.when}: {_reason(report)}"))
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
