"""Loading CloudTrail events into the DuckDB table ``cloudtrail``.

The table has the columns of AWS's Athena CloudTrail table, lower-cased
(https://docs.aws.amazon.com/athena/latest/ug/cloudtrail-logs.html, the partition-projection DDL), so that
check queries written for Athena (``useridentity.arn``, ``useridentity.sessioncontext.sessionissuer.arn``,
``UNNEST(resources)``) run unchanged. As in Athena, ``requestparameters``, ``responseelements``,
``additionaleventdata`` and ``serviceeventdetails`` hold the JSON text of the event's object, every key
kept; any other scalar column given an object gets its JSON text too, and ``true``/``false`` become the
strings ``'true'``/``'false'`` (``readonly``). Keys are matched case-insensitively, as Athena's JsonSerDe
does: events spell ``requestID`` and ``sourceIPAddress``. A missing key is NULL. Two columns are ours:
``account_id`` and ``region``, from ``recipientAccountId``/``awsRegion``, else from the S3 path
``AWSLogs/[o-org/]<account>/CloudTrail/<region>/``.

Accepted file shapes, gzipped or not (detected by the gzip magic bytes, not by the name):

- an S3 log file, ``{"Records": [...]}``
  (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-examples.html);
- a JSON array of events;
- JSON Lines, one event (or one ``Records`` document) per line;
- a CloudWatch Logs export: JSON Lines where a line may start with an ISO timestamp and a space;
- a single event object, pretty-printed or not;
- an EventBridge event whose ``detail-type`` ends in ``via CloudTrail`` (``AWS API Call via CloudTrail``):
  its ``detail`` is the CloudTrail event and is what is loaded
  (https://docs.aws.amazon.com/eventbridge/latest/ref/events-structure.html).

Files under a ``CloudTrail-Digest/`` folder hold digests, not events
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-validation-digest-file-structure.html):
they are skipped and get no :class:`FileQuality` at all.

What each file's :class:`FileQuality` counts:

- ``records``: events parsed, with an ``eventTime``, that were not duplicates, whether or not the window
  kept them;
- ``duplicates``: events whose ``eventID`` an earlier event of the same call already had (an organization
  trail and an account trail deliver the same event; CloudTrail's ``eventID`` is a per-event GUID,
  https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html).
  The first one read wins. Events without an ``eventID`` are never taken as duplicates;
- ``blank``: blank lines of a JSON Lines file (blank lines inside one JSON document are not counted);
- ``malformed``: lines that are not JSON (or nest deeper than Python's parser goes), elements or documents
  that are not objects, events without a parsable ``eventTime``. A file from which no line parses at all
  counts as one malformed;
- ``invalid``: events that parse but cannot be interpreted: ``requestParameters`` or ``responseElements``
  that is not a JSON object (a JSON text of an object is taken as that object). They are left out of the
  table, and each is named in the file's ``notes`` (the first :data:`NOTED_EVENTS`);
- ``error``: why the file could not be read (to its end); a damaged gzip stream keeps what decompressed
  before the damage.

Times and JSON are parsed here, once, so that no check's SQL can fail on one odd event: ``eventtime`` holds
the event time in one canonical form, ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` in UTC, whatever the file wrote
(ISO 8601 with ``T`` or a space, ``.`` or ``,`` before any number of fraction digits, an offset, or none,
which is UTC), and ``requestparameters`` and ``responseelements`` hold JSON text of an object, or NULL. Rows
with ``window.since <= eventTime < window.until`` are kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from auditor.engines.sources.files import read_salvaging
from auditor.models import FileQuality, InputFile, TimeWindow
from auditor.tables import CLOUDTRAIL_COLUMNS, CLOUDTRAIL_EVENT_FIELDS, CLOUDTRAIL_OWN_FIELDS, TEXT, Spec, ddl

TABLE = "cloudtrail"
DIGEST_FOLDER = "CloudTrail-Digest"

_BATCH_ROWS = 50_000  # rows held in memory before they are handed to DuckDB
NOTED_EVENTS = 10  # invalid events named per file; the count covers them all
# The columns that must hold a JSON object: the SG-change checks read their keys.
_OBJECT_COLUMNS = ("requestparameters", "responseelements")

def _arrow_type(spec: Spec) -> pa.DataType:
    if spec == TEXT:
        return pa.string()
    if spec[0] == "STRUCT":
        return pa.struct([pa.field(name, _arrow_type(s)) for name, s in spec[1]])
    if spec[0] == "LIST":
        return pa.list_(_arrow_type(spec[1]))
    return pa.map_(pa.string(), pa.string())


_ARROW_SCHEMA = pa.schema([pa.field(name, _arrow_type(spec))
                          for name, spec in CLOUDTRAIL_EVENT_FIELDS + CLOUDTRAIL_OWN_FIELDS])


def create_table(con: duckdb.DuckDBPyConnection, table: str = TABLE) -> None:
    """Create the CloudTrail table (see the module docstring for its columns) unless it exists."""
    con.execute(ddl(table, CLOUDTRAIL_COLUMNS))


def load_cloudtrail(con: duckdb.DuckDBPyConnection, files: Sequence[InputFile], *, window: TimeWindow,
                    table: str = TABLE) -> tuple[FileQuality, ...]:
    """Append the events of ``files`` that fall in ``window`` to ``table`` (created when missing).

    Returns one :class:`FileQuality` per file read, in the order given; digest files are skipped and
    have none. Duplicates are dropped by ``eventID`` across all ``files`` of this call.
    """
    create_table(con, table)
    seen_ids: set[str] = set()
    batch: list[dict[str, Any]] = []
    qualities: list[FileQuality] = []
    for f in files:
        if is_digest(f.path):
            continue
        counts = _Counts()
        for event in _read_events(Path(f.path), counts):
            event_time = _parse_event_time(_get(event, "eventtime"))
            if event_time is None:
                counts.malformed += 1
                continue
            event_id = _text(_get(event, "eventid"))
            why = _uninterpretable(event)
            if why is not None:
                counts.invalid += 1
                if len(counts.notes) < NOTED_EVENTS:
                    name = _text(_get(event, "eventname")) or "an event without eventName"
                    counts.notes.append(f"event {event_id or '(no eventID)'} ({name}) left out: {why}")
                continue
            if event_id is not None:
                if event_id in seen_ids:
                    counts.duplicates += 1
                    continue
                seen_ids.add(event_id)
            counts.records += 1
            if window.since <= event_time < window.until:
                batch.append(_row(event, f, event_time))
                if len(batch) >= _BATCH_ROWS:
                    _insert(con, table, batch)
                    batch = []
        qualities.append(FileQuality(path=f.path, records=counts.records, blank=counts.blank,
                                     malformed=counts.malformed, duplicates=counts.duplicates,
                                     invalid=counts.invalid, error=counts.error, notes=tuple(counts.notes)))
    _insert(con, table, batch)
    return tuple(qualities)


def is_digest(path: str) -> bool:
    """Whether ``path`` lies under a ``CloudTrail-Digest/`` folder."""
    return DIGEST_FOLDER in Path(path).parts


class _Counts:
    __slots__ = ("records", "blank", "malformed", "duplicates", "invalid", "error", "notes")

    def __init__(self) -> None:
        self.records = self.blank = self.malformed = self.duplicates = self.invalid = 0
        self.error: str | None = None
        self.notes: list[str] = []


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    try:
        arrow = pa.Table.from_pylist(rows, schema=_ARROW_SCHEMA)
    except UnicodeEncodeError:
        # JSON may escape a lone UTF-16 surrogate ("\udc80", e.g. in an attacker's userAgent), which
        # UTF-8 cannot hold. Only then pay for a second pass that turns such surrogates into U+FFFD.
        arrow = pa.Table.from_pylist([_scrub(row) for row in rows], schema=_ARROW_SCHEMA)
    con.from_arrow(arrow).insert_into(table)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub(v) for v in value)
    return value


# --- reading files --------------------------------------------------------------------------------

# CloudWatch Logs exports may put the ingestion timestamp before each event: "2024-05-01T10:00:00.000Z {...}".
_TIMESTAMP_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}[T ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?\s+(?=[{\[])")


def _read_events(path: Path, counts: _Counts) -> Iterator[Any]:
    """The event candidates of one file; blank and malformed lines are counted into ``counts``."""
    try:
        data, counts.error = read_salvaging(path, gzip_by_name=False)
    except OSError as e:
        counts.error = f"cannot be read: {e.strerror or e}"
        return
    # Undecodable bytes become U+FFFD, so the line they are on fails to parse and counts as malformed.
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    # Split on "\n" only: str.splitlines() would also split on U+2028 and friends, which JSON strings
    # may hold unescaped (a user agent, an error message).
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        counts.blank += len(lines)
        return
    # JSON Lines (or a one-line document) when the first line is a whole document on its own;
    # otherwise try the whole file as one pretty-printed document, and fall back to lines.
    first_doc = _loads(lines[first])
    if not isinstance(first_doc, (dict, list)):
        doc = _loads(text)
        if isinstance(doc, (dict, list)):
            yield from _events_of(doc, counts)
            return
    parsed_any = False
    blank = malformed = 0
    for i, line in enumerate(lines):
        if not line.strip():
            blank += 1
            continue
        doc = first_doc if i == first else _loads(line)
        if doc is _INVALID:
            doc = _loads(_TIMESTAMP_PREFIX.sub("", line.strip(), count=1))
        if doc is _INVALID:
            malformed += 1
            continue
        parsed_any = True
        yield from _events_of(doc, counts)
    if parsed_any:
        counts.blank += blank
        counts.malformed += malformed
    else:
        counts.malformed += 1  # nothing in the file is JSON: one unreadable file, not N bad lines


_INVALID = object()


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes ([[[[...)
        return _INVALID


def _events_of(doc: Any, counts: _Counts) -> Iterable[Any]:
    """The events in one parsed JSON value: a Records document, an array, an EventBridge event, an event."""
    if isinstance(doc, list):
        items: Iterable[Any] = doc
    elif isinstance(doc, dict) and "Records" in doc:
        items = doc["Records"] if isinstance(doc["Records"], list) else [None]
    else:
        items = [doc]
    events = []
    for item in items:
        item = _unwrap_eventbridge(item)
        if isinstance(item, dict):
            events.append(item)
        else:
            counts.malformed += 1
    return events


def _unwrap_eventbridge(item: Any) -> Any:
    if (isinstance(item, dict) and isinstance(item.get("detail"), dict)
            and str(item.get("detail-type", "")).endswith("via CloudTrail")):
        return item["detail"]
    return item


_ISO_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?\s*(Z|[+-]\d{2}(?::?\d{2})?)?", re.I)


def _parse_event_time(value: Any) -> datetime | None:
    """``eventTime`` as an aware UTC datetime, or None when it is missing or not ISO 8601."""
    if not isinstance(value, str):
        return None
    m = _ISO_TIME.fullmatch(value.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    try:
        t = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                     int((fraction or "0")[:6].ljust(6, "0")), tzinfo=timezone.utc)
    except ValueError:
        return None
    if zone and zone.upper() != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        t -= sign * offset
    return t


# --- converting one event to a row ---------------------------------------------------------------

def _get(obj: dict[str, Any], key: str) -> Any:
    """``obj[key]`` matched case-insensitively (``key`` is lower case), as Athena's JsonSerDe does."""
    if key in obj:
        return obj[key]
    for k, v in obj.items():
        if k.lower() == key:
            return v
    return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_Converter = Callable[[Any], Any]


