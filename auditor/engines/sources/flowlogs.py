"""VPC Flow Logs, as AWS writes them, into one DuckDB table.

AWS writes flow logs in three shapes, and one tree can hold all of them side by side:

* Text files delivered to S3 (``.log.gz``): the first line is a header naming the file's fields, in the order of
  the flow log's format (the Athena DDL skips it with ``skip.header.line.count=1``,
  https://docs.aws.amazon.com/athena/latest/ug/vpc-flow-logs.html). The default format and custom formats of any
  version can sit in one tree, because a format is set per flow log.
* Text exported from CloudWatch Logs: no header, so the fields are the source's configured format.
* Parquet delivered to S3: one column per field, named with underscores
  (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3.html).

Every text file is read exactly once, as one VARCHAR column per line. Header lines are recognised by their
content, each file's field list comes from its own header lines, and lines are split and typed inside DuckDB.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlglot

from auditor.errors import InputError
from auditor.models import FileQuality, InputFile, TimeWindow


@dataclass(frozen=True)
class FieldSpec:
    """One flow-log field: its LogFormat name, its table (and Parquet) column, its DuckDB type, its version."""

    name: str
    column: str
    type: str
    version: int


def _field(name: str, type_: str, version: int) -> FieldSpec:
    return FieldSpec(name, name.replace("-", "_"), type_, version)


# The VPC fields in the order of the "Available fields" table, whose first 14 rows are the default format
# (https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html), then the Transit Gateway-only fields
# in the order of the Transit Gateway table (https://docs.aws.amazon.com/vpc/latest/tgw/tgw-flow-logs.html).
# Types follow the Parquet data types AWS lists for each field and the Athena DDL
# (https://docs.aws.amazon.com/athena/latest/ug/vpc-flow-logs.html): protocol is INT_32 in Parquet but BIGINT in
# the DDL, and the DDL wins because that is the table the checks' SQL is written against.
FIELDS: tuple[FieldSpec, ...] = (
    _field("version", "INTEGER", 2),
    _field("account-id", "VARCHAR", 2),
    _field("interface-id", "VARCHAR", 2),
    _field("srcaddr", "VARCHAR", 2),
    _field("dstaddr", "VARCHAR", 2),
    _field("srcport", "INTEGER", 2),
    _field("dstport", "INTEGER", 2),
    _field("protocol", "BIGINT", 2),
    _field("packets", "BIGINT", 2),
    _field("bytes", "BIGINT", 2),
    _field("start", "BIGINT", 2),
    _field("end", "BIGINT", 2),
    _field("action", "VARCHAR", 2),
    _field("log-status", "VARCHAR", 2),
    _field("vpc-id", "VARCHAR", 3),
    _field("subnet-id", "VARCHAR", 3),
    _field("instance-id", "VARCHAR", 3),
    _field("tcp-flags", "INTEGER", 3),
    _field("type", "VARCHAR", 3),
    _field("pkt-srcaddr", "VARCHAR", 3),
    _field("pkt-dstaddr", "VARCHAR", 3),
    _field("region", "VARCHAR", 4),
    _field("az-id", "VARCHAR", 4),
    _field("sublocation-type", "VARCHAR", 4),
    _field("sublocation-id", "VARCHAR", 4),
    _field("pkt-src-aws-service", "VARCHAR", 5),
    _field("pkt-dst-aws-service", "VARCHAR", 5),
    _field("flow-direction", "VARCHAR", 5),
    _field("traffic-path", "INTEGER", 5),
    _field("ecs-cluster-arn", "VARCHAR", 7),
    _field("ecs-cluster-name", "VARCHAR", 7),
    _field("ecs-container-instance-arn", "VARCHAR", 7),
    _field("ecs-container-instance-id", "VARCHAR", 7),
    _field("ecs-container-id", "VARCHAR", 7),
    _field("ecs-second-container-id", "VARCHAR", 7),
    _field("ecs-service-name", "VARCHAR", 7),
    _field("ecs-task-definition-arn", "VARCHAR", 7),
    _field("ecs-task-arn", "VARCHAR", 7),
    _field("ecs-task-id", "VARCHAR", 7),
    _field("reject-reason", "VARCHAR", 8),
    _field("resource-type", "VARCHAR", 6),
    _field("tgw-id", "VARCHAR", 6),
    _field("tgw-attachment-id", "VARCHAR", 6),
    _field("tgw-src-vpc-account-id", "VARCHAR", 6),
    _field("tgw-dst-vpc-account-id", "VARCHAR", 6),
    _field("tgw-src-vpc-id", "VARCHAR", 6),
    _field("tgw-dst-vpc-id", "VARCHAR", 6),
    _field("tgw-src-subnet-id", "VARCHAR", 6),
    _field("tgw-dst-subnet-id", "VARCHAR", 6),
    _field("tgw-src-eni", "VARCHAR", 6),
    _field("tgw-dst-eni", "VARCHAR", 6),
    _field("tgw-src-az-id", "VARCHAR", 6),
    _field("tgw-dst-az-id", "VARCHAR", 6),
    _field("tgw-pair-attachment-id", "VARCHAR", 6),
    _field("packets-lost-no-route", "BIGINT", 6),
    _field("packets-lost-blackhole", "BIGINT", 6),
    _field("packets-lost-mtu-exceeded", "BIGINT", 6),
    _field("packets-lost-ttl-expired", "BIGINT", 6),
)

TABLE_COLUMNS: tuple[tuple[str, str], ...] = tuple((f.column, f.type) for f in FIELDS)

# "The default format includes all version 2 fields, in the same order that they appear in the table."
DEFAULT_FORMAT: str = " ".join(f"${{{f.name}}}" for f in FIELDS if f.version == 2)

_BY_NAME = {f.name: f for f in FIELDS}
_BY_COLUMN = {f.column: f for f in FIELDS}
_DEFAULT_COLUMNS = tuple(f.column for f in FIELDS if f.version == 2)
_LOG_TOKEN = re.compile(r"^\$\{([^}]*)\}$")

# AWS writes start and end in Unix seconds; some writers (flowlogs-reader's fixtures) use milliseconds.
# 10^11 seconds is the year 5138, so a larger value can only be milliseconds.
_MS_THRESHOLD = 10**11

# Temporary objects live only for one batch. The prefix keeps them apart from the caller's tables.
_FILES = "__auditor_fl_files"
_SRC = "__auditor_fl_src"
_LINES = "__auditor_fl_lines"
_HEADERS = "__auditor_fl_headers"
_PARSED = "__auditor_fl_parsed"
_PQ_SRC = "__auditor_fl_pq_src"
_REJECTS = "__auditor_fl_rejects"
_REJECT_SCANS = "__auditor_fl_reject_scans"

_RECORD, _NODATA, _MALFORMED = 0, 1, 2
_CLASS_NAMES = ("records", "nodata", "malformed")
_BLANK, _HEADER, _DATA = 0, 1, 2


def _q(name: str) -> str:
    return sqlglot.exp.to_identifier(name, quoted=True).sql("duckdb")


def parse_log_format(fmt: str) -> tuple[str, ...]:
    """The column names of an AWS ``LogFormat`` (``"${version} ${vpc-id} ..."``, or plain field names).

    Raises ValueError naming an unknown or repeated field, with the closest known name.
    """
    columns: list[str] = []
    for token in fmt.split():
        m = _LOG_TOKEN.match(token)
        name = m.group(1) if m else token
        spec = _BY_NAME.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, list(_BY_NAME), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(f"unknown flow-log field '{name}'{hint}")
        if spec.column in columns:
            raise ValueError(f"flow-log field '{name}' appears twice in the format")
        columns.append(spec.column)
    if not columns:
        raise ValueError("a flow-log format needs at least one field")
    return tuple(columns)


def create_table(con: duckdb.DuckDBPyConnection, table: str = "flow_logs") -> None:
    """Create ``table`` with :data:`TABLE_COLUMNS` unless it exists."""
    cols = ", ".join(f"{_q(c)} {t}" for c, t in TABLE_COLUMNS)
    con.execute(f"CREATE TABLE IF NOT EXISTS {_q(table)} ({cols})")


def load_flow_logs(con: duckdb.DuckDBPyConnection, files: Sequence[InputFile], *, window: TimeWindow,
                   default_fields: tuple[str, ...] | None = None, table: str = "flow_logs",
                   batch_bytes: int = 64 * 2**20) -> tuple[FileQuality, ...]:
    """Insert the flow-log records of ``files`` that started inside ``window`` into ``table``.

    Traffic records and NODATA/SKIPDATA records both go in, as in AWS's Athena table. ``default_fields``
    (column names, see :func:`parse_log_format`) is the format of header-less text files; the v2 default
    format when None. Each file is read once; files are processed in batches of about ``batch_bytes`` on disk.
    Returns how each file's lines were classed, in the order of ``files``.
    """
    default = tuple(default_fields) if default_fields else _DEFAULT_COLUMNS
    unknown = [c for c in default if c not in _BY_COLUMN]
    if unknown:
        raise ValueError(f"unknown flow-log column(s) in default_fields: {', '.join(unknown)}")
    for f in files:
        if f.kind not in ("text", "parquet"):
            raise ValueError(f"{f.path}: flow logs are text or Parquet files, not {f.kind}")
    create_table(con, table)
    unique = list({f.path: f for f in files}.values())
    counts: dict[str, Counter[str]] = {f.path: Counter() for f in unique}
    params = {"since": window.since_s, "until": window.until_s}
    restore_order = _ensure_insertion_order(con)
    try:
        for batch in _batches([f for f in unique if f.kind == "text"], batch_bytes):
            _load_text_batch(con, batch, default, table, params, counts)
        for batch in _batches([f for f in unique if f.kind == "parquet"], batch_bytes):
            _load_parquet_batch(con, batch, table, params, counts)
    finally:
        if restore_order:
            con.execute("SET preserve_insertion_order = false")
    return tuple(FileQuality(path=f.path, **counts[f.path]) for f in files)


def _ensure_insertion_order(con: duckdb.DuckDBPyConnection) -> bool:
    # A line's position in its file is the rowid of the temporary lines table, which holds only while DuckDB
    # keeps insertion order (its default). Returns whether the caller's setting must be put back.
    ((on,),) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
    if on:
        return False
    con.execute("SET preserve_insertion_order = true")
    return True


def _batches(files: Iterable[InputFile], limit: int) -> Iterator[list[InputFile]]:
    batch: list[InputFile] = []
    size = 0
    for f in files:
        if batch and size + f.size > limit:
            yield batch
            batch, size = [], 0
        batch.append(f)
        size += f.size
    if batch:
        yield batch


def _drop(con: duckdb.DuckDBPyConnection, *tables: str) -> None:
    for t in tables:
        con.execute(f"DROP TABLE IF EXISTS temp.{_q(t)}")


# ----------------------------------------------------------------------------------------------- text files

# One VARCHAR column per line: no delimiter, no quoting, nothing sniffed. strict_mode off so that a stray
# \x01 byte cuts its line short (which then fails the field count) instead of failing the whole read. A line
# DuckDB cannot take at all (bytes that are not UTF-8, a line over 2 MB) goes to the rejects tables instead
# of failing the read, and is counted as malformed.
_READ_LINES = dict(columns={"line": "VARCHAR"}, delimiter="\x01", quotechar="", escapechar="", header=False,
                   auto_detect=False, filename=True, strict_mode=False, store_rejects=True,
                   rejects_table=_REJECTS, rejects_scan=_REJECT_SCANS)

# Two wrappers are taken off before a line is classed:
# * {"message": "<flow line>"}: a CloudWatch Logs event as Firehose or a subscription delivers it;
# * "2024-05-01T12:00:00.000Z <flow line>": a CloudWatch Logs export to S3 puts each event's timestamp
#   in front of its message (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/S3Export.html).
# The cheap first tests keep the regular expressions off ordinary lines.
_UNWRAP = r"""
    CASE WHEN starts_with(line, '{')
              THEN coalesce(CASE WHEN json_valid(line) THEN json_extract_string(line, '$.message') END, line)
         WHEN substr(line, 5, 1) = '-' AND regexp_matches(line, '^\d{4}-\d\d-\d\dT\d\d:\d\d[^ \t]*[ \t]')
              THEN regexp_replace(line, '^[^ \t]+[ \t]+', '')
         ELSE line END"""

# A header line holds only field names: lower-case letters and hyphens. Most of its names must be known, so
# that "bogus line" is no header while a header naming a field newer than this module still is (its
# unknown columns are then skipped). A line of blanks is blank. One regular expression per line; only
# blank or header-like lines go further.
_LINES_SQL = f"""
CREATE TEMP TABLE {_q(_LINES)} AS
SELECT filename, line,
       CASE WHEN line IS NULL THEN {_BLANK}
            WHEN NOT regexp_full_match(line, '[a-z\\- \t\r]*') THEN {_DATA}
            WHEN NOT regexp_matches(line, '[^ \t\r]') THEN {_BLANK}
            WHEN len(list_filter(string_split_regex(trim(line, ' \t\r'), '[ \t]+'),
                                 lambda x: list_contains($known, x))) * 2
                 >= len(string_split_regex(trim(line, ' \t\r'), '[ \t]+')) THEN {_HEADER}
            ELSE {_DATA} END AS kind
