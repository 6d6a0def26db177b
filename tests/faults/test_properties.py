"""Property tests of the two log readers: whatever bytes a file holds, the reader yields records or counted
skips, and never raises. Examples mix well-formed lines with damaged ones and with raw bytes, under every line
end, so that records, classes and skips all occur."""

from __future__ import annotations

import gzip
import json
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.engines.sources.cloudtrail import load_cloudtrail
from auditor.engines.sources.files import describe
from auditor.engines.sources.flowlogs import load_flow_logs
from auditor.models import FileQuality, TimeWindow

EVERYTHING = TimeWindow(datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(3000, 1, 1, tzinfo=timezone.utc))
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLASSES = ("records", "nodata", "headers", "blank", "malformed", "invalid", "duplicates")

HEADER = (b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
          b"log-status")
_fields = st.tuples(
    st.sampled_from([b"2", b"-", b"x"]), st.sampled_from([b"111122223333", b"-"]), st.sampled_from([b"eni-1", b"-"]),
    st.sampled_from([b"203.0.113.9", b"2001:db8::1", b"-", b"bogus", b"999.1.1.1"]),
    st.sampled_from([b"10.0.0.1", b"-"]),
    st.integers(-5, 70_000).map(lambda n: str(n).encode()), st.integers(-5, 70_000).map(lambda n: str(n).encode()),
    st.sampled_from([b"6", b"17", b"-1", b"300", b"tcp"]), st.integers(-3, 10**6).map(lambda n: str(n).encode()),
    st.integers(-3, 10**9).map(lambda n: str(n).encode()),
    st.integers(0, 2 * 10**12).map(lambda n: str(n).encode()),
    st.integers(0, 2 * 10**12).map(lambda n: str(n).encode()),
    st.sampled_from([b"ACCEPT", b"REJECT", b"-"]), st.sampled_from([b"OK", b"NODATA", b"SKIPDATA", b"-"]))
_flow_line = st.one_of(
    _fields.map(b" ".join),
    st.just(HEADER),
    st.binary(max_size=80),
    st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")),
    _fields.map(lambda f: b"  ".join(f) + b" # note"),
)
_line_end = st.sampled_from([b"\n", b"\r\n", b"\r", b""])


def _lines(line: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.lists(st.tuples(line, _line_end), max_size=12).map(lambda parts: b"".join(a + b for a, b in parts))


def _counted(q: FileQuality) -> int:
    return sum(getattr(q, c) for c in CLASSES)


@PROPERTY
@given(data=_lines(_flow_line), name=st.sampled_from(["f.log", "f.log.gz", "f.txt"]), compress=st.booleans())
def test_any_bytes_in_a_flow_log_file_are_records_or_counted_skips(data: bytes, name: str, compress: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
        con = duckdb.connect()
        (q,) = load_flow_logs(con, [describe(path)], window=EVERYTHING)
        ((rows,),) = con.execute("SELECT count(*) FROM flow_logs").fetchall()
    assert all(getattr(q, c) >= 0 for c in CLASSES)
    assert rows <= q.records + q.nodata  # only records and NODATA lines reach the table
    if q.error is None and data.strip(b" \t\r\n"):
        assert _counted(q) >= 1, q  # a file with content either yields lines in some class, or says why not


_event = st.fixed_dictionaries({
    "eventTime": st.sampled_from(["2026-11-10T12:00:00Z", "2026-11-10 12:00:00", "2026-11-10T12:00:00,5 Z",
                                  "yesterday", 5, None]),
    "eventID": st.one_of(st.none(), st.sampled_from(["a", "b", "c"]), st.integers()),
    "eventName": st.sampled_from(["CreateSecurityGroup", "ModifyNetworkInterfaceAttribute", ""]),
    "requestParameters": st.one_of(st.none(), st.just({"groupId": "sg-1"}), st.text(max_size=10), st.integers(),
                                   st.just('{"groupSet": {}}'), st.lists(st.integers(), max_size=2)),
    "userIdentity": st.one_of(st.none(), st.just({"arn": "arn:aws:iam::1:user/a"}), st.text(max_size=5)),
})
_json_doc = st.one_of(
    st.lists(_event, max_size=4).map(lambda evs: json.dumps({"Records": evs}).encode()),
    st.lists(_event, max_size=4).map(lambda evs: b"\n".join(json.dumps(e).encode() for e in evs)),
    st.sampled_from([b'{"Records": null}', b"[" * 5000 + b"]" * 5000, b"{", b"[1, 2, {}]", b"\xef\xbb\xbf{}"]),
    st.binary(max_size=120),
)


@PROPERTY
@given(parts=st.lists(st.tuples(_json_doc, _line_end), min_size=1, max_size=3), compress=st.booleans())
def test_any_bytes_in_a_cloudtrail_file_are_events_or_counted_skips(parts: list[tuple[bytes, bytes]],
                                                                    compress: bool) -> None:
    data = b"".join(a + b for a, b in parts)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trail.json"
        path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
        con = duckdb.connect()
        (q,) = load_cloudtrail(con, [describe(path)], window=EVERYTHING)
        ((rows,),) = con.execute("SELECT count(*) FROM cloudtrail").fetchall()
    assert all(getattr(q, c) >= 0 for c in CLASSES)
    assert rows == q.records  # every event counted as a record is in the table (the window holds them all)
    if q.error is None and rows == 0 and data.strip(b" \t\r\n"):
        # Content without an event is a document of no events ({"Records": []}), or counted as skipped.
        assert _counted(q) >= 1 or _no_events(data), q


def _no_events(data: bytes) -> bool:
    text = data.decode("utf-8", "replace").lstrip("\ufeff")
    docs = [text] + text.split("\n")
    for doc in docs:
        try:
            value = json.loads(doc)
        except (ValueError, RecursionError):
            continue
        if value in ([], {}) or (isinstance(value, dict) and value.get("Records") == []):
            return True
    return False
