"""Check SQL -> the SQL Athena runs, through the sqlglot AST. Nothing is pasted into the text.

A check names the logical tables ``flow_logs`` and ``cloudtrail``. Each reference becomes a subquery over the
configured Athena tables (a UNION ALL when a source has one table per flow-log format) that:

- projects every logical column, NULL where a table's format lacks the field, so the check sees the same
  columns as on the local engine;
- restricts the partitions to the days that can hold records of the window. S3 folders are dated by delivery
  time, so the range runs from the window's first day to the day of ``until + delivery_lag``, as the local
  engine prunes files (:func:`auditor.engines.sources.files.may_hold`);
- restricts to the audited account and region: on the partition columns when the table has them, else on
  the object's path (``"$path"``), and to the configured flow log IDs by their file names.

Values travel as Athena execution parameters: every placeholder inside a WHERE clause becomes a positional
``?`` with its value formatted as an Athena literal, in the order the ``?`` appear in the final text
(https://docs.aws.amazon.com/athena/latest/ug/querying-with-prepared-statements.html: parameters are positional
and are placed in the WHERE clause). A placeholder elsewhere (``LIMIT :top_n``, ``date_trunc(:bucket, ..)``) and
any list (``contains(:sensitive_ports, dstport)``) is rendered as a validated, typed literal node of the AST:
integers, booleans, timestamps, integer arrays and short identifier-like strings only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlglot import exp
from sqlglot.dialects.trino import Trino
from sqlglot.tokens import TokenType

from auditor import logformat
from auditor.config import AthenaSourceSpec, AthenaTableSpec, ProjectionSpec
from auditor.engines.sql import bind, parse, window_params
from auditor.errors import CheckDefinitionError, ConfigError
from auditor.models import TimeWindow, utc
from auditor.tables import CLOUDTRAIL_COLUMNS, FLOW_SUMMARY

DIALECT = "trino"
LOGICAL_TABLES = ("flow_logs", "cloudtrail")
PATH_COLUMN = "$path"  # Athena's pseudo-column: the S3 object a row came from
_MARK = "__aud_"
_MARK_NAME = re.compile(r"^__aud_(\d+)$")
_SAFE_STRING = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")  # enums, addresses, CIDRs: what a literal may carry
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Scope:
    """The account and region one query is restricted to (None: not restricted)."""

    account: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class PartitionScan:
    """What one mapped table reads after pruning, for the budget estimate (an S3 listing)."""

    location: str  # s3://bucket/prefix/AWSLogs/
    service: str  # "vpcflowlogs" or "CloudTrail": the folder after the account
    hive: bool
    days: tuple[date, ...]
    account: str | None
    region: str | None
    flow_log_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class AthenaQuery:
    """SQL ready for StartQueryExecution."""

    text: str  # with positional ? placeholders
    parameters: tuple[str, ...]  # ExecutionParameters, in the order of the ? in ``text``
    shown: Mapping[str, Any]  # the check's parameters as bound, for the report
    scans: tuple[PartitionScan, ...] = field(default=())


# --- literals -----------------------------------------------------------------------------------------

def _timestamp_text(value: datetime) -> str:
    # Athena (Trino) reads 'YYYY-MM-DD HH:MM:SS.fff UTC' as a TIMESTAMP WITH TIME ZONE, which compares
    # correctly with from_iso8601_timestamp() and from_unixtime() results.
    return utc(value).strftime("%Y-%m-%d %H:%M:%S.") + f"{utc(value).microsecond // 1000:03d} UTC"


def execution_parameter(value: Any, *, name: str = "parameter") -> str:
    """A value as an Athena execution parameter: the text of a typed SQL literal, strings quoted and escaped."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CheckDefinitionError(f":{name}: {value} cannot be sent to Athena")
        return repr(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise CheckDefinitionError(f":{name}: {value} cannot be sent to Athena")
        return str(value)
    if isinstance(value, datetime):
        return f"TIMESTAMP '{_timestamp_text(value)}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        return exp.Literal.string(value).sql(dialect=DIALECT)
    raise CheckDefinitionError(f":{name}: a {type(value).__name__} cannot be an Athena execution parameter")


def literal_node(value: Any, *, name: str = "parameter") -> exp.Expression:
    """A validated, typed literal for a place where Athena takes no execution parameter."""
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, str) and _SAFE_STRING.match(v) for v in value):
            return exp.Array(expressions=[exp.Literal.string(v) for v in value])  # interface IDs and the like
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise CheckDefinitionError(f":{name}: only lists of integers or identifier-like strings can be sent to "
                                       f"Athena, got {value!r}")
        return exp.Array(expressions=[exp.Literal.number(v) for v in value])
    if isinstance(value, datetime):
        return exp.Cast(this=exp.Literal.string(_timestamp_text(value)),
                        to=exp.DataType.build("TIMESTAMP WITH TIME ZONE", dialect=DIALECT))
    if isinstance(value, str) and _SAFE_STRING.match(value):
        return exp.Literal.string(value)
    raise CheckDefinitionError(f":{name}: {value!r} cannot be written into Athena SQL outside a WHERE clause; "
                               "only integers, booleans, timestamps, integer lists and identifier-like strings can")


