"""The Alembic path of docs/operations.md in a scratch project (issue 13 item 3): autogenerate
over `make_tables`, upgrade, and `init()` then sees the schema as current (`verify` exits 0),
on SQLite and on PostgreSQL through the SQLAlchemy backend."""

from __future__ import annotations

import asyncio
import importlib.util
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("alembic")
if importlib.util.find_spec("pikku_storage.sqlite") is None:
    pytest.skip("the sqlalchemy extra is not installed", allow_module_level=True)

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, func, select

from pikku_storage import open_storage
from pikku_storage.cli import main
from pikku_storage.sqlalchemy import LATEST_VERSION, make_tables

ENV_PY = """
from alembic import context
from sqlalchemy import create_engine

from pikku_storage.sqlalchemy import make_tables
from pikku_storage.sqlalchemy.alembic import render_item

URL = {url!r}
SCHEMA = {schema!r}  # None: the connection's default schema
target_metadata = make_tables(schema=SCHEMA)


def include_name(name, type_, parent_names):
    return name == SCHEMA if type_ == "schema" else True  # look at our schema only


with create_engine(URL).connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_item=render_item,
        include_schemas=SCHEMA is not None,
        include_name=include_name,
        version_table_schema=SCHEMA,
    )
    with context.begin_transaction():
        context.run_migrations()
"""

STAMP = """
    from pikku_storage.sqlalchemy.alembic import stamp

    stamp(op.get_bind(), schema={schema!r})
"""


@dataclass(frozen=True, slots=True)
class Target:
    sync_url: str  # what Alembic connects with
    url: str  # what pikku-storage opens
    schema: str | None


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "sqlite":
        path = tmp_path / "app.db"
        yield Target(f"sqlite:///{path}", f"sqlite:///{path}", None)
        return
    psycopg = pytest.importorskip("psycopg")
    server = request.getfixturevalue("pikku_postgres_url").split("://", 1)[1]
    schema = f"ux_alembic_{secrets.token_hex(4)}"
    url = f"postgresql+psycopg://{server}"
    with psycopg.connect(f"postgresql://{server}", autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')  # Alembic creates tables, not schemas
    yield Target(url, url, schema)
    with psycopg.connect(f"postgresql://{server}", autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _project(tmp_path: Path, target: Target) -> Config:
    config = Config(str(tmp_path / "alembic.ini"))
    config.set_main_option("script_location", str(tmp_path / "migrations"))
    command.init(config, str(tmp_path / "migrations"))
    (tmp_path / "migrations" / "env.py").write_text(
        ENV_PY.format(url=target.sync_url, schema=target.schema)
    )
    return config


def _autogenerate(config: Config, tmp_path: Path, target: Target) -> str:
    command.revision(config, message="pikku tables", autogenerate=True)
    (script,) = (tmp_path / "migrations" / "versions").glob("*.py")
    text = script.read_text()
    end = "    # ### end Alembic commands ###\n"
    # The documented step: the migration creating the tables ends by stamping them.
    text = text.replace(end, end + STAMP.format(schema=target.schema), 1)
    script.write_text(text)
    return text


async def _init_and_use(target: Target) -> None:
    options = {} if target.schema is None else {"schema": target.schema}
    async with open_storage(target.url, **options) as storage:
        run_id = await storage.workflows.create_run("checkout", {"cart": 1})
        assert (await storage.workflow_runs.get_run(run_id)) is not None


def test_alembic_round_trip_leaves_a_store_init_sees_as_current(
    target: Target, tmp_path: Path
) -> None:
    config = _project(tmp_path, target)
    migration = _autogenerate(config, tmp_path, target)
    assert "from pikku_storage.sqlalchemy import types as pikku_types" in migration
    assert "pikku_types.UuidText()" in migration
    assert "_types" not in migration.replace("pikku_types", "")
    assert migration.count("op.create_table(") == len(make_tables().tables)

    command.upgrade(config, "head")

    options = [] if target.schema is None else ["--schema", target.schema]
    verified = CliRunner().invoke(main, ["verify", target.url, "--json", *options])
    assert verified.exit_code == 0, verified.output
    asyncio.run(_init_and_use(target))  # init() finds the schema current: no DuplicateTable

    metadata = make_tables(schema=target.schema)
    version_table = next(t for t in metadata.tables.values() if t.name.endswith("schema_version"))
    engine = create_engine(target.sync_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.max(version_table.c.version))).scalar() == (
                LATEST_VERSION
            )
            context = MigrationContext.configure(
                conn,
                opts={
                    "include_schemas": target.schema is not None,
                    "include_name": lambda name, type_, parents: (
                        name == target.schema if type_ == "schema" else True
                    ),
                    "version_table_schema": target.schema,
                },
            )
            diff = [
                d for d in compare_metadata(context, metadata) if "alembic_version" not in str(d)
            ]
        assert diff == []  # what Alembic made is what the code expects
    finally:
        engine.dispose()
