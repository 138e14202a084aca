"""The backend registry: one table of URL schemes for every entry point, and a missing extra
named correctly by the plugin and by `check` (issue 12; issue 13 item 4)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from pikku_storage import InvalidValue, open_storage
from pikku_storage._cli._common import backend_kind
from pikku_storage._cli.check import provider_name
from pikku_storage.backends import BACKENDS, TEST_BACKENDS, backend_for, check_target
from pikku_storage.cli import main
from pikku_testing.plugin import BACKEND_EXTRAS, BACKEND_SERVERS
from pikku_testing.providers import PROVIDERS, get_provider
from tests.test_imports import BLOCKER

ACCEPTED = {
    "memory://": "memory",
    "sqlite:///{tmp}/a.db": "sqlite",
    "sqlite+aiosqlite:///{tmp}/a.db": "sqlalchemy-sqlite",
    "postgresql://u@127.0.0.1:1/db": "postgres",
    "postgres://u@127.0.0.1:1/db": "postgres",
    "postgresql+psycopg://u@127.0.0.1:1/db": "sqlalchemy-postgres",
    "mysql+aiomysql://u@127.0.0.1:1/db": "sqlalchemy-mysql",
    "redis://127.0.0.1:1/0": "redis",
    "rediss://127.0.0.1:1/0": "redis",
    "unix:///tmp/pikku-no-such.sock": "redis",
}
REFUSED = ["mysql://u@127.0.0.1:1/db", "mariadb://u@h/db", "ftp://x", "bogus://", ""]


@pytest.mark.parametrize(("url", "kind"), ACCEPTED.items(), ids=list(ACCEPTED.values()))
def test_every_entry_point_accepts_a_url_the_registry_takes(
    url: str, kind: str, tmp_path: Path
) -> None:
    """open_storage, the CLI's kind and check's test backend agree on every accepted URL."""
    url = url.format(tmp=tmp_path)
    assert backend_kind(url) == kind
    assert open_storage(url).workflows is not None
    assert provider_name(url) in PROVIDERS
    assert not (tmp_path / "a.db").exists()


@pytest.mark.parametrize("url", REFUSED)
def test_every_entry_point_refuses_a_url_the_registry_does_not_take(url: str) -> None:
    """One message everywhere; a plain `mysql://` names the SQLAlchemy URL to use."""
    for call in (open_storage, backend_kind, provider_name):
        with pytest.raises(InvalidValue, match="unknown storage URL scheme") as caught:
            call(url)
        if url.startswith(("mysql", "mariadb")):
            assert "mysql+aiomysql://" in str(caught.value)
    result = CliRunner().invoke(main, ["runs", "list", url or "nope"])
    assert result.exit_code == 1
    assert "unknown storage URL scheme" in result.output


def test_the_redis_services_take_the_schemes_open_storage_takes() -> None:
    from pikku_storage.redis import RedisWorkflowService

    for scheme in backend_for("redis://").schemes:
        RedisWorkflowService(f"{scheme}://127.0.0.1:1/0")  # no I/O, no refusal
    with pytest.raises(InvalidValue, match="redis://"):
        RedisWorkflowService("http://127.0.0.1:1/0")


def test_the_plugin_tables_come_from_the_registry() -> None:
    """Each pytest backend is declared once, by its backend's descriptor."""
    declared = [test.name for backend in BACKENDS for test in backend.test_backends]
    assert list(PROVIDERS) == declared == list(TEST_BACKENDS)
    assert {name: test.extra for name, test in TEST_BACKENDS.items()} == BACKEND_EXTRAS
    for name, test in TEST_BACKENDS.items():
        assert BACKEND_SERVERS.get(name) == test.server
        provider = get_provider(name)
        assert provider.name == name
        assert provider.server == test.server


def test_check_runs_an_sqlite_file_url_on_temporary_files() -> None:
    assert check_target("sqlite+aiosqlite:///app.db").name == "sqlite"
    assert check_target("sqlite:///app.db").name == "sqlite"


def test_check_runs_a_cluster_url_on_the_cluster_backend() -> None:
    """A `redis+cluster://` URL is checked with the cluster's test backend (its cluster-only
    layout tests), a plain one with the standalone backend."""
    assert check_target("redis+cluster://127.0.0.1:7000/0").name == "redis-cluster"
    assert check_target("REDISS+CLUSTER://127.0.0.1:7000/0").name == "redis-cluster"
    assert check_target("redis://127.0.0.1:6379/0").name == "redis"
    assert backend_for("redis+cluster://127.0.0.1:7000/0").name == "redis"