# --- partitions and scope ---------------------------------------------------------------------------

def partition_days(window: TimeWindow, delivery_lag: timedelta) -> tuple[date, ...]:
    """The delivery days whose folders can hold records that started in ``window`` (see module docstring)."""
    first = window.since.date()
    last = (window.until + delivery_lag - timedelta(microseconds=1)).date()
    return tuple(first + timedelta(days=i) for i in range((last - first).days + 1))


class _Params:
    """Collects values and hands out uniquely named placeholders for them."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[str, Any]] = {}

    def add(self, value: Any, label: str) -> exp.Placeholder:
        name = f"{_MARK}{len(self.values)}"
        self.values[name] = (label, value)
        return exp.Placeholder(this=name)


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _day_value(day: date, projection: ProjectionSpec) -> Any:
    return day if projection.day_type == "date" else day.strftime("%Y/%m/%d")


def _partition_predicates(source: AthenaSourceSpec, days: Sequence[date], scope: Scope, params: _Params,
                          service: str) -> list[exp.Expression]:
    p = source.projection
    preds: list[exp.Expression] = []
    has_account = p.layout != "day" and p.account_column is not None
    has_region = p.layout != "day" and p.region_column is not None
    if scope.account and has_account:
        preds.append(exp.EQ(this=_col(p.account_column), expression=params.add(scope.account, "account")))
    if scope.region and has_region:
        preds.append(exp.EQ(this=_col(p.region_column), expression=params.add(scope.region, "region")))
    if p.layout == "hive":
        preds.append(_hive_days(days, params))
    else:
        preds.append(exp.Between(this=_col(p.day_column), low=params.add(_day_value(days[0], p), "first_day"),
                                 high=params.add(_day_value(days[-1], p), "last_day")))
    # Without account or region partitions the table's location decides what it holds; the object path
    # tells each row's account and region (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3-path.html).
    account = scope.account if scope.account and not has_account else None
    region = scope.region if scope.region and not has_region else None
    if account or region:
        if p.layout == "hive":
            parts = [f"aws-account-id={account}/" if account else None, f"aws-region={region}/" if region else None]
        elif account and region:
            parts = [f"/{account}/{service}/{region}/"]
        else:
            parts = [f"/{account}/{service}/" if account else f"/{service}/{region}/"]
        for part in filter(None, parts):
            preds.append(_path_contains(part, params, "path"))
    return preds


def _hive_days(days: Sequence[date], params: _Params) -> exp.Expression:
    # One (year, month, day range) term per month: simple equality and range predicates on partition
    # columns, which partition projection can prune on. Hive-compatible folders are zero-padded
    # (year=2026/month=01/day=05, https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3-path.html).
    terms: list[exp.Expression] = []
    months: dict[tuple[int, int], list[date]] = {}
    for d in days:
        months.setdefault((d.year, d.month), []).append(d)
    for (year, month), in_month in months.items():
        terms.append(exp.Paren(this=exp.and_(
            exp.EQ(this=_col("year"), expression=params.add(f"{year:04d}", "year")),
            exp.EQ(this=_col("month"), expression=params.add(f"{month:02d}", "month")),
            exp.Between(this=_col("day"), low=params.add(f"{in_month[0].day:02d}", "first_day"),
                        high=params.add(f"{in_month[-1].day:02d}", "last_day")))))
    return exp.Paren(this=exp.or_(*terms)) if len(terms) > 1 else terms[0]


def _path_contains(fragment: str, params: _Params, label: str) -> exp.Expression:
    return exp.GT(this=exp.Anonymous(this="strpos", expressions=[_col(PATH_COLUMN), params.add(fragment, label)]),
                  expression=exp.Literal.number(0))


# --- logical tables -----------------------------------------------------------------------------------

def _flow_columns(table: AthenaTableSpec) -> tuple[str, ...]:
    return logformat.parse_log_format(table.format or logformat.DEFAULT_FORMAT)


def check_source(logical: str, source: AthenaSourceSpec) -> None:
    """Raise ConfigError when a table's columns collide with its partition columns."""
    p = source.projection
    partition = {c for c in (p.account_column, p.region_column) if c and p.layout != "day"}
    partition |= {"year", "month", "day", "hour"} if p.layout == "hive" else {p.day_column}
    if logical != "flow_logs":
        return
    for table in source.tables:
        clash = sorted(partition & set(_flow_columns(table)))
        if clash:
            raise ConfigError(f"sources.flow_logs: table {table.name}: the format's field(s) {', '.join(clash)} "
                              "are also partition columns; name the partitions apart (projection.region_column: "
                              "aws_region) or leave the field out of the table, as AWS's projection DDL does")


