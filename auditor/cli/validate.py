"""``auditor validate``: parse the config and plan the run; run nothing."""

from __future__ import annotations

import click

from auditor.builtins import builtins
from auditor.cli.app import EXIT_OK, config_option, err, guard, out, window
from auditor.clock import utcnow
from auditor.config import check_folders, load_config
from auditor.plan import plan_run


@click.command()
@config_option
@guard
def validate(config_path: str) -> int:
    """Parse the config and plan the run; run nothing."""
    loaded = load_config(config_path)
    check_folders(loaded)
    reg = builtins()
    now = utcnow()
    plan = plan_run(loaded, reg.checks, window(loaded, None, None, now), now, {e.name: e.dialect for e in reg.engines})
    out.print(f"{loaded.path}: valid. engine {plan.engine}, window {plan.window}")
    for pc in plan.checks:
        state = f"skipped: {pc.skip_reason}" if pc.skip_reason else f"runs on {pc.engine or 'the inventory'} over {pc.window}"
        out.print(f"  {pc.spec.id}: {state}")
    for table, w in plan.scans.items():
        out.print(f"  {plan.table_engines[table]} reads {table} over {w}")
    for w in plan.warnings:
        err.print(f"[yellow]warning:[/] {w}", markup=True, soft_wrap=True)
    return EXIT_OK
