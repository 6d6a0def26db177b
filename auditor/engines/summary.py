"""The flow summary, engine-neutral: its definition (``flow_summary.sql``, Trino SQL over ``flow_logs``) and the
test of whether a query reads it.

Every flow-log check reads ``flow_summary`` instead of ``flow_logs``, so a run reads the window's records once on
every engine: Athena materialises the summary with one CREATE TABLE AS SELECT per run (:mod:`.athena.summary`), the
local engine as a table of its DuckDB (:mod:`.local_summary`). The table's columns and types are
:data:`auditor.tables.FLOW_SUMMARY_COLUMNS`; docs/athena-cost.md explains what it saves.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from sqlglot import exp

from auditor.tables import FLOW_SUMMARY, FLOW_SUMMARY_COLUMNS

SQL_FILE = Path(__file__).with_name("flow_summary.sql")
__all__ = ["FLOW_SUMMARY", "FLOW_SUMMARY_COLUMNS", "SQL_FILE", "reads_summary", "summary_sql"]


@lru_cache(maxsize=1)
def summary_sql() -> str:
    """The summary's Trino SQL: one SELECT over ``flow_logs`` with the window as ``:since_s`` and ``:until_s``."""
    return SQL_FILE.read_text(encoding="utf-8")


def reads_summary(tree: exp.Expression) -> bool:
    """Whether a parsed query reads the flow summary (a table of that name that no CTE of the query defines)."""
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    return any(t.name == FLOW_SUMMARY and not t.args.get("db") and FLOW_SUMMARY not in ctes
               for t in tree.find_all(exp.Table))