def _converter(spec: Spec) -> _Converter:
    """A function turning a JSON value into the Python value of a column of type ``spec``.

    Built once per spec, so converting an event costs no look-ups in the spec itself.
    """
    if spec == TEXT:
        return _text
    if spec[0] == "STRUCT":
        fields = tuple((name, _converter(s)) for name, s in spec[1])

        def struct(value: Any) -> dict[str, Any] | None:
            if not isinstance(value, dict):
                return None
            lowered = {k.lower(): v for k, v in value.items()}
            return {name: convert(lowered.get(name)) for name, convert in fields}
        return struct
    if spec[0] == "LIST":
        element = _converter(spec[1])

        def array(value: Any) -> list[Any] | None:
            return [element(v) for v in value] if isinstance(value, list) else None
        return array

    def mapping(value: Any) -> list[tuple[str, str | None]] | None:
        return [(str(k), _text(v)) for k, v in value.items()] if isinstance(value, dict) else None
    return mapping


_ROW_CONVERTERS: tuple[tuple[str, _Converter], ...] = tuple((name, _converter(spec)) for name, spec in CLOUDTRAIL_EVENT_FIELDS)


def _uninterpretable(event: dict[str, Any]) -> str | None:
    """Why an event cannot be interpreted, or None: a column that must hold a JSON object holds something else."""
    for column in _OBJECT_COLUMNS:
        value = _object(_get(event, column))
        if value is _INVALID:
            key = "requestParameters" if column == "requestparameters" else "responseElements"
            return f"{key} is not a JSON object"
    return None


def _object(value: Any) -> Any:
    """A JSON object (or None) from an event's value: an object, or the JSON text of one; _INVALID otherwise."""
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, str):
        parsed = _loads(value)
        if isinstance(parsed, dict):
            return parsed
    return _INVALID


def canonical_time(t: datetime) -> str:
    """An event time as the table holds it: ISO 8601 in UTC with ``Z``, fraction digits only when there are."""
    text = t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += f".{t.microsecond:06d}".rstrip("0")
    return text + "Z"


def _row(event: dict[str, Any], source: InputFile, event_time: datetime) -> dict[str, Any]:
    lowered = {k.lower(): v for k, v in event.items()}
    for column in _OBJECT_COLUMNS:
        lowered[column] = _object(lowered.get(column))  # the object behind a JSON text of one
    row = {name: convert(lowered.get(name)) for name, convert in _ROW_CONVERTERS}
    row["eventtime"] = canonical_time(event_time)
    row["account_id"] = row["recipientaccountid"] or source.account_id
    row["region"] = row["awsregion"] or source.region
    return row
