"""Opening a store for an inspection command: only when it exists at this code's version,
so that reading never creates or migrates, and confirming deletions."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from pikku_storage._cli._common import display_url, namespace_of, run
from pikku_storage._cli._env import EXIT_USAGE
from pikku_storage._cli.migrate import EXIT_AHEAD, EXIT_BEHIND, SchemaStatus, read_status
from pikku_storage.storage import Storage, open_storage

__all__ = ["NewerSchema", "NotReady", "Refused", "confirm", "not_ready", "with_storage"]

T = TypeVar("T")

_FLAGS = {"schema": "--schema", "key_prefix": "--key-prefix", "table_prefix": "--table-prefix"}


class NotReady(click.ClickException):
    """The namespace is missing or behind this code: run `migrate` (exit status 3)."""

    exit_code = EXIT_BEHIND


class NewerSchema(NotReady):
    """The namespace was written by a newer pikku-storage (exit status 4)."""

    exit_code = EXIT_AHEAD


def not_ready(url: str, options: dict[str, object], status: SchemaStatus) -> NotReady:
    """The error saying what is missing at `url` and the command that fixes it."""
    verdict, _ = status.verdict()
    where = f"{display_url(url)} ({status.kind}, {status.namespace})"
    if status.stored and status.supported and status.stored > status.supported:
        return NewerSchema(f"{where}: {verdict}; nothing was read or changed")
    if not status.stored:
        missing = _missing_file(url, status.kind)
        found = f"no file {missing}" if missing else "no pikku-storage schema there"
    else:
        found = f"schema version {status.stored}, this pikku-storage needs {status.supported}"
    flags = "".join(f" {_FLAGS[key]} {value}" for key, value in options.items())
    return NotReady(
        f"{where}: {found}; nothing was created or changed. If this is the right store, "
        f"create or migrate it with: pikku-storage migrate {display_url(url)}{flags}"
    )


def _missing_file(url: str, kind: str) -> str | None:
    if kind not in ("sqlite", "sqlalchemy-sqlite"):
        return None
    from sqlalchemy.engine import make_url  # the sqlite kinds have SQLAlchemy installed

    database = make_url(url).database
    if not database or database == ":memory:" or Path(database).exists():
        return None
    return database


def with_storage(url: str, body: Callable[[Storage], Awaitable[T]], **options: object) -> T:
    """Run `body` on the store at `url` (and the command line's namespace), after checking
    read-only that it exists at this code's schema version: `NotReady` otherwise."""
    namespace = namespace_of(click.get_current_context())

    async def main() -> T:
        status = await read_status(url, namespace)
        if status.verdict()[1] != 0:
            raise not_ready(url, namespace, status)
        async with open_storage(url, **namespace, **options) as storage:
            return await body(storage)

    return run(main())


class Refused(click.ClickException):
    """A deletion asked for without `--yes` where nobody can answer (exit status 2)."""

    exit_code = EXIT_USAGE


def confirm(question: str, yes: bool) -> None:
    """Ask `question` on a terminal unless `--yes`; without a terminal refuse (exit 2)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise Refused(
            "refusing to delete without confirmation: pass --yes (or --dry-run to preview)"
        )
    click.confirm(question, abort=True)
