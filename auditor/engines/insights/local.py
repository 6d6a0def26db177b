"""The local Insights engine: Logs Insights queries over the local engine's DuckDB tables.

It reads files exactly as the local engine does (it delegates ``prepare`` to it), then compiles each query to
DuckDB SQL (:mod:`auditor.engines.insights.compiler`). Users develop Insights checks with it against exported
logs before paying for a query, and the tests prove each check's ``query.insights`` agrees with its
``query.sql``, and drive the CloudWatch engine's stubbed client with its answers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import duckdb

from auditor.engines.insights.catalog import Catalog, catalog_for
from auditor.engines.insights.compiler import CompiledQuery, compile_program
from auditor.engines.insights.parser import Program, bind, parse
from auditor.errors import EngineError
from auditor.models import (
    ENGINE_TABLES,
    DataQuality,
    Query,
    QueryResult,
    QueryStats,
    TimeWindow,
)


def source_table(tables: frozenset[str] | set[str] | tuple[str, ...], *, name: str = "query") -> str:
    """The one engine table a query reads (Logs Insights queries one kind of log at a time)."""
    found = [t for t in ENGINE_TABLES if t in tables]
    if len(found) != 1:
        raise EngineError(f"{name}: a Logs Insights query reads flow_logs or cloudtrail, not "
                          f"{' and '.join(found) or 'neither'}", engine="insights")
    return found[0]


def compile_query(text: str | Program, table: str | Catalog, window: TimeWindow | None,
                  params: Mapping[str, Any] | None = None) -> CompiledQuery:
    """Parse (if needed), bind ``params`` and compile a query for ``table``."""
    program = parse(text) if isinstance(text, str) else text
    program = bind(program, params or {})
    catalog = catalog_for(table) if isinstance(table, str) else table
    return compile_program(program, catalog, window=window)


def execute(con: duckdb.DuckDBPyConnection, compiled: CompiledQuery, *, engine: str = "local-insights",
            text_as_run: str = "", name: str = "query") -> QueryResult:
    """Run compiled SQL; the result carries the query's own column names and DuckDB's types."""
    started = time.perf_counter()
    try:
        cur = con.execute(compiled.sql, dict(compiled.params))
        types = tuple(str(d[1]) for d in cur.description)
        rows = tuple(cur.fetchall())
    except duckdb.Error as exc:
        raise EngineError(f"{name}: {exc}", engine=engine) from exc
    params = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in compiled.params.items()}
    stats = QueryStats(engine=engine, text_as_run=text_as_run or compiled.sql, duration_s=time.perf_counter() - started,
                       params=params)
    return QueryResult(columns=compiled.names, rows=rows, stats=stats, types=types)


def run_insights(con: duckdb.DuckDBPyConnection, text: str | Program, table: str, window: TimeWindow | None,
                 params: Mapping[str, Any] | None = None, *, name: str = "query") -> QueryResult:
    """Run one Logs Insights query (or a ``union all`` of several) over ``table`` in ``window``."""
    compiled = compile_query(text, table, window, params)
    return execute(con, compiled, text_as_run=text if isinstance(text, str) else "", name=name)


class LocalInsightsEngine:
    """Runs checks' ``query.insights`` over local files; ``prepare`` is the local engine's (read once)."""

    name = "local-insights"
    dialect = "insights"

    def __init__(self, local: Any) -> None:
        self.local = local
        self.workspace = local.workspace

    def prepare(self, scans: Mapping[str, TimeWindow]) -> DataQuality:
        return self.local.prepare(scans)

    def evidence(self, table: str, window: TimeWindow) -> int | None:
        """The local engine's count of usable records (the test of a check's ``no_data`` status): same tables."""
        return self.local.evidence(table, window)

    def run(self, query: Query, window: TimeWindow, params: Mapping[str, Any]) -> QueryResult:
        name = f"{query.check_id}/{query.name}"
        table = source_table(query.tables, name=name)
        return run_insights(self.workspace.con, query.text, table, window, params, name=name)

    def close(self) -> None:
        self.local.close()
