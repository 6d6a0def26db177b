"""Check SQL is written once, in Athena's dialect (Trino). The embedded engine transpiles it to DuckDB with
sqlglot and fixes, in the AST, the places where sqlglot's translation is known to be wrong.

Every fix-up is golden-tested (tests/golden/sql/), so a sqlglot upgrade that changes a translation shows up
as a diff instead of a wrong number in a report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from auditor.errors import CheckDefinitionError
from auditor.models import TimeWindow

SOURCE_DIALECT = "trino"


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
    return statements[0]


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


def _is_ipaddress_cast(node: exp.Expression) -> bool:
    return isinstance(node, (exp.Cast, exp.TryCast)) and node.to.sql(dialect=SOURCE_DIALECT).upper() == "IPADDRESS"


def _fix_cidr_contains(node: exp.Expression) -> exp.Expression:
    # Trino: contains('10.0.0.0/8', CAST(addr AS IPADDRESS)) tests CIDR membership. sqlglot reads it as
    # array containment (ARRAY_CONTAINS), and DuckDB's inet extension is not available everywhere, so it
    # becomes our cidr_contains(cidr, addr) function (auditor.engines.netaddr), which handles IPv6 and
    # judges IPv4-mapped IPv6 addresses by their IPv4 part, as Trino's IPADDRESS type does.
    if isinstance(node, exp.ArrayContains) and _is_ipaddress_cast(node.expression):
        return exp.Anonymous(this="cidr_contains", expressions=[node.this.copy(), node.expression.this.copy()])
    return node


def _fix_json_cast(node: exp.Expression) -> exp.Expression:
    # Trino: CAST(json_extract(j, '$.k') AS VARCHAR) yields the scalar's text without JSON quotes.
    # sqlglot keeps a JSON -> TEXT cast, which in DuckDB keeps the quotes ("sg-1" instead of sg-1).
    if (isinstance(node, (exp.Cast, exp.TryCast)) and isinstance(node.this, exp.JSONExtract)
            and node.to.is_type(*exp.DataType.TEXT_TYPES)):
        inner = node.this
        return exp.JSONExtractScalar(this=inner.this.copy(), expression=inner.expression.copy())
    return node


def _fix_slice(node: exp.Expression) -> exp.Expression:
    # Trino: slice(array, start, length). DuckDB: array_slice(list, begin, end), both ends inclusive.
    # sqlglot's Trino reader puts the length where the end goes.
    if isinstance(node, exp.ArraySlice) and node.args.get("end") is not None and not node.args.get("is_length"):
        start, length = node.args["start"], node.args["end"]
        end = exp.Sub(this=exp.Add(this=start.copy(), expression=length.copy()), expression=exp.Literal.number(1))
        return exp.ArraySlice(this=node.this.copy(), start=start.copy(), end=end)
    return node


def _reject_unsupported(node: exp.Expression) -> exp.Expression:
    if _is_ipaddress_cast(node):
        raise CheckDefinitionError(
            "CAST(... AS IPADDRESS) is supported only inside contains(<cidr>, CAST(<addr> AS IPADDRESS)) "
            f"for the embedded engine; found: {node.sql(dialect=SOURCE_DIALECT)}")
    if isinstance(node, exp.ApproxDistinct):
        raise CheckDefinitionError("approx_distinct gives engine-dependent numbers; use count(DISTINCT ...) in checks")
    return node


_FIXUPS = (_fix_cidr_contains, _fix_json_cast, _fix_slice)


def to_duckdb(tree: exp.Expression) -> exp.Expression:
    """The Trino AST translated to DuckDB, with the known gaps fixed (see the fix-up functions)."""
    duck = tree.copy()
    for fix in _FIXUPS:
        duck = duck.transform(fix, copy=False)
    duck.transform(_reject_unsupported, copy=False)
    return duck


# Guard against a sqlglot rename of ArraySlice's arguments, which would silently disable _fix_slice.
if not {"start", "end"} <= set(exp.ArraySlice.arg_types):
    raise ImportError(f"sqlglot's ArraySlice arguments changed: {sorted(exp.ArraySlice.arg_types)}")


def transpile(text: str, *, name: str = "query") -> str:
    """Trino SQL text -> DuckDB SQL text with ``$name`` parameters."""
    return to_duckdb(parse(text, name=name)).sql(dialect="duckdb", pretty=True)


def prepare_duckdb(text: str, available: Mapping[str, Any], *, name: str = "query") -> PreparedSQL:
    """Transpile a Trino query for DuckDB and pick the parameter values it binds."""
    tree = parse(text, name=name)
    params = bind(tree, available, name=name)
    return PreparedSQL(text=to_duckdb(tree).sql(dialect="duckdb", pretty=True), params=params)


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
                  ungrouped: bool = False) -> PreparedSQL:
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
    cte = exp.CTE(this=query, alias=exp.TableAlias(this=exp.to_identifier(table)), materialized=False)
    key = "with_" if "with_" in report.arg_types else "with"  # sqlglot renamed the argument in v28
    with_ = report.args.get(key)
    if with_ is None:
        report.set(key, exp.With(expressions=[cte]))
    else:
        with_.set("expressions", [cte, *with_.expressions])
    return PreparedSQL(text=to_duckdb(report).sql(dialect="duckdb", pretty=True), params=params)
