"""Flow logs of different formats in CloudWatch Logs (issue 23): each log group is parsed with its own format
and the batches merge into the local engine's answer; a log group whose lines do not match its format is counted
and named in data quality; earliest()/latest() merge exactly across log-group batches when some events lack the
field. CloudWatch's side is a fake that holds the lines as CloudWatch Logs holds them (tests/support/cloudwatch.py)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from botocore.stub import Stubber

from auditor.checks import load_builtin_checks
from auditor.config import InsightsSettings, InsightsSourceSpec
from auditor.config.schema import DEFAULT_SENSITIVE_PORTS
from auditor.engines.embedded import Workspace
from auditor.engines.insights.cloud import CloudInsightsEngine
from auditor.engines.insights.local import run_insights
from auditor.engines.sources import files, flowlogs
from auditor.models import Query, TimeWindow
from auditor.registry import Registry
from tests.support.cloudwatch import CloudWatchLogs, logs_client
from tests.support.flowdata import DEFAULT_FIELDS, record, write_flow_log

WINDOW = TimeWindow(datetime(2026, 11, 10, tzinfo=timezone.utc), datetime(2026, 11, 11, tzinfo=timezone.utc))
# A custom v5 format with another field order than the default one.
V5_FIELDS = ("version", "vpc-id", "subnet-id", "instance-id", "interface-id", "account-id", "type", "srcaddr",
             "dstaddr", "srcport", "dstport", "pkt-srcaddr", "pkt-dstaddr", "protocol", "bytes", "packets", "start",
             "end", "action", "tcp-flags", "log-status", "flow-direction")
V5 = " ".join("${" + f + "}" for f in V5_FIELDS)


def line(rec: dict, fields: tuple[str, ...]) -> str:
    return " ".join("-" if rec.get(f) is None else str(rec[f]) for f in fields)


def records(seed: int, n: int, **fixed) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        r = record(srcaddr=f"198.51.100.{rng.randrange(12)}", dstport=rng.choice([22, 80, 443, 3389, 8080]),
                   action=rng.choice(["ACCEPT", "REJECT"]), bytes=rng.randrange(40, 5000),
                   packets=rng.randrange(1, 9), interface_id=rng.choice(["eni-web", "eni-db"]),
                   start=f"2026-11-10T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{i % 60:02d}Z", **fixed)
        r.update({"vpc-id": "vpc-1", "subnet-id": "subnet-1", "instance-id": "i-1", "type": "IPv4",
                  "pkt-srcaddr": r["srcaddr"], "pkt-dstaddr": r["dstaddr"], "flow-direction": "ingress",
                  "tcp-flags": rng.choice([2, 18, 19, None]), "version": 5 if "vpc-id" in fixed else 2})
        out.append(r)
    return out


@pytest.fixture(scope="module")
def two_formats(tmp_path_factory):
    """A default-format flow log and a custom v5 one: as files for the local engine, as lines in two log groups
    for CloudWatch."""
    default_recs, v5_recs = records(1, 150), records(2, 150)
    root: Path = tmp_path_factory.mktemp("two-formats")
    write_flow_log(root, default_recs, name="fl-default")
    write_flow_log(root, v5_recs, fields=V5_FIELDS, name="fl-v5")
    ws = Workspace()
    flowlogs.load_flow_logs(ws.con, files.discover(root, ("text",)), window=WINDOW)
    groups = {"/vpc/default": [(r["start"], line(r, DEFAULT_FIELDS)) for r in default_recs],
              "/vpc/custom-v5": [(r["start"], line(r, V5_FIELDS)) for r in v5_recs]}
    yield ws, groups
    ws.close()


def cloud_engine(client, groups, fmt=None, row_cap=10_000, min_slice="1h") -> CloudInsightsEngine:
    spec = InsightsSourceSpec(engine="insights", log_groups=groups, format=fmt)
    return CloudInsightsEngine(client, sources={"flow_logs": spec}, settings=InsightsSettings(
        max_concurrency=1, min_slice=min_slice), sleep=lambda s: None, row_cap=row_cap)


def q(text: str) -> Query:
    return Query("adhoc", "query", text, "insights", frozenset({"flow_logs"}), WINDOW, {})


def flow_checks():
    reg: Registry = Registry("check")
    load_builtin_checks(reg)
    return [c for c in reg if "query.insights" in c.queries and "flow_logs" in c.meta.needs]


QUERIES = [
    'filter logStatus = "OK" | stats count(*) as n, sum(bytes) as b, count_distinct(dstPort) as ports by srcAddr',
    'filter action = "REJECT" and logStatus = "OK" | stats count(*) as n by dstPort, interfaceId',
    'filter logStatus = "OK" | stats earliest(tcpFlags) as first_flags, latest(tcpFlags) as last_flags by dstPort',
]


def norm(rows):
    return Counter(tuple(round(v, 9) if isinstance(v, float) else v for v in r) for r in rows)


@pytest.mark.parametrize("text", QUERIES)
def test_each_log_group_parsed_with_its_own_format_gives_the_local_rows(two_formats, text):
    ws, groups = two_formats
    want = run_insights(ws.con, text, "flow_logs", WINDOW)
    fake = CloudWatchLogs(groups, discovered={"/vpc/default"})
    got = cloud_engine(fake.client, ["/vpc/default", {"name": "/vpc/custom-v5", "format": V5}]).run(q(text), WINDOW, {})
    assert got.columns == want.columns and got.types == want.types
    assert norm(got.rows) == norm(want.rows)
    texts = [c["queryString"] for c in fake.calls]
    assert any(t.startswith("parse @message") for t in texts) and any(not t.startswith("parse") for t in texts)
    assert {tuple(c["logGroupNames"]) for c in fake.calls} == {("/vpc/default",), ("/vpc/custom-v5",)}


def test_one_format_for_both_log_groups_loses_rows_either_way(two_formats):
    """What the issue saw: without per-group formats, one of the two flow logs drops out."""
    ws, groups = two_formats
    text = QUERIES[0]
    want = run_insights(ws.con, text, "flow_logs", WINDOW)
    for fmt in (None, V5):
        fake = CloudWatchLogs(groups, discovered={"/vpc/default"})
        got = cloud_engine(fake.client, ["/vpc/default", "/vpc/custom-v5"], fmt=fmt).run(q(text), WINDOW, {})
        assert norm(got.rows) != norm(want.rows)


def test_the_flow_log_checks_equal_the_local_engine_over_two_formats(two_formats):
    ws, groups = two_formats
    checked = []
    for spec in flow_checks():
        params = {**spec.validate_params({}), "sensitive_ports": DEFAULT_SENSITIVE_PORTS}
        text = spec.queries["query.insights"]
        want = run_insights(ws.con, text, "flow_logs", WINDOW, params)
        fake = CloudWatchLogs(groups, discovered={"/vpc/default"})
        query = Query(spec.id, "query", text, "insights", frozenset({"flow_logs"}), WINDOW, params)
        got = cloud_engine(fake.client, ["/vpc/default", {"name": "/vpc/custom-v5", "format": V5}]).run(
            query, WINDOW, params)
        assert norm(got.rows) == norm(want.rows), spec.id
        checked.append(spec.id)
    assert checked == ["exposed_well_known_ports", "top_rejected_sources", "unused_sg_rules"]


def test_lines_that_do_not_match_their_log_groups_format_are_counted_and_named(two_formats):
    _, groups = two_formats
    # The custom log group also receives default-format lines (a second flow log configured into it), and the
    # default one a line of junk.
    mixed = {"/vpc/default": groups["/vpc/default"] + [(WINDOW.since_s + 60, "this is not a flow log record")],
             "/vpc/custom-v5": groups["/vpc/custom-v5"] + groups["/vpc/default"][:7]}
    fake = CloudWatchLogs(mixed, discovered={"/vpc/default"})
    engine = cloud_engine(fake.client, ["/vpc/default", {"name": "/vpc/custom-v5", "format": V5}])
    quality = engine.prepare({"flow_logs": WINDOW})
    assert {f.path: f.malformed for f in quality.files} == {"CloudWatch Logs log group /vpc/default": 1,
                                                            "CloudWatch Logs log group /vpc/custom-v5": 7}
    assert quality.malformed == 8
    assert any("log group /vpc/custom-v5: 7 lines do not match its format ${version} ${vpc-id}" in n
               for n in quality.notes)
    assert any(n.startswith("Logs Insights format check: 2 queries") for n in quality.notes)
    # Clean log groups: nothing counted, and the format check is still billed and said.
    fake = CloudWatchLogs(groups, discovered={"/vpc/default"})
    quality = cloud_engine(fake.client, ["/vpc/default", {"name": "/vpc/custom-v5", "format": V5}]).prepare(
        {"flow_logs": WINDOW})
    assert quality.files == () and quality.malformed == 0


def test_earliest_and_latest_merge_exactly_across_batches_when_first_events_lack_the_field():
    """Batch A's first events (of any kind) come before batch B's, but have no tcpFlags: the merged
    earliest(tcpFlags) must be B's value, the field's own first one."""
    fields = DEFAULT_FIELDS[:-1] + ("tcp-flags", "log-status")
    fmt = " ".join("${" + f + "}" for f in fields)
    a = [record(dstport=8080, start="2026-11-10T01:00:00Z", tcp_flags=None),
         record(dstport=8080, start="2026-11-10T09:00:00Z", tcp_flags=2),
         record(dstport=8080, start="2026-11-10T23:00:00Z", tcp_flags=None)]
    b = [record(dstport=8080, start="2026-11-10T02:00:00Z", tcp_flags=19),
         record(dstport=8080, start="2026-11-10T20:00:00Z", tcp_flags=3)]
    groups = {f"/vpc/a{i:02d}": [] for i in range(50)}
    groups["/vpc/a00"] = [(r["start"], line(r, fields)) for r in a]
    groups["/vpc/b"] = [(r["start"], line(r, fields)) for r in b]
    text = "stats earliest(tcpFlags) as first_flags, latest(tcpFlags) as last_flags, count(*) as n by dstPort"
    fake = CloudWatchLogs(groups, discovered=())
    engine = cloud_engine(fake.client, list(groups), fmt=fmt)
    got = engine.run(q(text), WINDOW, {})
    assert got.rows == ((8080, 19, 3, 5),)
    assert len({tuple(c["logGroupNames"]) for c in fake.calls}) == 2  # two batches: 50 groups and 1
    assert any("ispresent(tcpFlags)" in c["queryString"] for c in fake.calls)


def test_a_format_check_that_fails_costs_no_check_and_is_reported():
    client = logs_client()
    with Stubber(client) as stub:
        stub.add_client_error("start_query", "MalformedQueryException", "unexpected symbol")
        quality = cloud_engine(client, ["/vpc/default"]).prepare({"flow_logs": WINDOW})
        stub.assert_no_pending_responses()
    assert [f.path for f in quality.unreadable] == ["CloudWatch Logs log groups /vpc/default"]
    assert "could not be checked against their format" in quality.unreadable[0].error
    assert "MalformedQueryException" in quality.unreadable[0].error
