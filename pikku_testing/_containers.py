"""Throwaway PostgreSQL, Redis and MySQL servers through testcontainers (docs/contract.md).

Used only when no URL was given for a server: the plugin asks `Containers.url(server)`, which
checks (quickly, once) that `testcontainers` is installed and a Docker engine answers its ping,
then starts one container per server for the rest of the session. Anything missing becomes
`ContainersUnavailable` with a reason saying how to enable the server.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = [
    "Containers",
    "ContainersUnavailable",
    "docker_endpoint",
    "docker_reachable",
    "testcontainers_installed",
]

logger = logging.getLogger(__name__)

DEFAULT_DOCKER_HOST: Final = "unix:///var/run/docker.sock"
PING_TIMEOUT: Final = 0.5  # seconds; a local engine answers in milliseconds


@dataclass(frozen=True, slots=True)
class _Image:
    module: str  # testcontainers module, newest layout first
    legacy_module: str
    class_name: str
    image: str
    port: int


_IMAGES: Final = {
    "postgres": _Image(
        "testcontainers.community.postgres",
        "testcontainers.postgres",
        "PostgresContainer",
        "postgres:16-alpine",
        5432,
    ),
    "redis": _Image(
        "testcontainers.community.redis", "testcontainers.redis", "RedisContainer", "redis:7", 6379
    ),
    "mysql": _Image(
        "testcontainers.community.mysql",
        "testcontainers.mysql",
        "MySqlContainer",
        "mysql:8.0",
        3306,
    ),
}


class ContainersUnavailable(Exception):
    """A container cannot be started here; the message says why and how to fix it."""


def testcontainers_installed() -> bool:
    """Whether the `testcontainers` package can be imported."""
    return importlib.util.find_spec("testcontainers") is not None


def docker_endpoint() -> str:
    """The Docker engine address: `DOCKER_HOST` when set, else Docker's default socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def docker_reachable(endpoint: str | None = None, *, timeout: float = PING_TIMEOUT) -> bool:
    """True iff the engine at `endpoint` answers `GET /_ping` with HTTP 200 within `timeout`.

    Only `unix://` and `tcp://` endpoints are tried; anything else counts as unreachable.
    """
    parts = urlsplit(endpoint or docker_endpoint())
    try:
        if parts.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: Any = parts.path
        elif parts.scheme == "tcp" and parts.hostname:
            sock = socket.socket(socket.AF_INET6 if ":" in parts.hostname else socket.AF_INET)
            address = (parts.hostname, parts.port or 2375)
        else:
            return False
        with sock:
            sock.settimeout(timeout)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status = sock.recv(64)
    except OSError:
        return False
    return status.startswith(b"HTTP/") and status.split(b" ", 2)[1:2] == [b"200"]


def _how_to_enable(server: str) -> str:
    var = f"PIKKU_TEST_{server.upper().replace('-', '_')}_URL"
    return (
        f"set {var} (or --pikku-{server}-url), or install testcontainers "
        "(pip install 'pikku-storage[testcontainers]') with a Docker engine running"
    )


@dataclass(slots=True)
class Containers:
    """The session's containers, started on first use and stopped by `stop_all()`."""

    started: dict[str, Any] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    _problem: str | None = None
    _checked: bool = False

    def _check(self) -> None:
        if not self._checked:
            self._checked = True
            endpoint = docker_endpoint()
            if not testcontainers_installed():
                self._problem = "testcontainers is not installed"
            elif not docker_reachable(endpoint):
                self._problem = f"no Docker engine answers at {endpoint}"

    def url(self, server: str) -> str:
        """The URL of a running `server` container, starting it on first use.

        Raises `ContainersUnavailable` (with how to enable the server) when testcontainers or
        Docker is missing or the container does not start.
        """
        if server in self.urls:
            return self.urls[server]
        if server not in _IMAGES:
            var = f"PIKKU_TEST_{server.upper().replace('-', '_')}_URL"
            raise ContainersUnavailable(
                f"no {server} server: set {var} (or --pikku-{server}-url); "
                "no container is started for it"
            )
        self._check()
        if self._problem is not None:
            raise ContainersUnavailable(
                f"no {server} server: {self._problem}; to enable, {_how_to_enable(server)}"
            )
        try:
            url = self._start(server)
        except Exception as exc:
            raise ContainersUnavailable(
                f"the {server} container did not start ({type(exc).__name__}: {exc}); "
                f"to use another server, {_how_to_enable(server)}"
            ) from exc
        self.urls[server] = url
        return url

    def _start(self, server: str) -> str:
        spec = _IMAGES[server]
        try:
            module = importlib.import_module(spec.module)
        except ImportError:
            module = importlib.import_module(spec.legacy_module)
        cls = getattr(module, spec.class_name)
        if server == "postgres":
            container = cls(spec.image, username="pikku", password="pikku", dbname="test")
        elif server == "mysql":
            container = cls(
                spec.image, root_password="pikku", username="pikku", password="pikku", dbname="test"
            )
        else:
            container = cls(spec.image)
        logger.info("starting %s container %s", server, spec.image)
        container.start()
        self.started[server] = container
        host = container.get_container_host_ip()
        port = container.get_exposed_port(spec.port)
        if server == "postgres":
            return f"postgresql://pikku:pikku@{host}:{port}/test"
        if server == "mysql":
            return f"mysql://root:pikku@{host}:{port}/test"
        return f"redis://{host}:{port}/0"

    def stop_all(self) -> None:
        """Stop every container this session started; a failure is logged, never raised."""
        while self.started:
            server, container = self.started.popitem()
            try:
                container.stop()
            except Exception:
                logger.warning("could not stop the %s container", server, exc_info=True)
        self.urls.clear()
