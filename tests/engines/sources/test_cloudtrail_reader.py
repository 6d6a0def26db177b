"""The CloudTrail reader over the corpus: shapes, counts, field values, dedupe, window, digests."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from auditor.engines.sources.cloudtrail import create_table, load_cloudtrail
from auditor.engines.sources.files import describe
from auditor.models import FileQuality, TimeWindow
from auditor.tables import CLOUDTRAIL_COLUMNS

EVERYTHING = TimeWindow(datetime(2000, 1, 1), datetime(2100, 1, 1))

CORPUS_GLOBS = ("stratus-red-team/*.json", "panther-analysis/*.jsonl", "elastic-integrations/cloudtrail/*.log",
                "aws-docs/cloudtrail-log-file-examples/*.json", "cloud-custodian/cwe/*.json")


def load(*paths: Path, window: TimeWindow = EVERYTHING) -> tuple[duckdb.DuckDBPyConnection, tuple[FileQuality, ...]]:
    con = duckdb.connect()
    files = [describe(p) for p in paths]
    return con, load_cloudtrail(con, files, window=window)


def utc_text(event_time: str) -> str:
    """An event time as the reader stores it, computed here with the standard library."""
    t = datetime.fromisoformat(event_time.replace("Z", "+00:00"))
    t = t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{t.microsecond:06d}".rstrip("0") if t.microsecond else "") + "Z"


def rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    rel = con.table("cloudtrail")
    return [dict(zip(rel.columns, r)) for r in rel.fetchall()]


def source_events(path: Path) -> list[dict[str, Any]]:
    """The events of a corpus file, read independently of the reader (one shape per corpus folder)."""
    text = path.read_text()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    doc = json.loads(text)
    if isinstance(doc, list):
        return doc
    return doc["Records"] if "Records" in doc else [doc]


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for pattern in CORPUS_GLOBS for p in corpus.glob(pattern))


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def event(event_id: str, event_time: str, **extra: Any) -> dict[str, Any]:
    return {"eventVersion": "1.08", "eventTime": event_time, "eventID": event_id, "eventName": "DescribeInstances",
            "eventSource": "ec2.amazonaws.com", **extra}


# --- schema ---------------------------------------------------------------------------------------

def test_columns_are_the_athena_ddl_lower_cased_plus_ours(corpus: Path) -> None:
    ddl = (corpus / "aws-docs/athena/cloudtrail-ddl-partition-projection.sql").read_text()
    create = next(s for s in sqlglot.parse(ddl, read="hive") if isinstance(s, exp.Create))
    athena = [(c.name.lower(), c.args["kind"].sql("duckdb").lower()) for c in create.this.expressions]
    ours = [(name, exp.DataType.build(kind, dialect="duckdb").sql("duckdb").lower()) for name, kind in CLOUDTRAIL_COLUMNS]
    assert ours == athena + [("account_id", "text"), ("region", "text")]


def test_created_table_has_the_declared_types() -> None:
    con = duckdb.connect()
    create_table(con)
    create_table(con)  # idempotent
    described = [(r[0], r[1]) for r in con.execute("DESCRIBE cloudtrail").fetchall()]
    assert [name for name, _ in described] == [name for name, _ in CLOUDTRAIL_COLUMNS]
    assert dict(described)["resources"] == "STRUCT(arn VARCHAR, accountid VARCHAR, \"type\" VARCHAR)[]"


# --- corpus shapes --------------------------------------------------------------------------------

def test_every_corpus_file_round_trips_its_json_columns(corpus: Path) -> None:
    """requestparameters / responseelements keep every key, nested or not, of every corpus event."""
    for path in corpus_files(corpus):
        con, (quality,) = load(path)
        events = source_events(path)
        first_by_id: dict[str, dict[str, Any]] = {}
        for e in events:
            if "eventID" in e:
                first_by_id.setdefault(e["eventID"], e)
        expected_rows = len(first_by_id) + sum(1 for e in events if "eventID" not in e)
        assert (quality.records, quality.duplicates, quality.malformed) == (
            expected_rows, len(events) - expected_rows, 0), path.name
        loaded = rows(con)
        assert len(loaded) == expected_rows, path.name
        for row in loaded:
            src = first_by_id[row["eventid"]] if row["eventid"] else next(
                e for e in events if utc_text(e["eventTime"]) == row["eventtime"])
            for column, key in (("requestparameters", "requestParameters"), ("responseelements", "responseElements")):
                if src.get(key) is None:
                    assert row[column] is None, (path.name, column)
                else:
                    assert json.loads(row[column]) == src[key], (path.name, column)
            assert row["eventname"] == src["eventName"]
            assert row["eventtime"] == utc_text(src["eventTime"])  # one canonical form, whatever the file wrote


def test_stratus_bare_arrays(corpus: Path) -> None:
    path = corpus / "stratus-red-team/aws.exfiltration.ec2-security-group-open-port-22-ingress.json"
    (src,) = json.loads(path.read_text())
    con, (quality,) = load(path)
    assert quality == FileQuality(path=str(path), records=1)
    found = con.execute(
        "SELECT useridentity.arn, useridentity.type, useridentity.username, useridentity.sessioncontext,"
        " sourceipaddress, requestid, account_id, region, json_extract_string(requestparameters, '$.cidrIp')"
        " FROM cloudtrail WHERE eventid = $id", {"id": src["eventID"]}).fetchall()
    ident = src["userIdentity"]
    assert "sessionContext" not in ident  # an IAM user's long-term key: the struct is NULL, not an error
    assert found == [(ident["arn"], ident["type"], ident["userName"], None, src["sourceIPAddress"],
                      src["requestID"], src["recipientAccountId"], src["awsRegion"],
                      src["requestParameters"]["cidrIp"])]

    path = corpus / "stratus-red-team/aws.execution.ec2-launch-unusual-instances.json"
    src = next(e for e in json.loads(path.read_text()) if e["eventName"] == "RunInstances")
    con, _ = load(path)
    session = src["userIdentity"]["sessionContext"]
    assert con.execute(
        "SELECT useridentity.sessioncontext.sessionissuer.arn, useridentity.sessioncontext.attributes.mfaauthenticated,"
        " useridentity.sessioncontext.attributes.creationdate, errorcode FROM cloudtrail WHERE eventid = $id",
        {"id": src["eventID"]}).fetchall() == [
        (session["sessionIssuer"]["arn"], session["attributes"]["mfaAuthenticated"],
         session["attributes"]["creationDate"], src["errorCode"])]

    user_data = corpus / "stratus-red-team/aws.execution.ec2-user-data.json"
    events = json.loads(user_data.read_text())
    con, (quality,) = load(user_data)
    assert quality.records == len(events) == 35
    names = dict(con.execute("SELECT eventname, count(*) FROM cloudtrail GROUP BY 1").fetchall())
    assert names["DescribeInstances"] == sum(e["eventName"] == "DescribeInstances" for e in events)


def test_panther_jsonl_counts_duplicate_event_ids(corpus: Path) -> None:
    path = corpus / "panther-analysis/cloudtrail-ec2-network-events.jsonl"
    lines = path.read_text().splitlines()
    ids = [json.loads(line)["eventID"] for line in lines]
    con, (quality,) = load(path)
    # The rule-test fixtures reuse eventIDs between test cases; the reader keeps the first of each.
    assert len(lines) == 18
    assert quality.records == len(set(ids)) == 14
    assert quality.duplicates == len(ids) - len(set(ids)) == 4
    assert quality.records + quality.duplicates + quality.blank + quality.malformed == len(lines)
    assert con.execute("SELECT count(*) FROM cloudtrail").fetchone() == (14,)
    readonly = dict(con.execute("SELECT eventid, readonly FROM cloudtrail").fetchall())
    for line in lines:
        src = json.loads(line)
        if src["eventID"] in readonly and src.get("readOnly") is not None:
            assert readonly[src["eventID"]] == str(src["readOnly"]).lower()  # JSON true -> 'true', as in Athena


def test_elastic_single_record_files(corpus: Path) -> None:
    for path in sorted((corpus / "elastic-integrations/cloudtrail").glob("*.log")):
        text = path.read_text()
        (src,) = source_events(path)
        con, (quality,) = load(path)
        blank_lines = sum(1 for line in text.splitlines() if not line.strip())
        assert quality == FileQuality(path=str(path), records=1, blank=blank_lines), path.name
        (row,) = rows(con)
        assert row["sourceipaddress"] == src["sourceIPAddress"]
        assert row["requestid"] == src["requestID"]
        assert row["useragent"] == src["userAgent"]
        assert row["tlsdetails"]["tlsversion"] == src["tlsDetails"]["tlsVersion"]
        assert row["errorcode"] is None and "errorCode" not in src  # a missing key is NULL
    ends_blank = corpus / "elastic-integrations/cloudtrail/test-run-instances-json.log"
    assert load(ends_blank)[1][0].blank == 1
    no_newline = corpus / "elastic-integrations/cloudtrail/test-authorize-security-group-egress-json.log"
    assert not no_newline.read_bytes().endswith(b"\n") and load(no_newline)[1][0].records == 1


def test_aws_doc_records_documents_without_event_ids(corpus: Path) -> None:
    paths = sorted((corpus / "aws-docs/cloudtrail-log-file-examples").glob("*.json"))
    con, qualities = load(*paths)
    expected = [e for p in paths for e in json.loads(p.read_text())["Records"]]
    assert [q.records for q in qualities] == [len(json.loads(p.read_text())["Records"]) for p in paths]
    # No eventID in these doc examples: nothing to deduplicate on, so nothing is dropped.
    assert sum(q.duplicates for q in qualities) == 0
    loaded = sorted(con.execute(
        "SELECT eventname, useridentity.username, region, account_id FROM cloudtrail").fetchall())
    assert loaded == sorted((e["eventName"], e["userIdentity"]["userName"], e["awsRegion"], e.get("recipientAccountId"))
                            for e in expected)


def test_cloud_custodian_pretty_printed_records(corpus: Path) -> None:
    # These are plain CloudTrail records, pretty-printed, not EventBridge envelopes: no "detail" key.
    paths = sorted((corpus / "cloud-custodian/cwe").glob("*.json"))
    sources = [json.loads(p.read_text()) for p in paths]
    assert all("detail" not in s and "eventTime" in s for s in sources)
    con, qualities = load(*paths)
    # The two console RunInstances recordings carry the same eventID: the second one read is a duplicate.
    ids = [s["eventID"] for s in sources]
    assert [q.duplicates for q in qualities] == [int(i in ids[:n]) for n, i in enumerate(ids)]
    assert sum(q.records for q in qualities) == len(set(ids))
    arns = set(con.execute("SELECT useridentity.sessioncontext.sessionissuer.arn FROM cloudtrail").fetchall())
    assert (sources[0]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"],) in arns


def test_eventbridge_envelope_is_unwrapped(corpus: Path, tmp_path: Path) -> None:
    src = json.loads((corpus / "cloud-custodian/cwe/event-cloud-trail-run-instances.json").read_text())
    envelope = {"version": "0", "id": "e1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
                "time": src["eventTime"], "region": src["awsRegion"], "resources": [], "detail": src}
    path = tmp_path / "eventbridge.json"
    path.write_text(json.dumps(envelope, indent=2))
    con, (quality,) = load(path)
    assert quality.records == 1
    assert con.execute("SELECT eventid, useridentity.arn FROM cloudtrail").fetchall() == [
        (src["eventID"], src["userIdentity"]["arn"])]


# --- S3 layout, digests, dedupe ---------------------------------------------------------------------

def test_gzipped_s3_files_digests_and_dedupe_across_trails(corpus: Path, tmp_path: Path) -> None:
    events = json.loads((corpus / "stratus-red-team/aws.execution.ec2-user-data.json").read_text())
    # Drop the account and region from one event: the S3 path must supply them.
    bare = {k: v for k, v in events[0].items() if k not in ("recipientAccountId", "awsRegion")}
    records = [bare] + events[1:]

    def s3_file(prefix: str, account: str, kind: str, body: dict[str, Any]) -> Path:
        folder = tmp_path / prefix / "AWSLogs" / account / kind / "eu-west-3" / "2024" / "08" / "01"
        folder.mkdir(parents=True)
        path = folder / f"{account}_{kind}_eu-west-3_20240801T1205Z_x.json.gz"
        path.write_bytes(gzip.compress(json.dumps(body).encode()))
        return path

    account_trail = s3_file("acct", "111122223333", "CloudTrail", {"Records": records})
    # The organization trail delivers the same events under AWSLogs/<org-id>/<account>/.
    org_trail = s3_file("org/AWSLogs/o-abc123", "111122223333", "CloudTrail", {"Records": records})
    digest = s3_file("acct2", "111122223333", "CloudTrail-Digest",
                     {"awsAccountId": "111122223333", "digestStartTime": "2024-08-01T11:05:00Z", "logFiles": []})

    con, qualities = load(account_trail, digest, org_trail)
    assert qualities == (FileQuality(path=str(account_trail), records=len(records)),
                         FileQuality(path=str(org_trail), duplicates=len(records)))
    assert con.execute("SELECT count(*), count(DISTINCT eventid) FROM cloudtrail").fetchone() == (35, 35)
    assert con.execute("SELECT account_id, region FROM cloudtrail WHERE eventid = $id",
                       {"id": bare["eventID"]}).fetchall() == [("111122223333", "eu-west-3")]
    other = events[1]
    assert con.execute("SELECT account_id, region FROM cloudtrail WHERE eventid = $id",
                       {"id": other["eventID"]}).fetchall() == [(other["recipientAccountId"], other["awsRegion"])]


# --- window -------------------------------------------------------------------------------------------

def test_window_is_half_open(corpus: Path) -> None:
    path = corpus / "stratus-red-team/aws.execution.ec2-user-data.json"
    events = json.loads(path.read_text())

    def ts(e: dict[str, Any]) -> datetime:
        return datetime.strptime(e["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)

    times = sorted({ts(e) for e in events})
    since, until = times[1], times[-2]
    con, (quality,) = load(path, window=TimeWindow(since, until))
    assert quality.records == len(events)  # counted whether or not the window keeps them
    kept = {r["eventid"] for r in rows(con)}
    assert kept == {e["eventID"] for e in events if since <= ts(e) < until}
    assert any(ts(e) == since for e in events if e["eventID"] in kept)
    assert not any(ts(e) == until for e in events if e["eventID"] in kept)


def test_window_reads_space_separated_and_offset_times(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "times.jsonl", [json.dumps(e) for e in (
        event("a", "2024-12-16 18:41:07.000000000"),  # Panther's fixtures write times this way
        event("b", "2024-12-16T20:41:07+02:00"),  # 18:41:07Z
        event("c", "2024-12-16T18:41:06.999Z"),
        event("d", "2024-12-16T18:41:08Z"),
    )])
    window = TimeWindow(datetime(2024, 12, 16, 18, 41, 7), datetime(2024, 12, 16, 18, 41, 8))
    con, (quality,) = load(path, window=window)
    assert quality.records == 4
    assert sorted(r["eventid"] for r in rows(con)) == ["a", "b"]
    # Both spellings are stored in the one canonical UTC form, which any SQL cast reads in any time zone.
    assert [r["eventtime"] for r in rows(con)] == ["2024-12-16T18:41:07Z", "2024-12-16T18:41:07Z"]


# --- line classes ---------------------------------------------------------------------------------------

def test_malformed_and_blank_lines_never_crash(tmp_path: Path) -> None:
    good = json.dumps(event("g1", "2024-01-01T00:00:00Z"))
    path = write_jsonl(tmp_path / "mixed.jsonl", [
        good,
        "",
        "{not json",
        "[1, 2]",  # an array of two non-objects: two malformed events
        json.dumps({"eventID": "no-time", "eventName": "X"}),
        json.dumps(event("bad-time", "yesterday")),
        "   ",
        "2024-01-01T00:00:01.000Z " + json.dumps(event("cw", "2024-01-01T00:00:01Z")),  # CloudWatch Logs export
        json.dumps({"Records": [event("r1", "2024-01-01T00:00:02Z"), "oops"]}),
    ])
    con, (quality,) = load(path)
    assert quality == FileQuality(path=str(path), records=3, blank=2, malformed=6)
    assert sorted(r["eventid"] for r in rows(con)) == ["cw", "g1", "r1"]


def test_unparsable_files_count_one_malformed(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.json"
    truncated.write_text('{\n  "Records": [\n    {"eventTime": "2024-01-01T00:00:00Z",\n')
    corrupt_gz = tmp_path / "corrupt.json.gz"
    corrupt_gz.write_bytes(gzip.compress(b'{"Records": []}')[:12])
    garbage = tmp_path / "garbage.log"
    garbage.write_text("hello\n\nworld\n")
    not_events = tmp_path / "not-events.json"
    not_events.write_text(json.dumps({"Records": "none"}))
    con, qualities = load(truncated, corrupt_gz, garbage, not_events)
    assert [(q.records, q.blank, q.malformed) for q in qualities] == [(0, 0, 1)] * 4
    assert rows(con) == []


def test_script_user_agent_is_kept_verbatim(tmp_path: Path) -> None:
    # U+2028 is legal unescaped inside a JSON string; a reader splitting lines on it would lose the event.
    agent = '<script>alert("x")</script> & \'quotes\' \u2028 \u00e9'
    line = json.dumps(event("x1", "2024-01-01T00:00:00Z", userAgent=agent,
                            requestParameters={"a": {"<b>": [1, None, True]}}), ensure_ascii=False)
    path = write_jsonl(tmp_path / "xss.jsonl", [line])
    con, _ = load(path)
    (row,) = rows(con)
    assert row["useragent"] == agent
    assert json.loads(row["requestparameters"]) == {"a": {"<b>": [1, None, True]}}


def test_lone_surrogate_does_not_crash(tmp_path: Path) -> None:
    path = tmp_path / "surrogate.jsonl"
    path.write_text('{"eventTime": "2024-01-01T00:00:00Z", "eventID": "s1", "userAgent": "a\\udc80b",'
                    ' "resources": [{"ARN": "arn:aws:s3:::b\\ud800"}]}\n')
    con, (quality,) = load(path)
    assert quality.records == 1
    (row,) = rows(con)
    assert row["useragent"] == "a\ufffdb"
    assert row["resources"] == [{"arn": "arn:aws:s3:::b\ufffd", "accountid": None, "type": None}]


def test_appends_to_a_named_table_and_dedupes_only_within_a_call(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "one.jsonl", [json.dumps(event("e1", "2024-01-01T00:00:00Z"))])
    con = duckdb.connect()
    for _ in range(2):
        (quality,) = load_cloudtrail(con, [describe(path)], window=EVERYTHING, table="ct_other")
        assert quality.records == 1
    assert con.execute("SELECT count(*) FROM ct_other").fetchone() == (2,)


def test_events_outside_the_window_are_counted_not_loaded(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "one.jsonl", [json.dumps(event("e1", "2024-01-01T00:00:00Z"))])
    window = TimeWindow(datetime(2024, 1, 1, 0, 0, 1), datetime(2024, 1, 1) + timedelta(hours=1))
    con, (quality,) = load(path, window=window)
    assert quality.records == 1 and rows(con) == []
