"""A throwaway namespace per benchmark run, made and dropped through the backend registry."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pikku_storage import Storage, open_storage
from pikku_storage.backends import backend_for

__all__ = ["Namespace"]


@dataclass(slots=True)
class Namespace:
    """`url` and the options selecting a fresh namespace on it (schema, prefix, temp file)."""

    base_url: str
    name: str = field(default_factory=lambda: f"pkb_{secrets.token_hex(4)}")
    url: str = ""
    options: dict[str, object] = field(default_factory=dict)
    kind: str = ""
    _tmpdir: Path | None = None

    def __post_init__(self) -> None:
        backend = backend_for(self.base_url)
        self.kind = backend.kind(self.base_url)
        self.url, self.options = backend.scratch_namespace(self.base_url, self.name, self._dir)

    def _dir(self) -> Path:
        if self._tmpdir is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        return self._tmpdir

    @property
    def portable(self) -> bool:
        """Another OS process can open `(url, options)` (not an in-process store)."""
        return not backend_for(self.base_url).in_process

    def open(self, **options: object) -> Storage:
        """A new (not yet initialized) `Storage` on the namespace."""
        return open_storage(self.url, **{**self.options, **options})

    def option(self, name: str) -> str:
        """One namespace option as text (`schema`, `key_prefix`, `table_prefix`)."""
        return str(self.options[name])

    @property
    def sqlite_path(self) -> str:
        """The database file of a SQLite namespace."""
        return self.url.split(":///", 1)[1]

    async def drop(self) -> None:
        """Remove the namespace and everything in it."""
        try:
            backend = backend_for(self.base_url)
            if not backend.in_process and not self.kind.endswith("sqlite"):
                await backend.drop_matching(self.base_url, self.name)
        finally:
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
