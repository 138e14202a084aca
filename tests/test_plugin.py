"""The pytest plugin, run inside `pytester` sessions (04-testing §1-2)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pikku_testing import _containers
from pikku_testing._containers import Containers, ContainersUnavailable, docker_reachable
from pikku_testing.providers import PROVIDERS, get_provider, provider_names

# What the outer session was given (CI sets servers), read before any test clears it.
OUTER_ENVIRONMENT = {
    name: value for name, value in os.environ.items() if name.startswith("PIKKU_TEST_")
}
ASYNC_OPTIONS = ("-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function")


@pytest.fixture(scope="module", autouse=True)
def _providers_imported_before_inner_sessions() -> None:
    """In-process `pytester` runs drop the modules they imported when they end; a driver
    (SQLAlchemy) first imported inside one would be half-replaced for later tests."""
    for name in provider_names():
        with contextlib.suppress(ImportError):
            get_provider(name)


@pytest.fixture(autouse=True)
def _no_outer_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner sessions see only what a test gives them (CI sets these for the outer one)."""
    for name in list(os.environ):
        if name.startswith("PIKKU_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/pikku-test-docker.sock")


def _literal(pattern: str) -> str:
    """An fnmatch pattern matching `[` and `]` literally (test ids, extras)."""
    return pattern.replace("[", "\x00").replace("]", "[]]").replace("\x00", "[[]")


def run(pytester: pytest.Pytester, *args: str, mode: str = "auto") -> pytest.RunResult:
    return pytester.runpytest(*ASYNC_OPTIONS, "-o", f"asyncio_mode={mode}", *args)


# --- isolation and fixtures ------------------------------------------------------------------

MARK_ALL = "import pytest\npytestmark = pytest.mark.pikku_backends('all')\n"
ISOLATION = """
import pytest
from pikku_storage import Channel, ChannelNotFound

async def test_1_writes(pikku_storage):
    await pikku_storage.channels.add_channel(Channel(channel_id="c1", channel_name="n"))
    await pikku_storage.workflows.create_run("wf", None)
    await pikku_storage.ai_storage.create_thread("r", thread_id="t1")

async def _assert_empty(storage):
    with pytest.raises(ChannelNotFound):
        await storage.channels.get_channel_and_session("c1")
    assert await storage.workflow_runs.list_runs() == []
    assert await storage.ai_storage.get_threads("r") == []

async def test_2_sees_nothing(pikku_storage):
    await _assert_empty(pikku_storage)

async def test_3_fails_after_writing(pikku_storage):
    await pikku_storage.channels.add_channel(Channel(channel_id="c1", channel_name="n"))
    raise AssertionError("planted failure")

async def test_4_sees_nothing_after_a_failure(pikku_storage, pikku_storage_factory):
    await _assert_empty(pikku_storage)
    await _assert_empty(await pikku_storage_factory())
"""


def test_each_test_gets_an_empty_namespace_on_every_backend_even_after_a_failure(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One subprocess runs the four tests on every backend (servers from the outer session's
    environment; a backend it cannot run is skipped, or an error when required)."""
    for name, value in OUTER_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile(
        "import pytest\npytestmark = pytest.mark.pikku_backends('all')\n" + ISOLATION
    )
    result = pytester.runpytest_subprocess(*ASYNC_OPTIONS, "-o", "asyncio_mode=auto", "-rs")
    outcomes = result.parseoutcomes()
    ran = outcomes.get("failed", 0)
    assert "errors" not in outcomes
    assert 1 <= ran <= len(provider_names())
    assert outcomes.get("passed", 0) == 3 * ran
    assert outcomes.get("skipped", 0) == 4 * (len(provider_names()) - ran)
    result.stdout.fnmatch_lines([_literal("*test_3_fails_after_writing[memory]*")])


def test_the_factory_shares_the_namespace_forwards_options_and_isolates_on_request(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from datetime import UTC, datetime
        import pytest
        from pikku_storage import Channel, ChannelNotFound, ManualClock

        async def test_factory(pikku_storage, pikku_storage_factory, pikku_clock):
            second = await pikku_storage_factory(heartbeat_interval=1.0, heartbeat_ttl=5.0)
            assert second is not pikku_storage
            assert second.deployments.heartbeat_ttl == 5.0
            assert pikku_storage.deployments.heartbeat_ttl == 30.0
            await pikku_storage.channels.add_channel(Channel(channel_id="c1", channel_name="n"))
            assert (await second.channels.get_channel_and_session("c1")).channel_name == "n"
            other = await pikku_storage_factory(isolated=True)
            with pytest.raises(ChannelNotFound):
                await other.channels.get_channel_and_session("c1")
            assert second.workflows.clock is pikku_clock is pikku_storage.channels.clock
            assert isinstance(pikku_clock, ManualClock)
            assert pikku_clock.now() == datetime(2026, 1, 1, tzinfo=UTC)

        def test_open_args_skip_on_memory(pikku_storage_open_args):
            raise AssertionError("memory has no cross-process open args")

        def test_backend_name_defaults_to_memory(pikku_backend_name, pikku_provider):
            assert pikku_backend_name == "memory" == pikku_provider.name
        """
    )
    result = run(pytester, "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*backend memory cannot be opened from another process*"])