FROM (SELECT filename, {_UNWRAP} AS line FROM {_q(_SRC)})
"""

# Each file's distinct header lines, with where each first appears. A file usually has one (repeated or not).
_HEADER_TEXT = "array_to_string(string_split_regex(trim(line, ' \t\r'), '[ \t]+'), ' ')"
_HEADERS_SQL = f"""
SELECT filename, {_HEADER_TEXT} AS header, min(rowid) AS pos
FROM {_q(_LINES)} WHERE kind = {_HEADER} GROUP BY ALL ORDER BY pos
"""
# Every header line of the files that hold more than one format.
_MIXED_HEADERS_SQL = f"""
SELECT filename, rowid AS pos, {_HEADER_TEXT} AS header
FROM {_q(_LINES)} WHERE kind = {_HEADER} AND list_contains($mixed, filename)
"""

_LINE_COUNTS_SQL = f"SELECT filename, kind, count(*) FROM {_q(_LINES)} WHERE kind <> {_DATA} GROUP BY ALL"
_REJECTED_SQL = (f"SELECT s.file_path, count(*) FROM {_q(_REJECTS)} e JOIN {_q(_REJECT_SCANS)} s "
                 f"USING (scan_id, file_id) GROUP BY ALL")

_Format = tuple[str | None, ...]  # a file's field list: column names by position, None for an unknown field
_FROM_PATH = {"account_id": "__account", "region": "__region"}  # the file's values, for records without them


def _load_text_batch(con: duckdb.DuckDBPyConnection, batch: Sequence[InputFile], default: _Format,
                     table: str, params: dict[str, int], counts: dict[str, Counter[str]]) -> None:
    try:
        try:
            con.register(_SRC, con.read_csv([f.path for f in batch], **_READ_LINES))
            con.execute(_LINES_SQL, {"known": list(_BY_NAME)})
        except (duckdb.IOException, duckdb.InvalidInputException, duckdb.ConversionException) as e:
            raise InputError(f"cannot read flow-log text files: {e}") from e
        formats: dict[_Format, int] = {default: 0}
        first: dict[str, tuple[int, int]] = {}  # file -> rowid and format of its first header
        mixed: set[str] = set()
        for filename, header, pos in con.execute(_HEADERS_SQL).fetchall():
            fmt = formats.setdefault(_header_columns(header), len(formats))
            if filename in first and first[filename][1] != fmt:
                mixed.add(filename)
            first.setdefault(filename, (pos, fmt))
        con.register(_FILES, pa.table({
            "path": pa.array([f.path for f in batch], pa.string()),
            "account_id": pa.array([f.account_id for f in batch], pa.string()),
            "region": pa.array([f.region for f in batch], pa.string()),
            "hpos": pa.array([first.get(f.path, (None, 0))[0] for f in batch], pa.int64()),
            "fmt": pa.array([first.get(f.path, (None, 0))[1] for f in batch], pa.int32()),
            "mixed": pa.array([f.path in mixed for f in batch], pa.bool_()),
        }))
        if mixed:
            # Files whose header lines name different field lists (deliveries of several formats put end
            # to end): each line takes the field list of the header above it.
            rows = con.execute(_MIXED_HEADERS_SQL, {"mixed": sorted(mixed)}).fetchall()
            con.register(_HEADERS, pa.table({
                "filename": pa.array([r[0] for r in rows], pa.string()),
                "pos": pa.array([r[1] for r in rows], pa.int64()),
                "fmt": pa.array([formats[_header_columns(r[2])] for r in rows], pa.int32()),
            }))
        for filename, kind, n in con.execute(_LINE_COUNTS_SQL).fetchall():
            counts[filename]["blank" if kind == _BLANK else "headers"] += n
        for filename, n in con.execute(_REJECTED_SQL).fetchall():
            counts[filename]["malformed"] += n
        data = _data_sql(bool(mixed))
        for i, (columns, fmt) in enumerate(formats.items()):
            # Parsing once into a stage, then inserting and counting from it, beats parsing twice.
            con.execute(_stage_text_sql(data, columns, fmt))
            if i == len(formats) - 1:
                _drop(con, _LINES)  # the raw lines are done with: free them before the insert
            con.execute(*_insert_staged_text_sql(table, columns, params))
            for filename, cls, n in con.execute(_STAGE_COUNTS_SQL).fetchall():
                counts[filename][_CLASS_NAMES[cls]] += n
            _drop(con, _PARSED)
    finally:
        _drop(con, _LINES, _PARSED, _REJECTS, _REJECT_SCANS)
        for name in (_SRC, _FILES, _HEADERS):
            con.unregister(name)


def _header_columns(header: str) -> _Format:
    # A name repeated in a header keeps its first position; unknown names keep their place but no column.
    seen: set[str] = set()
    columns: list[str | None] = []
    for name in header.split(" "):
        spec = _BY_NAME.get(name)
        if spec is None or spec.column in seen:
            columns.append(None)
        else:
            seen.add(spec.column)
            columns.append(spec.column)
    return tuple(columns)


def _data_sql(mixed: bool) -> str:
    """The data lines of the batch, each with its format and its file's account and region."""
    lines, files = _q(_LINES), _q(_FILES)
    # A line before its file's first header (there is none in an S3 delivery) takes the default format.
    single = (f"SELECT l.filename, l.line, f.account_id AS __account, f.region AS __region, "
              f"CASE WHEN l.rowid > f.hpos THEN f.fmt ELSE 0 END AS fmt "
              f"FROM {lines} l JOIN {files} f ON l.filename = f.path WHERE l.kind = {_DATA} AND NOT f.mixed")
    if not mixed:
        return single
    return (f"{single} UNION ALL "
            f"SELECT l.filename, l.line, l.__account, l.__region, coalesce(h.fmt, 0) AS fmt FROM ("
            f"SELECT l.rowid AS pos, l.filename, l.line, f.account_id AS __account, f.region AS __region "
            f"FROM {lines} l JOIN {files} f ON l.filename = f.path WHERE l.kind = {_DATA} AND f.mixed) l "
            f"ASOF LEFT JOIN {_q(_HEADERS)} h ON l.filename = h.filename AND l.pos >= h.pos")


