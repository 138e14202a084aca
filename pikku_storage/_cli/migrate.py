"""`pikku-storage migrate URL` and `verify URL`: apply or read a namespace's schema version.

`verify` is read-only: it reads the version the namespace records (PostgreSQL
`<schema>.pikku_migrations`, SQLAlchemy `<prefix>schema_version`, Redis `<prefix>:layout`)
without creating anything, and its exit status says whether the code can use the store:
0 up to date (or in-memory), 3 missing or behind (run `migrate`), 4 written by a newer
pikku-storage (`init()` would raise `SchemaMismatch`). See
docs/concepts.md#lifecycle-and-namespaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import click

from pikku_storage._cli._common import (
    display_url,
    echo_json,
    namespace_of,
    namespace_options,
    run,
)
from pikku_storage.backends import backend_for

__all__ = ["EXIT_AHEAD", "EXIT_BEHIND", "SchemaStatus", "migrate", "read_status", "verify"]

EXIT_BEHIND: Final = 3
EXIT_AHEAD: Final = 4


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """The version a namespace records and the version this code writes."""

    kind: str
    namespace: str
    stored: int | None  # None: nothing recorded (never initialized)
    supported: int | None  # None: the backend keeps no persistent schema (memory)

    def verdict(self) -> tuple[str, int]:
        """A one-line explanation and the `verify` exit status."""
        if self.supported is None:
            return "no persistent schema: the in-memory store lives in one process", 0
        if not self.stored:
            return "not initialized: run `pikku-storage migrate` (or call init())", EXIT_BEHIND
        if self.stored < self.supported:
            return f"behind: migrate applies versions {self.stored + 1}..{self.supported}", (
                EXIT_BEHIND
            )
        if self.stored > self.supported:
            return "written by a newer pikku-storage: upgrade the library", EXIT_AHEAD
        return "up to date", 0

    def as_dict(self) -> dict[str, object]:
        message, code = self.verdict()
        return {
            "backend": self.kind,
            "namespace": self.namespace,
            "stored_version": self.stored,
            "supported_version": self.supported,
            "status": message,
            "exit_code": code,
        }


async def read_status(url: str, options: dict[str, object]) -> SchemaStatus:
    """Read the namespace's recorded version without creating or changing anything (the
    backend's public `schema_version`, against its `LATEST_VERSION`)."""
    backend = backend_for(url)
    kind = backend.kind(url)
    supported = backend.latest_version(url)
    if supported is None:
        return SchemaStatus(kind, "-", None, None)
    stored = await backend.schema_version(url, **backend.namespace_of(url, options))
    return SchemaStatus(kind, backend.describe_namespace(url, options), stored, supported)


def _print(
    url: str, status: SchemaStatus, as_json: bool, before: SchemaStatus | None = None
) -> None:
    if as_json:
        data = status.as_dict()
        if before is not None:
            data["previous_version"] = before.stored
        echo_json(data)
        return
    message, _ = status.verdict()
    version = "-" if status.stored is None else str(status.stored)
    latest = "-" if status.supported is None else str(status.supported)
    click.echo(f"{display_url(url)} ({status.kind}, {status.namespace})")
    click.echo(f"  schema version {version}, this pikku-storage writes {latest}: {message}")


@click.command("migrate")
@click.argument("url")
@namespace_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def migrate(ctx: click.Context, url: str, as_json: bool) -> None:
    """Create or migrate the namespace at URL to this version (what init() does).

    Safe to run while applications run and from several processes at once: migrations are
    numbered and applied under a lock. Fails if the store was written by a newer version.
    """
    options = namespace_of(ctx)

    async def main() -> tuple[SchemaStatus, SchemaStatus]:
        before = await read_status(url, options)
        await backend_for(url).migrate(url, **options)
        return before, await read_status(url, options)

    before, after = run(main())
    if not as_json and after.supported is not None:
        was = "nothing" if before.stored is None else f"version {before.stored}"
        click.echo(f"migrated: {was} → version {after.stored}")
    _print(url, after, as_json, before)


@click.command("verify")
@click.argument("url")
@namespace_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def verify(ctx: click.Context, url: str, as_json: bool) -> None:
    """Read-only: print the namespace's schema version and whether this code can use it.

    Exit status: 0 up to date (or in-memory), 3 not initialized or behind (run migrate),
    4 written by a newer pikku-storage.
    """
    status = run(read_status(url, namespace_of(ctx)))
    _print(url, status, as_json)
    ctx.exit(status.verdict()[1])
