"""CREATE TABLE statements with partition projection for the configured Athena sources (``auditor athena ddl``).

Three kinds of table (https://docs.aws.amazon.com/athena/latest/ug/partition-projection.html):

- flow logs in text, one table per LogFormat: text tables are positional, so the columns follow the format,
  and the header line each file starts with is skipped
  (https://docs.aws.amazon.com/athena/latest/ug/vpc-flow-logs.html);
- flow logs in Parquet, with Hive-compatible prefixes (``layout: hive``) or AWS's default prefixes;
- CloudTrail, with AWS's column types (https://docs.aws.amazon.com/athena/latest/ug/cloudtrail-logs.html).

The region column: AWS's partition-projection DDL for flow logs names its region partition ``region`` and so
has to leave the v4 ``region`` field out of the columns, which shifts every later field of a text table whose
format includes ``${region}``. Our partitions are named ``aws_account_id`` and ``aws_region``, so the ``region``
field keeps its place and the path's region is a separate column; the engine reads the field and falls back to
the partition (``coalesce(region, aws_region)``), as the local engine falls back to the S3 path.

DDL cannot take execution parameters. Every name in it is validated by the config schema and quoted by
sqlglot, and every string (location, property values) is a quoted sqlglot literal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlglot import exp

from auditor import logformat
from auditor.aws import describe_error
from auditor.config import AthenaSourceSpec, AthenaTableSpec
from auditor.errors import EngineError, UsageError
from auditor.tables import CLOUDTRAIL_COLUMNS

HIVE = "hive"  # Athena DDL is Hive DDL
PROJECTION_START = "2015/06/01"  # VPC Flow Logs launched in June 2015; queries prune to their window anyway
TEXT_FORMAT = "ROW FORMAT DELIMITED\nFIELDS TERMINATED BY ' '"
PARQUET_FORMAT = ("ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'\n"
                  "STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat'\n"
                  "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat'")
CLOUDTRAIL_FORMAT = ("ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'\n"
                     "STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'\n"
                     "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'")


def _ident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect=HIVE)


def _string(value: str) -> str:
    return exp.Literal.string(value).sql(dialect=HIVE)


def _type(duckdb_type: str) -> str:
    return exp.DataType.build(duckdb_type, dialect="duckdb").sql(dialect=HIVE)


def _enum_or_injected(column: str, values: Sequence[str]) -> list[tuple[str, str]]:
    if values:
        return [(f"projection.{column}.type", "enum"), (f"projection.{column}.values", ",".join(values))]
    # Without a configured list the value must come from each query (auditor sends it when accounts: or
    # aws.regions: are set).
    return [(f"projection.{column}.type", "injected")]


def _day_projection(column: str) -> list[tuple[str, str]]:
    return [(f"projection.{column}.type", "date"), (f"projection.{column}.format", "yyyy/MM/dd"),
            (f"projection.{column}.range", f"{PROJECTION_START},NOW"), (f"projection.{column}.interval", "1"),
            (f"projection.{column}.interval.unit", "DAYS")]


def _partitions(source: AthenaSourceSpec, service: str, accounts: Sequence[str],
                regions: Sequence[str], location: str | None = None) -> tuple[list[str], list[tuple[str, str]], str]:
    """(partition columns, projection properties, storage.location.template) for a source's layout, under
    ``location`` (default the source's)."""
    p = source.projection
    loc = location or source.location
    columns: list[str] = []
    props: list[tuple[str, str]] = [("projection.enabled", "true")]
    if p.layout == "day":
        if len(accounts) != 1 or len(regions) != 1:
            raise UsageError("projection.layout: day puts one account and one region in the table's location; "
                             "configure exactly one account and region, or use layout region_day")
        columns.append(p.day_column)
        props += _day_projection(p.day_column)
        return columns, props, f"{loc}{accounts[0]}/{service}/{regions[0]}/${{{p.day_column}}}"
    account = p.account_column
    region = p.region_column
    if account is None or region is None:
        raise UsageError(f"the DDL names the account and region partitions; set projection.account_column and "
                         f"projection.region_column for {service}")
    columns += [account, region]
    props += _enum_or_injected(account, accounts) + _enum_or_injected(region, regions)
    if p.layout == "hive":
        columns += ["year", "month", "day"]
        props += [("projection.year.type", "integer"), ("projection.year.range", "2015,2099"),
                  ("projection.month.type", "integer"), ("projection.month.range", "1,12"),
                  ("projection.month.digits", "2"),
                  ("projection.day.type", "integer"), ("projection.day.range", "1,31"), ("projection.day.digits", "2")]
        template = (f"{loc}aws-account-id=${{{account}}}/aws-service={service.lower()}/aws-region=${{{region}}}/"
                    "year=${year}/month=${month}/day=${day}")
        if p.hourly:
            columns.append("hour")
            props += [("projection.hour.type", "integer"), ("projection.hour.range", "0,23"),
                      ("projection.hour.digits", "2")]
            template += "/hour=${hour}"
        return columns, props, template
    columns.append(p.day_column)
    props += _day_projection(p.day_column)
    template = f"{loc}${{{account}}}/{service}/${{{region}}}/${{{p.day_column}}}"
    if p.hourly:
        columns.append("hour")
        props += [("projection.hour.type", "integer"), ("projection.hour.range", "0,23"), ("projection.hour.digits", "2")]
        template += "/${hour}"
    return columns, props, template


def _statement(database: str, table: str, columns: Sequence[tuple[str, str]], partitions: Sequence[str],
               storage: str, location: str, props: Sequence[tuple[str, str]], comment: str) -> str:
    cols = ",\n".join(f"  {_ident(name)} {kind}" for name, kind in columns)
    parts = ", ".join(f"{_ident(name)} string" for name in partitions)
    properties = ",\n".join(f"  {_string(k)}={_string(v)}" for k, v in props)
    lines = [f"-- {line}" for line in comment.splitlines()]
    lines += [f"CREATE EXTERNAL TABLE IF NOT EXISTS {_ident(database)}.{_ident(table)} (", cols, ")",
              f"PARTITIONED BY ({parts})", storage, f"LOCATION {_string(location)}", "TBLPROPERTIES (", properties, ")"]
    return "\n".join(lines)


def flow_log_table(source: AthenaSourceSpec, table: AthenaTableSpec, accounts: Sequence[str],
                   regions: Sequence[str]) -> str:
    """The CREATE TABLE of one flow-log table: its format's fields, in order, with Athena's types."""
    fields = logformat.parse_log_format(table.format or logformat.DEFAULT_FORMAT)
    types = dict(logformat.TABLE_COLUMNS)
    columns = [(name, _type(types[name])) for name in fields]
    partitions, props, template = _partitions(source, "vpcflowlogs", accounts, regions, table.location)
    if table.file_format == "text":
        storage = TEXT_FORMAT
        props = [("skip.header.line.count", "1")] + props
    else:
        storage = PARQUET_FORMAT
    props = props + [("storage.location.template", template)]
    comment = (f"VPC flow logs, {table.file_format}, format: {table.format or 'the v2 default format'}\n"
               "Partitions aws_account_id/aws_region: the region field keeps its place among the columns.")
    if table.flow_log_ids:
        comment += f"\nauditor reads only the files of {', '.join(table.flow_log_ids)} from this table (\"$path\")."
    return _statement(source.database, table.name, columns, partitions, storage, table.location or source.location,
                      props, comment)


def cloudtrail_table(source: AthenaSourceSpec, table: AthenaTableSpec, accounts: Sequence[str],
                     regions: Sequence[str]) -> str:
    """The CREATE TABLE of a CloudTrail table, with the columns of AWS's DDL."""
    columns = [(name, _type(kind)) for name, kind in CLOUDTRAIL_COLUMNS if name not in ("account_id", "region")]
    partitions, props, template = _partitions(source, "CloudTrail", accounts, regions)
    props = props + [("storage.location.template", template)]
    return _statement(source.database, table.name, columns, partitions, CLOUDTRAIL_FORMAT, source.location, props,
                      "CloudTrail log files, JSON")


def statements(config: Any) -> list[tuple[AthenaSourceSpec, str]]:
    """Every CREATE statement for the config's Athena sources, each with its source."""
    accounts = [a.id for a in config.accounts]
    regions = list(dict.fromkeys([r for a in config.accounts for r in (a.regions or ())] + list(config.aws.regions)))
    out: list[tuple[AthenaSourceSpec, str]] = []
    flow = config.sources.flow_logs
    if flow is not None and flow.engine == "athena":
        out += [(flow, flow_log_table(flow, t, accounts, regions)) for t in flow.tables]
    trail = config.sources.cloudtrail
    if trail is not None and trail.engine == "athena":
        out += [(trail, cloudtrail_table(trail, t, accounts, regions)) for t in trail.tables]
    if not out:
        raise UsageError("no source is read through Athena: set sources.flow_logs or sources.cloudtrail with engine: athena")
    return out


def apply(items: Sequence[tuple[AthenaSourceSpec, str]], client_for: Callable[[AthenaSourceSpec], Any], *,
          sleep: Callable[[float], None] = time.sleep, timeout_s: float = 300.0,
          monotonic: Callable[[], float] = time.monotonic) -> list[str]:
    """Run the statements (each database created first if missing); returns the query IDs."""
    ids: list[str] = []
    created: set[tuple[str, str]] = set()
    for source, sql in items:
        athena = client_for(source)
        if (source.workgroup, source.database) not in created:
            ids.append(_run(athena, source, f"CREATE DATABASE IF NOT EXISTS {_ident(source.database)}", None, sleep,
                            timeout_s, monotonic))
            created.add((source.workgroup, source.database))
        ids.append(_run(athena, source, without_comments(sql), source.database, sleep, timeout_s, monotonic))
    return ids


def without_comments(sql: str) -> str:
    """The statement without its ``--`` comment lines, as sent to Athena: a statement joined onto one line (as
    Athena engine v3 is reported to do with DDL) would otherwise be swallowed by its leading comment. The
    printed DDL keeps them. Only whole comment lines exist in what this module writes."""
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def _run(athena: Any, source: AthenaSourceSpec, sql: str, database: str | None, sleep: Callable[[float], None],
         timeout_s: float, monotonic: Callable[[], float]) -> str:

    request: dict[str, Any] = {"QueryString": sql, "WorkGroup": source.workgroup}
    if database:
        request["QueryExecutionContext"] = {"Database": database}
    if source.output_location:
        request["ResultConfiguration"] = {"OutputLocation": source.output_location}
    try:
        query_id = athena.start_query_execution(**request)["QueryExecutionId"]
        deadline, delay = monotonic() + timeout_s, 0.25
        while True:
            status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
            if status["State"] == "SUCCEEDED":
                return str(query_id)
            if status["State"] in ("FAILED", "CANCELLED"):
                raise EngineError(f"DDL {status['State']}: {status.get('StateChangeReason', 'no reason given')}",
                                  query_id=query_id, engine="athena")
            if monotonic() > deadline:
                raise EngineError("DDL did not finish in time", query_id=query_id, engine="athena")
            sleep(delay)
            delay = min(delay * 2, 5.0)
    except EngineError:
        raise
    except Exception as exc:
        raise EngineError(f"DDL failed: {describe_error(exc)}", engine="athena") from exc
