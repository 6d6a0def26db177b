"""``auditor schedule [--config PATH] [--list]``: the scheduler daemon, or what it will do next."""

from __future__ import annotations

from datetime import timezone
from zoneinfo import ZoneInfo

import click

from auditor.cli.app import EXIT_FINDINGS, EXIT_OK, config_option, err, guard, out
from auditor.clock import utcnow
from auditor.config import load_config
from auditor.deliver.suite import SuiteRun
from auditor.schedule import Daemon, SuiteListing, list_suites, read_health


@click.command("schedule")
@config_option
@click.option("--list", "list_only", is_flag=True, help="Print each suite's next fire times and last success, and exit.")
@click.option("--health", "health", is_flag=True, help="Read the running daemon's health file; exit 1 when a run is "
              "overdue or the daemon is not running (for container health checks).")
@guard
def schedule(config_path: str, list_only: bool, health: bool = False) -> int:
    """Run the report suites on their schedules (until SIGTERM), mailing each report."""
    loaded = load_config(config_path)
    if health:
        found = read_health(loaded, utcnow())
        for line in found.lines:
            (out if found.ok else err).print(line, markup=False, soft_wrap=True)
        return EXIT_OK if found.ok else EXIT_FINDINGS
    if list_only:
        _print_listing(list_suites(loaded, utcnow()))
        return EXIT_OK

    def on_run(suite: str, result: SuiteRun | None, error: str | None) -> None:
        if result is None:
            err.print(f"[bold red]suite {suite}:[/] {error}", markup=True, soft_wrap=True)
            return
        delivery = result.delivery
        mailed = f"mail {delivery.status}" + (f" ({delivery.reason or delivery.error})" if delivery and
                                             (delivery.reason or delivery.error) else "") if delivery else ""
        archived = f", archive: {result.archived.describe()}" if result.archived is not None else ""
        out.print(f"suite {suite}: run {result.outcome.record.id} {result.outcome.record.window}, "
                  f"report {result.outcome.out_dir}, {mailed}{archived}", markup=False, soft_wrap=True)

    daemon = Daemon(loaded, on_run=on_run)
    out.print(f"auditor scheduler: {len(loaded.config.suites)} suite(s) from {loaded.path}; SIGTERM stops it after "
              "the current run", markup=False, soft_wrap=True)
    return daemon.serve()


def _print_listing(listings: list[SuiteListing]) -> None:
    if not listings:
        out.print("no suites in this config")
        return
    for item in listings:
        spec = item.spec
        out.print(f"{item.name}: {spec.title or item.name}  [{spec.schedule}, {spec.timezone}]  "
                  f"send {spec.send} to {', '.join(spec.recipients) or 'nobody'}", markup=False, soft_wrap=True)
        where = "stored job" if item.stored else "not scheduled yet (start `auditor schedule`)"
        for i, t in enumerate(item.next_fires):
            local = t.astimezone(ZoneInfo(spec.timezone)).strftime("%Y-%m-%d %H:%M %Z")
            utc_text = t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
            note = ""
            if i == 0 and item.overdue:
                note = "  (overdue: runs when the daemon starts, within misfire_grace)"
            out.print(f"  next: {local} ({utc_text}){note}", markup=False, soft_wrap=True)
        out.print(f"  ({where})", markup=False)
        success = item.state.get("last_success")
        failure = item.state.get("last_failure")
        out.print("  last success: " + (f"{success['at']} run {success['run_id']} ({success.get('delivery')}), "
                                        f"report {success.get('report')}" if success else "never"), markup=False,
                  soft_wrap=True)
        if failure:
            out.print(f"  last failure: {failure.get('at')}: {failure.get('reason')}", markup=False, soft_wrap=True)
        if item.state.get("running"):
            out.print(f"  running since {item.state['running'].get('started_at')}", markup=False)
