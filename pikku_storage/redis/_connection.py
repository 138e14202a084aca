"""The client every Redis service uses: made lazily from a URL (owned) or given (borrowed).

`RedisConnection` defers building the `redis.asyncio` client to first use, so constructors do
no I/O and create no loop-bound objects (the client makes asyncio locks). `RedisBase` is the
mixin of the eight services: the namespace check, the layout-version `init()`, `close()` of
an owned client. See docs/concepts.md#lifecycle-and-namespaces,
docs/operations.md#not-supported-yet-planned, style §15.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable
from typing import Final, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis import Redis as SyncRedis
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster as SyncRedisCluster
from redis.exceptions import DataError, ResponseError
from redis.typing import EncodableT

from pikku_storage import _validate as v
from pikku_storage.backends import backend_named
from pikku_storage.clock import Clock
from pikku_storage.errors import InvalidValue, SchemaMismatch
from pikku_storage.interfaces._base import Service
from pikku_storage.redis._errors import translate_errors
from pikku_storage.redis._keys import (
    DEFAULT_CLUSTER_BUCKETS,
    LAYOUT_VERSION,
    buckets_key,
    check_buckets,
    layout_key,
)
from pikku_storage.redis._migrate import migrate_1_to_2
from pikku_storage.redis._rows import text
from pikku_storage.redis._scripts import ReplicaWait, Scripts

__all__ = ["RedisBase", "RedisConnection", "RedisSource", "seed_urls"]

_hiredis_pack: Callable[[tuple[EncodableT, ...]], bytes] | None
try:  # the C parser of the `redis` extra (`redis[hiredis]`) also packs commands
    from hiredis import pack_command as _found
except ImportError:  # pragma: no cover - redis-py's own packer then
    _hiredis_pack = None
else:
    _hiredis_pack = _found  # type: ignore[assignment]  # its stub types a 1-tuple; it takes any

logger = logging.getLogger(__name__)

_SCHEMES: Final = frozenset(backend_named("redis").schemes)  # the registry's, in one place
_CLUSTER_SUFFIX: Final = "+cluster"  # redis+cluster://, rediss+cluster:// (the registry's)
DEFAULT_WAIT_TIMEOUT_MS: Final = 1000  # how long a write waits for `wait_replicas` replicas


def seed_urls(url: str) -> list[str]:
    """A `redis+cluster://` URL as one plain `redis://` URL (no options) per seed node it
    names: `redis+cluster://h1:7000,h2:7001/0` names two."""
    plain, seeds, _ = _cluster_url(url)
    parts = urlsplit(plain)
    userinfo = parts.netloc.rpartition("@")[0]
    at = "@" if "@" in parts.netloc else ""
    return [
        urlunsplit((parts.scheme, f"{userinfo}{at}{_netloc(host, port)}", parts.path, "", ""))
        for host, port in seeds
    ]


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _seed_nodes(netloc: str) -> tuple[str, list[tuple[str, int]]]:
    """The userinfo part (with its `@`) and the (host, port) seeds of a cluster URL's netloc,
    each checked; a seed without a port is on 6379, as in a plain URL."""
    userinfo, at, hosts = netloc.rpartition("@")
    seeds = []
    for name in hosts.split(","):
        node = urlsplit(f"//{name}")
        try:
            port = node.port
        except ValueError:
            port = -1
        if not node.hostname or port == -1 or node.netloc != name:
            raise InvalidValue(f"a cluster URL's seed node is host:port, got {name!r}")
        seeds.append((node.hostname, 6379 if port is None else port))
    return userinfo + at, seeds


def _cluster_url(url: str) -> tuple[str, list[tuple[str, int]], int | None]:
    """A `redis+cluster://` URL as the plain one redis-py's cluster client takes (naming the
    first seed node), every seed node it names, and the `cluster_buckets` query option it
    carried (if any)."""
    url, found = _own_options(url, ("cluster_buckets",))
    parts = urlsplit(url)
    userinfo, seeds = _seed_nodes(parts.netloc)
    scheme = parts.scheme.lower().removesuffix(_CLUSTER_SUFFIX)
    netloc = userinfo + _netloc(*seeds[0])
    plain = urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))
    return plain, seeds, found.get("cluster_buckets")


def _own_options(url: str, names: tuple[str, ...]) -> tuple[str, dict[str, int]]:
    """`url` without the query options `names` (this library's, not redis-py's), and their
    values as ints; `InvalidValue` for one that is not a decimal int."""
    parts = urlsplit(url)
    found: dict[str, int] = {}
    kept = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in names:
            if not value.isdigit():
                raise InvalidValue(f"{name} must be an int: {value!r}")
            found[name] = int(value)
        else:
            kept.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), found


def _replica_wait(replicas: object, timeout_ms: object) -> ReplicaWait | None:
    """The `wait_replicas` / `wait_timeout` options (None: off, the default)."""
    count = v.non_negative_int("wait_replicas", 0 if replicas is None else replicas)
    ms = v.non_negative_int(
        "wait_timeout", DEFAULT_WAIT_TIMEOUT_MS if timeout_ms is None else timeout_ms
    )
    if ms == 0:
        raise InvalidValue("wait_timeout must be at least 1 ms (0 makes WAIT block forever)")
    if timeout_ms is not None and not count:
        raise InvalidValue("wait_timeout applies only with wait_replicas")
    return ReplicaWait(count, ms) if count else None


async def _refuse_cluster_node(client: Redis) -> None:
    """`InvalidValue` when `client` reaches a node of a Redis Cluster (`cluster_enabled:1`)."""
    try:
        info = await client.info("cluster")
    except ResponseError:
        return  # INFO renamed or refused (a managed service): the data path still translates
    if str(info.get("cluster_enabled", 0)) == "1":
        raise InvalidValue(
            "this Redis server is a Redis Cluster node; a plain redis:// client would hit "
            "MOVED/CROSSSLOT replies. Use a redis+cluster:// URL (or a RedisCluster client) "
            "for a Redis Cluster"
        )


class _PackedInC(AbstractConnection):
    """Commands packed by hiredis in C, as redis-py's synchronous client does; its asyncio
    connections pack in Python, one encode and join per argument (~1 µs an argument, and a
    script call has 10 to 40). Same bytes on the wire; only for the default UTF-8 strict
    encoding, else (and without hiredis) redis-py's packer."""

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        encoder = self.encoder
        if _hiredis_pack is None or (encoder.encoding, encoder.encoding_errors) != _UTF8:
            return super().pack_command(*args)
        first = args[0]
        if isinstance(first, str):  # "CONFIG GET": one argument per word, as redis-py sends
            args = (*first.encode().split(), *args[1:])
        elif isinstance(first, bytes) and b" " in first:
            args = (*first.split(), *args[1:])
        try:
            return [_hiredis_pack(args)]
        except TypeError as exc:  # None, a bool, an object: what redis-py's encoder refuses
            raise DataError(str(exc)) from exc