def _typed_text_sql(data: str, columns: _Format, fmt: int) -> tuple[str, str]:
    """SELECT the lines of one format split and typed, and the condition that a line is well formed."""
    n = len(columns)
    # Fast path: split on single spaces. Only a line whose count is off is split again on runs of blanks,
    # after dropping a trailing "#comment": AWS never writes '#' (no field value can hold one), so text
    # after it is an annotation, as in the AWS doc's NAT gateway sample.
    split = (f"CASE WHEN len(s) = {n} THEN s ELSE string_split_regex(regexp_replace("
             f"regexp_replace(line, '[ \\t]+#.*$', ''), '^[ \\t\\r]+|[ \\t\\r]+$', '', 'g'), '[ \\t]+') END")
    position = {c: i + 1 for i, c in reversed(list(enumerate(columns))) if c is not None}
    typed, checks = [], [f"len(t) = {n}"]
    for column, i in position.items():
        type_ = _BY_COLUMN[column].type
        if type_ == "VARCHAR":
            typed.append(f"nullif(t[{i}], '-') AS {_q(column)}")
        else:
            typed.append(f"TRY_CAST(t[{i}] AS {type_}) AS {_q(column)}")
            checks.append(f"({_q(column)} IS NOT NULL OR t[{i}] = '-')")
    sql = (f"SELECT filename, __account, __region, t, {', '.join(typed)} FROM ("
           f"SELECT filename, __account, __region, {split} AS t FROM ("
           f"SELECT filename, __account, __region, line, string_split(line, ' ') AS s "
           f"FROM ({data}) WHERE fmt = {fmt}))")
    return sql, " AND ".join(checks)


