"""The `pikku-storage` command's implementation; `pikku_storage.cli` is its click group."""

from __future__ import annotations

import sys

__all__ = ["entry"]

_CLI_MODULES = frozenset({"click", "rich"})


def entry() -> None:
    """The `pikku-storage` console script: the click group, or without the `cli` extra one
    line saying how to install it (exit status 2)."""
    try:
        from pikku_storage.cli import main
    except ModuleNotFoundError as exc:
        if exc.name not in _CLI_MODULES:
            raise
        print(
            f"pikku-storage: the command needs the cli extra ({exc.name} is not installed): "
            "pip install 'pikku-storage[cli]'",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    main()
