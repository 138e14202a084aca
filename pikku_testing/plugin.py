"""The pytest plugin: a manual clock, an isolated `Storage` per test on any backend
(docs/contract.md).

Registered through the `pytest11` entry point `pikku`, so installing the package is all a user
does. A test's backend is chosen by a `pikku_backends(...)` parametrization, then a
`pikku_backend(NAME)` marker, then `--pikku-backend`, then the `pikku_backend` ini option, else
`memory`. Servers come from an option or environment variable, else a testcontainers container,
else the backend is skipped with a reason (an error when `PIKKU_TEST_REQUIRE` lists it).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import itertools
import logging
import os
import pkgutil
import re
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn

import pytest

try:  # the `testing` extra; without it the plugin loads and its async fixtures say so
    import pytest_asyncio
except ModuleNotFoundError:  # pragma: no cover - exercised in a venv without the extra
    pytest_asyncio = None  # type: ignore[assignment]

import pikku_testing.contract
from pikku_storage import ManualClock, Storage
from pikku_storage.backends import TEST_BACKENDS, extra_for_module
from pikku_storage.clock import TEST_START
from pikku_testing._containers import Containers, ContainersUnavailable
from pikku_testing._scope import TestScope
from pikku_testing._types import StorageFactory
from pikku_testing.contract._capabilities import Capability
from pikku_testing.providers import (
    PROVIDERS,
    BackendProvider,
    NamespaceRequest,
    get_provider,
    provider_names,
)

__all__ = [
    "BACKEND_EXTRAS",
    "BACKEND_SERVERS",
    "CLOCK_START",
    "SERVERS",
    "expand_backends",
    "namespace_request",
    "pikku_backend_name",
    "pikku_clock",
    "pikku_mysql_url",
    "pikku_pgbouncer_url",
    "pikku_postgres_url",
    "pikku_provider",
    "pikku_redis_cluster_url",
    "pikku_redis_url",
    "pikku_storage",
    "pikku_storage_factory",
    "pikku_storage_open_args",
    "resolve_backend",
]

logger = logging.getLogger(__name__)

CLOCK_START: Final = TEST_START
SERVERS: Final = ("postgres", "redis", "redis-cluster", "mysql", "pgbouncer")
# backend -> the server it needs (backends not listed need none) and the extra that installs
# its drivers: both from the backend registry.
BACKEND_SERVERS: Final = {n: t.server for n, t in TEST_BACKENDS.items() if t.server is not None}
BACKEND_EXTRAS: Final = {name: test.extra for name, test in TEST_BACKENDS.items()}
REQUIRE_ENV: Final = "PIKKU_TEST_REQUIRE"
ONLY_ENV: Final = "PIKKU_TEST_ONLY"
_LABEL_UNSAFE: Final = re.compile(r"[^a-z0-9_]")


def _register_contract_rewrite() -> None:
    """Have pytest rewrite the contract modules' asserts (they are test code that lives in the
    package), so a failing contract test shows the compared values."""
    package = pikku_testing.contract
    names = [f"{package.__name__}.{info.name}" for info in pkgutil.iter_modules(package.__path__)]
    pending = [name for name in names if name not in sys.modules]
    if pending:
        pytest.register_assert_rewrite(*pending)


_register_contract_rewrite()


def _extra_for(backend: str, missing: str | None) -> str | None:
    """The extra to install when `missing` cannot be imported for `backend`: the backend's
    own extra when it installs that module, else the extra that does (`fakeredis` for a
    `redis` test backend never needs `[redis]` advice when redis is installed)."""
    test = TEST_BACKENDS.get(backend)
    top = (missing or "").partition(".")[0]
    if test is not None and top in test.modules:
        return test.extra
    return extra_for_module(missing, BACKEND_EXTRAS.get(backend))


def _server_env(server: str) -> str:
    return f"PIKKU_TEST_{server.upper().replace('-', '_')}_URL"


class _Unavailable(Exception):
    """A backend or server cannot run here; the message says why and how to enable it."""


def expand_backends(names: Iterable[str]) -> list[str]:
    """Backend names with `all` expanded (known order, no repeats); `ValueError` if unknown."""
    out: list[str] = []
    for name in names:
        for item in provider_names() if name == "all" else [name]:
            if item not in PROVIDERS:
                raise ValueError(f"unknown pikku backend {item!r}; known: {', '.join(PROVIDERS)}")
            if item not in out:
                out.append(item)
    return out


def _parse_require(text: str) -> frozenset[str]:
    items = {item.strip().lower() for item in text.split(",") if item.strip()}
    unknown = sorted(items - set(SERVERS) - set(PROVIDERS))
    if unknown:
        raise pytest.UsageError(
            f"{REQUIRE_ENV}/--pikku-require: unknown name(s) {', '.join(unknown)}; "
            f"use servers ({', '.join(SERVERS)}) or backends ({', '.join(PROVIDERS)})"
        )
    return frozenset(items)


@dataclass(slots=True)
class _State:
    """Per-session (per xdist worker) plugin state: providers, servers, containers, labels."""

    config: pytest.Config
    require: frozenset[str]
    default_backend: str
    worker: str
    only: frozenset[str] = frozenset()  # --pikku-only; empty: every backend
    token: str = field(default_factory=lambda: secrets.token_hex(3))
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    providers: dict[str, BackendProvider] = field(default_factory=dict)
    containers: Containers = field(default_factory=Containers)

    def backend_required(self, backend: str) -> bool:
        return backend in self.require or BACKEND_SERVERS.get(backend) in self.require

    def server_required(self, server: str) -> bool:
        return server in self.require or any(
            BACKEND_SERVERS.get(name) == server for name in self.require
        )

    def server_url(self, server: str) -> str:
        """Option, else environment variable, else a container; never a guessed address."""
        option = f"pikku_{server.replace('-', '_')}_url"
        given = self.config.getoption(option) or os.environ.get(_server_env(server))
        if given:
            return str(given)
        try:
            return self.containers.url(server)
        except ContainersUnavailable as exc:
            raise _Unavailable(str(exc)) from exc

    def provider(self, name: str) -> BackendProvider:
        if name not in self.providers:
            try:
                provider_cls = get_provider(name)
            except ImportError as exc:
                extra = _extra_for(name, exc.name)
                hint = (
                    f"install it with pip install 'pikku-storage[{extra}]'"
                    if extra
                    else "install the package that provides it"
                )
                raise _Unavailable(
                    f"backend {name!r} is not available ({exc.name or exc} cannot be imported); "
                    f"{hint}"
                ) from exc
            if provider_cls.server is not None and provider_cls.server not in SERVERS:
                raise _Unavailable(
                    f"backend {name!r} names an unknown server {provider_cls.server}"
                )
            self.providers[name] = provider_cls()
        return self.providers[name]

    def namespace_request(
        self, server_url: str | None, tmp_path_factory: pytest.TempPathFactory
    ) -> NamespaceRequest:
        label = f"{self.token}_{next(self.counter)}"
        return NamespaceRequest(
            server_url=server_url,
            worker=self.worker,
            label=label,
            make_tmp_path=functools.partial(tmp_path_factory.mktemp, f"ns-{label}"),
        )

    def close(self) -> None:
        """Release every provider's per-worker resources on a short-lived loop, then stop the
        containers; a failure is logged so that one backend cannot hide another's report."""
        for name, provider in self.providers.items():
            try:
                asyncio.run(provider.aclose())
            except Exception:
                logger.warning("pikku backend %s did not close cleanly", name, exc_info=True)
        self.providers.clear()
        self.containers.stop_all()


