"""`pikku-storage console`: serve the web console over a store (needs the `console` extra)."""

from __future__ import annotations

import ipaddress
from contextlib import AsyncExitStack
from typing import Final

import click

from pikku_storage._cli._common import (
    backend_kind,
    display_url,
    namespace_of,
    namespace_options,
    run,
)
from pikku_storage._cli._store import not_ready
from pikku_storage._cli.migrate import read_status
from pikku_storage.storage import Storage, open_storage

__all__ = ["TOKEN_ENV", "console_command", "is_loopback"]

TOKEN_ENV: Final = "PIKKU_CONSOLE_TOKEN"
STALE_WINDOW: Final = 3600.0  # deployments silent for up to an hour are listed (as stale)
_CONSOLE_MODULES: Final = frozenset({"starlette", "jinja2", "uvicorn"})


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _loopback_hosts(host: str, port: int) -> list[str]:
    names = ["127.0.0.1", "localhost", "[::1]", host]
    return names + [f"{name}:{port}" for name in names]


async def _serve(
    url: str,
    *,
    host: str,
    port: int,
    demo: bool,
    token: str | None,
    allow_actions: bool,
    live_ttl: float,
    refresh: int,
    namespace: dict[str, object],
) -> None:
    import uvicorn

    from pikku_storage.console import create_app
    from pikku_storage.console._demo import fill_demo

    options = dict(namespace)
    if backend_kind(url) == "memory":
        from pikku_storage.memory import InMemoryStore

        options["store"] = InMemoryStore()  # one store for the console and the demo's writers

    def opener(**more: object) -> Storage:
        return open_storage(url, **options, **more)

    async with AsyncExitStack() as stack:
        if demo:
            await fill_demo(opener, stack)
        else:
            status = await read_status(url, namespace)
            if status.verdict()[1] != 0:
                raise not_ready(url, namespace, status)
        storage = await stack.enter_async_context(
            opener(heartbeat_ttl=STALE_WINDOW, heartbeat_interval=STALE_WINDOW / 3)
        )
        app = create_app(
            storage,
            token=token,
            allow_actions=allow_actions,
            allowed_hosts=None if token else _loopback_hosts(host, port),
            live_ttl=live_ttl,
            refresh_seconds=refresh,
        )
        shown_host = f"[{host}]" if ":" in host else host
        mode = "actions enabled" if allow_actions else "read-only"
        click.echo(
            f"pikku-storage console on http://{shown_host}:{port}/ ({mode}) over {display_url(url)}"
        )
        if token:
            click.echo(f"open it once as http://{shown_host}:{port}/?token=<token>")
        config = uvicorn.Config(app, host=host, port=port, lifespan="off", log_level="info")
        await uvicorn.Server(config).serve()


@click.command("console")
@click.argument("url", required=False, metavar="[URL]")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--demo",
    is_flag=True,
    help="Write the demo scenario into the store first (URL defaults to memory://).",
)
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    help=f"Secret every request must carry (or ${TOKEN_ENV}); required off loopback.",
)
@click.option(
    "--allow-actions",
    is_flag=True,
    help="Enable deleting a run and approving/denying a pending tool approval.",
)
@click.option(
    "--live-ttl",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0.001),
    help="Seconds since the last heartbeat up to which a deployment counts as live.",
)
@click.option(
    "--refresh",
    default=10,
    show_default=True,
    type=click.IntRange(0, 3600),
    help="Seconds between reloads of list pages (0: never).",
)
@namespace_options
@click.pass_context
def console_command(
    ctx: click.Context,
    url: str | None,
    host: str,
    port: int,
    demo: bool,
    token: str | None,
    allow_actions: bool,
    live_ttl: float,
    refresh: int,
) -> None:
    """Serve a web page over the store at URL: runs, threads, deployments, channels.

    Read-only unless --allow-actions. Listens on 127.0.0.1 by default; any other --host needs
    --token (or $PIKKU_CONSOLE_TOKEN), and then every request must carry it. Without --demo
    the store must already exist at this version (nothing is created or migrated).
    """
    if url is None:
        if not demo:
            raise click.UsageError("missing URL (or pass --demo for a memory:// demo store)")
        url = "memory://"
    token = token or None
    if not is_loopback(host) and token is None:
        raise click.UsageError(
            f"--host {host} accepts connections from other machines: pass --token "
            f"(or set ${TOKEN_ENV}) so that every request must carry it"
        )
    try:
        import jinja2  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name not in _CONSOLE_MODULES:
            raise
        raise click.ClickException(
            f"the console needs the console extra ({exc.name} is not installed): "
            "pip install 'pikku-storage[console]'"
        ) from None
    run(
        _serve(
            url,
            host=host,
            port=port,
            demo=demo,
            token=token,
            allow_actions=allow_actions,
            live_ttl=live_ttl,
            refresh=refresh,
            namespace=namespace_of(ctx),
        )
    )