def _stage_text_sql(data: str, columns: _Format, fmt: int) -> str:
    typed, ok = _typed_text_sql(data, columns, fmt)
    status = "log_status IN ('NODATA', 'SKIPDATA')" if "log_status" in columns else "false"
    return (f"CREATE TEMP TABLE {_q(_PARSED)} AS SELECT * EXCLUDE (t), CASE WHEN NOT ({ok}) THEN {_MALFORMED} "
            f"WHEN {status} THEN {_NODATA} ELSE {_RECORD} END AS cls FROM ({typed})")


_STAGE_COUNTS_SQL = f"SELECT filename, cls, count(*) FROM {_q(_PARSED)} GROUP BY ALL"


def _insert_staged_text_sql(table: str, columns: _Format,
                            params: dict[str, int]) -> tuple[str, dict[str, int] | None]:
    present = {c for c in columns if c is not None}
    names, values = [], []
    for column, _ in TABLE_COLUMNS:
        if column in _FROM_PATH:
            # A record's own account and region; its S3 path names them otherwise.
            own = f"{_q(column)}, " if column in present else ""
            values.append(f"coalesce({own}{_FROM_PATH[column]})")
        elif column in ("start", "end") and column in present:
            values.append(_seconds(_q(column)))
        elif column in present:
            values.append(_q(column))
        else:
            continue
        names.append(_q(column))
    # A record without a start (a custom format that omits ${start}) cannot be placed in the window. It is
    # kept: its file was already chosen by the date of its delivery folder. Parquet follows the same rule.
    when = ""
    if "start" in present:
        start = _seconds(_q("start"))
        when = f" AND (start IS NULL OR ({start} >= $since AND {start} < $until))"
    return (f"INSERT INTO {_q(table)} ({', '.join(names)}) SELECT {', '.join(values)} FROM {_q(_PARSED)} "
            f"WHERE cls <> {_MALFORMED}{when}", params if when else None)


