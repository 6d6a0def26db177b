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

A file that cannot be read never costs the others. When DuckDB cannot read a batch (a truncated, empty or
non-gzip ``.log.gz``, a file that cannot be opened), each file of the batch is tried alone; a damaged gzip stream
gives up the lines before the damage, and every such file is named in its :class:`FileQuality` ``error``. A
line that parses but holds a value no flow log can hold (a port over 65535, a negative count, a start after its
end, an address that is no IP address) is *invalid*: counted, and kept out of the table like a malformed one.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlglot

from auditor.engines.netaddr import IPV4_PATTERN
from auditor.engines.sources.files import read_salvaging
from auditor.errors import InputError
from auditor.logformat import (
    DEFAULT_COLUMNS,
    FIELDS_BY_COLUMN,
    FIELDS_BY_NAME,
    TABLE_COLUMNS,
)
from auditor.models import FileQuality, InputFile, TimeWindow

# The two columns that typed rows (and the Parquet files of :func:`write_parquet`) carry besides the table's:
# each line's class (records 0, NODATA/SKIPDATA 1, malformed 2, invalid 3) and its file's position in its batch.
CLASS_COLUMN, FILE_COLUMN = "__class", "__file"

# AWS writes start and end in Unix seconds; some writers (flowlogs-reader's fixtures) use milliseconds.
# 10^11 seconds is the year 5138, so a larger value can only be milliseconds.
_MS_THRESHOLD = 10**11

# Temporary objects live only for one batch. The prefix keeps them apart from the caller's tables.
_FILES = "__auditor_fl_files"
_LINES = "__auditor_fl_lines"
_HEADERS = "__auditor_fl_headers"
_PARSED = "__auditor_fl_parsed"
_PQ_SRC = "__auditor_fl_pq_src"
_PQ_STAGE = "__auditor_fl_pq_stage"
_REJECTS = "__auditor_fl_rejects"
_REJECT_SCANS = "__auditor_fl_reject_scans"

_RECORD, _NODATA, _MALFORMED, _INVALID = 0, 1, 2, 3
_CLASS_NAMES = ("records", "nodata", "malformed", "invalid")

# What makes a parsed record invalid: values no flow log holds. Ports are 16-bit and protocols one byte
# (https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html), counts are never negative, a flow
# ends no earlier than it starts, and srcaddr/dstaddr are IPv4 or IPv6 addresses ('-' is NULL, and not invalid).
# The IPv6 test is a shape (hex groups and colons, maybe a dotted quad at the end), not a full parse: it is
# run on every line, and a wrong spelling of a real address must not be called invalid.
_IP_SHAPE = rf"{IPV4_PATTERN}|[0-9A-Fa-f:]*:[0-9A-Fa-f:]*(:{IPV4_PATTERN})?"
_PORT_COLUMNS = ("srcport", "dstport")
_COUNT_COLUMNS = ("packets", "bytes")
_ADDRESS_COLUMNS = ("srcaddr", "dstaddr")


class _Tally:
    """Each file's line classes, and why a file could not be read (to its end), by path."""

    def __init__(self, files: Iterable[InputFile]) -> None:
        self.counts: dict[str, Counter[str]] = {f.path: Counter() for f in files}
        self.errors: dict[str, str] = {}

    def __getitem__(self, path: str) -> Counter[str]:
        return self.counts[path]

    def quality(self, path: str) -> FileQuality:
        return FileQuality(path=path, **self.counts[path], error=self.errors.get(path))


_BLANK, _HEADER, _DATA = 0, 1, 2


def _q(name: str) -> str:
    return sqlglot.exp.to_identifier(name, quoted=True).sql("duckdb")



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
    default = _default_format(default_fields)
    _check_kinds(files)
    create_table(con, table)
    unique = list({f.path: f for f in files}.values())
    counts = _Tally(unique)
    params = {"since": window.since_s, "until": window.until_s}
    for batch, select in _typed_batches(con, unique, default, batch_bytes, counts):
        _insert_typed(con, select, table, params, batch, counts)
    return tuple(counts.quality(f.path) for f in files)


