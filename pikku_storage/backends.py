"""The backend registry: one descriptor per backend, the only table of URL schemes.

`open_storage`, the `pikku-storage` command (`migrate`, `verify`, `check`, the inspection
commands) and the pytest plugin's providers all find a backend here by URL or by name, so a URL
accepted by one is accepted by all. A descriptor names the backend's URL schemes, the extra that
installs its drivers, its opener and `schema_version`, how a throwaway namespace is made and
dropped, and its pytest backends; the backend's package does the work and is imported only
when used. Adding a backend is one `Backend` here plus its package.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit, urlunsplit

from pikku_storage.errors import InvalidValue

if TYPE_CHECKING:
    from pikku_storage.storage import Storage

__all__ = [
    "BACKENDS",
    "MODULE_EXTRAS",
    "TEST_BACKENDS",
    "Backend",
    "TestBackend",
    "backend_for",
    "backend_named",
    "check_target",
    "driver_url",
    "extra_for_module",
    "open_url",
]

# A missing top-level module -> the extra that installs it.
MODULE_EXTRAS: Final[Mapping[str, str]] = {
    "psycopg": "postgres",
    "psycopg_pool": "postgres",
    "redis": "redis",
    "hiredis": "redis",
    "fakeredis": "fakeredis",
    "lupa": "fakeredis",
    "sqlalchemy": "sqlalchemy",
    "aiosqlite": "sqlalchemy",
    "greenlet": "sqlalchemy",
    "aiomysql": "mysql",
    "pymysql": "mysql",
    "asyncmy": "mysql",
    "click": "cli",
    "rich": "cli",
    "pytest": "testing",
    "pytest_asyncio": "testing",
    "hypothesis": "testing",
}


def extra_for_module(module: str | None, default: str | None = None) -> str | None:
    """The extra that installs top-level `module` (`aiomysql` -> `mysql`), else `default`."""
    return MODULE_EXTRAS.get((module or "").partition(".")[0], default)


@dataclass(frozen=True, slots=True, kw_only=True)
class TestBackend:
    """One backend name of the pytest plugin (`pikku_backends("redis")`) and how to run it.

    `provider` is the `module:Class` of its `pikku_testing.providers.BackendProvider`;
    `modules` are imported before the provider is used, so a missing driver skips with the
    extra to install instead of failing inside a test.
    """

    __test__ = False  # not a pytest test class despite its name

    name: str
    provider: str
    server: str | None = None  # "postgres", "redis", "redis-cluster", "mysql", …: its server
    extra: str | None = None
    modules: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Backend:
    """How one backend is found by URL, opened, versioned and given throwaway namespaces.

    `schemes` are the plain URL schemes it takes; `module` holds its `open_storage`,
    `schema_version` and `LATEST_VERSION`; `admin` (if any) the module with
    `create_namespace`, `drop_namespace` and `drop_matching` for its server.
    `namespace_options` are the options that select a namespace (see
    docs/concepts.md#lifecycle-and-namespaces).
    """

    name: str
    schemes: tuple[str, ...]
    module: str
    extra: str | None
    namespace_options: tuple[str, ...] = ()
    defaults: Mapping[str, object] = field(default_factory=dict)  # default namespace
    admin: str | None = None
    in_process: bool = False  # its data lives in one process (memory)
    test_backends: tuple[TestBackend, ...] = ()

    # --- by URL ---------------------------------------------------------------------------

    def takes(self, scheme: str) -> bool:
        """Whether this backend opens URLs with `scheme` (lower case)."""
        return scheme in self.schemes

    def kind(self, url: str) -> str:
        """The name of what `url` selects (`postgres`, `sqlalchemy-mysql`, …): also the name of
        the pytest backend `pikku-storage check` runs on it."""
        return self.name

    def extra_for(self, url: str) -> str | None:
        """The extra that installs what `url` needs."""
        return self.extra

    def namespace_of(self, url: str, options: Mapping[str, object]) -> dict[str, object]:
        """The namespace `options` select, defaults filled in; `InvalidValue` for an option
        that selects no namespace of this backend (`key_prefix` on PostgreSQL)."""
        unknown = sorted(set(options) - set(self.namespace_options))
        if unknown:
            takes = ", ".join(self.namespace_options) or "no namespace options"
            raise InvalidValue(
                f"the {self.name} backend has no namespace option {', '.join(unknown)} "
                f"(it takes {takes})"
            )
        return {
            name: options.get(name, self.defaults.get(name))
            for name in self.namespace_options
            if name in options or name in self.defaults
        }

    def describe_namespace(self, url: str, options: Mapping[str, object]) -> str:
        """The namespace in words (`schema pikku`, `table prefix pikku_ in schema app`)."""
        namespace = self.namespace_of(url, options)
        if not namespace:
            return "-"
        words = [f"{k.replace('_', ' ')} {v}" for k, v in namespace.items() if k != "schema"]
        if "schema" in namespace:
            words = [" in ".join([*words, f"schema {namespace['schema']}"])]
        return ", ".join(words)

    # --- the package ----------------------------------------------------------------------

    def load(self) -> ModuleType:
        """The backend's module; `ImportError` when a driver is missing."""
        return importlib.import_module(self.module)

    def open(self, url: str, **options: object) -> Storage:
        """Every service for `url`; no I/O. Raises `InvalidValue` for an unknown option, a bad
        value, or a missing driver (saying which extra to install)."""
        try:
            opener: Callable[..., Storage] = self.load().open_storage
            _check_names(self, opener, options)
            _check_clock(options.get("clock"))
            # SQLAlchemy imports the async driver only when it builds the engine, so a missing
            # driver surfaces here too.
            return opener(url, **options)
        except ImportError as exc:
            raise self.missing(url, exc) from exc

    def missing(self, url: str, exc: ImportError) -> InvalidValue:
        """The `InvalidValue` for a driver `exc` says is missing."""
        scheme = urlsplit(url).scheme.lower()
        extra = extra_for_module(exc.name, self.extra_for(url))
        return InvalidValue(
            f"the {scheme}:// backend needs extra packages ({exc.name} is missing): "
            f"pip install 'pikku-storage[{extra}]'"
        )

    def latest_version(self, url: str = "") -> int | None:
        """The schema version this code writes; `None` when nothing persists (memory)."""
        try:
            version = getattr(self.load(), "LATEST_VERSION", None)
        except ImportError as exc:
            raise self.missing(url or f"{self.schemes[0]}://", exc) from exc
        return None if version is None else int(version)

    async def schema_version(self, url: str, **namespace: object) -> int | None:
        """The version recorded in the namespace (read-only), `None` when nothing is there."""
        try:
            reader = self.load().schema_version
        except ImportError as exc:
            raise self.missing(url, exc) from exc
        version: int | None = await reader(url, **namespace)
        return version

    async def migrate(self, url: str, **namespace: object) -> None:
        """Create or migrate the namespace, as `init()` does (under the backend's lock)."""
        namespace = self.namespace_of(url, namespace)
        if self.admin is not None:
            await self._admin(url).create_namespace(url, **namespace)
            return
        async with self.open(url, **namespace):
            pass

    # --- throwaway namespaces (check, bench, test providers) ------------------------------

    def scratch_namespace(
        self, url: str, name: str, directory: Callable[[], Path]
    ) -> tuple[str, dict[str, object]]:
        """`(url, options)` of a fresh namespace called `name` (a plain identifier);
        `directory()` gives a scratch directory for file-based namespaces."""
        return url, {self.namespace_options[0]: name}

    async def drop_namespace(self, url: str, **namespace: object) -> None:
        """Remove one namespace and everything in it."""
        namespace = self.namespace_of(url, namespace)
        if self.admin is not None:
            await self._admin(url).drop_namespace(url, **namespace)

    async def drop_matching(self, url: str, marker: str) -> list[str]:
        """Remove every namespace on `url` whose name contains `marker`; what was removed."""
        if self.admin is None:
            return []
        dropped: list[str] = await self._admin(url).drop_matching(url, marker)
        return dropped

    def _admin(self, url: str) -> ModuleType:
        assert self.admin is not None
        try:
            return importlib.import_module(self.admin)
        except ImportError as exc:
            raise self.missing(url, exc) from exc


def _check_names(
    backend: Backend, opener: Callable[..., object], options: Mapping[str, object]
) -> None:
    """`InvalidValue` naming any option the backend's opener does not take."""
    params = inspect.signature(opener).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return  # the backend checks the rest (connection options) itself
    known = sorted(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)
    unknown = sorted(set(options) - set(known))
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise InvalidValue(
            f"unknown option{'s' if len(unknown) > 1 else ''} {names} for the {backend.name} "
            f"backend; it takes {', '.join(known)}"
        )


def _check_clock(clock: object) -> None:
    from pikku_storage.clock import Clock

    if clock is not None and not isinstance(clock, Clock):
        raise InvalidValue(f"clock must be a Clock (now() -> datetime), got {type(clock).__name__}")


@dataclass(frozen=True, slots=True, kw_only=True)
class _MemoryBackend(Backend):
    def scratch_namespace(
        self, url: str, name: str, directory: Callable[[], Path]
    ) -> tuple[str, dict[str, object]]:
        from pikku_storage.memory import InMemoryStore

        return "memory://", {"store": InMemoryStore()}


@dataclass(frozen=True, slots=True, kw_only=True)
class _SqliteBackend(Backend):
    def scratch_namespace(
        self, url: str, name: str, directory: Callable[[], Path]
    ) -> tuple[str, dict[str, object]]:
        return f"sqlite:///{directory() / (name + '.db')}", {}


# A plain scheme of a dialect -> the dialect+driver the SQLAlchemy backend uses for it.
_SQLALCHEMY_DRIVERS: Final[Mapping[str, str]] = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+aiomysql",
    "mariadb": "mysql+aiomysql",
    "sqlite": "sqlite+aiosqlite",
}
_SQLALCHEMY_KINDS: Final[Mapping[str, str]] = {
    "postgresql": "sqlalchemy-postgres",
    "postgres": "sqlalchemy-postgres",
    "mysql": "sqlalchemy-mysql",
    "mariadb": "sqlalchemy-mysql",
    "sqlite": "sqlalchemy-sqlite",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class _RedisBackend(Backend):
    """Redis: a `…+cluster://` URL selects a Redis Cluster (the `redis-cluster` test backend,
    which `pikku-storage check` runs on it), any other scheme one server."""

    def kind(self, url: str) -> str:
        return "redis-cluster" if urlsplit(url).scheme.lower().endswith("+cluster") else self.name


@dataclass(frozen=True, slots=True, kw_only=True)
class _SqlAlchemyBackend(Backend):
    """Any `dialect+driver://` URL (docs/concepts.md#lifecycle-and-namespaces):
    `postgresql+psycopg://`, `mysql+aiomysql://`,
    `sqlite+aiosqlite://`. A plain `mysql://` names no driver and is refused, with a hint."""

    def takes(self, scheme: str) -> bool:
        return "+" in scheme or scheme in self.schemes

    def kind(self, url: str) -> str:
        dialect = urlsplit(url).scheme.lower().partition("+")[0]
        return _SQLALCHEMY_KINDS.get(dialect, f"sqlalchemy-{dialect}")

    def extra_for(self, url: str) -> str | None:
        return "mysql" if self.kind(url) == "sqlalchemy-mysql" else self.extra

    def namespace_of(self, url: str, options: Mapping[str, object]) -> dict[str, object]:
        namespace = Backend.namespace_of(self, url, options)
        if namespace.get("schema") is None:
            namespace.pop("schema", None)
        return namespace

    async def drop_matching(self, url: str, marker: str) -> list[str]:
        if self.kind(url) == "sqlalchemy-sqlite":
            return []  # scratch namespaces are temporary files; never open the named one
        return await Backend.drop_matching(self, url, marker)

    def scratch_namespace(
        self, url: str, name: str, directory: Callable[[], Path]
    ) -> tuple[str, dict[str, object]]:
        kind = self.kind(url)
        if kind == "sqlalchemy-sqlite":
            return f"sqlite+aiosqlite:///{directory() / (name + '.db')}", {}
        if kind == "sqlalchemy-postgres":
            return url, {"schema": name}
        return url, {"table_prefix": name + "_"}


def driver_url(url: str) -> str:
    """A plain server URL (`mysql://…`, `postgresql://…`, as the pytest plugin takes them) with
    the SQLAlchemy backend's default async driver (`mysql+aiomysql://…`); a URL naming its
    driver is returned as it is."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if "+" in scheme or scheme not in _SQLALCHEMY_DRIVERS:
        return url
    return urlunsplit((_SQLALCHEMY_DRIVERS[scheme], *parts[1:]))


_PROVIDERS: Final = "pikku_testing._provider_"

BACKENDS: Final[tuple[Backend, ...]] = (
    _MemoryBackend(
        name="memory",
        schemes=("memory",),
        module="pikku_storage.memory",
        extra=None,
        in_process=True,
        test_backends=(TestBackend(name="memory", provider=f"{_PROVIDERS}memory:MemoryProvider"),),
    ),
    _SqliteBackend(
        name="sqlite",
        schemes=("sqlite",),
        module="pikku_storage.sqlite",
        extra="sqlalchemy",
        namespace_options=("table_prefix",),
        defaults={"table_prefix": "pikku_"},
        test_backends=(
            TestBackend(
                name="sqlite",
                provider=f"{_PROVIDERS}sqlalchemy:SqliteProvider",
                extra="sqlalchemy",
                modules=("sqlalchemy", "aiosqlite"),
            ),
        ),
    ),
    Backend(
        name="postgres",
        schemes=("postgresql", "postgres"),
        module="pikku_storage.postgres",
        extra="postgres",
        namespace_options=("schema",),
        defaults={"schema": "pikku"},
        admin="pikku_storage.postgres._admin",
        test_backends=(
            TestBackend(
                name="postgres",
                provider=f"{_PROVIDERS}postgres:PostgresProvider",
                server="postgres",
                extra="postgres",
                modules=("psycopg", "psycopg_pool"),
            ),
            TestBackend(
                name="postgres-pgbouncer",
                provider=f"{_PROVIDERS}pgbouncer:PgBouncerProvider",
                server="pgbouncer",
                extra="postgres",
                modules=("psycopg", "psycopg_pool"),
            ),
        ),
    ),
    _RedisBackend(
        name="redis",
        schemes=("redis", "rediss", "unix", "redis+cluster", "rediss+cluster"),
        module="pikku_storage.redis",
        extra="redis",
        namespace_options=("key_prefix",),
        defaults={"key_prefix": "pikku"},
        admin="pikku_storage.redis._admin",
        test_backends=(
            TestBackend(
                name="redis",
                provider=f"{_PROVIDERS}redis:RedisProvider",
                server="redis",
                extra="redis",
                modules=("redis",),
            ),
            TestBackend(
                name="redis-cluster",
                provider=f"{_PROVIDERS}redis_cluster:RedisClusterProvider",
                server="redis-cluster",
                extra="redis",
                modules=("redis",),
            ),
            TestBackend(
                name="fakeredis",
                provider=f"{_PROVIDERS}fakeredis:FakeRedisProvider",
                extra="fakeredis",
                modules=("redis", "fakeredis", "lupa"),
            ),
        ),
    ),
    _SqlAlchemyBackend(
        name="sqlalchemy",
        # every `dialect+driver://` URL (docs/concepts.md#lifecycle-and-namespaces); see `takes`
        schemes=(),
        module="pikku_storage.sqlalchemy",
        extra="sqlalchemy",
        namespace_options=("schema", "table_prefix"),
        defaults={"table_prefix": "pikku_"},
        admin="pikku_storage.sqlalchemy._admin",
        test_backends=(
            TestBackend(
                name="sqlalchemy-sqlite",
                provider=f"{_PROVIDERS}sqlalchemy:SqlAlchemySqliteProvider",
                extra="sqlalchemy",
                modules=("sqlalchemy", "aiosqlite"),
            ),
            TestBackend(
                name="sqlalchemy-postgres",
                provider=f"{_PROVIDERS}sqlalchemy:SqlAlchemyPostgresProvider",
                server="postgres",
                extra="sqlalchemy,postgres",
                modules=("sqlalchemy", "psycopg"),
            ),
            TestBackend(
                name="sqlalchemy-mysql",
                provider=f"{_PROVIDERS}sqlalchemy:SqlAlchemyMysqlProvider",
                server="mysql",
                extra="mysql",
                modules=("sqlalchemy", "aiomysql"),
            ),
        ),
    ),
)

TEST_BACKENDS: Final[Mapping[str, TestBackend]] = {
    test.name: test for backend in BACKENDS for test in backend.test_backends
}


def _known_schemes() -> str:
    schemes = ", ".join(f"{s}://" for b in BACKENDS for s in b.schemes)
    return (
        f"{schemes} or an SQLAlchemy URL with a driver (postgresql+psycopg://, mysql+aiomysql://)"
    )


def backend_for(url: object) -> Backend:
    """The backend that opens `url`; `InvalidValue` for anything else, listing what is."""
    if not isinstance(url, str):
        raise InvalidValue(f"url must be a str, got {type(url).__name__}")
    scheme = urlsplit(url).scheme.lower()
    for backend in BACKENDS:
        if backend.takes(scheme):
            return backend
    hint = ""
    if scheme in _SQLALCHEMY_DRIVERS:
        hint = f" (through SQLAlchemy: {_SQLALCHEMY_DRIVERS[scheme]}://…)"
    raise InvalidValue(f"unknown storage URL scheme {scheme!r}{hint}: use {_known_schemes()}")


def backend_named(name: str) -> Backend:
    """The backend called `name` (`postgres`, `redis`, …)."""
    for backend in BACKENDS:
        if backend.name == name:
            return backend
    raise InvalidValue(f"unknown backend {name!r}; known: {', '.join(b.name for b in BACKENDS)}")


def check_target(url: str) -> TestBackend:
    """The pytest backend that makes throwaway namespaces on `url` (`pikku-storage check`).

    An SQLite file URL runs on temporary files, never on the file it names.
    """
    backend = backend_for(url)
    kind = backend.kind(url)
    if kind == "sqlalchemy-sqlite":
        kind = "sqlite"
    try:
        return TEST_BACKENDS[kind]
    except KeyError:
        raise InvalidValue(f"no test backend for {kind} URLs") from None


def open_url(url: str, **options: object) -> Storage:
    """Every service of the backend `url` selects (what `pikku_storage.open_storage` does)."""
    return backend_for(url).open(url, **options)