_UTF8: Final = ("utf-8", "strict")


class _PackedConnection(_PackedInC, Connection):
    pass


class _PackedSSLConnection(_PackedInC, SSLConnection):
    pass


class _PackedUnixConnection(_PackedInC, UnixDomainSocketConnection):
    pass


_PACKED: Final[dict[type[AbstractConnection], type[AbstractConnection]]] = {
    Connection: _PackedConnection,
    SSLConnection: _PackedSSLConnection,
    UnixDomainSocketConnection: _PackedUnixConnection,
}


def _pack_in_c(cluster: RedisCluster) -> None:
    """The connections of the nodes a cluster client we made opens pack in C too (a list of
    16 bucket scripts spent a fifth of its time in redis-py's packer): its constructor takes
    no connection class, so the node manager's, the one new nodes are made with, is set."""
    manager = cluster.nodes_manager
    packed = _PACKED.get(manager.connection_kwargs.get("connection_class", Connection))
    if packed is None:
        return
    manager.connection_kwargs["connection_class"] = packed
    for node in manager.startup_nodes.values():
        node.connection_class = cast("type[Connection]", packed)  # a Connection subclass


class _Pool(BlockingConnectionPool):
    """A `BlockingConnectionPool` whose uncontended checkout and return skip its condition and
    timer (~10 µs a command, a tenth of a small read on loopback).

    A task takes a free connection (or makes a new one under `max_connections`) directly when
    nobody is queued; otherwise it queues as the base class does, and a return wakes the
    queue. The check and the take run with no `await` between them, so they are atomic under
    asyncio; a returned connection is back in the free list before the queue is woken. Its
    connections pack commands in C (`_PackedInC`).
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]  # redis-py's own options
        self._queued = 0
        self._maintenance = False
        self.connection_class = _PACKED.get(self.connection_class, self.connection_class)

    async def get_connection(self, *args: object, **kwargs: object) -> AbstractConnection:
        # redis-py before 5.3 passes the command name and options; they are unused
        if self._queued or self._maintenance or not self.can_get_connection():
            self._queued += 1
            try:
                queued: AbstractConnection = await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                return queued
            finally:
                self._queued -= 1
        connection: AbstractConnection = self.get_available_connection()  # type: ignore[no-untyped-call]  # as above
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    def set_in_maintenance(self, in_maintenance: bool) -> None:
        """While redis-py rewrites the pool for a maintenance notification (redis-py 8), every
        checkout takes the base class's locked path."""
        self._maintenance = in_maintenance
        base = getattr(super(), "set_in_maintenance", None)
        if base is not None:
            base(in_maintenance)

    async def release(self, connection: AbstractConnection) -> None:
        await ConnectionPool.release(self, connection)
        if self._queued:
            async with self._condition:
                self._condition.notify()


