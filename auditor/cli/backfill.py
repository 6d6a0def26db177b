"""``auditor backfill``: the past N windows into the history, so the first report has trends."""

from __future__ import annotations

import click

from auditor import formatting as fmt
from auditor.backfill import backfill as run_backfill
from auditor.builtins import builtins
from auditor.cli.app import EXIT_CHECK_ERROR, config_option, exit_code, guard, out, window
from auditor.clock import utcnow
from auditor.config import load_config
from auditor.deliver.suite import resolve_suite


@click.command()
@config_option
@click.option("--weeks", required=True, type=click.IntRange(1, 104),
              help="How many past windows to run, each as long as the current one, ending where it starts.")
@click.option("--suite", metavar="NAME", help="Run the config's suite NAME: its checks and its window length.")
@click.option("--force", is_flag=True, help="Run again the windows the history already holds.")
@guard
def backfill(config_path: str, weeks: int, suite: str | None, force: bool) -> int:
    """Run the past N windows, oldest first, into the history (marked backfilled), so that the next report has
    trends and a "what changed" from its first week."""
    loaded = load_config(config_path)
    reg = builtins()
    now = utcnow()
    current = (resolve_suite(loaded, suite, now, reg.checks).window if suite else window(loaded, None, None, now))
    codes: set[int] = set()
    for done in run_backfill(loaded, current, weeks, suite=suite, force=force, registries=reg):
        when = fmt.window(done.window.since, done.window.until)
        if done.record is None:
            out.print(f"{when}: already in the history (--force runs it again)", markup=False)
            continue
        record = done.record
        findings = sum(len(c.active_findings) for c in record.checks)
        out.print(f"{when}: run {record.id}, {fmt.count(findings, 'active finding')}", markup=False)
        if record.errored or record.no_data:
            codes.add(EXIT_CHECK_ERROR)
    return exit_code(codes)