_STATE_KEY: Final = pytest.StashKey[_State]()


def _state(config: pytest.Config) -> _State:
    return config.stash[_STATE_KEY]


def _unavailable(reason: str, required: bool) -> NoReturn:
    if required:
        pytest.fail(f"{reason} (required by {REQUIRE_ENV}/--pikku-require)", pytrace=False)
    pytest.skip(reason)


# --- hooks ----------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pikku", "pikku-storage backends")
    group.addoption(
        "--pikku-backend",
        dest="pikku_backend",
        metavar="NAME",
        help=f"default backend of pikku_storage (one of: {', '.join(PROVIDERS)}; default memory)",
    )
    for server in SERVERS:
        group.addoption(
            f"--pikku-{server}-url",
            dest=f"pikku_{server.replace('-', '_')}_url",
            metavar="URL",
            help=f"{server} server URL (else ${_server_env(server)}, else testcontainers)",
        )
    group.addoption(
        "--pikku-require",
        dest="pikku_require",
        metavar="LIST",
        help=f"comma list of servers/backends that must not be skipped (also ${REQUIRE_ENV})",
    )
    group.addoption(
        "--pikku-only",
        dest="pikku_only",
        metavar="LIST",
        help=f"comma list of backends; pikku_backends(...) runs on others are deselected "
        f"(also ${ONLY_ENV})",
    )
    parser.addini("pikku_backend", "default backend of the pikku_storage fixture", default="")