def test_the_clock_is_fresh_in_every_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from datetime import UTC, datetime

        def test_1(pikku_clock):
            pikku_clock.advance(3600)

        def test_2(pikku_clock):
            assert pikku_clock.now() == datetime(2026, 1, 1, tzinfo=UTC)
        """
    )
    run(pytester).assert_outcomes(passed=2)


# --- markers and backend selection ------------------------------------------------------------


def test_pikku_backends_parametrizes_with_readable_ids(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.pikku_backends("memory", "sqlite")
        def test_two(pikku_backend_name):
            pass

        @pytest.mark.pikku_backends("all")
        def test_all(pikku_backend_name):
            pass

        @pytest.mark.pikku_backend("fakeredis")
        def test_one(pikku_backend_name):
            assert pikku_backend_name == "fakeredis"

        @pytest.mark.pikku_backends("all")
        class TestClass:
            def test_method(self, pikku_backend_name):
                pass
        """
    )
    result = run(pytester, "--collect-only", "-q")
    expected = [
        "*::test_two[memory]",
        "*::test_two[sqlite]",
        *(f"*::test_all[{name}]" for name in provider_names()),
        "*::test_one",
        *(f"*::TestClass::test_method[{name}]" for name in provider_names()),
    ]
    result.stdout.fnmatch_lines([_literal(line) for line in expected], consecutive=True)
    assert {"memory", "sqlite", "fakeredis", "postgres", "sqlalchemy-mysql"} <= set(PROVIDERS)


def test_the_backend_comes_from_marker_then_option_then_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\npikku_backend = sqlite\n")
    pytester.makepyfile(
        """
        import os
        import pytest

        def test_default(pikku_backend_name):
            assert pikku_backend_name == os.environ["EXPECTED"]

        @pytest.mark.pikku_backend("memory")
        def test_marker(pikku_backend_name):
            assert pikku_backend_name == "memory"
        """
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPECTED", "sqlite")
        run(pytester).assert_outcomes(passed=2)
        patch.setenv("EXPECTED", "fakeredis")
        run(pytester, "--pikku-backend=fakeredis").assert_outcomes(passed=2)


def test_unknown_backend_names_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.pikku_backend("nosuch")
        def test_marker(pikku_backend_name):
            pass
        """
    )
    result = run(pytester, "--pikku-backend=bogus")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown pikku backend 'bogus'*"])
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown pikku backend 'nosuch'*"])


ONLY = """
import pytest

@pytest.mark.pikku_backends("memory", "sqlite", "fakeredis")
def test_three(pikku_backend_name):
    pass

@pytest.mark.pikku_backends("sqlite")
def test_sqlite_only(pikku_backend_name):
    pass

def test_plain():
    pass
"""


def test_pikku_only_runs_pikku_backends_tests_on_the_chosen_backends(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(ONLY)
    result = run(pytester, "-v", "--pikku-only=memory,fakeredis")
    result.assert_outcomes(passed=3, deselected=1)
    result.stdout.fnmatch_lines(["*test_three?memory? PASSED*", "*test_three?fakeredis? PASSED*"])
    assert "test_three[sqlite]" not in result.stdout.str()
    assert "test_sqlite_only[sqlite] PASSED" not in result.stdout.str()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIKKU_TEST_ONLY", "sqlite")
        run(pytester).assert_outcomes(passed=3)
    run(pytester).assert_outcomes(passed=5)


def test_an_unknown_pikku_only_name_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ONLY)
    result = run(pytester, "--pikku-only=memory,memroy")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--pikku-only*unknown pikku backend 'memroy'*"])


def test_the_storage_asked_for_late_fails_saying_how_to_ask(pytester: pytest.Pytester) -> None:
    """`pikku_storage` is built while the fixtures are set up, so a test must name it."""
    pytester.makepyfile(
        """
        def test_late(request):
            request.getfixturevalue("pikku_storage")
        """
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*request it as an argument*getfixturevalue*"])


def test_pikku_requires_skips_with_the_capability_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pikku_testing import Capability

        @pytest.mark.pikku_requires(Capability.CROSS_PROCESS_LOCKS)
        async def test_needs_locks(pikku_storage):
            raise AssertionError("memory has no cross-process locks")

        @pytest.mark.pikku_requires(Capability.PERSISTENT)
        async def test_needs_persistence(pikku_storage):
            pass
        """
    )
    result = run(pytester, "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*backend memory lacks cross_process_locks*"])


