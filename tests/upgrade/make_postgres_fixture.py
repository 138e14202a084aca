"""Write the PostgreSQL upgrade fixture with the library of commit 6c7f177 (schema version 3).

Run from the repository root with the old library first on the path and `pg_dump` installed:

    git archive 6c7f177 pikku_storage | tar -x -C /tmp/old-pg
    PYTHONPATH=/tmp/old-pg:. python tests/upgrade/make_postgres_fixture.py postgresql://...

It fills a throwaway schema through the old public API (runs running with a pending step,
running with a succeeded step, completed with a pending step; a version; threads of two
owners with messages and an agent run), dumps the schema with `pg_dump` (plain SQL, one
`INSERT` per row, no owners, grants or comments) and writes it with the schema name replaced
by `__SCHEMA__`, so the test can load it under any schema. Spec: 05 §5 item 36.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import psycopg
from psycopg import sql

import pikku_storage
from pikku_storage import ManualClock
from pikku_storage.postgres import LATEST_VERSION, open_storage
from tests.upgrade._old import write_scenario

SCHEMA: Final = "pg05_upgrade_fixture"
PLACEHOLDER: Final = "__SCHEMA__"
OUT: Final = Path(__file__).parent / "fixtures" / "postgres" / "version3.sql"


async def _write(url: str) -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    async with open_storage(url, schema=SCHEMA, clock=clock) as storage:
        await write_scenario(storage, clock)


def _dump(url: str) -> str:
    """The schema as plain SQL: comments, blank lines and psql meta-commands (`\\restrict`)
    dropped, so any client can run it as one script."""
    text = subprocess.run(
        [
            "pg_dump",
            "--schema",
            SCHEMA,
            "--no-owner",
            "--no-privileges",
            "--no-comments",
            "--inserts",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = [line for line in text.splitlines() if line and not line.startswith(("--", "\\"))]
    return "\n".join(lines).replace(SCHEMA, PLACEHOLDER) + "\n"


async def _drop(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA))
        )


async def main(url: str) -> None:
    if LATEST_VERSION != 3:
        sys.exit(f"run with the library of 6c7f177 first on PYTHONPATH ({pikku_storage.__file__})")
    await _drop(url)
    try:
        await _write(url)
        dump = _dump(url)
    finally:
        await _drop(url)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(dump, encoding="utf-8")
    print(f"wrote {dump.count(chr(10))} lines to {OUT}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
