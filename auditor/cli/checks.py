"""``auditor checks``: the check library, one line a check."""

from __future__ import annotations

import click
from rich.table import Table

from auditor.builtins import builtins
from auditor.cli.app import EXIT_OK, guard, out


@click.command("checks")
@guard
def list_checks() -> int:
    """List the checks with title, default severity and engines."""
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