def _seconds(expr: str) -> str:
    return f"(CASE WHEN {expr} > {_MS_THRESHOLD} THEN {expr} // 1000 ELSE {expr} END)"


# -------------------------------------------------------------------------------------------- Parquet files

# At most this many Parquet files are held open at once (each is opened once and read to its end).
_MAX_OPEN_PARQUET = 128


def _load_parquet_batch(con: duckdb.DuckDBPyConnection, batch: Sequence[InputFile], table: str,
                        params: dict[str, int], counts: dict[str, Counter[str]]) -> None:
    # DuckDB's read_parquet opens a file once to bind and again to scan (and with union_by_name, once more
    # to learn each schema), so pyarrow opens each file once and streams its row groups into DuckDB. Files
    # of one schema share one stream; the stage is then inserted and counted in one statement each.
    for start in range(0, len(batch), _MAX_OPEN_PARQUET):
        chunk = batch[start:start + _MAX_OPEN_PARQUET]
        with ExitStack() as stack:
            groups: dict[pa.Schema, list[tuple[int, pq.ParquetFile]]] = {}
            for fid, f in enumerate(chunk):
                try:
                    pf = stack.enter_context(pq.ParquetFile(f.path))
                except (OSError, pa.ArrowException) as e:
                    raise InputError(f"{f.path}: cannot read Parquet flow logs: {e}") from e
                groups.setdefault(pf.schema_arrow.remove_metadata(), []).append((fid, pf))
            try:
                _stage_parquet(con, chunk, groups)
                _insert_staged(con, table, params, chunk, counts)
            finally:
                _drop(con, _PARSED)
                con.unregister(_FILES)


