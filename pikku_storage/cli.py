"""The `pikku-storage` command: demo, migrate/verify, check and inspection.

Needs the `cli` extra (`pip install 'pikku-storage[cli]'`: click and rich); `check` also
needs `testing`. Every command has `--help`; a failure prints one line and exits non-zero
(`--debug` or `PIKKU_STORAGE_DEBUG=1` shows the traceback instead).
"""

from __future__ import annotations

import os
from typing import Any

import click

from pikku_storage import __version__
from pikku_storage._cli._env import EXIT_UNAVAILABLE, UrlDefaultGroup
from pikku_storage._cli.check import check
from pikku_storage._cli.console import console_command
from pikku_storage._cli.demo import demo
from pikku_storage._cli.inspect import channels, deployments, runs, threads
from pikku_storage._cli.migrate import migrate, verify
from pikku_storage.errors import StorageUnavailable

__all__ = ["main"]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    name = type(exc).__name__
    if isinstance(exc, ExceptionGroup) and exc.exceptions:
        return _one_line(exc.exceptions[0])
    return f"{name}: {first}" if first else name


def _cause(exc: BaseException) -> BaseException:
    if isinstance(exc, ExceptionGroup) and exc.exceptions:
        return _cause(exc.exceptions[0])
    return exc


class _Unavailable(click.ClickException):
    exit_code = EXIT_UNAVAILABLE


class _Group(UrlDefaultGroup):
    """Turns any exception a command raises into one `Error: …` line and exit status 1 (5 when
    the storage is unavailable)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if ctx.meta.get("pikku_debug"):
                raise
            if isinstance(_cause(exc), StorageUnavailable):
                raise _Unavailable(_one_line(exc)) from exc
            raise click.ClickException(_one_line(exc)) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pikku-storage")
@click.option(
    "--debug",
    is_flag=True,
    default=lambda: os.environ.get("PIKKU_STORAGE_DEBUG", "") not in ("", "0"),
    help="Show tracebacks instead of one-line errors (or PIKKU_STORAGE_DEBUG=1).",
)
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Durable storage for Pikku: try it, migrate it, check it, inspect it, measure it.

    URLs: memory://, sqlite:///path/file.db, postgresql://user@host/db, redis://host:6379/0,
    or an SQLAlchemy async URL with a driver (mysql+aiomysql://…, postgresql+psycopg://…).
    A command given no URL uses $PIKKU_STORAGE_URL.

    \b
    Exit status:
      0  success
      1  not found (a run or thread id), or another error
      2  usage error, or a deletion refused without --yes
      3  the store is not initialized or behind: run `pikku-storage migrate URL`
      4  the store was written by a newer pikku-storage: upgrade it
      5  the storage is unavailable (server down, unreachable, or refused the connection)
    """
    ctx.meta["pikku_debug"] = debug


for _command in (demo, migrate, verify, check, runs, threads, channels, deployments):
    main.add_command(_command)
main.add_command(console_command)
