"""`pikku-storage check URL`: the contract suite against a live URL in throwaway namespaces.

The pytest side (fixtures, the generated suite, the reporter) is `pikku_testing._check`;
this module is the command line, its progress bar and its report. The backend's test provider
makes a namespace per test on the URL (migrated once, emptied between tests), and everything
is dropped afterwards, by the provider and then by a sweep for this run's random token
(see docs/contract.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pikku_storage._cli._common import console, display_url, echo_json
from pikku_storage.backends import check_target, extra_for_module

if TYPE_CHECKING:
    from pikku_testing._check import Reporter

__all__ = ["check", "provider_name"]


def provider_name(url: str) -> str:
    """The test backend that makes namespaces for `url` (the registry's `check_target`).

    SQLite URLs (also `sqlite+aiosqlite://`) run on temporary files, never the named file.
    """
    return check_target(url).name


def _service(cls: str) -> str:
    return cls.removeprefix("Test").removesuffix("Contract")


@click.command("check")
@click.argument("url")
@click.option("-k", "keyword", help="Only tests matching this pytest -k expression.")
@click.option("-x", "--exitfirst", is_flag=True, help="Stop at the first failure.")
@click.option("-v", "--verbose", is_flag=True, help="Show pytest's own output too.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check(url: str, keyword: str | None, exitfirst: bool, verbose: bool, as_json: bool) -> None:
    """Run the contract suite against URL in throwaway namespaces and report per service.

    Each test gets a fresh namespace on URL: a PostgreSQL schema, a Redis key prefix, a MySQL
    table prefix, or a temporary SQLite file (never the file URL names) or in-memory store.
    Everything made is removed afterwards, also after a failure or Ctrl-C. Exits 1 if any
    test failed. Needs the testing extra (pytest, pytest-asyncio).
    """
    name = provider_name(url)
    try:
        from pikku_testing import _check
    except ImportError as exc:
        extra = extra_for_module(exc.name, "testing")
        raise click.ClickException(
            f"check needs the {extra} extra ({exc.name} is missing): "
            f"pip install 'pikku-storage[{extra}]'"
        ) from exc
    try:
        provider = _check.provider_for(url)
    except ImportError as exc:
        extra = extra_for_module(exc.name, check_target(url).extra)
        raise click.ClickException(
            f"check on {display_url(url)} needs the {extra} extra ({exc.name} is missing): "
            f"pip install 'pikku-storage[{extra}]'"
        ) from exc
    out = console()
    if not as_json:
        out.print(f"[bold]pikku-storage check[/bold] on {display_url(url)} (backend {name})")
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
        transient=True,
        disable=verbose or as_json,
    )
    task = progress.add_task("contract tests", total=None)
    reporter = _check.Reporter(
        on_total=lambda n: progress.update(task, total=n),
        on_done=lambda: progress.advance(task),
    )
    with progress:
        result = _check.run_check(
            url, provider, reporter, keyword=keyword, exitfirst=exitfirst, verbose=verbose
        )
    if result.cleanup_error is not None:
        click.echo(
            f"Warning: could not remove every check namespace: {result.cleanup_error}", err=True
        )
    _report(reporter, url, name, result.code, result.leftovers, as_json)


def _report(
    reporter: Reporter, url: str, name: str, code: int, leftovers: list[str], as_json: bool
) -> None:
    failed = sum(o.failed for o in reporter.classes.values()) + len(reporter.errors)
    ran = sum(o.passed + o.failed + o.skipped for o in reporter.classes.values())
    if as_json:
        echo_json(
            {
                "url": display_url(url),
                "backend": name,
                "exit_code": code,
                "services": {
                    _service(cls): {
                        "passed": o.passed,
                        "failed": o.failed,
                        "skipped": o.skipped,
                        "failures": [{"test": t, "reason": r} for t, r in o.failures],
                        "skip_reasons": o.skip_reasons,
                    }
                    for cls, o in reporter.classes.items()
                },
                "collection_errors": reporter.errors,
                "swept_leftovers": leftovers,
            }
        )
    else:
        _print_report(reporter, leftovers)
    if failed:
        raise click.ClickException(f"{failed} contract test(s) failed")
    if ran == 0:
        raise click.ClickException("no contract tests ran")
    if code not in (0, 5):
        raise click.ClickException(f"pytest exited with status {code}")


def _print_report(reporter: Reporter, leftovers: list[str]) -> None:
    out = console()
    table = Table(title="Contract report", title_justify="left")
    for column in ("service", "passed", "failed", "skipped"):
        table.add_column(column, justify="left" if column == "service" else "right")
    totals = [0, 0, 0]
    for cls, o in reporter.classes.items():
        table.add_row(
            _service(cls),
            f"[green]{o.passed}[/green]",
            f"[red]{o.failed}[/red]" if o.failed else "0",
            f"[yellow]{o.skipped}[/yellow]" if o.skipped else "0",
        )
        totals = [totals[0] + o.passed, totals[1] + o.failed, totals[2] + o.skipped]
    table.add_row("[bold]total[/bold]", *(str(n) for n in totals), end_section=True)
    out.print(table)
    for cls, o in reporter.classes.items():
        for test, reason in o.failures:
            out.print(f"[red]FAILED[/red] {_service(cls)}::{test}: {reason}")
        for reason, count in o.skip_reasons.items():
            out.print(f"[yellow]skipped[/yellow] {_service(cls)}: {count} x {reason}")
    for error in reporter.errors:
        out.print(f"[red]ERROR[/red] {error}")
    if leftovers:
        out.print(f"swept leftovers the provider did not remove: {', '.join(leftovers)}")
    out.print("all check namespaces removed")
