"""Throwaway namespaces on a live URL for `check`, and their removal afterwards.

Each namespace is the backend's scratch namespace (`pikku_storage.backends`): a fresh
PostgreSQL schema, Redis key prefix, SQLAlchemy table prefix, SQLite temp file or in-memory
store, named `pkc_<token>_<n>` so that the final sweep removes exactly what this run created
and nothing of any sibling namespace (see docs/concepts.md#lifecycle-and-namespaces).
"""

from __future__ import annotations

import itertools
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pikku_storage._cli._common import display_url
from pikku_storage.backends import Backend, backend_for
from pikku_storage.storage import Storage, open_storage

__all__ = ["NamespaceSpec", "Target", "sweep"]

_PLURAL: Final = {
    "schema": "schemas",
    "key_prefix": "key prefixes",
    "table_prefix": "table prefixes",
}


@dataclass(frozen=True, slots=True)
class NamespaceSpec:
    """One namespace: the URL and the options selecting it (plus an in-process store)."""

    name: str
    url: str
    options: dict[str, object]
    portable: bool  # another OS process can open (url, options)


@dataclass(slots=True)
class Target:
    """A live URL and the namespaces made on it during one command."""

    url: str
    kind: str = ""
    token: str = field(default_factory=lambda: secrets.token_hex(3))
    tmpdir: Path | None = None
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    made: list[NamespaceSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.kind = backend_for(self.url).kind(self.url)

    @property
    def backend(self) -> Backend:
        """The registry's descriptor of the URL's backend."""
        return backend_for(self.url)

    @property
    def prefix(self) -> str:
        """The start of every namespace name of this run."""
        return f"pkc_{self.token}_"

    def _dir(self) -> Path:
        if self.tmpdir is None:
            self.tmpdir = Path(tempfile.mkdtemp(prefix=f"pikku-{self.token}-"))
        return self.tmpdir

    def new_namespace(self) -> NamespaceSpec:
        """A fresh, empty namespace on the target."""
        name = f"{self.prefix}{next(self.counter)}"
        url, options = self.backend.scratch_namespace(self.url, name, self._dir)
        spec = NamespaceSpec(
            name=name, url=url, options=options, portable=not self.backend.in_process
        )
        self.made.append(spec)
        return spec

    def open(self, spec: NamespaceSpec, **options: object) -> Storage:
        """A new (not yet initialized) `Storage` on `spec`; `options` go to `open_storage`."""
        return open_storage(spec.url, **{**spec.options, **options})

    async def cleanup(self) -> list[str]:
        """Remove every namespace this run made (also ones a crash left); what was removed."""
        try:
            return await sweep(self.url, self.prefix)
        finally:
            if self.tmpdir is not None:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
                self.tmpdir = None

    def describe(self) -> str:
        """Where the namespaces live, for the report."""
        if self.backend.in_process:
            what = "a fresh in-memory store per test"
        elif self.kind.endswith("sqlite"):
            what = "a temporary SQLite file per test"
        else:
            option = next(iter(self.backend.scratch_namespace(self.url, "x", self._dir)[1]))
            what = f"fresh {_PLURAL.get(option, option)} {self.prefix}*"
        return f"{display_url(self.url)} ({self.kind}): {what}"


async def sweep(url: str, marker: str) -> list[str]:
    """Drop every namespace on `url` whose name contains `marker` (the registry's
    `drop_matching`): `marker` holds a random token, so only what this run made can match.
    SQLite files and in-memory stores need no sweep (their directory is removed by the caller).
    """
    return await backend_for(url).drop_matching(url, marker)