def pytest_configure(config: pytest.Config) -> None:
    for line in (
        "pikku_backend(name): run this test's pikku fixtures on backend `name`",
        "pikku_backends(*names): run this test once per backend ('all' for every backend)",
        "pikku_requires(*capabilities): skip unless the backend has these capabilities",
        "real_time: the test waits on real time (lock waits, leases), at most 0.2 s per wait",
    ):
        config.addinivalue_line("markers", line)
    require = _parse_require(
        ",".join(filter(None, [os.environ.get(REQUIRE_ENV), config.getoption("pikku_require")]))
    )
    default = config.getoption("pikku_backend") or config.getini("pikku_backend") or "memory"
    try:
        expand_backends([str(default)])
    except ValueError as exc:
        raise pytest.UsageError(f"--pikku-backend/pikku_backend: {exc}") from None
    only_text = config.getoption("pikku_only") or os.environ.get(ONLY_ENV, "")
    try:
        only = frozenset(expand_backends(n.strip() for n in only_text.split(",") if n.strip()))
    except ValueError as exc:
        raise pytest.UsageError(f"--pikku-only/{ONLY_ENV}: {exc}") from None
    worker = _LABEL_UNSAFE.sub("_", os.environ.get("PYTEST_XDIST_WORKER", "main").lower())
    config.stash[_STATE_KEY] = _State(
        config=config, require=require, default_backend=str(default), worker=worker, only=only
    )


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Close providers and containers while the session (an xdist worker too) is still
    alive; `pytest_unconfigure` repeats it for sessions that never finished."""
    state = session.config.stash.get(_STATE_KEY, None)
    if state is not None:
        state.close()


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE_KEY, None)
    if state is not None:
        state.close()


def pytest_report_header(config: pytest.Config) -> str:
    state = _state(config)
    required = ",".join(sorted(state.require)) or "nothing"
    return f"pikku: default backend {state.default_backend}, required: {required}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Why tests were skipped, one line per reason with its count (a server not configured,
    an extra missing): thousands of skipped backend runs otherwise say nothing."""
    reasons: collections.Counter[str] = collections.Counter()
    for report in terminalreporter.stats.get("skipped", []):
        if isinstance(report.longrepr, tuple):
            reasons[str(report.longrepr[2]).removeprefix("Skipped: ")] += 1
    if reasons:
        terminalreporter.section("pikku: skipped tests by reason", sep="-")
        for reason, count in reasons.most_common():
            terminalreporter.write_line(f"{count:6d}  {reason}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("pikku_backends")
    if marker is None:
        return
    names = expand_backends(str(arg) for arg in marker.args)
    if not names:
        raise ValueError("pikku_backends needs at least one backend name or 'all'")
    # `--pikku-only`: other backends' runs are not even generated (collecting thousands of
    # items only to deselect them costs seconds); a test left with none is deselected below.
    only = _state(metafunc.config).only
    names = [name for name in names if not only or name in only] or names
    metafunc.parametrize("pikku_backend_name", names, ids=names, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With `--pikku-only`, deselect the runs of a test on none of the chosen backends (a CI
    job per backend, or the contract suite on `memory` alone)."""
    only = _state(config).only
    if not only:
        return
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("pikku_backend_name") if callspec is not None else None
        (dropped if backend is not None and backend not in only else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


# --- backend resolution ---------------------------------------------------------------------


def resolve_backend(
    request: pytest.FixtureRequest, name: str
) -> tuple[BackendProvider, str | None]:
    """The provider of backend `name` and its server URL (`None` when it needs no server).

    Skips with a reason saying how to enable the backend when its driver, provider or server is
    missing, or fails the test when `PIKKU_TEST_REQUIRE` lists it. For tests that build
    namespaces themselves (the differential tests); ordinary tests use the fixtures.
    """
    state = _state(request.config)
    required = state.backend_required(name)
    try:
        provider = state.provider(name)
    except _Unavailable as exc:
        _unavailable(str(exc), required)
    if provider.server is None:
        return provider, None
    try:
        url = request.getfixturevalue(f"pikku_{provider.server.replace('-', '_')}_url")
    except pytest.skip.Exception as exc:
        _unavailable(f"backend {name!r}: {exc.msg}", required)
    assert isinstance(url, str)
    return provider, url


def namespace_request(
    config: pytest.Config, server_url: str | None, tmp_path_factory: pytest.TempPathFactory
) -> NamespaceRequest:
    """A request for a fresh namespace with a label unique in this session and worker, for
    tests that open namespaces themselves (with `resolve_backend`); its `tmp_path` is made
    by `tmp_path_factory` when the backend needs one."""
    return _state(config).namespace_request(server_url, tmp_path_factory)


def _server_url(request: pytest.FixtureRequest, server: str) -> str:
    state = _state(request.config)
    try:
        return state.server_url(server)
    except _Unavailable as exc:
        _unavailable(str(exc), state.server_required(server))


def _check_capabilities(request: pytest.FixtureRequest, provider: BackendProvider) -> None:
    for marker in request.node.iter_markers("pikku_requires"):
        for capability in marker.args:
            if not isinstance(capability, Capability):
                pytest.fail(f"pikku_requires takes Capability members, got {capability!r}")
            if capability not in provider.capabilities:
                pytest.skip(f"backend {provider.name} lacks {capability.value}")


@dataclass(frozen=True, slots=True)
class _Backend:
    provider: BackendProvider
    server_url: str | None


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def pikku_clock() -> ManualClock:
    """A `ManualClock` at 2026-01-01T00:00:00Z, shared by every storage of the test."""
    return ManualClock(CLOCK_START)


@pytest.fixture
def pikku_backend_name(request: pytest.FixtureRequest) -> str:
    """The test's backend: parametrization, marker, `--pikku-backend`, ini, else `memory`."""
    name = getattr(request, "param", None)
    if name is None:
        marker = request.node.get_closest_marker("pikku_backend")
        if marker is not None:
            if len(marker.args) != 1:
                pytest.fail("pikku_backend takes exactly one backend name", pytrace=False)
            name = marker.args[0]
        else:
            name = _state(request.config).default_backend
    if name not in PROVIDERS:
        pytest.fail(f"unknown pikku backend {name!r}; known: {', '.join(PROVIDERS)}", pytrace=False)
    return str(name)


@pytest.fixture(scope="session")
def pikku_postgres_url(request: pytest.FixtureRequest) -> str:
    """A PostgreSQL server URL for the session, or skip saying how to provide one."""
    return _server_url(request, "postgres")


@pytest.fixture(scope="session")
def pikku_redis_url(request: pytest.FixtureRequest) -> str:
    """A Redis server URL for the session, or skip saying how to provide one."""
    return _server_url(request, "redis")


@pytest.fixture(scope="session")
def pikku_redis_cluster_url(request: pytest.FixtureRequest) -> str:
    """A Redis Cluster URL (`redis+cluster://…`) for the session, or skip saying how to
    provide one."""
    return _server_url(request, "redis-cluster")


@pytest.fixture(scope="session")
def pikku_mysql_url(request: pytest.FixtureRequest) -> str:
    """A MySQL/MariaDB server URL for the session, or skip saying how to provide one."""
    return _server_url(request, "mysql")


@pytest.fixture(scope="session")
def pikku_pgbouncer_url(request: pytest.FixtureRequest) -> str:
    """A PgBouncer (transaction pooling, in front of PostgreSQL) URL for the session, or skip
    saying how to provide one."""
    return _server_url(request, "pgbouncer")


@pytest.fixture
def _pikku_backend(request: pytest.FixtureRequest, pikku_backend_name: str) -> _Backend:
    provider, url = resolve_backend(request, pikku_backend_name)
    _check_capabilities(request, provider)
    return _Backend(provider, url)


@pytest.fixture
def pikku_provider(_pikku_backend: _Backend) -> BackendProvider:
    """The provider of the test's backend (its `capabilities`, its `server`)."""
    return _pikku_backend.provider


def _async_fixture(func: Callable[..., AsyncIterator[TestScope]]) -> Any:
    """`pytest_asyncio.fixture`, or without pytest-asyncio a fixture that errors the test
    saying what to install (unrelated tests still run)."""
    if pytest_asyncio is not None:
        return pytest_asyncio.fixture(func)

    def missing() -> NoReturn:
        pytest.fail(
            "the pikku_storage fixtures need pytest-asyncio: pip install 'pikku-storage[testing]'",
            pytrace=False,
        )

    return pytest.fixture(name=func.__name__)(missing)


@_async_fixture
async def _pikku_scope(
    request: pytest.FixtureRequest,
    _pikku_backend: _Backend,
    pikku_clock: ManualClock,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[TestScope]:
    """The test's namespace and storages. The only async fixture of the chain, and it builds
    `pikku_storage` too when the test uses it: each async fixture costs an event-loop round
    trip per test, a large share of a memory-backed test's time."""
    new_request = functools.partial(
        _state(request.config).namespace_request, _pikku_backend.server_url, tmp_path_factory
    )
    async with TestScope.open(_pikku_backend.provider, new_request, pikku_clock) as scope:
        if "pikku_storage" in request.fixturenames:
            scope.main = await scope.storage()
        yield scope


@pytest.fixture
def pikku_storage_factory(_pikku_scope: TestScope) -> StorageFactory:
    """An async `factory(*, isolated=False, **options)` building another initialized `Storage`
    on the test's namespace (a second instance) or, with `isolated=True`, on a fresh one.

    `options` go to the backend's `open_storage`. Everything built, and every extra namespace,
    is closed and removed after the test, also when it failed.
    """
    return _pikku_scope.storage


@pytest.fixture
def pikku_storage(_pikku_scope: TestScope) -> Storage:
    """A fresh, initialized, isolated `Storage` on the test's backend, closed after the test."""
    return _pikku_scope.main_storage()


@pytest.fixture
def pikku_storage_open_args(_pikku_scope: TestScope) -> tuple[str, dict[str, object]]:
    """`(url, options)` opening the test's namespace from another OS process, or skip."""
    return _pikku_scope.open_args()