# --- a missing extra (issue 13 item 4) ------------------------------------------------------

SAMPLE = """
import pytest

@pytest.mark.pikku_backend("{backend}")
async def test_uses_storage(pikku_storage):
    run_id = await pikku_storage.workflows.create_run("wf", {{"n": 1}})
    assert (await pikku_storage.workflow_runs.get_run(run_id)) is not None
"""


def _blocking_conftest(pytester: pytest.Pytester, blocked: str) -> None:
    pytester.makeconftest(f"BLOCKED = set({blocked!r}.split(','))\n{BLOCKER}")


def _inner_environment(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name in list(os.environ):
        if name.startswith("PIKKU_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/pikku-test-docker.sock")
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def _run_inner(pytester: pytest.Pytester, backend: str) -> pytest.RunResult:
    pytester.makepyfile(test_sample=SAMPLE.format(backend=backend))
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:xdist", "-rsE",
        "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
    )  # fmt: skip


def test_the_redis_test_backend_runs_on_a_server_without_fakeredis(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, pikku_redis_url: str
) -> None:
    _inner_environment(monkeypatch, PIKKU_TEST_REDIS_URL=pikku_redis_url)
    _blocking_conftest(pytester, "fakeredis,lupa")
    result = _run_inner(pytester, "redis")
    result.assert_outcomes(passed=1)


def test_the_fakeredis_test_backend_skips_naming_the_fakeredis_extra(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _inner_environment(monkeypatch)
    _blocking_conftest(pytester, "fakeredis")
    result = _run_inner(pytester, "fakeredis")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*fakeredis cannot be imported*pikku-storage[[]fakeredis[]]*"])


@pytest.mark.parametrize("required", [False, True], ids=["skips", "fails-when-required"])
def test_a_mysql_test_backend_without_aiomysql_names_the_mysql_extra(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, required: bool
) -> None:
    env = {"PIKKU_TEST_MYSQL_URL": "mysql://root@127.0.0.1:1/test"}
    if required:
        env["PIKKU_TEST_REQUIRE"] = "mysql"
    _inner_environment(monkeypatch, **env)
    _blocking_conftest(pytester, "aiomysql")
    result = _run_inner(pytester, "sqlalchemy-mysql")
    result.assert_outcomes(**({"errors": 1} if required else {"skipped": 1}))
    result.stdout.fnmatch_lines(["*aiomysql cannot be imported*pikku-storage[[]mysql[]]*"])
    assert "ModuleNotFoundError" not in result.stdout.str()


def _cli(blocked: str, *args: str) -> subprocess.CompletedProcess[str]:
    code = f"""
        BLOCKED = set({blocked!r}.split(","))
        {textwrap.indent(BLOCKER, " " * 8).strip()}
        sys.argv = ["pikku-storage", *{list(args)!r}]
        from pikku_storage._cli import entry
        entry()
        """
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_check_on_a_redis_server_runs_without_fakeredis(pikku_redis_url: str) -> None:
    done = _cli("fakeredis,lupa", "check", pikku_redis_url, "-k", "subscribe", "--json")
    assert done.returncode == 0, done.stderr + done.stdout
    assert '"failed": 0' in done.stdout


def test_check_on_mysql_without_aiomysql_says_to_install_the_mysql_extra() -> None:
    done = _cli("aiomysql", "check", "mysql+aiomysql://root@127.0.0.1:1/test")
    assert done.returncode == 1
    assert "pip install 'pikku-storage[mysql]'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("url", "flag"),
    [
        ("postgresql://u@127.0.0.1:1/db", "--key-prefix"),
        ("redis://127.0.0.1:1/0", "--schema"),
        ("sqlite:///{tmp}/a.db", "--schema"),
    ],
)
def test_a_namespace_option_the_backend_lacks_is_refused_before_connecting(
    url: str, flag: str, tmp_path: Path
) -> None:
    """The registry names each backend's namespace options; the CLI never ignores one."""
    for command in ("verify", "migrate"):
        result = CliRunner().invoke(main, [command, url.format(tmp=tmp_path), flag, "x"])
        assert result.exit_code == 1, result.output
        assert "has no namespace option" in result.output
    assert not (tmp_path / "a.db").exists()