# --- missing servers, missing providers, PIKKU_TEST_REQUIRE -----------------------------------

NEEDS_SERVERS = """
import pytest

def test_raw_url(pikku_redis_url):
    pass

@pytest.mark.pikku_backend("sqlalchemy-mysql")
async def test_backend(pikku_storage):
    pass

@pytest.mark.pikku_backend("ghost")
def test_ghost(pikku_storage):
    pass
"""


@pytest.fixture
def ghost_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend whose provider module does not exist (a driver or provider not installed)."""
    monkeypatch.setitem(PROVIDERS, "ghost", "pikku_testing._provider_ghost:GhostProvider")


@pytest.mark.usefixtures("ghost_backend")
def test_missing_servers_and_providers_skip_with_how_to_enable_them(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(NEEDS_SERVERS)
    result = run(pytester, "-rs")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(
        [
            _literal(
                "*no redis server: no Docker engine answers at unix:///nonexistent/*"
                "set PIKKU_TEST_REDIS_URL (or --pikku-redis-url)*pikku-storage[testcontainers]*"
            ),
            "*backend 'sqlalchemy-mysql'*set PIKKU_TEST_MYSQL_URL*",
            "*backend 'ghost' is not available (pikku_testing._provider_ghost cannot be imported)*",
        ]
    )


@pytest.mark.usefixtures("ghost_backend")
@pytest.mark.parametrize("how", ["env", "option"])
def test_pikku_test_require_turns_those_skips_into_errors(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    pytester.makepyfile(NEEDS_SERVERS)
    names = "redis,mysql,ghost"
    if how == "env":
        monkeypatch.setenv("PIKKU_TEST_REQUIRE", names)
        result = run(pytester)
    else:
        result = run(pytester, f"--pikku-require={names}")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*required by PIKKU_TEST_REQUIRE/--pikku-require*"])


@pytest.mark.usefixtures("ghost_backend")
def test_requiring_a_backend_requires_its_server_and_nothing_else(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(NEEDS_SERVERS)
    monkeypatch.setenv("PIKKU_TEST_REQUIRE", "sqlalchemy-mysql")
    run(pytester).assert_outcomes(skipped=2, errors=1)


def test_an_unknown_required_name_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIKKU_TEST_REQUIRE", "postgres,oracle")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown name(s) oracle*"])


def test_a_given_url_is_used_and_never_guessed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_urls(pikku_postgres_url, pikku_mysql_url):
            assert pikku_postgres_url == "postgresql://from-option"
            assert pikku_mysql_url == "mysql://from-env"
        """
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIKKU_TEST_MYSQL_URL", "mysql://from-env")
        patch.setenv("PIKKU_TEST_POSTGRES_URL", "postgresql://loses-to-the-option")
        run(pytester, "--pikku-postgres-url=postgresql://from-option").assert_outcomes(passed=1)


# --- the testcontainers path ------------------------------------------------------------------


