"""Helpers every `pikku-storage` command shares: async entry, URLs, durations, JSON, tables."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import os
import re
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar
from urllib.parse import urlsplit, urlunsplit

import click
from rich.console import Console

from pikku_storage.backends import backend_for
from pikku_storage.errors import InvalidValue
from pikku_storage.storage import Storage, open_storage

__all__ = [
    "DURATION",
    "backend_kind",
    "console",
    "cutoff",
    "display_url",
    "echo_json",
    "fmt_clock",
    "fmt_seconds",
    "fmt_time",
    "namespace_of",
    "namespace_options",
    "parse_duration",
    "run",
    "short_id",
    "storage_factory",
    "to_jsonable",
]

T = TypeVar("T")

_DURATION_RE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def run(coro: Coroutine[object, object, T]) -> T:
    """Run one command's coroutine on a fresh event loop."""
    return asyncio.run(coro)


def console() -> Console:
    """A rich console on the current stdout (looked up per call, so test runners capture it)."""
    out = Console(highlight=False, soft_wrap=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = 120  # piped or captured output: wide enough for ids and timestamps
    return out


def display_url(url: str) -> str:
    """The URL with any password replaced by `***`, safe to print or log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def backend_kind(url: str) -> str:
    """Which backend family a URL selects: memory, sqlite, postgres, redis or sqlalchemy-<dialect>.

    The registry's answer (`pikku_storage.backends`); an unknown scheme is `InvalidValue`.
    """
    return backend_for(url).kind(url)


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `2h`, `7d`, `1w` or `250ms` as a timedelta; `InvalidValue` otherwise."""
    match = _DURATION_RE.match(text)
    if match is None:
        raise InvalidValue(f"not a duration: {text!r} (use e.g. 30s, 15m, 2h, 7d)")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


class _Duration(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click
    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except InvalidValue as exc:
            self.fail(str(exc), param, ctx)


DURATION: Final = _Duration()


def cutoff(older_than: timedelta) -> datetime:
    """Now minus `older_than`, aware UTC: the cutoff of the prune commands."""
    return datetime.now(UTC) - older_than


def fmt_time(when: datetime | None) -> str:
    """A timestamp as `YYYY-MM-DD HH:MM:SS.mmm` UTC for tables; `-` for none."""
    if when is None:
        return "-"
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def fmt_clock(when: datetime | None) -> str:
    """The time of day `HH:MM:SS.mmm` UTC, for columns next to a full timestamp; `-` for none."""
    return fmt_time(when)[11:] if when is not None else "-"


def fmt_seconds(when: datetime | None) -> str:
    """A timestamp as `YYYY-MM-DD HH:MM:SS` UTC for wide tables; `-` for none."""
    return fmt_time(when)[:19]


def short_id(value: str, width: int = 8) -> str:
    """The first `width` characters of a long id, for narrow tables."""
    return value if len(value) <= width else value[:width] + "…"


def to_jsonable(value: object) -> object:
    """Records, enums and datetimes as plain JSON data (ISO 8601 UTC for timestamps).

    An approval record also gets its `type` (`tool-call` or `agent-call`), which lives on
    the class, so the JSON says which kind it is.
    """
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, object] = {}
        kind = getattr(type(value), "TYPE", None)
        if isinstance(kind, str):
            out["type"] = kind
        for f in dataclasses.fields(value):
            out[f.name] = to_jsonable(getattr(value, f.name))
        return out
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value


def echo_json(value: object) -> None:
    """Print `value` as indented JSON on stdout."""
    click.echo(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False))


def storage_factory(url: str, **options: object) -> Callable[[], Storage]:
    """A function building `Storage` objects that all see one namespace of `url`.

    For `memory://` every call would otherwise get an empty store, so the function shares
    one `InMemoryStore`; other backends share through their server or file.
    """
    if backend_for(url).in_process:
        from pikku_storage.memory import InMemoryStore

        store = InMemoryStore()
        return lambda: open_storage(url, store=store, **options)
    return lambda: open_storage(url, **options)


F = TypeVar("F", bound=Callable[..., object])


def namespace_options(command: F) -> F:
    """Add `--schema`, `--key-prefix` and `--table-prefix`, collected into `namespace: dict`.

    Only the options given are passed to `open_storage` (PostgreSQL and SQLAlchemy take
    `schema`, Redis `key_prefix`, SQLAlchemy `table_prefix`; See
    docs/concepts.md#lifecycle-and-namespaces).
    """

    def collect(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is not None and param.name is not None:
            ctx.meta.setdefault("pikku_namespace", {})[param.name] = value
        return value

    for name, text in (
        ("--table-prefix", "SQLAlchemy table prefix."),
        ("--key-prefix", "Redis key prefix (default pikku)."),
        ("--schema", "PostgreSQL/SQLAlchemy schema (default pikku on PostgreSQL)."),
    ):
        command = click.option(name, callback=collect, expose_value=False, help=text)(command)
    return command


def namespace_of(ctx: click.Context) -> dict[str, object]:
    """The namespace options given on the command line."""
    return dict(ctx.meta.get("pikku_namespace", {}))
