"""Command line: `python -m benchmarks [ops] URL ... [--against URL]`, `... fleet URL`,
`... peers URL ...`, `... failover`, `... wait redis+cluster://…`."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from benchmarks.fleet import run_fleet
from benchmarks.ops import Options, run_ops

DEFAULT_URLS = ("memory://", "sqlite:///bench.db")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    ops = sub.add_parser("ops", help="p50 and ours/raw per operation (the default command)")
    ops.add_argument("urls", nargs="*", metavar="URL", help="default: memory:// sqlite:///bench.db")
    ops.add_argument("--ops", type=int, default=1000, help="timed calls per side (default 1000)")
    ops.add_argument("--concurrency", type=int, default=1, help="tasks at once (default 1)")
    ops.add_argument("--block", type=int, default=50, help="calls per A/B block (default 50)")
    ops.add_argument("--no-raw", action="store_true", help="skip the raw driver twins")
    ops.add_argument(
        "--rows", type=int, default=0, help="preload this many runs and messages (default 0)"
    )
    ops.add_argument(
        "--against",
        metavar="URL",
        help="also run ours on each URL against ours on this URL, interleaved (a cluster"
        " against standalone Redis)",
    )
    peers = sub.add_parser("peers", help="a conversation turn against LangGraph's savers")
    peers.add_argument("urls", nargs="+", metavar="URL", help="sqlite:///… and/or postgresql://…")
    peers.add_argument("--ops", type=int, default=1000, help="turns per side (default 1000)")
    peers.add_argument("--block", type=int, default=50, help="turns per A/B block (default 50)")
    fleet = sub.add_parser("fleet", help="steps/s of K worker processes on one backlog")
    fleet.add_argument("url", metavar="URL")
    fleet.add_argument(
        "--workers", default="1,2,4,8", help="comma-separated process counts (default 1,2,4,8)"
    )
    fleet.add_argument("--runs", type=int, default=100, help="runs in the backlog (default 100)")
    fleet.add_argument("--steps", type=int, default=10, help="steps per run (default 10)")
    failover = sub.add_parser(
        "failover", help="SIGKILL a primary of a private Redis Cluster under writes"
    )
    failover.add_argument(
        "--base-port", type=int, help="first of the 6 node ports (default: a free range)"
    )
    failover.add_argument("--writers", type=int, default=4, help="writer tasks (default 4)")
    failover.add_argument(
        "--payload", type=int, default=0, help="characters added to each message (default 0)"
    )
    failover.add_argument(
        "--signal",
        choices=("KILL", "STOP"),
        default="KILL",
        help="KILL the primary (default) or STOP it (frozen: its sockets go silent)",
    )
    failover.add_argument(
        "--replica-lag",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="freeze the primary's replica this long before the kill (shows replication loss)",
    )
    failover.add_argument(
        "--socket-timeout",
        type=float,
        metavar="SECONDS",
        help="the cluster client's socket_timeout and socket_connect_timeout (default redis-py's)",
    )
    wait = sub.add_parser("wait", help="cost of WAIT 1 <ms> after a write on a cluster")
    wait.add_argument("url", metavar="URL", help="redis+cluster://host:port/0")
    wait.add_argument("--ops", type=int, default=1000, help="timed calls per side (default 1000)")
    wait.add_argument("--block", type=int, default=50, help="calls per A/B block (default 50)")
    wait.add_argument("--timeout-ms", type=int, default=100, help="WAIT's timeout (default 100)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments (`ops` when no command is given) and run."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in {"ops", "fleet", "peers", "failover", "wait", "-h", "--help"}:
        args.insert(0, "ops")
    ns = _parser().parse_args(args)
    if ns.command == "fleet":
        workers = [int(k) for k in ns.workers.split(",") if k]
        print(run_fleet(ns.url, workers, runs=ns.runs, steps=ns.steps))
        return 0
    if ns.command == "failover":
        from benchmarks.failover import run_failover

        sig = signal.Signals[f"SIG{ns.signal}"]
        text = run_failover(
            ns.base_port,
            writers=ns.writers,
            payload=ns.payload,
            sig=sig,
            replica_lag=ns.replica_lag,
            **(
                {"socket_timeout": ns.socket_timeout, "socket_connect_timeout": ns.socket_timeout}
                if ns.socket_timeout
                else {}
            ),
        )
        print(text)
        return 0
    if ns.command == "wait":
        from benchmarks.wait_cost import run_wait_cost

        figures = asyncio.run(
            run_wait_cost(ns.url, ops=ns.ops, block=ns.block, timeout_ms=ns.timeout_ms)
        )
        print(figures.text())
        return 0
    if ns.command == "peers":
        from benchmarks.peers import run_peers

        for url in ns.urls:
            _, text = asyncio.run(run_peers(url, Options(ops=ns.ops, block=ns.block)))
            print(text, end="\n\n", flush=True)
        return 0
    options = Options(
        ops=ns.ops, concurrency=ns.concurrency, block=ns.block, raw=not ns.no_raw, rows=ns.rows
    )
    for url in ns.urls or DEFAULT_URLS:
        _, text = asyncio.run(run_ops(url, options))
        print(text, end="\n\n", flush=True)
        if ns.against and url != ns.against:
            from benchmarks.compare import run_compare

            _, text = asyncio.run(run_compare(url, ns.against, options))
            print(text, end="\n\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
