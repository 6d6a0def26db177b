"""``auditor run``: the checks over a window, the report written, optionally archived and mailed."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from auditor.archive.archiver import require_archive
from auditor.cli.app import (
    EXIT_CHECK_ERROR,
    EXIT_DELIVERY,
    EXIT_FINDINGS,
    EXIT_INTERNAL,
    config_option,
    err,
    exit_code,
    guard,
    out,
    window,
    window_options,
)
from auditor.clock import utcnow
from auditor.config import load_config
from auditor.deliver.suite import Archived, archive_outcome, run_suite
from auditor.errors import DeliveryError, UsageError
from auditor.evaluate import meets
from auditor.models import RunRecord, Severity, Status
from auditor.pipeline import run_audit

_SEVERITIES = click.Choice([s.value for s in Severity], case_sensitive=False)


@click.command()
@config_option
@window_options
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
@guard
def run(config_path: str, since: str | None, until: str | None, out_dir: str | None, fail_on: str | None, force: bool,
        formats: str, archive: bool, suite: str | None = None, deliver: bool = False, strict: bool = False) -> int:
    """Run the checks and write findings.json, results/*.csv, report.html and report.pdf."""
    loaded = load_config(config_path)
    if archive:
        require_archive(loaded)
    chosen = tuple(dict.fromkeys(f.strip() for f in formats.split(",") if f.strip()))
    suite_run, archived = None, None
    if suite is not None:  # the scheduler's job calls this same run_suite
        given = window(loaded, since, until, utcnow()) if since or until else None
        suite_run = run_suite(loaded, suite, deliver=deliver, window=given, out_dir=Path(out_dir) if out_dir else None,
                              force=force, formats=chosen, archive=archive, by_hand=True)
        outcome, archived = suite_run.outcome, suite_run.archived
    else:
        if deliver:
            raise UsageError("--deliver needs --suite NAME: the suite names the recipients")
        outcome = run_audit(loaded, window(loaded, since, until, utcnow()), out_dir=Path(out_dir) if out_dir else None,
                            force=force, formats=chosen)
        archived = archive_outcome(outcome, loaded) if archive else None
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
    if archived is not None:
        codes |= _print_archived(archived)
    return exit_code(codes)


def _print_archived(archived: Archived) -> set[int]:
    """Print where the run was archived; the exit codes it adds (4 when delivery failed)."""
    if archived.error is not None or archived.result is None:
        err.print(f"[bold red]error:[/] archive: {archived.error}", markup=True, soft_wrap=True)
        return {archived.error.exit_code if archived.error is not None else DeliveryError.exit_code}
    result = archived.result
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] archive: {w}", markup=True, soft_wrap=True)
    for e in result.errors:
        err.print(f"[bold red]error:[/] archive: {e}", markup=True, soft_wrap=True)
    if result.sequence is not None:
        where = ", ".join(str(p) for p in (result.local_path, result.s3_url) if p)
        pruned = f"; pruned runs {', '.join(map(str, result.pruned))} behind {result.checkpoint}" if result.pruned else ""
        out.print(f"archived: suite {result.suite} run {result.sequence} -> {where}{pruned}", markup=False,
                  soft_wrap=True)
    return {DeliveryError.exit_code} if result.errors else set()


def _print_summary(record: RunRecord) -> None:
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
