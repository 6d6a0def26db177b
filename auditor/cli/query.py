"""``auditor query``: the interactive face of the local engine.

``auditor query --insights 'QUERY'`` runs a Logs Insights query, and ``auditor query --sql 'QUERY'`` runs Trino
SQL, over the local engine's ``flow_logs`` or ``cloudtrail`` table (``--source``), read from the configured files
for the window (``--since``/``--until``, as for ``auditor run``). Nothing is sent to AWS.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import click
from rich.table import Table

from auditor.cli.app import guard, out, window, window_options
from auditor.clock import utcnow
from auditor.config import load_config
from auditor.engines import local
from auditor.engines.embedded import Workspace
from auditor.engines.insights.local import run_insights
from auditor.engines.sql import window_params
from auditor.errors import UsageError
from auditor.models import Query


@click.command("query")
@click.option("--insights", "insights_text", metavar="QUERY", help="A Logs Insights query.")
@click.option("--sql", "sql_text", metavar="QUERY", help="A Trino SQL query (:since, :until, :since_s, :until_s "
                                                          "are bound to the window).")
@click.option("--source", type=click.Choice(["flow_logs", "cloudtrail"]), default="flow_logs", show_default=True,
              help="The table to read.")
@click.option("--config", "config_path", default="config.yaml", show_default=True, type=click.Path(dir_okay=False),
              help="The config file (its sources say where the files are).")
@window_options
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "table"]), default="table", show_default=True,
              help="json: an array of objects keyed by the output fields, with typed values.")
@guard
def query(insights_text: str | None, sql_text: str | None, source: str, config_path: str, since: str | None,
          until: str | None, fmt: str) -> int:
    """Run a Logs Insights (--insights) or SQL (--sql) query over local flow logs or CloudTrail."""
    if (insights_text is None) == (sql_text is None):
        raise UsageError("give exactly one of --insights 'QUERY' and --sql 'QUERY'")
    loaded = load_config(config_path)
    config = loaded.config
    span = window(loaded, since, until, utcnow())
    spec = getattr(config.sources, source)
    if spec is None:
        raise UsageError(f"{loaded.path.name} sets no sources.{source}")
    if getattr(spec, "engine", "local") != "local":
        raise UsageError(f"auditor query reads local files, and sources.{source} uses the {spec.engine} engine")
    workspace = Workspace(config.duckdb)
    try:
        engine = local.create(workspace, config.sources, config.delivery_lag_td, loaded.resolve)
        engine.prepare({source: span})
        if insights_text is not None:
            result = run_insights(workspace.con, insights_text, source, span)
        else:
            # flow_summary (the window's flow summary) can be queried too: the engine builds it first if it is read.
            engine.prepare_query(Query(check_id="query", name="sql", text=sql_text or "", dialect="trino",
                                       tables=frozenset({source}), window=span), name="query")
            result = workspace.execute(sql_text or "", window_params(span), name="query", engine="local")
    finally:
        workspace.close()
    _print(fmt, result.columns, result.rows)
    return 0


def _print(fmt: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if fmt == "json":
        click.echo(json.dumps([{c: _json(v) for c, v in zip(columns, row)} for row in rows], indent=2,
                              ensure_ascii=False))
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(v) for v in row])
        click.echo(buf.getvalue(), nl=False)
    else:
        table = Table()
        for c in columns:
            table.add_column(c, overflow="fold")
        for row in rows:
            table.add_row(*[_cell(v) for v in row])
        out.print(table)
        out.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}", markup=False)


def _json(value: Any) -> Any:
    """A value as JSON keeps its type: numbers stay numbers, times become ISO 8601 UTC text."""
    if isinstance(value, datetime):
        t = value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
        if t.microsecond:
            return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    converted = _json(value)
    if isinstance(converted, (list, dict)):
        return json.dumps(converted, ensure_ascii=False)
    return str(converted)
