"""The console: a read-only web page over any store (`pikku-storage console URL`).

Needs the `console` extra (`pip install 'pikku-storage[console]'`: Starlette, Jinja2,
uvicorn). `create_app(storage)` gives the ASGI app to serve or mount in your own service;
every page, script, stylesheet and picture ships in this package (no CDN, no build step).
"""

from __future__ import annotations

from pikku_storage.console._app import (
    CONTENT_SECURITY_POLICY,
    TOKEN_COOKIE,
    ConsoleSettings,
    create_app,
)

__all__ = ["CONTENT_SECURITY_POLICY", "TOKEN_COOKIE", "ConsoleSettings", "create_app"]
