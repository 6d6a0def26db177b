"""Check SQL is written once, in Athena's dialect (Trino). The embedded engine transpiles it to DuckDB with
sqlglot and fixes, in the AST, the places where DuckDB would answer differently, or refuses what it cannot answer
as Athena does (:mod:`auditor.engines.fixups`, docs/trino.md).

Every built-in check's transpiled SQL is golden (tests/golden/sql/), and so is each fix-up's output
(tests/trino/fixups.golden.sql), so a sqlglot upgrade that changes a translation shows up as a diff instead of a
wrong number in a report; tests/trino/conformance.yaml proves what the translated SQL gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from auditor.engines import fixups, trino_types
from auditor.engines.connection import connect
from auditor.errors import CheckDefinitionError
from auditor.models import TimeWindow
from auditor.tables import LOCAL_TABLES, ddl

# Trino as Athena runs it; the format strings of the date functions are kept as written (fixups.AthenaTrino).
SOURCE_DIALECT = fixups.AthenaTrino


@dataclass(frozen=True)
class PreparedSQL:
    """SQL ready for one engine: text with placeholders, and the parameter values they bind."""

    text: str
    params: Mapping[str, Any]


def parse(text: str, *, name: str = "query") -> exp.Expression:
    """Parse one Trino statement. A syntax error names the query."""
    try:
        statements = [s for s in sqlglot.parse(text, read=SOURCE_DIALECT) if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise CheckDefinitionError(f"{name}: not valid Trino SQL: {exc}") from None
    if len(statements) != 1:
        raise CheckDefinitionError(f"{name}: expected one SQL statement, found {len(statements)}")
    return fixups.keep_indexes(statements[0])


def placeholders(tree: exp.Expression) -> list[str]:
    """The ``:name`` parameters a query uses, in order of first appearance."""
    seen: list[str] = []
    for ph in tree.find_all(exp.Placeholder):
        name = ph.this if isinstance(ph.this, str) else None
        if not name or name == "?":
            raise CheckDefinitionError("positional '?' parameters are not allowed in check SQL; use :name")
        if name not in seen:
            seen.append(name)
    return seen


def window_params(window: TimeWindow) -> dict[str, Any]:
    """The window as parameters: timestamps for CloudTrail, epoch seconds for flow logs' ``start``."""
    return {"since": window.since, "until": window.until, "since_s": window.since_s, "until_s": window.until_s}


def bind(tree: exp.Expression, available: Mapping[str, Any], *, name: str = "query") -> dict[str, Any]:
    """The parameter values the query uses; a parameter nobody provides is a check-definition error."""
    used = placeholders(tree)
    missing = [p for p in used if p not in available]
    if missing:
        raise CheckDefinitionError(f"{name}: no value for parameter(s) {', '.join(':' + m for m in missing)}; "
                                   f"available: {', '.join(sorted(available))}")
    return {p: _bindable(available[p]) for p in used}


def _bindable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# --- Trino -> DuckDB --------------------------------------------------------------------------------


