"""``auditor demo``: the deterministic demo data."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import click

from auditor.cli.app import EXIT_OK, guard, out
from auditor.demo import generate
from auditor.demo.generate import DEMO_DAYS
from auditor.errors import UsageError


@click.command()
@click.option("--out", "out_dir", default="examples/demo-data", show_default=True, type=click.Path(file_okay=False))
@click.option("--anchor", help="The last day of the data (YYYY-MM-DD, UTC). Default: today.")
@click.option("--days", default=DEMO_DAYS, show_default=True, type=click.IntRange(7, 366),
              help="How many days; the default five weeks let `make run` backfill four and report the fifth.")
@guard
def demo(out_dir: str, anchor: str | None, days: int) -> int:
    """Generate the deterministic demo data (flow logs, CloudTrail, inventory) in the S3 layout."""
    try:
        anchor_date = date.fromisoformat(anchor) if anchor else None
    except ValueError:
        raise UsageError(f"--anchor {anchor!r} is not a date like 2026-11-09") from None
    started = time.perf_counter()
    m = generate(Path(out_dir), anchor_date, days=days)
    c = m.counts
    out.print(f"demo data written to {out_dir}: {len(m.flowlog_files)} flow-log files ({c['flow_records']} records, "
              f"{c['flow_nodata']} NODATA, {c['flow_skipdata']} SKIPDATA), {len(m.cloudtrail_files)} CloudTrail files "
              f"({c['trail_events']} events), {len(m.inventory_files)} inventory files for "
              f"{m.since:%Y-%m-%d}..{m.until:%Y-%m-%d} in {time.perf_counter() - started:.1f}s", markup=False,
              soft_wrap=True)
    return EXIT_OK
