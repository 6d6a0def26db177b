"""The command line: commands -> run_audit / validate / checks; errors -> messages and exit codes.

Exit codes: 0 done, 1 findings at or above --fail-on, 2 usage or config error, 3 the report is incomplete
(a check errored, a check had no data, or, with --strict, input was skipped; the report is still written),
4 delivery failed, 5 internal error. When several apply, the first of 2, 5, 3, 4, 1 wins.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console
from rich.table import Table

from auditor import __version__
from auditor.errors import AuditorError, UsageError
from auditor.models import Severity, Status

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_CHECK_ERROR, EXIT_DELIVERY, EXIT_INTERNAL = 0, 1, 2, 3, 4, 5
_PRECEDENCE = (EXIT_USAGE, EXIT_INTERNAL, EXIT_CHECK_ERROR, EXIT_DELIVERY, EXIT_FINDINGS)

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def exit_code(codes: set[int]) -> int:
    """The code that wins when several apply: the first of 2, 5, 3, 4, 1."""
    for code in _PRECEDENCE:
        if code in codes:
            return code
    return EXIT_OK


def _guard(fn: Callable[..., int]) -> Callable[..., None]:
    """Turn domain errors into one message and an exit code; only here does the tool print and exit."""
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            code = fn(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException):
            raise
        except AuditorError as exc:
            err.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
            sys.exit(exc.exit_code)
        except Exception as exc:  # noqa: BLE001 - the CLI edge: anything else is an internal error
            logging.getLogger("auditor").exception("internal error")
            err.print(f"internal error: {type(exc).__name__}: {exc}", markup=False)
            sys.exit(EXIT_INTERNAL)
        sys.exit(code)
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="auditor")
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
def main(verbose: bool) -> None:
    """Network-security audit reports from AWS VPC Flow Logs and CloudTrail."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


_SEVERITIES = click.Choice([s.value for s in Severity], case_sensitive=False)


@main.command()
@click.option("--config", "config_path", default="config.yaml", show_default=True, type=click.Path(dir_okay=False),
              help="The config file.")
@click.option("--since", help="Window start: ISO 8601 (2026-11-09T00:00:00Z), a date (2026-11-09) or relative (7d).")
@click.option("--until", help="Window end (exclusive), in the same forms. --since alone means until now.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write the artifacts directly into DIR.")
@click.option("--fail-on", type=_SEVERITIES, help="Exit 1 when a finding is at or above this severity.")
@click.option("--force", is_flag=True, help="Write into a non-empty --out DIR.")
@click.option("--format", "formats", default="html,pdf,json,csv", show_default=True,
              help="Comma-separated outputs. findings.json is always written.")
@click.option("--archive", is_flag=True, help="Also archive the run as verifiable evidence (the config's archive:).")
@click.option("--suite", metavar="NAME", help="Run the config's suite NAME: its checks, over its window unless --since/--until say otherwise.")
@click.option("--deliver", is_flag=True, help="Mail the report to the suite's recipients (needs --suite); exit 4 if mail fails.")
@click.option("--strict", is_flag=True, help="Exit 3 when input was skipped: a file or folder that could not be read, "
              "a malformed line, an invalid record. Without it such a run exits 0 with a warning.")
@_guard
def run(config_path: str, since: str | None, until: str | None, out_dir: str | None, fail_on: str | None, force: bool,
        formats: str, archive: bool, suite: str | None = None, deliver: bool = False, strict: bool = False) -> int:
    """Run the checks and write findings.json, results/*.csv, report.html and report.pdf."""
    from auditor.config import load_config
    from auditor.evaluate import meets
    from auditor.pipeline import run_audit, utcnow

    loaded = load_config(config_path)
    if archive:
        from auditor.commands.verify import archive_after_run, require_archive
        require_archive(loaded)
    chosen = tuple(dict.fromkeys(f.strip() for f in formats.split(",") if f.strip()))
    suite_run = None
    if suite is not None:  # the scheduler's job calls this same run_suite (auditor.suites)
        from auditor.suites import run_suite
        window = _window(loaded, since, until, utcnow()) if since or until else None
        suite_run = run_suite(loaded, suite, deliver=deliver, window=window, out_dir=Path(out_dir) if out_dir else None,
                              force=force, formats=chosen)
        outcome = suite_run.outcome
    else:
        if deliver:
            raise UsageError("--deliver needs --suite NAME: the suite names the recipients")
        window = _window(loaded, since, until, utcnow())
        outcome = run_audit(loaded, window, out_dir=Path(out_dir) if out_dir else None, force=force, formats=chosen)
    record = outcome.record
    for w in record.warnings:
        err.print(f"[yellow]warning:[/] {w}", markup=True, soft_wrap=True)
    _print_summary(record)
    codes: set[int] = set()
    for problem in outcome.artifact_errors:
        err.print(f"[bold red]error:[/] could not write {problem}", markup=True, soft_wrap=True)
        codes.add(EXIT_INTERNAL)
    if record.errored or record.no_data:
        codes.add(EXIT_CHECK_ERROR)
    if strict and record.data_quality.skipped_input:
        err.print("[bold red]error:[/] --strict: input was skipped (see the warnings and the report's data-quality "
                  "section)", markup=True, soft_wrap=True)
        codes.add(EXIT_CHECK_ERROR)
    if fail_on and meets((f for c in record.checks for f in c.findings), Severity.parse(fail_on)):
        codes.add(EXIT_FINDINGS)
    out.print(f"report: {outcome.out_dir}")
    if suite_run is not None and suite_run.delivery is not None:
        d = suite_run.delivery
        if d.failed:
            err.print(f"[bold red]error:[/] the report was not mailed after {d.attempts} attempt(s): {d.error} "
                      f"(the report is kept at {outcome.out_dir})", markup=True, soft_wrap=True)
            codes.add(EXIT_DELIVERY)
        else:
            out.print(f"mail: {d.status}" + (f" ({d.reason})" if d.reason else f" to {', '.join(d.recipients)}"))
    if archive:
        codes |= archive_after_run(outcome, loaded, out=out, err=err)
    return exit_code(codes)


