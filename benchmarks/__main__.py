"""Command line: `python -m benchmarks [ops] URL ...`, `... fleet URL`, `... peers URL ...`."""

from __future__ import annotations

import argparse
import asyncio
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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments (`ops` when no command is given) and run."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in {"ops", "fleet", "peers", "-h", "--help"}:
        args.insert(0, "ops")
    ns = _parser().parse_args(args)
    if ns.command == "fleet":
        workers = [int(k) for k in ns.workers.split(",") if k]
        print(run_fleet(ns.url, workers, runs=ns.runs, steps=ns.steps))
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