@pytest.fixture
def fake_engine(tmp_path: Path) -> Iterator[tuple[str, list[bytes]]]:
    """A unix socket answering the next connection with the reply given in the list."""
    path = str(tmp_path / "docker.sock")
    replies: list[bytes] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                connection.recv(1024)
                connection.sendall(replies.pop(0) if replies else b"")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"unix://{path}", replies
    server.close()
    thread.join(timeout=2)


def test_docker_reachability_is_an_http_ping(fake_engine: tuple[str, list[bytes]]) -> None:
    endpoint, replies = fake_engine
    replies.extend([b"HTTP/1.1 200 OK\r\n\r\nOK", b"HTTP/1.1 500 Oops\r\n\r\n", b"garbage"])
    assert docker_reachable(endpoint)
    assert not docker_reachable(endpoint)
    assert not docker_reachable(endpoint)
    assert not docker_reachable("unix:///nonexistent/docker.sock")
    assert not docker_reachable("npipe:////./pipe/docker_engine")
    unused = socket.socket()
    unused.bind(("127.0.0.1", 0))
    port = unused.getsockname()[1]
    unused.close()
    assert not docker_reachable(f"tcp://127.0.0.1:{port}")


def test_containers_are_unavailable_without_docker_or_testcontainers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ContainersUnavailable, match=r"no Docker engine answers at unix:///non"):
        Containers().url("postgres")
    monkeypatch.setattr(_containers, "testcontainers_installed", lambda: False)
    with pytest.raises(ContainersUnavailable) as caught:
        Containers().url("mysql")
    message = str(caught.value)
    assert "testcontainers is not installed" in message
    assert "PIKKU_TEST_MYSQL_URL" in message
    assert "pip install 'pikku-storage[testcontainers]'" in message
    Containers().stop_all()  # nothing started: nothing to stop