def catalog_of(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Table -> column -> DuckDB type of every table and view a connection holds, for typing queries over them."""
    catalog: dict[str, dict[str, str]] = {}
    for table, column, data_type in con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "ORDER BY table_name, ordinal_position").fetchall():
        catalog.setdefault(table, {})[column] = data_type
    return catalog


@lru_cache(maxsize=1)
def local_catalog() -> Mapping[str, Mapping[str, str]]:
    """The local engine's tables (flow logs, CloudTrail, the inventory) as a query sees them, for typing a query
    before any data is loaded (a check when it loads)."""
    con = connect()
    try:
        for table, columns in LOCAL_TABLES.items():
            con.execute(ddl(table, columns))
        return MappingProxyType(catalog_of(con))
    finally:
        con.close()


def _where(name: str, text: str | None, start: int | None) -> str:
    """``name:line:column`` of an offset in the query text (``name`` alone when it is unknown)."""
    if text is None or start is None:
        return name
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return f"{name}:{line}:{column}"


def to_duckdb(tree: exp.Expression, *, name: str = "query", text: str | None = None,
              catalog: Mapping[str, Mapping[str, str]] | None = None,
              params: Mapping[str, Any] | None = None) -> exp.Expression:
    """The Trino AST translated to DuckDB with Trino's answers (:mod:`auditor.engines.fixups`). ``catalog`` types the
    tables (default: the local engine's); ``params`` the ``:name`` parameters. A construct the local engine cannot
    answer as Athena does is a :class:`CheckDefinitionError` naming ``name:line:column`` (with ``text``)."""
    try:
        return fixups.apply(tree, local_catalog() if catalog is None else catalog, params)
    except fixups.Refusal as refusal:
        raise CheckDefinitionError(f"{_where(name, text, refusal.start)}: {refusal.message}") from None


def duckdb_text(tree: exp.Expression, *, name: str = "query") -> str:
    """DuckDB SQL of a translated tree. What sqlglot cannot translate (it would drop an argument) is refused."""
    try:
        return tree.sql(dialect="duckdb", pretty=True, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise CheckDefinitionError(f"{name}: the local engine cannot translate this query: {exc}") from None


def transpile(text: str, *, name: str = "query", catalog: Mapping[str, Mapping[str, str]] | None = None,
              params: Mapping[str, Any] | None = None) -> str:
    """Trino SQL text -> DuckDB SQL text with ``$name`` parameters."""
    return duckdb_text(to_duckdb(parse(text, name=name), name=name, text=text, catalog=catalog, params=params),
                       name=name)


def prepare_duckdb(text: str, available: Mapping[str, Any], *, name: str = "query",
                   catalog: Mapping[str, Mapping[str, str]] | None = None) -> PreparedSQL:
    """Transpile a Trino query for DuckDB and pick the parameter values it binds."""
    tree = parse(text, name=name)
    params = bind(tree, available, name=name)
    duck = to_duckdb(tree, name=name, text=text, catalog=catalog, params=params)
    return PreparedSQL(text=duckdb_text(duck, name=name), params=params)


def output_columns(text: str, *, name: str = "query", catalog: Mapping[str, Mapping[str, str]] | None = None,
                   params: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The output columns of a query as Athena names them, with their DuckDB types as far as they are known
    (``UNKNOWN`` otherwise): what ``report.sql`` sees as ``query_result``."""
    tree = parse(text, name=name).copy()
    try:
        trino_types.annotate(tree, local_catalog() if catalog is None else catalog, params)
        fixups.name_output_columns(tree)
    except fixups.Refusal as refusal:
        raise CheckDefinitionError(f"{_where(name, text, refusal.start)}: {refusal.message}") from None
    select = fixups.outer_select(tree)
    if select is None:
        return {}
    columns = {}
    for projection in select.expressions:
        dt = trino_types.type_of(projection.this if isinstance(projection, exp.Alias) else projection)
        if projection.output_name and projection.output_name != "*":
            columns[projection.output_name] = "UNKNOWN" if trino_types.is_unknown(dt) else dt.sql("duckdb")
    return columns


def validate(queries: Mapping[str, str], *, folder: str, params: Mapping[str, Any]) -> None:
    """Refuse, when a check loads, what the local engine would refuse when it runs: every SQL file of the check is
    translated (``report.sql`` and ``chart.sql`` over the columns ``query.sql`` gives) and a refused construct is
    a :class:`CheckDefinitionError` naming ``<file>:<line>:<column>``. Parameters count by their types only."""
    kinds = tuple(sorted((k, type(v).__name__) for k, v in params.items()))
    engine_query = queries.get("query.sql")
    for file in ("query.sql", "report.sql", "chart.sql"):
        if file in queries:
            _validate_cached(queries[file], f"{folder}/{file}", kinds,
                             engine_query if file != "query.sql" else None, f"{folder}/query.sql")


@lru_cache(maxsize=256)
def _validate_cached(text: str, name: str, kinds: tuple, engine_query: str | None, engine_query_name: str) -> None:
    params = _SampleParams(kinds)
    catalog = local_catalog()
    if engine_query is not None:
        catalog = {**catalog, "query_result": output_columns(engine_query, name=engine_query_name, params=params)}
    transpile(text, name=name, catalog=catalog, params=params)


class _SampleParams(dict):
    """Parameter values standing for their types only (validation caches on the types, not the values)."""

    _SAMPLES = {"int": 0, "float": 0.0, "str": "", "bool": False, "datetime": datetime(2000, 1, 1, tzinfo=timezone.utc),
                "date": date(2000, 1, 1), "Decimal": Decimal(0), "tuple": (0,), "list": [0]}

    def __init__(self, kinds: tuple) -> None:
        super().__init__({k: self._SAMPLES.get(kind) for k, kind in kinds})


# The engine query's parameters get this prefix inside a fused query, so that its window (a check's lookback)
# and the report's window can both be bound.
PHASE1_PARAM_PREFIX = "phase1_"


# Aggregates whose per-record value is the record's own argument: sum(x) over one record is x.
_UNGROUPABLE = (exp.Sum, exp.Min, exp.Max)


def _not_ungroupable(name: str, why: str) -> CheckDefinitionError:
    return CheckDefinitionError(f"{name}: check.yaml says reaggregates, but the engine query cannot run "
                                f"ungrouped: {why}. Remove reaggregates or rewrite the query.")


def _ungroup_select(select: exp.Select, name: str) -> None:
    if select.args.get("having") is not None:
        raise _not_ungroupable(name, "it has a HAVING clause")
    for projection in select.expressions:
        if not isinstance(projection, exp.Alias):
            if projection.find(exp.AggFunc) is not None:
                raise _not_ungroupable(name, f"the aggregate {projection.sql(dialect=SOURCE_DIALECT)} has no alias")
            continue
        agg = projection.this
        if isinstance(agg, exp.Count) and isinstance(agg.this, exp.Star):
            # count(*) is a BIGINT; one record counts one
            projection.set("this", exp.cast(exp.Literal.number(1), exp.DataType.build("BIGINT")))
        elif isinstance(agg, _UNGROUPABLE) and not agg.args.get("distinct") and not isinstance(agg.this, exp.Distinct):
            projection.set("this", agg.this)
        elif projection.find(exp.AggFunc) is not None:
            raise _not_ungroupable(
                name, f"{projection.sql(dialect=SOURCE_DIALECT)} is not count(*), sum, min or max of a column")
    select.set("group", None)


def ungroup(query: exp.Expression, *, name: str = "query") -> exp.Expression:
    """The engine query without its GROUP BY: one row per record, count(*) as 1 and sum/min/max(x) as x.

    Valid only for a check whose report re-aggregates ``query_result`` (``reaggregates`` in check.yaml, proved
    per check by a test that runs the report both ways). The local engine then aggregates once, in the report,
    instead of twice: at 100M records both aggregates have tens of millions of groups, and two of them chained
    in one query do not fit reliably in a 600MB memory limit. UNION ALL branches are ungrouped each; a
    UNION without ALL would merge equal records, so it is refused.
    """
    tree = query.copy()
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, exp.Union):
            if node.args.get("distinct"):
                raise _not_ungroupable(name, "a UNION without ALL would merge equal records")
            pending += [node.left, node.right]
        elif isinstance(node, exp.Subquery):
            pending.append(node.this)
        elif isinstance(node, exp.Select):
            if node.args.get("group") is not None:
                _ungroup_select(node, name)
        else:
            raise _not_ungroupable(name, f"it is a {type(node).__name__}, not a SELECT or a UNION ALL of them")
    return tree


def prepare_fused(report_text: str, report_available: Mapping[str, Any], query_text: str,
                  query_available: Mapping[str, Any], *, table: str, name: str = "check",
                  ungrouped: bool = False, catalog: Mapping[str, Mapping[str, str]] | None = None) -> PreparedSQL:
    """A check's report query with its engine query inlined as the CTE ``table`` (``NOT MATERIALIZED``), for an
    engine whose tables live in the same DuckDB as the report phase.

    DuckDB then streams the engine query's aggregate into the report's operators, which spill, instead of
    materialising it first: at 100M flow records that is tens of millions of rows, which a 600MB memory limit
    cannot hold. The engine query's parameters are renamed with :data:`PHASE1_PARAM_PREFIX` in the AST.
    ``ungrouped``: the engine query runs without its GROUP BY (:func:`ungroup`), for a check whose report
    re-aggregates.
    """
    report = parse(report_text, name=f"{name}/report")
    query = parse(query_text, name=f"{name}/query")
    if ungrouped:
        query = ungroup(query, name=f"{name}/query")
    params = dict(bind(report, report_available, name=f"{name}/report"))
    params.update({PHASE1_PARAM_PREFIX + k: v for k, v in bind(query, query_available, name=f"{name}/query").items()})
    for ph in query.find_all(exp.Placeholder):
        ph.set("this", PHASE1_PARAM_PREFIX + ph.this)
    try:
        fixups.name_output_columns(query)  # report.sql reads them by the names Athena gives them
    except fixups.Refusal as refusal:
        raise CheckDefinitionError(f"{name}/query: {refusal.message}") from None
    cte = exp.CTE(this=query, alias=exp.TableAlias(this=exp.to_identifier(table)), materialized=False)
    key = "with_" if "with_" in report.arg_types else "with"  # sqlglot renamed the argument in v28
    with_ = report.args.get(key)
    if with_ is None:
        report.set(key, exp.With(expressions=[cte]))
    else:
        with_.set("expressions", [cte, *with_.expressions])
    duck = to_duckdb(report, name=name, catalog=catalog, params=params)
    return PreparedSQL(text=duckdb_text(duck, name=name), params=params)