def _window(loaded: Any, since: str | None, until: str | None, now: Any) -> Any:
    from auditor.timeparse import resolve_window

    configured = (loaded.config.window.since, loaded.config.window.until) if loaded.config.window else None
    try:
        return resolve_window(since, until, now, configured)
    except ValueError as exc:
        if since is None and until is None and configured:
            raise loaded.error(str(exc), ("window",)) from None
        raise UsageError(str(exc)) from None


def _print_summary(record: Any) -> None:
    table = Table(title=f"auditor run {record.id}  {record.window}", title_justify="left")
    for col in ("check", "status", "severity", "findings", "rows"):
        table.add_column(col)
    for c in record.checks:
        style = {Status.FAIL: "red", Status.ERROR: "bold red", Status.NO_DATA: "bold yellow",
                 Status.SKIPPED: "dim"}.get(c.status, "green")
        table.add_row(c.check_id, f"[{style}]{c.status.value}[/]", c.severity.value, str(len(c.findings)), str(len(c.rows)))
    out.print(table)
    for c in record.checks:
        if c.status is Status.ERROR:
            err.print(f"[bold red]check {c.check_id} errored:[/] {c.error}", markup=True, soft_wrap=True)
        elif c.status is Status.NO_DATA:
            err.print(f"[bold yellow]check {c.check_id} has no data:[/] {' '.join(c.notes[:1])}", markup=True,
                      soft_wrap=True)


@main.command()
@click.option("--config", "config_path", default="config.yaml", show_default=True, type=click.Path(dir_okay=False))
@_guard
def validate(config_path: str) -> int:
    """Parse the config and plan the run; run nothing."""
    from auditor.builtins import builtins
    from auditor.config import check_folders, load_config
    from auditor.pipeline import utcnow
    from auditor.plan import plan_run

    loaded = load_config(config_path)
    check_folders(loaded)
    reg = builtins()
    now = utcnow()
    window = _window(loaded, None, None, now)
    plan = plan_run(loaded, reg.checks, window, now, {e.name: e.dialect for e in reg.engines})
    out.print(f"{loaded.path}: valid. engine {plan.engine}, window {plan.window}")
    for pc in plan.checks:
        state = f"skipped: {pc.skip_reason}" if pc.skip_reason else f"runs on {pc.engine or 'the inventory'} over {pc.window}"
        out.print(f"  {pc.spec.id}: {state}")
    for table, w in plan.scans.items():
        out.print(f"  {plan.table_engines[table]} reads {table} over {w}")
    for w in plan.warnings:
        err.print(f"[yellow]warning:[/] {w}", markup=True, soft_wrap=True)
    return EXIT_OK


@main.command("checks")
@_guard
def list_checks() -> int:
    """List the checks with title, default severity and engines."""
    from auditor.builtins import builtins

    reg = builtins()
    table = Table()
    table.add_column("id", no_wrap=True, min_width=max(len(n) for n in reg.checks.names()))
    for col in ("title", "severity", "engines", "needs"):
        table.add_column(col)
    for spec in reg.checks:
        engines = [e.name for e in reg.engines if spec.runs_on(e.dialect)]
        table.add_row(spec.id, spec.title, spec.severity.value, ", ".join(engines), ", ".join(spec.meta.needs))
    out.print(table)
    return EXIT_OK


@main.command()
@click.option("--out", "out_dir", default="examples/demo-data", show_default=True, type=click.Path(file_okay=False))
@click.option("--anchor", help="The last day of the data (YYYY-MM-DD, UTC). Default: today.")
@click.option("--days", default=14, show_default=True, type=click.IntRange(7, 366))
@_guard
def demo(out_dir: str, anchor: str | None, days: int) -> int:
    """Generate the deterministic demo data (flow logs, CloudTrail, inventory) in the S3 layout."""
    from datetime import date

    from auditor.demo import generate

    try:
        anchor_date = date.fromisoformat(anchor) if anchor else None
    except ValueError:
        raise UsageError(f"--anchor {anchor!r} is not a date like 2026-11-09") from None
    manifest = generate(Path(out_dir), anchor_date, days=days)
    del manifest
    out.print(f"demo data written to {out_dir}")
    return EXIT_OK


from auditor.commands import aws as _aws_commands  # noqa: E402 - registered after main exists
main.add_command(_aws_commands.athena)
main.add_command(_aws_commands.iam_policy)
main.add_command(_aws_commands.inventory)

from auditor.commands import verify as _verify_command  # noqa: E402 - registered after main exists
main.add_command(_verify_command.verify)

from auditor.commands import query as _query_command  # noqa: E402 - registered after main exists
main.add_command(_query_command.query)

from auditor.commands.schedule import schedule as _schedule_command  # noqa: E402 - registered after main exists
main.add_command(_schedule_command)

from auditor.commands.ingest import ingest as _ingest_command  # noqa: E402 - registered after main exists
main.add_command(_ingest_command)


if __name__ == "__main__":  # pragma: no cover
    main()