def write_parquet(con: duckdb.DuckDBPyConnection, files: Sequence[InputFile], directory: Path, *,
                  default_fields: tuple[str, ...] | None = None, stem: str = "part",
                  batch_bytes: int = 64 * 2**20) -> tuple[tuple[FileQuality, ...], tuple[Path, ...]]:
    """Parse ``files`` once and write all their lines that are records, whatever their start time, as Parquet
    files ``<directory>/<stem>-NNNN.parquet`` (one per batch of about ``batch_bytes`` on disk).

    The files hold the :data:`TABLE_COLUMNS` that the batch's formats name (account and region always, filled
    from the S3 path when a record lacks them; read them with ``union_by_name``), plus
    :data:`CLASS_COLUMN` (0 record, 1 NODATA/SKIPDATA, 2 malformed, 3 invalid: keep ``< 2``) and :data:`FILE_COLUMN`
    (the file's position in its batch). Returns how each file's lines were classed, in the order of
    ``files``, and the Parquet files written.
    """
    default = _default_format(default_fields)
    _check_kinds(files)
    directory.mkdir(parents=True, exist_ok=True)
    unique = list({f.path: f for f in files}.values())
    counts = _Tally(unique)
    written: list[Path] = []
    for batch, select in _typed_batches(con, unique, default, batch_bytes, counts):
        path = directory / f"{stem}-{len(written):04d}.parquet"
        _write_typed(con, select, path, batch, counts)
        written.append(path)
    return tuple(counts.quality(f.path) for f in files), tuple(written)


def _default_format(default_fields: tuple[str, ...] | None) -> _Format:
    default = tuple(default_fields) if default_fields else DEFAULT_COLUMNS
    unknown = [c for c in default if c not in FIELDS_BY_COLUMN]
    if unknown:
        raise ValueError(f"unknown flow-log column(s) in default_fields: {', '.join(unknown)}")
    return default


def _check_kinds(files: Sequence[InputFile]) -> None:
    for f in files:
        if f.kind not in ("text", "parquet"):
            raise ValueError(f"{f.path}: flow logs are text or Parquet files, not {f.kind}")


def _typed_batches(con: duckdb.DuckDBPyConnection, files: Sequence[InputFile], default: _Format, batch_bytes: int,
                   counts: _Tally) -> Iterator[tuple[Sequence[InputFile], str]]:
    """Stage the files batch by batch; for each, yield the batch and a SELECT of its data lines typed in the
    table's schema plus the class and file columns. The staged objects live until the next batch."""
    restore_order = _ensure_insertion_order(con)
    try:
        for batch in _batches([f for f in files if f.kind == "text"], batch_bytes):
            with _text_batch(con, batch, default, counts) as select:
                yield batch, select
        for batch in _batches([f for f in files if f.kind == "parquet"], batch_bytes):
            for start in range(0, len(batch), _MAX_OPEN_PARQUET):
                chunk = batch[start:start + _MAX_OPEN_PARQUET]
                with _parquet_chunk(con, chunk, counts) as select:
                    yield chunk, select
    finally:
        if restore_order:
            con.execute("SET preserve_insertion_order = false")


def _insert_typed(con: duckdb.DuckDBPyConnection, select: str, table: str, params: dict[str, int],
                  batch: Sequence[InputFile], counts: _Tally) -> None:
    # Parsing once into a stage, then inserting and counting from it, beats parsing twice.
    try:
        con.execute(f"CREATE TEMP TABLE {_q(_PARSED)} AS {select}")
        ((held,),) = con.execute(f"SELECT list(column_name) FROM (DESCRIBE {_q(_PARSED)})").fetchall()
        names = ", ".join(_q(c) for c, _ in TABLE_COLUMNS if c in held)
        # A record without a start (a custom format that omits ${start}) cannot be placed in the window. It is
        # kept: its file was already chosen by the date of its delivery folder.
        when = " AND (start IS NULL OR (start >= $since AND start < $until))" if "start" in held else ""
        con.execute(f"INSERT INTO {_q(table)} ({names}) SELECT {names} FROM {_q(_PARSED)} "
                    f"WHERE {_q(CLASS_COLUMN)} < {_MALFORMED}{when}", params if when else None)
        _count(con.execute(f"SELECT {_q(FILE_COLUMN)}, {_q(CLASS_COLUMN)}, count(*) FROM {_q(_PARSED)} GROUP BY ALL"),
               batch, counts)
    finally:
        _drop(con, _PARSED)


