"""The flow summary on the local engine: a table of the run's DuckDB, filled from the same Trino SQL as Athena's
(:mod:`auditor.engines.summary`), transpiled and fixed up like any check query.

One table per window a check reads (the report window, and a check's lookback when it has one), built the first
time a query over that window needs it. ``flow_summary`` is a view that points at the table of the window being
queried: a run's queries run one after the other in its workspace, so the view is set right before each of them.
"""

from __future__ import annotations

import duckdb
from sqlglot import exp

from auditor.engines.embedded import Workspace, query_error
from auditor.engines.sql import catalog_of, prepare_duckdb, window_params
from auditor.engines.summary import FLOW_SUMMARY, FLOW_SUMMARY_COLUMNS, summary_sql
from auditor.models import TimeWindow


def _quoted(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")


def _create(table: str) -> str:
    defs = [exp.ColumnDef(this=exp.to_identifier(name), kind=exp.DataType.build(kind, dialect="duckdb"))
            for name, kind in FLOW_SUMMARY_COLUMNS]
    create = exp.Create(kind="TABLE", replace=True, this=exp.Schema(this=exp.to_table(table), expressions=defs))
    return create.sql(dialect="duckdb", identify=True)


class LocalSummaries:
    """The summaries of one run's workspace, one per window."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.tables: dict[TimeWindow, str] = {}

    def use(self, window: TimeWindow) -> str:
        """Point ``flow_summary`` at the summary of ``window``, building it first if needed; returns its table."""
        table = self.tables.get(window)
        if table is None:
            table = self._build(window, f"{FLOW_SUMMARY}_{len(self.tables)}")
            self.tables[window] = table
        self.workspace.con.execute(f"CREATE OR REPLACE VIEW {_quoted(FLOW_SUMMARY)} AS "
                                   f"SELECT * FROM {_quoted(table)}")
        return table

    def _build(self, window: TimeWindow, table: str) -> str:
        con = self.workspace.con
        name = f"{FLOW_SUMMARY}/build"
        prepared = prepare_duckdb(summary_sql(), window_params(window), name=name, catalog=catalog_of(con))
        try:
            # The declared columns fix the types whatever DuckDB infers (sum of BIGINT is HUGEINT there).
            con.execute(_create(table))
            con.execute(f"INSERT INTO {_quoted(table)} {prepared.text}", prepared.params)
        except duckdb.Error as exc:
            raise query_error(con, name, exc, "local") from exc
        return table

    def drop(self) -> None:
        """Free the summaries (the workspace goes at the end of the run anyway)."""
        con = self.workspace.con
        con.execute(f"DROP VIEW IF EXISTS {_quoted(FLOW_SUMMARY)}")
        for table in self.tables.values():
            con.execute(f"DROP TABLE IF EXISTS {_quoted(table)}")
        self.tables.clear()
