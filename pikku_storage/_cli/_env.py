"""`PIKKU_STORAGE_URL`, the default URL of every command, and the exit statuses they share."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Final

import click

__all__ = [
    "EXIT_NOT_FOUND",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "URL_ENV",
    "UrlDefaultGroup",
    "with_default_url",
]

URL_ENV: Final = "PIKKU_STORAGE_URL"
EXIT_NOT_FOUND: Final = 1  # also any other error
EXIT_USAGE: Final = 2  # click's own usage errors, a refused confirmation, no [cli] extra
EXIT_UNAVAILABLE: Final = 5  # the server or file could not be reached
# 3 and 4 are `verify`'s: not initialized or behind (run migrate), written by a newer version.


def with_default_url(command: click.Command, args: Sequence[str]) -> list[str]:
    """`args` with `$PIKKU_STORAGE_URL` put first when the command takes a URL and none of the
    arguments is one (a URL is the only argument containing `://`)."""
    url = os.environ.get(URL_ENV, "")
    takes_url = any(isinstance(p, click.Argument) and p.name == "url" for p in command.params)
    if not url or not takes_url or isinstance(command, click.Group):
        return list(args)
    if any("://" in arg for arg in args):
        return list(args)
    return [url, *args]


class UrlDefaultGroup(click.Group):
    """A group whose commands' URL argument defaults to `$PIKKU_STORAGE_URL`."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if command is None:
            return name, command, rest
        return name, command, with_default_url(command, rest)
