"""Imports stay light and missing drivers are reported as what to install (style §3, 00 §5)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from pikku_storage import InvalidValue, open_storage

DRIVERS = ("psycopg", "psycopg_pool", "redis", "fakeredis", "sqlalchemy", "aiosqlite", "aiomysql")

# Run in a fresh interpreter: makes every import of a blocked top-level module fail.
BLOCKER = """
import importlib.abc, sys

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Blocker())
"""


def python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize(
    "modules",
    ["pikku_storage", "pikku_storage.memory", "pikku_testing, pikku_testing.plugin"],
)
def test_importing_the_packages_loads_no_database_driver(modules: str) -> None:
    loaded = python(
        f"""
        import sys
        import {modules}
        print(",".join(sorted(m for m in {DRIVERS!r} if m in sys.modules)))
        """
    )
    assert loaded == ""


def test_an_unknown_scheme_raises_invalid_value() -> None:
    with pytest.raises(InvalidValue, match="unknown storage URL scheme 'bogus'"):
        open_storage("bogus://")


@pytest.mark.parametrize(
    ("blocked", "url", "extra"),
    [
        ("psycopg,psycopg_pool", "postgresql://u@127.0.0.1/db", "postgres"),
        ("redis", "redis://127.0.0.1:6379/0", "redis"),
        ("sqlalchemy", "sqlite:///tmp/x.db", "sqlalchemy"),
        ("aiosqlite", "sqlite+aiosqlite:///tmp/x.db", "sqlalchemy"),
        ("sqlalchemy", "postgresql+psycopg://u@127.0.0.1/db", "sqlalchemy"),
        ("psycopg", "postgresql+psycopg://u@127.0.0.1/db", "postgres"),
        ("aiomysql", "mysql+aiomysql://u@127.0.0.1/db", "mysql"),
    ],
    ids=[
        "postgres",
        "redis",
        "sqlite-sqlalchemy",
        "sqlite-aiosqlite",
        "sqlalchemy",
        "sqlalchemy-psycopg",
        "sqlalchemy-aiomysql",
    ],
)
def test_a_missing_driver_raises_invalid_value_saying_what_to_install(
    blocked: str, url: str, extra: str
) -> None:
    output = python(
        f"""
        BLOCKED = set({blocked!r}.split(","))
        {textwrap.indent(BLOCKER, " " * 8).strip()}
        from pikku_storage import InvalidValue, open_storage
        try:
            open_storage({url!r})
        except InvalidValue as exc:
            print("InvalidValue:", exc)
        """
    )
    assert output.startswith("InvalidValue: ")
    assert f"pip install 'pikku-storage[{extra}]'" in output
    assert "is missing" in output


def test_the_sqlite_preset_needs_no_aiosqlite() -> None:
    """The embedded default runs on the stdlib driver in worker threads (issue 10); aiosqlite
    is only for explicit `sqlite+aiosqlite://` URLs and engines of the SQLAlchemy backend."""
    output = python(
        f"""
        BLOCKED = {{"aiosqlite"}}
        {textwrap.indent(BLOCKER, " " * 8).strip()}
        import asyncio
        from pikku_storage import open_storage

        async def main():
            async with open_storage("sqlite://:memory:") as storage:
                run_id = await storage.workflows.create_run("wf", None)
                print("ok", (await storage.workflows.get_run(run_id)).id == run_id)

        asyncio.run(main())
        """
    )
    assert output.strip() == "ok True"