def _stage_parquet(con: duckdb.DuckDBPyConnection, chunk: Sequence[InputFile],
                   groups: dict[pa.Schema, list[tuple[int, pq.ParquetFile]]]) -> None:
    stages = {schema: _parquet_columns(schema) for schema in groups}
    present = {column for columns in stages.values() for column in columns}
    cols = "".join(f"{_q(c)} {t}, " for c, t in TABLE_COLUMNS if c in present)
    con.execute(f"CREATE TEMP TABLE {_q(_PARSED)} (fid INTEGER, {cols}cls INTEGER)")
    for schema, members in groups.items():
        columns = stages[schema]
        stream = pa.RecordBatchReader.from_batches(schema.append(pa.field("__fid", pa.int32())),
                                                   _with_fid(members))
        names = ", ".join(["fid", *map(_q, columns), "cls"])
        values = ", ".join(["__fid", *(f"{expr} AS {_q(c)}" for c, expr in columns.items())])
        status = "log_status IN ('NODATA', 'SKIPDATA')" if "log_status" in columns else "false"
        # A file with no flow-log column at all is no flow log: every row of it is malformed.
        cls = (f"CASE WHEN {status} THEN {_NODATA} ELSE {_RECORD} END" if columns else str(_MALFORMED))
        try:
            con.register(_PQ_SRC, stream)
            con.execute(f"INSERT INTO {_q(_PARSED)} ({names}) SELECT *, {cls} FROM (SELECT {values} "
                        f"FROM {_q(_PQ_SRC)})")
        except (OSError, pa.ArrowException, duckdb.InvalidInputException) as e:
            raise InputError(f"cannot read Parquet flow logs: {e}") from e
        finally:
            con.unregister(_PQ_SRC)
    con.register(_FILES, pa.table({
        "fid": pa.array(range(len(chunk)), pa.int32()),
        "path": pa.array([f.path for f in chunk], pa.string()),
        "account_id": pa.array([f.account_id for f in chunk], pa.string()),
        "region": pa.array([f.region for f in chunk], pa.string()),
    }))