class RedisConnection:
    """One `redis.asyncio` client, shared by every service built on it.

    Built from a URL, the client is made on first use and closed by `aclose()`. Its pool is a
    `BlockingConnectionPool` (a call waits for a free connection, up to `timeout` seconds,
    instead of failing when `max_connections` are busy), and `retry` is off by default so a
    command whose reply was lost is never sent twice (an `EVALSHA` that ran must not run
    again); a broken pooled connection is replaced on the next call. Given a client,
    `aclose()` leaves it open. A `redis+cluster://` URL or a `redis.asyncio.cluster.RedisCluster`
    client selects the cluster key layout with `cluster_buckets` buckets (default 16; a URL may
    carry it as `?cluster_buckets=N`); a synchronous client raises `InvalidValue` (D17).
    """

    __slots__ = (
        "_buckets",
        "_client",
        "_options",
        "_owned",
        "_scripts",
        "_url",
        "_wait",
        "verified",
    )

    def __init__(
        self,
        source: str | Redis | RedisCluster,
        *,
        cluster_buckets: object = None,
        wait_replicas: object = None,
        wait_timeout: object = None,
        **client_options: object,
    ) -> None:
        self._scripts: Scripts | None = None
        # cluster namespaces whose bucket count a service of this connection has checked: the
        # others skip that check (two round trips); the layout version is checked by each
        self.verified: set[str] = set()
        cluster = False
        seeds: list[tuple[str, int]] = []
        if isinstance(source, str):
            scheme = urlsplit(source).scheme.lower()
            if scheme not in _SCHEMES:
                known = ", ".join(f"{s}://" for s in sorted(_SCHEMES))
                raise InvalidValue(f"a Redis URL starts with one of {known}: {scheme!r}")
            source, in_query = _own_options(source, ("wait_replicas", "wait_timeout"))
            # the keywords win over the URL's query
            wait_replicas = (
                in_query.get("wait_replicas") if wait_replicas is None else wait_replicas
            )
            wait_timeout = in_query.get("wait_timeout") if wait_timeout is None else wait_timeout
            if scheme.endswith(_CLUSTER_SUFFIX):
                cluster = True
                source, seeds, in_url = _cluster_url(source)
                # the keyword wins over the URL's query
                cluster_buckets = in_url if cluster_buckets is None else cluster_buckets
            self._url: str | None = source
            self._options = dict(client_options)
            if len(seeds) > 1:  # a cluster URL's first seed is its own host
                self._options["startup_nodes"] = [ClusterNode(h, p) for h, p in seeds[1:]]
            self._options.setdefault("retry", Retry(NoBackoff(), 0))
            self._client: Redis | None = None
            self._owned = True
        else:
            if isinstance(source, SyncRedisCluster) or (
                not isinstance(source, Redis | RedisCluster)
            ):
                kind = (
                    "a synchronous client"
                    if isinstance(source, SyncRedis | SyncRedisCluster)
                    else type(source).__name__
                )
                raise InvalidValue(
                    f"expected a URL, a redis.asyncio.Redis or a redis.asyncio.cluster.RedisCluster"
                    f" client, got {kind}"
                )
            if client_options:
                raise InvalidValue(
                    "client options apply only when the connection is built from a URL"
                )
            cluster = isinstance(source, RedisCluster)
            self._url = None
            self._options = {}
            # a cluster client offers the same command methods the services call; typed as
            # Redis here (redis-py's two classes share no base that declares them)
            self._client = cast(Redis, source)
            self._owned = False
        self._wait = _replica_wait(wait_replicas, wait_timeout)
        if cluster:
            self._buckets = check_buckets(
                DEFAULT_CLUSTER_BUCKETS if cluster_buckets is None else cluster_buckets
            )
        elif cluster_buckets is not None:
            raise InvalidValue(
                "cluster_buckets applies only to a Redis Cluster (a redis+cluster:// URL or a "
                "RedisCluster client)"
            )
        else:
            self._buckets = 0

    @property
    def buckets(self) -> int:
        """The cluster layout's bucket count; 0 for the standalone layout."""
        return self._buckets

    @property
    def owned(self) -> bool:
        """Whether `aclose()` closes the client (it was built here from a URL)."""
        return self._owned

    @property
    def client(self) -> Redis:
        """The client, made now if this connection owns it and it was not made yet."""
        if self._client is None:
            assert self._url is not None
            if self._buckets:
                cluster = RedisCluster.from_url(self._url, **self._options)
                _pack_in_c(cluster)
                self._client = cast(Redis, cluster)  # see __init__
            else:
                pool = _Pool.from_url(self._url, **self._options)
                self._client = Redis.from_pool(pool)
        return self._client

    @property
    def scripts(self) -> Scripts:
        """The backend's Lua scripts registered on this client."""
        if self._scripts is None:
            self._scripts = Scripts(self.client, self._wait)
        return self._scripts

    async def aclose(self) -> None:
        """Close an owned client (a later call makes a new one); a borrowed one stays open."""
        client, self._scripts = self._client, None
        if self._owned and client is not None:
            self._client = None
            await client.aclose()