def _flow_select(source: AthenaSourceSpec, table: AthenaTableSpec, wanted: set[str] | None) -> exp.Select:
    present = set(_flow_columns(table))
    p = source.projection
    partition_of = {"account_id": p.account_column if p.layout != "day" else None,
                    "region": p.region_column if p.layout != "day" else None}
    projections = []
    for column, type_ in logformat.TABLE_COLUMNS:
        if wanted is not None and column not in wanted:
            continue
        if column in present:
            node: exp.Expression = _col(column)
            if type_ == "VARCHAR" and table.file_format == "text":
                # Text flow logs write '-' for a field with no value; the local engine reads it as NULL.
                node = exp.Nullif(this=node, expression=exp.Literal.string("-"))
        elif partition_of.get(column):
            node = _col(partition_of[column])
        else:
            node = exp.Cast(this=exp.Null(), to=exp.DataType.build(type_, dialect="duckdb"))
        if column in present and partition_of.get(column):
            node = exp.Coalesce(this=node, expressions=[_col(partition_of[column])])
        projections.append(exp.alias_(node, column, quoted=True))
    return exp.select(*projections).from_(exp.table_(table.name, db=source.database, quoted=True))


def _cloudtrail_select(source: AthenaSourceSpec, table: AthenaTableSpec, wanted: set[str] | None) -> exp.Select:
    p = source.projection
    partition_of = {"account_id": p.account_column if p.layout != "day" else None,
                    "region": p.region_column if p.layout != "day" else None}
    from_event = {"account_id": "recipientaccountid", "region": "awsregion"}
    projections = []
    for column, _ in CLOUDTRAIL_COLUMNS:
        if wanted is not None and column not in wanted:
            continue
        if column in from_event:
            # As on the local engine: the event's own account and region, else the ones its path names.
            node: exp.Expression = _col(from_event[column])
            if partition_of.get(column):
                node = exp.Coalesce(this=node, expressions=[_col(partition_of[column])])
        else:
            node = _col(column)
        projections.append(exp.alias_(node, column, quoted=True))
    return exp.select(*projections).from_(exp.table_(table.name, db=source.database, quoted=True))


def _mapped(logical: str, source: AthenaSourceSpec, window: TimeWindow, delivery_lag: timedelta, scope: Scope,
            params: _Params, wanted: set[str] | None) -> tuple[exp.Expression, list[PartitionScan]]:
    days = partition_days(window, delivery_lag)
    service = "vpcflowlogs" if logical == "flow_logs" else "CloudTrail"
    selects: list[exp.Expression] = []
    scans: list[PartitionScan] = []
    for table in source.tables:
        select = (_flow_select if logical == "flow_logs" else _cloudtrail_select)(source, table, wanted)
        preds = _partition_predicates(source, days, scope, params, service)
        if logical == "flow_logs" and table.flow_log_ids:
            # Object names hold the flow log ID: <account>_vpcflowlogs_<region>_<flow-log-id>_<time>_<hash>.log.gz
            # (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3-path.html).
            ids = [_path_contains(f"_{fid}_", params, "flow_log_id") for fid in table.flow_log_ids]
            preds.append(exp.Paren(this=exp.or_(*ids)) if len(ids) > 1 else ids[0])
        selects.append(select.where(exp.and_(*preds)))
        scans.append(PartitionScan(location=table.location or source.location, service=service, hive=source.projection.layout == "hive",
                                   days=days, account=scope.account, region=scope.region,
                                   flow_log_ids=table.flow_log_ids if logical == "flow_logs" else ()))
    body = selects[0]
    for other in selects[1:]:
        body = exp.Union(this=body, expression=other, distinct=False)
    return body, scans