@contextmanager
def _unordered(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Let DuckDB write a result in any row order while the block runs, then put the caller's setting back.

    Keeping insertion order makes DuckDB buffer a large result before it writes it, and it serialises the
    writers. Only for results whose row order means nothing to the reader.
    """
    ((order,),) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
    con.execute("SET preserve_insertion_order = false")
    try:
        yield
    finally:
        con.execute("SET preserve_insertion_order = $on", {"on": order})


def _write_typed(con: duckdb.DuckDBPyConnection, select: str, path: Path, batch: Sequence[InputFile],
                 counts: _Tally) -> None:
    # Row order inside a Parquet file means nothing here: line positions were taken when the lines were staged.
    try:
        # LZ4 with Parquet's v2 encodings: measured the cheapest to write and to scan on DuckDB 2.0 (zstd saves
        # a fifth of the bytes for a fifth more CPU); see benchmarks/RESULTS.md.
        with _unordered(con):
            con.execute(f"COPY ({select}) TO $path (FORMAT parquet, COMPRESSION lz4, PARQUET_VERSION V2)",
                        {"path": str(path)})
    except (duckdb.IOException, duckdb.PermissionException) as e:
        raise InputError(f"cannot write {path}: {e}") from e
    # Counting from the two small columns of the file just written is cheaper than parsing twice.
    _count(con.execute(f"SELECT {_q(FILE_COLUMN)}, {_q(CLASS_COLUMN)}, count(*) FROM read_parquet($path) GROUP BY ALL",
                       {"path": str(path)}), batch, counts)


def _count(cur: duckdb.DuckDBPyConnection, batch: Sequence[InputFile], counts: _Tally) -> None:
    for fid, cls, n in cur.fetchall():
        counts[batch[fid].path][_CLASS_NAMES[cls]] += n


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
# The file list is a bound parameter; each line carries its file's position in that list (the reader's
# file_index), which costs far less to keep than the path.
_READ_LINES = (f"read_csv($files, columns = {{'line': 'VARCHAR'}}, delim = $delim, quote = '', escape = '', "
               f"header = false, auto_detect = false, strict_mode = false, store_rejects = true, "
               f"rejects_table = '{_REJECTS}', rejects_scan = '{_REJECT_SCANS}')")

_PROBE_LINES = ("SELECT count(*) FROM read_csv($files, columns = {'line': 'VARCHAR'}, delim = $delim, quote = '', "
                 "escape = '', header = false, auto_detect = false, strict_mode = false, ignore_errors = true)")

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
SELECT fid, line,
       CASE WHEN line IS NULL THEN {_BLANK}
            WHEN NOT regexp_full_match(line, '[a-z\\- \t\r]*') THEN {_DATA}
            WHEN NOT regexp_matches(line, '[^ \t\r]') THEN {_BLANK}
            WHEN len(list_filter(string_split_regex(trim(line, ' \t\r'), '[ \t]+'),
                                 lambda x: list_contains($known, x))) * 2
                 >= len(string_split_regex(trim(line, ' \t\r'), '[ \t]+')) THEN {_HEADER}
            ELSE {_DATA} END AS kind
FROM (SELECT file_index AS fid, {_UNWRAP} AS line FROM {_READ_LINES})
"""

# Each file's distinct header lines, with where each first appears. A file usually has one (repeated or not).
_HEADER_TEXT = "array_to_string(string_split_regex(trim(line, ' \t\r'), '[ \t]+'), ' ')"
_HEADERS_SQL = f"""
SELECT fid, {_HEADER_TEXT} AS header, min(rowid) AS pos
FROM {_q(_LINES)} WHERE kind = {_HEADER} GROUP BY ALL ORDER BY pos
"""
# Every header line of the files that hold more than one format.
_MIXED_HEADERS_SQL = f"""
SELECT fid, rowid AS pos, {_HEADER_TEXT} AS header
FROM {_q(_LINES)} WHERE kind = {_HEADER} AND list_contains($mixed, fid)
"""

_LINE_COUNTS_SQL = f"SELECT fid, kind, count(*) FROM {_q(_LINES)} WHERE kind <> {_DATA} GROUP BY ALL"
_REJECTED_SQL = (f"SELECT s.file_path, count(*) FROM {_q(_REJECTS)} e JOIN {_q(_REJECT_SCANS)} s "
                 f"USING (scan_id, file_id) GROUP BY ALL")

_Format = tuple[str | None, ...]  # a file's field list: column names by position, None for an unknown field
_FROM_PATH = {"account_id": "__account", "region": "__region"}  # the file's values, for records without them


@contextmanager
def _text_batch(con: duckdb.DuckDBPyConnection, batch: Sequence[InputFile], default: _Format,
                counts: _Tally) -> Iterator[str]:
    """Stage a batch of text files (read once, one VARCHAR per line); yield the SELECT of their typed lines."""
    salvage: Path | None = None
    read_as = {f.path: f.path for f in batch}  # the path DuckDB reads for each file: itself, or what was salvaged
    try:
        try:
            _stage_lines(con, [f.path for f in batch])
        except _READ_ERRORS:
            # One file DuckDB cannot read fails the whole batch. Find it, salvage what it holds, and read again.
            _drop(con, _LINES, _REJECTS, _REJECT_SCANS)
            salvage = Path(tempfile.mkdtemp(prefix="auditor-salvage-"))
            read_as = _isolate(con, batch, counts, salvage)
            try:
                _stage_lines(con, [read_as[f.path] for f in batch])
            except _READ_ERRORS as e:
                raise InputError(f"cannot read flow-log text files: {e}") from e
        original = {read: path for path, read in read_as.items()}
        formats: dict[_Format, int] = {default: 0}
        first: dict[int, tuple[int, int]] = {}  # file -> rowid and format of its first header
        mixed: set[int] = set()
        for fid, header, pos in con.execute(_HEADERS_SQL).fetchall():
            fmt = formats.setdefault(_header_columns(header), len(formats))
            if fid in first and first[fid][1] != fmt:
                mixed.add(fid)
            first.setdefault(fid, (pos, fmt))
        con.register(_FILES, pa.table({
            "fid": pa.array(range(len(batch)), pa.int32()),
            "account_id": pa.array([f.account_id for f in batch], pa.string()),
            "region": pa.array([f.region for f in batch], pa.string()),
            "hpos": pa.array([first.get(i, (None, 0))[0] for i in range(len(batch))], pa.int64()),
            "fmt": pa.array([first.get(i, (None, 0))[1] for i in range(len(batch))], pa.int32()),
            "mixed": pa.array([i in mixed for i in range(len(batch))], pa.bool_()),
        }))
        if mixed:
            # Files whose header lines name different field lists (deliveries of several formats put end
            # to end): each line takes the field list of the header above it.
            rows = con.execute(_MIXED_HEADERS_SQL, {"mixed": sorted(mixed)}).fetchall()
            con.register(_HEADERS, pa.table({
                "fid": pa.array([r[0] for r in rows], pa.int32()),
                "pos": pa.array([r[1] for r in rows], pa.int64()),
                "fmt": pa.array([formats[_header_columns(r[2])] for r in rows], pa.int32()),
            }))
        for fid, kind, n in con.execute(_LINE_COUNTS_SQL).fetchall():
            counts[batch[fid].path]["blank" if kind == _BLANK else "headers"] += n
        for filename, n in con.execute(_REJECTED_SQL).fetchall():
            counts[original.get(filename, filename)]["malformed"] += n
        data = _data_sql(bool(mixed))
        # Only the columns some format of the batch holds (plus account and region, which the path gives):
        # writing the other ones, all NULL, would cost time for nothing.
        held = {c for columns in formats for c in columns if c is not None} | set(_FROM_PATH)
        out = tuple(c for c, _ in TABLE_COLUMNS if c in held)
        yield " UNION ALL ".join(_typed_text_sql(data, columns, fmt, out) for columns, fmt in formats.items())
    finally:
        _drop(con, _LINES, _REJECTS, _REJECT_SCANS)
        for name in (_FILES, _HEADERS):
            con.unregister(name)
        if salvage is not None:
            shutil.rmtree(salvage, ignore_errors=True)


_READ_ERRORS = (duckdb.IOException, duckdb.InvalidInputException, duckdb.ConversionException,
                duckdb.PermissionException)


def _stage_lines(con: duckdb.DuckDBPyConnection, paths: list[str]) -> None:
    con.execute(_LINES_SQL, {"files": paths, "delim": "\x01", "known": list(FIELDS_BY_NAME)})


def _isolate(con: duckdb.DuckDBPyConnection, batch: Sequence[InputFile], counts: _Tally,
             salvage: Path) -> dict[str, str]:
    """Try each file of a batch that DuckDB could not read alone. A file it cannot read is read by Python instead
    (a damaged gzip stream up to the damage), and what that yields is written to ``salvage`` as plain text for
    DuckDB to read: an unreadable file yields an empty one. Returns the path to read for each file, and records in
    ``counts`` why a file was not read whole."""
    read_as = {}
    for i, f in enumerate(batch):
        if _readable(con, f.path):
            read_as[f.path] = f.path
            continue
        try:
            data, why = read_salvaging(f.path)
        except OSError as e:
            data, why = b"", f"cannot be read: {e.strerror or e}"
        if why is not None:
            # The last line the damage cut short is no line: dropped, and counted as malformed.
            cut = data.rfind(b"\n") + 1
            if data[cut:].strip():
                counts[f.path]["malformed"] += 1
            data = data[:cut]
        substitute = salvage / f"{i:06d}.log"
        substitute.write_bytes(data)
        if data and not _readable(con, str(substitute)):
            substitute.write_bytes(b"")
            why = f"{why}; what was salvaged could not be read either" if why else "it cannot be read as text"
        if why is not None:
            counts.errors[f.path] = why
        read_as[f.path] = str(substitute)
    return read_as


def _readable(con: duckdb.DuckDBPyConnection, path: str) -> bool:
    """Whether DuckDB's line reader gets through the whole file (bad lines are not the question here)."""
    try:
        con.execute(_PROBE_LINES, {"files": [path], "delim": "\x01"}).fetchall()
    except _READ_ERRORS:
        return False
    return True


def _header_columns(header: str) -> _Format:
    # A name repeated in a header keeps its first position; unknown names keep their place but no column.
    seen: set[str] = set()
    columns: list[str | None] = []
    for name in header.split(" "):
        spec = FIELDS_BY_NAME.get(name)
        if spec is None or spec.column in seen:
            columns.append(None)
        else:
            seen.add(spec.column)
            columns.append(spec.column)
    return tuple(columns)


def _data_sql(mixed: bool) -> str:
    """The data lines of the batch, each with its format, its file's index and its file's account and region."""
    lines, files = _q(_LINES), _q(_FILES)
    # A line before its file's first header (there is none in an S3 delivery) takes the default format.
    single = (f"SELECT f.fid AS __file, l.line, f.account_id AS __account, f.region AS __region, "
              f"CASE WHEN l.rowid > f.hpos THEN f.fmt ELSE 0 END AS fmt "
              f"FROM {lines} l JOIN {files} f ON l.fid = f.fid WHERE l.kind = {_DATA} AND NOT f.mixed")
    if not mixed:
        return single
    return (f"{single} UNION ALL "
            f"SELECT l.__file, l.line, l.__account, l.__region, coalesce(h.fmt, 0) AS fmt FROM ("
            f"SELECT l.rowid AS pos, l.fid, f.fid AS __file, l.line, f.account_id AS __account, "
            f"f.region AS __region "
            f"FROM {lines} l JOIN {files} f ON l.fid = f.fid WHERE l.kind = {_DATA} AND f.mixed) l "
            f"ASOF LEFT JOIN {_q(_HEADERS)} h ON l.fid = h.fid AND l.pos >= h.pos")


def _typed_text_sql(data: str, columns: _Format, fmt: int, out: tuple[str, ...]) -> str:
    """SELECT the lines of one format split and typed as the table columns ``out`` (NULL where the format
    lacks one), plus the class and file columns."""
    n = len(columns)
    # Fast path: split on single spaces. Only a line whose count is off is split again on runs of blanks,
    # after dropping a trailing "#comment": AWS never writes '#' (no field value can hold one), so text
    # after it is an annotation, as in the AWS doc's NAT gateway sample.
    split = (f"CASE WHEN len(s) = {n} THEN s ELSE string_split_regex(regexp_replace("
             f"regexp_replace(line, '[ \\t]+#.*$', ''), '^[ \\t\\r]+|[ \\t\\r]+$', '', 'g'), '[ \\t]+') END")
    position = {c: i + 1 for i, c in reversed(list(enumerate(columns))) if c is not None}
    typed, checks = [], [f"len(t) = {n}"]
    for column, i in position.items():
        type_ = FIELDS_BY_COLUMN[column].type
        if type_ == "VARCHAR":
            typed.append(f"nullif(t[{i}], '-') AS {_q(column)}")
        else:
            typed.append(f"TRY_CAST(t[{i}] AS {type_}) AS {_q(column)}")
            checks.append(f"({_q(column)} IS NOT NULL OR t[{i}] = '-')")
    status = "log_status IN ('NODATA', 'SKIPDATA')" if "log_status" in position else "false"
    values = []
    for column, type_ in TABLE_COLUMNS:
        if column not in out:
            continue
        if column in _FROM_PATH:
            # A record's own account and region; its S3 path names them otherwise.
            own = f"{_q(column)}, " if column in position else ""
            values.append(f"coalesce({own}{_FROM_PATH[column]}) AS {_q(column)}")
        elif column in ("start", "end") and column in position:
            values.append(f"{_seconds(_q(column))} AS {_q(column)}")
        elif column in position:
            values.append(_q(column))
        else:
            values.append(f"CAST(NULL AS {type_}) AS {_q(column)}")
    # NODATA/SKIPDATA records are not traffic, and their values mean nothing: only traffic records are judged.
    cls = (f"CAST(CASE WHEN NOT ({' AND '.join(checks)}) THEN {_MALFORMED} WHEN {status} THEN {_NODATA} "
           f"WHEN {_invalid_sql(set(position), raw_times=True)} THEN {_INVALID} "
           f"ELSE {_RECORD} END AS TINYINT) AS {_q(CLASS_COLUMN)}")
    return (f"SELECT {', '.join(values)}, {cls}, __file AS {_q(FILE_COLUMN)} FROM ("
            f"SELECT __file, __account, __region, t, {', '.join(typed)} FROM ("
            f"SELECT __file, __account, __region, {split} AS t FROM ("
            f"SELECT __file, __account, __region, line, string_split(line, ' ') AS s "
            f"FROM ({data}) WHERE fmt = {fmt})))")


def _seconds(expr: str) -> str:
    return f"(CASE WHEN {expr} > {_MS_THRESHOLD} THEN {expr} // 1000 ELSE {expr} END)"


def _invalid_sql(present: set[str], *, raw_times: bool) -> str:
    """A condition true for a typed record holding a value no flow log holds (see :data:`_IP_SHAPE`), over the
    columns ``present``; NULL ('-') never makes a record invalid. ``raw_times``: start and end are not yet
    normalised to seconds."""
    conditions = [f"NOT ({_q(c)} BETWEEN 0 AND 65535)" for c in _PORT_COLUMNS if c in present]
    if "protocol" in present:
        conditions.append(f"NOT ({_q('protocol')} BETWEEN 0 AND 255)")
    conditions += [f"{_q(c)} < 0" for c in _COUNT_COLUMNS if c in present]
    if {"start", "end"} <= present:
        start, end = (_seconds(_q(c)) if raw_times else _q(c) for c in ("start", "end"))
        conditions.append(f"{start} > {end}")
    conditions += [f"NOT regexp_full_match({_q(c)}, '{_IP_SHAPE}')" for c in _ADDRESS_COLUMNS if c in present]
    return f"({' OR '.join(conditions)})" if conditions else "false"


# -------------------------------------------------------------------------------------------- Parquet files

# At most this many Parquet files are held open at once (each is opened once and read to its end).
_MAX_OPEN_PARQUET = 128


@contextmanager
def _parquet_chunk(con: duckdb.DuckDBPyConnection, chunk: Sequence[InputFile], counts: _Tally) -> Iterator[str]:
    """Stage a chunk of Parquet files; yield the SELECT of their rows in the table's schema plus the class and
    file columns. A file that is no Parquet, or whose data cannot be read, is skipped with its reason in
    ``counts``."""
    # DuckDB's read_parquet opens a file once to bind and again to scan (and with union_by_name, once more
    # to learn each schema), so pyarrow opens each file once and streams its row groups into DuckDB. Files
    # of one schema share one stream.
    with ExitStack() as stack:
        groups: dict[pa.Schema, list[tuple[int, pq.ParquetFile]]] = {}
        for fid, f in enumerate(chunk):
            try:
                pf = stack.enter_context(pq.ParquetFile(f.path))
            except (OSError, pa.ArrowException) as e:
                counts.errors[f.path] = f"not a readable Parquet file: {_first_line(e)}"
                continue
            groups.setdefault(pf.schema_arrow.remove_metadata(), []).append((fid, pf))
        try:
            present = _stage_parquet(con, chunk, groups, counts)
            values = []
            for column, _ in TABLE_COLUMNS:
                if column in _FROM_PATH:
                    own = f"p.{_q(column)}, " if column in present else ""
                    values.append(f"coalesce({own}m.{_q(column)}) AS {_q(column)}")
                elif column in present:
                    values.append(f"p.{_q(column)}")
            yield (f"SELECT {', '.join(values)}, CAST(p.cls AS TINYINT) AS {_q(CLASS_COLUMN)}, "
                   f"p.fid AS {_q(FILE_COLUMN)} FROM {_q(_PQ_STAGE)} p JOIN {_q(_FILES)} m ON p.fid = m.fid")
        finally:
            _drop(con, _PQ_STAGE)
            con.unregister(_FILES)


def _stage_parquet(con: duckdb.DuckDBPyConnection, chunk: Sequence[InputFile],
                   groups: dict[pa.Schema, list[tuple[int, pq.ParquetFile]]], counts: _Tally) -> set[str]:
    """Copy the chunk's rows into a stage of the table columns they hold; return those columns."""
    stages = {schema: _parquet_columns(schema) for schema in groups}
    present = {column for columns in stages.values() for column in columns}
    cols = "".join(f"{_q(c)} {t}, " for c, t in TABLE_COLUMNS if c in present)
    con.execute(f"CREATE TEMP TABLE {_q(_PQ_STAGE)} (fid INTEGER, {cols}cls INTEGER)")
    for schema, members in groups.items():
        columns = stages[schema]
        names = ", ".join(["fid", *map(_q, columns), "cls"])
        values = ", ".join(["__fid", *(f"{expr} AS {_q(c)}" for c, expr in columns.items())])
        status = "log_status IN ('NODATA', 'SKIPDATA')" if "log_status" in columns else "false"
        # A file with no flow-log column at all is no flow log: every row of it is malformed.
        cls = (f"CASE WHEN {status} THEN {_NODATA} WHEN {_invalid_sql(set(columns), raw_times=False)} "
               f"THEN {_INVALID} ELSE {_RECORD} END" if columns else str(_MALFORMED))
        insert = f"INSERT INTO {_q(_PQ_STAGE)} ({names}) SELECT *, {cls} FROM (SELECT {values} FROM {_q(_PQ_SRC)})"
        try:
            _stream_into(con, insert, schema, members)
        except _PARQUET_ERRORS:
            # A damaged row group fails the whole statement, so nothing of the group went in. Again file by
            # file: only the damaged file is skipped.
            for member in members:
                try:
                    _stream_into(con, insert, schema, [member])
                except _PARQUET_ERRORS as e:
                    counts.errors[chunk[member[0]].path] = f"its data cannot be read: {_first_line(e)}"
    con.register(_FILES, pa.table({
        "fid": pa.array(range(len(chunk)), pa.int32()),
        "path": pa.array([f.path for f in chunk], pa.string()),
        "account_id": pa.array([f.account_id for f in chunk], pa.string()),
        "region": pa.array([f.region for f in chunk], pa.string()),
    }))
    return present


_PARQUET_ERRORS = (OSError, pa.ArrowException, duckdb.InvalidInputException, duckdb.IOException)


def _stream_into(con: duckdb.DuckDBPyConnection, insert: str, schema: pa.Schema,
                 members: Sequence[tuple[int, pq.ParquetFile]]) -> None:
    stream = pa.RecordBatchReader.from_batches(schema.append(pa.field("__fid", pa.int32())), _with_fid(members))
    try:
        con.register(_PQ_SRC, stream)
        con.execute(insert)
    finally:
        con.unregister(_PQ_SRC)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _with_fid(members: Sequence[tuple[int, pq.ParquetFile]]) -> Iterator[pa.RecordBatch]:
    for fid, pf in members:
        for b in pf.iter_batches():
            yield pa.RecordBatch.from_arrays([*b.columns, pc.fill_null(pa.nulls(b.num_rows, pa.int32()), fid)],
                                             schema=b.schema.append(pa.field("__fid", pa.int32())))


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