def test_an_unreachable_engine_is_checked_once_per_session(
    pytester: pytest.Pytester, fake_engine: tuple[str, list[bytes]]
) -> None:
    """One failed ping per session: later servers skip without asking the engine again."""
    endpoint, replies = fake_engine
    replies.append(b"HTTP/1.1 503 Starting\r\n\r\n")
    pytester.makepyfile(
        """
        def test_postgres(pikku_postgres_url):
            pass

        def test_redis(pikku_redis_url):
            pass
        """
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_HOST", endpoint)
        result = run(pytester, "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines([f"*no Docker engine answers at {endpoint}*"])
    assert replies == []


# --- pytest-asyncio modes, xdist ---------------------------------------------------------------

BOTH_MODES = """
import pytest
from pikku_storage import Channel, Storage

@pytest.mark.asyncio
async def test_async_marked(pikku_storage, pikku_storage_factory):
    await pikku_storage.channels.add_channel(Channel(channel_id="c", channel_name="n"))
    second = await pikku_storage_factory()
    assert (await second.channels.get_channel_and_session("c")).channel_name == "n"

def test_sync_test_gets_an_initialized_storage(pikku_storage):
    assert isinstance(pikku_storage, Storage)
"""


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_fixtures_work_in_strict_and_auto_mode(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(BOTH_MODES)
    run(pytester, mode=mode).assert_outcomes(passed=2)


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_fixtures_follow_a_session_scoped_event_loop(
    pytester: pytest.Pytester, backend: str
) -> None:
    """The fixtures take the loop scope a project configures (pytest-asyncio's ini defaults),
    so a storage is built on the loop its test runs on."""
    pytester.makepyfile(
        BOTH_MODES
        + """
import asyncio

LOOPS = set()

@pytest.mark.parametrize("n", range(2))
async def test_same_loop(pikku_storage, n):
    LOOPS.add(asyncio.get_running_loop())
    await pikku_storage.channels.add_channel(Channel(channel_id="c", channel_name="n"))
    assert len(LOOPS) == 1
"""
    )
    run(
        pytester,
        "-o",
        "asyncio_default_fixture_loop_scope=session",
        "-o",
        "asyncio_default_test_loop_scope=session",
        f"--pikku-backend={backend}",
    ).assert_outcomes(passed=4)


def test_namespace_labels_include_the_xdist_worker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        recording_provider="""
        import pathlib
        from contextlib import asynccontextmanager
        from pikku_storage.memory import InMemoryStore, open_storage
        from pikku_testing.providers import BackendProvider, Namespace

        LOG = pathlib.Path(__file__).with_name("events.log")

        def log(line):
            with LOG.open("a") as f:
                f.write(line + "\\n")

        class RecordingProvider(BackendProvider):
            name = "recording"

            @asynccontextmanager
            async def namespace(self, request):
                log(f"enter {request.worker} {request.label}")
                try:
                    yield Namespace(provider=self, state={"store": InMemoryStore()})
                finally:
                    log(f"exit {request.worker} {request.label}")

            def make_storage(self, namespace, clock, **options):
                storage = open_storage(clock=clock, store=namespace.state["store"], **options)

                async def closed():
                    log("close")

                storage.resources.append(closed)
                return storage

            async def aclose(self):
                log("aclose")
        """,
        conftest="""
        from pikku_testing.providers import PROVIDERS
        PROVIDERS["recording"] = "recording_provider:RecordingProvider"
        """,
        test_recorded="""
        import pytest

        @pytest.mark.parametrize("n", range(6))
        async def test_uses_a_namespace(pikku_storage, pikku_storage_factory, n):
            await pikku_storage_factory(isolated=True)
            assert n != 5, "planted failure"
        """,
    )
    result = pytester.runpytest_subprocess(
        *ASYNC_OPTIONS, "-o", "asyncio_mode=auto", "-n", "2", "--pikku-backend=recording"
    )
    result.assert_outcomes(passed=5, failed=1)
    lines = (pytester.path / "events.log").read_text().splitlines()
    enters = [line.split() for line in lines if line.startswith("enter")]
    exits = [line.split() for line in lines if line.startswith("exit")]
    assert len(enters) == 12  # a namespace and an isolated one per test
    assert {worker for _, worker, _ in enters} == {"gw0", "gw1"}
    assert sorted(enters) == sorted(["enter", *rest] for _, *rest in exits)
    assert len({(worker, label) for _, worker, label in enters}) == 12
    assert lines.count("close") == 12
    assert lines.count("aclose") == 2  # once per worker, at the end of its session


# --- a third-party backend runs the contract in a few lines -----------------------------------

THIRD_PARTY = """
from contextlib import AsyncExitStack

import pytest
import pytest_asyncio

from pikku_storage.memory import InMemoryStore, open_storage
from pikku_testing.contract import Capability, FullContract


class TestMyBackend(FullContract):
    capabilities = frozenset({Capability.PERSISTENT})

    @pytest.fixture
    def store(self):
        return InMemoryStore()

    @pytest_asyncio.fixture
    async def storage(self, store, pikku_clock):
        async with open_storage(store=store, clock=pikku_clock) as storage:
            yield storage

    @pytest_asyncio.fixture
    async def storage_factory(self, store, pikku_clock):
        async with AsyncExitStack() as stack:
            async def factory(*, isolated=False, **options):
                target = InMemoryStore() if isolated else store
                storage = open_storage(store=target, clock=pikku_clock, **options)
                return await stack.enter_async_context(storage)

            yield factory
"""


@pytest.mark.parametrize(
    ("mode", "selection"), [("strict", "channel or deployment"), ("auto", "thread or step")]
)
def test_a_third_party_backend_runs_the_contract_in_a_few_lines(
    pytester: pytest.Pytester, mode: str, selection: str
) -> None:
    pytester.makepyfile(THIRD_PARTY)
    result = run(pytester, "-k", selection, "-q", mode=mode)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 50
    assert "failed" not in outcomes
    assert "errors" not in outcomes


def test_contract_assertions_are_rewritten_to_show_values(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        THIRD_PARTY
        + """
    @pytest_asyncio.fixture
    async def storage(self, store, pikku_clock):
        async with open_storage(store=store, clock=pikku_clock) as storage:
            original = storage.eventhub.get_channel_ids_for_topic

            async def shuffled(topic):
                return list(reversed(await original(topic)))

            storage.eventhub.get_channel_ids_for_topic = shuffled
            yield storage
"""
    )
    result = run(pytester, "-k", "topic", "-q")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1
    result.stdout.fnmatch_lines(["E  *assert * == *"])