def compile_query(text: str, *, sources: Mapping[str, AthenaSourceSpec], window: TimeWindow,
                  params: Mapping[str, Any], delivery_lag: timedelta, scope: Scope = Scope(),
                  check_id: str = "query", name: str = "query",
                  materialised: Mapping[str, tuple[str, str]] | None = None) -> AthenaQuery:
    """Map a check's Trino SQL onto the configured Athena tables and bind its parameters (module docstring).

    ``materialised`` maps a table the run created (the flow summary) to its (database, table); it is read as it is,
    without partition predicates."""
    materialised = materialised or {}
    label = f"{check_id}/{name}"
    tree = parse(text, name=label)
    bound = bind(tree, {**window_params(window), **params}, name=label)
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    collected = _Params()
    scans: list[PartitionScan] = []
    wanted = _referenced(tree)
    for table in list(tree.find_all(exp.Table)):
        logical = table.name
        if logical in materialised and not table.args.get("db") and logical not in ctes:
            database, name_ = materialised[logical]
            table.replace(exp.table_(name_, db=database, quoted=True, alias=table.alias or logical))
            continue
        if logical == FLOW_SUMMARY and not table.args.get("db") and logical not in ctes:
            raise CheckDefinitionError(f"{label} reads {logical}, which this run has not created")
        if logical not in LOGICAL_TABLES or table.args.get("db") or logical in ctes:
            continue
        if logical not in sources:
            raise CheckDefinitionError(f"{label} reads {logical}, which no Athena source serves")
        body, table_scans = _mapped(logical, sources[logical], window, delivery_lag, scope, collected, wanted)
        scans.extend(table_scans)
        alias = table.alias or logical
        table.replace(exp.Subquery(this=body, alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True))))

    for ph in list(tree.find_all(exp.Placeholder)):
        if not isinstance(ph.this, str) or _MARK_NAME.match(ph.this):
            continue
        value = bound[ph.this]
        if isinstance(value, (list, tuple)) or ph.find_ancestor(exp.Where) is None:
            ph.replace(literal_node(value, name=ph.this))
        else:
            ph.replace(collected.add(value, ph.this))

    sql = tree.sql(dialect=DIALECT, pretty=True)
    final, order = _positional(sql)
    parameters = tuple(execution_parameter(collected.values[n][1], name=collected.values[n][0]) for n in order)
    if not (_NAME.match(check_id) and _NAME.match(name)):
        raise CheckDefinitionError(f"{label}: check and query names must be lower-case identifiers")
    where = f" {scope.account or '*'}/{scope.region or '*'}" if (scope.account or scope.region) else ""
    # A leading comment names the check in Athena's query history; it carries identifiers only.
    head = f"-- auditor {check_id}/{name}{where}\n"
    return AthenaQuery(text=head + final, parameters=parameters, shown=dict(bound), scans=tuple(scans))


def _referenced(tree: exp.Expression) -> set[str] | None:
    """The names the query uses, so the mapped subquery projects only those columns; None after a ``*``."""
    for star in tree.find_all(exp.Star):
        if isinstance(star.parent, (exp.Select, exp.Column)):
            return None
    return {i.name for i in tree.find_all(exp.Identifier)}


def _positional(sql: str) -> tuple[str, list[str]]:
    """Replace the ``:__aud_N`` placeholders by ``?`` and return the names in textual order.

    The tokenizer tells placeholders from look-alikes inside string literals and comments.
    """
    tokens = Trino().tokenize(sql)
    out: list[str] = []
    order: list[str] = []
    pos = 0
    for i, tok in enumerate(tokens[:-1]):
        nxt = tokens[i + 1]
        if tok.token_type == TokenType.COLON and nxt.token_type == TokenType.VAR and nxt.start == tok.end + 1 \
                and _MARK_NAME.match(nxt.text):
            out.append(sql[pos:tok.start])
            out.append("?")
            order.append(nxt.text)
            pos = nxt.end + 1
    out.append(sql[pos:])
    return "".join(out), order