def _with_fid(members: Sequence[tuple[int, pq.ParquetFile]]) -> Iterator[pa.RecordBatch]:
    for fid, pf in members:
        for b in pf.iter_batches():
            yield pa.RecordBatch.from_arrays([*b.columns, pc.fill_null(pa.nulls(b.num_rows, pa.int32()), fid)],
                                             schema=b.schema.append(pa.field("__fid", pa.int32())))


def _insert_staged(con: duckdb.DuckDBPyConnection, table: str, params: dict[str, int],
                   chunk: Sequence[InputFile], counts: dict[str, Counter[str]]) -> None:
    ((staged,),) = con.execute(f"SELECT list(column_name) FROM (DESCRIBE {_q(_PARSED)})").fetchall()
    present = set(staged) - {"fid", "cls"}
    names, values = [], []
    for column, _ in TABLE_COLUMNS:
        if column in ("account_id", "region"):
            own = f"p.{_q(column)}, " if column in present else ""
            values.append(f"coalesce({own}m.{_q(column)})")
        elif column in present:
            values.append(f"p.{_q(column)}")
        else:
            continue
        names.append(_q(column))
    when = "p.start IS NULL OR (p.start >= $since AND p.start < $until)" if "start" in present else "true"
    con.execute(f"INSERT INTO {_q(table)} ({', '.join(names)}) SELECT {', '.join(values)} FROM {_q(_PARSED)} p "
                f"JOIN {_q(_FILES)} m ON p.fid = m.fid WHERE p.cls <> {_MALFORMED} AND ({when})",
                params if "start" in present else None)
    for fid, cls, n in con.execute(f"SELECT fid, cls, count(*) FROM {_q(_PARSED)} GROUP BY ALL").fetchall():
        counts[chunk[fid].path][_CLASS_NAMES[cls]] += n


def _parquet_columns(schema: pa.Schema) -> dict[str, str]:
    """The table columns a Parquet schema holds, each with the SQL that types it.

    AWS's Parquet columns are typed and named by field (with underscores), so no value can land in the
    wrong column and no row is malformed. A value that is no number in a numeric column (other writers store
    text such as '-') is unknown: NULL.
    """
    by_column = {name.replace("-", "_"): name for name in schema.names}
    columns = {}
    for column, type_ in TABLE_COLUMNS:
        source = by_column.get(column)
        if source is None:
            continue
        ref, have = _q(source), _duckdb_type(schema.field(source).type)
        if have == type_:
            expr = ref
        elif have == "VARCHAR":
            expr = f"TRY_CAST(nullif(trim({ref}), '-') AS {type_})"
        else:
            expr = f"TRY_CAST({ref} AS {type_})"
        if type_ == "VARCHAR":
            expr = f"nullif({expr}, '-')"
        if column in ("start", "end"):
            expr = _seconds(expr)
        columns[column] = expr
    return columns


def _duckdb_type(arrow_type: pa.DataType) -> str | None:
    """The DuckDB type a Parquet column arrives as, for the types the table uses; None for any other."""
    if pa.types.is_int32(arrow_type):
        return "INTEGER"
    if pa.types.is_int64(arrow_type):
        return "BIGINT"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "VARCHAR"
    return None
