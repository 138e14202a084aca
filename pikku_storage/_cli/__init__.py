"""The `pikku-storage` command's implementation; `pikku_storage.cli` is its click group."""

from __future__ import annotations

__all__: list[str] = []