RedisSource = str | Redis | RedisCluster | RedisConnection


class RedisBase:
    """What the eight Redis services share: connection, namespace and layout check."""

    _conn: RedisConnection
    _owns_conn: bool
    _prefix: str

    def _setup(
        self, redis: RedisSource, key_prefix: str, client_options: dict[str, object]
    ) -> None:
        self._prefix = v.namespace("key_prefix", key_prefix)
        if isinstance(redis, RedisConnection):
            if client_options:
                raise InvalidValue("client options apply only when a service is built from a URL")
            self._conn, self._owns_conn = redis, False
        else:
            self._conn = RedisConnection(redis, **client_options)
            self._owns_conn = self._conn.owned

    @property
    def key_prefix(self) -> str:
        """The namespace of every key this service reads and writes."""
        return self._prefix

    @property
    def _redis(self) -> Redis:
        return self._conn.client

    @property
    def _buckets(self) -> int:
        """The connection's cluster bucket count (0: standalone layout)."""
        return self._conn.buckets

    @property
    def _scripts(self) -> Scripts:
        return self._conn.scripts

    async def _init(self) -> None:
        """Record the layout version, or refuse a namespace written by a newer library.

        Raises: `InvalidValue` when the server is a Redis Cluster node (a plain client would
        meet MOVED and CROSSSLOT replies mid-contract; use `redis+cluster://`); or when a
        cluster namespace was created with another `cluster_buckets`.
        """
        key = layout_key(self._prefix)
        async with translate_errors():
            if self._buckets:
                if self._prefix not in self._conn.verified:
                    await self._check_buckets()
            else:
                await _refuse_cluster_node(self._redis)
            found = await self._scripts("layout_init", [key], [LAYOUT_VERSION, ""])
            recorded = text(found)
            if recorded == "1":
                await migrate_1_to_2(self._redis, self._scripts, self._prefix)
                recorded = text(await self._scripts("layout_init", [key], [LAYOUT_VERSION, "1"]))
        if not recorded.isdigit() or int(recorded) > LAYOUT_VERSION:
            raise SchemaMismatch(
                self._prefix, int(recorded) if recorded.isdigit() else -1, LAYOUT_VERSION
            )
        logger.debug("redis namespace %s at layout %s", self._prefix, recorded)

    async def _check_buckets(self) -> None:
        """Record a cluster namespace's bucket count, or refuse a different one: ids are
        placed by it, so it is fixed when the namespace is created."""
        key = buckets_key(self._prefix)
        await self._redis.set(key, self._buckets, nx=True)
        recorded = text(await self._redis.get(key))
        if recorded != str(self._buckets):
            raise InvalidValue(
                f"namespace {self._prefix} was created with cluster_buckets={recorded}; "
                f"open it with that value (got {self._buckets})"
            )
        self._conn.verified.add(self._prefix)

    async def _close(self) -> None:
        if self._owns_conn:
            await self._conn.aclose()


class RedisService(RedisBase, Service):
    """The constructor of the Redis services over one client and namespace (the deployment
    service, with its heartbeat options, has its own). Built from a URL a service owns its
    client; given a client or a `RedisConnection` it borrows it."""

    def __init__(
        self,
        redis: RedisSource,
        *,
        key_prefix: str = "pikku",
        clock: Clock | None = None,
        **client_options: object,
    ) -> None:
        super().__init__(clock=clock)
        self._setup(redis, key_prefix, client_options)
        self._keys_ready()

    @abstractmethod
    def _keys_ready(self) -> None:
        """Build the service's key family (and what depends on it) once the namespace and the
        layout (standalone or cluster buckets) are known."""
