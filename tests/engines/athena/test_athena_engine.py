"""The Athena engine's API flow under botocore Stubber: paging and types, throttling, FAILED, CANCELLED, timeouts,
the scan budget, and a failing query that errors its check while the others run."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import boto3
import pytest
from botocore.stub import ANY, Stubber

from auditor.aws import AwsSessions, Budget
from auditor.config import (
    AthenaSettings,
    AthenaSourceSpec,
    PricingSettings,
    load_config,
)
from auditor.engines.athena.cost import billed_bytes, cost_usd
from auditor.engines.athena.engine import AthenaEngine, convert
from auditor.engines.athena.querymap import Scope
from auditor.errors import CheckSkipped, EngineError
from auditor.models import Query, Status, TimeWindow
from auditor.pipeline import run_audit
from tests.support.flowdata import write_config, write_inventory
from tests.support.moto_server import FAKE_ENV
from tests.support.trail import authorized, revoked

WINDOW = TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc))
SOURCE = AthenaSourceSpec.model_validate({"engine": "athena", "database": "sec", "tables": ["vpc_v2"],
                                         "workgroup": "audit", "output_location": "s3://results/auditor/",
                                         "location": "s3://org-logs/AWSLogs/"})
SQL = "SELECT srcaddr, count(*) AS n FROM flow_logs WHERE start >= :since_s AND start < :until_s GROUP BY srcaddr"
QID = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch):
    for k, v in FAKE_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing may leave the machine


class Clock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, s):
        self.sleeps.append(s)
        self.now += s

    def monotonic(self):
        return self.now


@pytest.fixture
def stubs():
    athena = boto3.client("athena", region_name="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    glue = boto3.client("glue", region_name="us-east-1")
    with Stubber(athena) as a, Stubber(s3) as s, Stubber(glue) as g:
        yield {"athena": athena, "s3": s3, "glue": glue, "a": a, "s": s, "g": g}
        a.assert_no_pending_responses()
        s.assert_no_pending_responses()
        g.assert_no_pending_responses()


def engine(stubs, clock, *, budget=None, timeout="30m"):
    return AthenaEngine(sources={"flow_logs": SOURCE}, settings=AthenaSettings(timeout=timeout),
                        budget=budget or Budget(None), delivery_lag=timedelta(days=1),
                        clients=lambda service, region: stubs[service], scope=Scope("111122223333", "us-east-1"),
                        region="us-east-1", sleep=clock.sleep, monotonic=clock.monotonic, jitter=lambda: 0.5)


def query():
    return Query(check_id="probe", name="query", text=SQL, dialect="trino", tables=frozenset({"flow_logs"}),
                 window=WINDOW)


def expect_start(a):
    a.add_response("start_query_execution", {"QueryExecutionId": QID}, {
        "QueryString": ANY, "WorkGroup": "audit", "ClientRequestToken": ANY,
        "QueryExecutionContext": {"Database": "sec", "Catalog": "AwsDataCatalog"},
        "ResultConfiguration": {"OutputLocation": "s3://results/auditor/"},
        "ExecutionParameters": ["'111122223333'", "'us-east-1'", "'2026/11/09'", "'2026/11/16'",
                                str(WINDOW.since_s), str(WINDOW.until_s)]})


def status(a, state, scanned=0, reason=None, error=None):
    st = {"State": state}
    if reason:
        st["StateChangeReason"] = reason
    if error:
        st["AthenaError"] = error
    a.add_response("get_query_execution", {"QueryExecution": {
        "QueryExecutionId": QID, "Status": st, "Statistics": {"DataScannedInBytes": scanned}}},
        {"QueryExecutionId": QID})


COLUMNS = [{"Name": "srcaddr", "Type": "varchar"}, {"Name": "n", "Type": "bigint"},
           {"Name": "first_seen", "Type": "timestamp with time zone"}, {"Name": "ratio", "Type": "double"},
           {"Name": "open", "Type": "boolean"}, {"Name": "amount", "Type": "decimal", "Precision": 10, "Scale": 2}]


def row(*values):
    return {"Data": [{"VarCharValue": v} if v is not None else {} for v in values]}


def test_results_are_paged_typed_and_the_cost_recorded(stubs):
    clock = Clock()
    a = stubs["a"]
    expect_start(a)
    status(a, "QUEUED")
    status(a, "RUNNING")
    status(a, "SUCCEEDED", scanned=12_345_678)
    a.add_response("get_query_results", {
        "ResultSet": {"ResultSetMetadata": {"ColumnInfo": COLUMNS},
                      "Rows": [row("srcaddr", "n", "first_seen", "ratio", "open", "amount"),
                               row("198.51.100.7", "120", "2026-11-10 10:00:00.000 UTC", "0.5", "true", "12.50")]},
        "NextToken": "page-2"}, {"QueryExecutionId": QID, "MaxResults": 1000})
    a.add_response("get_query_results", {
        "ResultSet": {"ResultSetMetadata": {"ColumnInfo": COLUMNS},
                      "Rows": [row("203.0.113.9", "3", None, None, "false", None)]}},
        {"QueryExecutionId": QID, "MaxResults": 1000, "NextToken": "page-2"})
    result = engine(stubs, clock).run(query(), WINDOW, {})
    assert result.columns == ("srcaddr", "n", "first_seen", "ratio", "open", "amount")
    assert result.rows == (("198.51.100.7", 120, datetime(2026, 11, 10, 10, tzinfo=timezone.utc), 0.5, True,
                            Decimal("12.50")),
                           ("203.0.113.9", 3, None, None, False, None))
    assert result.types == ("VARCHAR", "BIGINT", "TIMESTAMP WITH TIME ZONE", "DOUBLE", "BOOLEAN", "DECIMAL(10, 2)")
    assert result.stats.query_id == QID and result.stats.bytes_scanned == 12_345_678
    assert result.stats.cost_usd == pytest.approx(13 * 10**6 * 5 / 10**12)  # rounded up to 13 MB
    assert result.stats.params["execution_parameters"][0] == "'111122223333'"
    assert clock.sleeps == [0.25, 0.5]  # backing off between polls


def test_throttling_is_retried_with_backoff(stubs):
    clock = Clock()
    a = stubs["a"]
    a.add_client_error("start_query_execution", "ThrottlingException", "Rate exceeded", 400)
    a.add_client_error("start_query_execution", "TooManyRequestsException", "Too many", 400)
    expect_start(a)
    status(a, "SUCCEEDED")
    a.add_response("get_query_results", {"ResultSet": {"ResultSetMetadata": {"ColumnInfo": COLUMNS[:1]},
                                                       "Rows": [row("srcaddr")]}})
    result = engine(stubs, clock).run(query(), WINDOW, {})
    assert result.rows == ()
    assert clock.sleeps == [0.25, 0.5]


def test_throttling_that_never_ends_is_an_engine_error(stubs):
    clock = Clock()
    for _ in range(7):
        stubs["a"].add_client_error("start_query_execution", "ThrottlingException", "Rate exceeded", 400)
    with pytest.raises(EngineError, match="ThrottlingException"):
        engine(stubs, clock).run(query(), WINDOW, {})
    assert len(clock.sleeps) == 6


@pytest.mark.parametrize("state, reason, error", [
    ("FAILED", "TABLE_NOT_FOUND: line 3:8: Table 'sec.vpc_v2' does not exist", {"ErrorCategory": 2, "ErrorType": 1301}),
    ("CANCELLED", "Query cancelled: bytes scanned exceeded the workgroup's BytesScannedCutoffPerQuery", None),
])
def test_failed_and_cancelled_queries_carry_the_id_and_reason(stubs, state, reason, error):
    clock = Clock()
    budget = Budget(None)
    expect_start(stubs["a"])
    status(stubs["a"], state, scanned=4096, reason=reason, error=error)
    with pytest.raises(EngineError) as info:
        engine(stubs, clock, budget=budget).run(query(), WINDOW, {})
    assert info.value.query_id == QID
    assert f"Athena query {state}" in str(info.value) and reason in str(info.value) and QID in str(info.value)
    assert budget.spent == 4096  # what a failed query scanned is billed too


def test_a_query_past_the_timeout_is_stopped(stubs):
    clock = Clock()
    a = stubs["a"]
    expect_start(a)
    for _ in range(11):  # polls at 0, 0.25, 0.75, 1.75, 3.75, 7.75, 12.75 ... 27.75 and 30 s
        status(a, "RUNNING")
    a.add_response("stop_query_execution", {}, {"QueryExecutionId": QID})
    with pytest.raises(EngineError, match=r"still RUNNING after 30s \(athena.timeout\); it was stopped") as info:
        engine(stubs, clock, timeout="30s").run(query(), WINDOW, {})
    assert info.value.query_id == QID
    assert sum(clock.sleeps) == pytest.approx(30)


def listing(s, prefix, sizes):
    s.add_response("list_objects_v2", {"Contents": [{"Key": f"{prefix}f{i}.log.gz", "Size": n} for i, n in enumerate(sizes)],
                                       "KeyCount": len(sizes), "IsTruncated": False},
                   {"Bucket": "org-logs", "Prefix": prefix})


def test_over_budget_the_query_is_skipped_before_it_starts(stubs):
    clock = Clock()
    days = [f"2026/11/{d:02d}/" for d in range(9, 17)]
    for day in days:
        listing(stubs["s"], f"AWSLogs/111122223333/vpcflowlogs/us-east-1/{day}", [400, 300])
    budget = Budget(5000)
    with pytest.raises(CheckSkipped, match=r"would scan about 5.60 KB \(16 objects under 8 partitions\)"):
        engine(stubs, clock, budget=budget).run(query(), WINDOW, {})
    assert budget.reserved == 0 and budget.spent == 0


def test_within_budget_the_estimate_is_reserved_and_settled(stubs):
    clock = Clock()
    for d in range(9, 17):
        listing(stubs["s"], f"AWSLogs/111122223333/vpcflowlogs/us-east-1/2026/11/{d:02d}/", [100])
    expect_start(stubs["a"])
    status(stubs["a"], "SUCCEEDED", scanned=700)
    stubs["a"].add_response("get_query_results", {"ResultSet": {"ResultSetMetadata": {"ColumnInfo": COLUMNS[:1]},
                                                                "Rows": [row("srcaddr")]}})
    budget = Budget(1000)
    engine(stubs, clock, budget=budget).run(query(), WINDOW, {})
    assert (budget.spent, budget.reserved, budget.queries) == (700, 0, 1)


def test_pricing():
    pricing = PricingSettings()
    assert billed_bytes(0, pricing) == 10 * 10**6
    assert billed_bytes(10_000_001, pricing) == 11 * 10**6
    assert cost_usd(10**12, pricing) == pytest.approx(5.0)


def test_convert_reads_athena_text():
    assert convert("2026-11-10 10:00:00.000", "timestamp") == datetime(2026, 11, 10, 10)
    assert convert("2026-11-10 11:00:00.000 +01:00", "timestamp with time zone") == datetime(2026, 11, 10, 10, tzinfo=timezone.utc)
    assert convert("7", "integer") == 7 and convert(None, "integer") is None


class StubSessions(AwsSessions):
    def __init__(self, settings, clients):
        super().__init__(settings)
        self.clients = clients

    def client(self, service, region=None, account=None, **_):
        return self.clients[service]

    def caller_account(self, account=None):
        return "111122223333"

    def default_region(self):
        return "us-east-1"


def test_a_failing_athena_query_errors_its_check_and_the_others_run(stubs, tmp_path):
    cfg = write_config(tmp_path, """
        sources:
          flow_logs: {engine: athena, database: sec, tables: [vpc_v2], location: "s3://org-logs/AWSLogs/",
                      output_location: "s3://results/auditor/"}
          cloudtrail: {engine: athena, database: sec, tables: [trail], location: "s3://org-logs/AWSLogs/"}
        checks:
          exposed_well_known_ports: {}
          sg_changes: {}
        """)
    a = stubs["a"]
    # the flow summary (CREATE TABLE AS SELECT) fails: the check that needs it errors with Athena's reason
    a.add_response("start_query_execution", {"QueryExecutionId": QID})
    status(a, "FAILED", reason="HIVE_BAD_DATA: Error parsing field value")
    # and the run removes what the failed CTAS may have left: the table (none here) and the objects
    stubs["g"].add_client_error("delete_table", "EntityNotFoundException",
                                expected_params={"DatabaseName": "sec", "Name": ANY})
    a.add_response("start_query_execution", {"QueryExecutionId": QID})
    status(a, "SUCCEEDED", scanned=2048)
    # sg_changes' query gives its columns (and no event here): its report.sql reads every one of them
    columns = ("event_id", "event_time", "event_name", "actor", "source_ip", "user_agent", "error_code", "account_id",
               "region", "request_parameters", "response_elements")
    a.add_response("get_query_results", {"ResultSet": {"ResultSetMetadata": {"ColumnInfo": [
        {"Name": c, "Type": "varchar"} for c in columns]}, "Rows": [row(*columns)]}})
    loaded = load_config(cfg)
    outcome = run_audit(loaded, WINDOW, out_dir=tmp_path / "out", force=True, formats=("json",),
                        clock=lambda: datetime(2026, 11, 23, tzinfo=timezone.utc),
                        aws_sessions=StubSessions(loaded.config.aws, stubs))
    by_id = {c.check_id: c for c in outcome.record.checks}
    assert by_id["exposed_well_known_ports"].status is Status.ERROR
    assert QID in by_id["exposed_well_known_ports"].error and "HIVE_BAD_DATA" in by_id["exposed_well_known_ports"].error
    assert by_id["sg_changes"].status is Status.PASS
    assert by_id["sg_changes"].stats["bytes_scanned"] == "2.05 KB"
    assert any(n.startswith("Athena: 1 query scanned 2.05 KB") for n in outcome.record.data_quality.notes)
    # the objects could not be listed under the stubs: the run says so and names the safety net
    assert any("could not be removed" in w and "lifecycle rule" in w for w in outcome.record.warnings)


def _results(a, columns, rows, scanned):
    a.add_response("start_query_execution", {"QueryExecutionId": QID})
    status(a, "SUCCEEDED", scanned=scanned)
    a.add_response("get_query_results", {"ResultSet": {"ResultSetMetadata": {"ColumnInfo": [
        {"Name": c, "Type": t} for c, t in columns]}, "Rows": [row(*(c for c, _ in columns))] + [row(*r) for r in rows]}})


def test_the_timeline_runs_its_extra_queries_on_athena_priced_and_listed(stubs, tmp_path):
    """On Athena the timeline adds the SG events from the window's start to the capture time and the flows of the
    interfaces that changed: both listed in the appendix with the first check that reads the timeline, and priced."""
    write_inventory(tmp_path / "inventory", {"eni-web": ["10.0.1.10"]}, eni_groups={"eni-web": ["sg-web"]},
                    groups=[{"GroupId": "sg-web", "GroupName": "web", "VpcId": "vpc-1", "OwnerId": "111122223333"}],
                    captured_at="2026-11-15T00:00:00Z")
    cfg = write_config(tmp_path, """
        sources:
          flow_logs: {engine: athena, database: sec, tables: [vpc_v2], location: "s3://org-logs/AWSLogs/"}
          cloudtrail: {engine: athena, database: sec, tables: [trail], location: "s3://org-logs/AWSLogs/"}
          inventory: inventory
        checks:
          sg_changes: {}
          temporary_exposures: {}
        """)
    events = [authorized("sg-web", 22, "0.0.0.0/0", "sgr-open", "2026-11-10T12:00:00Z"),
              revoked("sg-web", 22, "0.0.0.0/0", "2026-11-10T14:00:00Z")]
    trail_columns = [(c, "varchar") for c in ("event_id", "event_time", "event_name", "actor", "source_ip",
                                              "user_agent", "error_code", "account_id", "region",
                                              "request_parameters", "response_elements")]
    trail_rows = [(e["eventID"], e["eventTime"], e["eventName"], e["userIdentity"]["arn"], e["sourceIPAddress"],
                   e["userAgent"], None, "111122223333", "us-east-1", json.dumps(e["requestParameters"]),
                   json.dumps(e["responseElements"])) for e in events]
    a = stubs["a"]
    _results(a, trail_columns, trail_rows, scanned=3_000_000)  # the timeline's SG events
    at = str(int(datetime(2026, 11, 10, 12, 30, tzinfo=timezone.utc).timestamp()))
    _results(a, [("interface_id", "varchar"), ("dstaddr", "varchar"), ("flow_direction", "varchar"),
                 ("dstport", "integer"), ("protocol", "integer"), ("srcaddr", "varchar"), ("start", "bigint"),
                 ("flows", "bigint")],
             [("eni-web", "10.0.1.10", None, "22", "6", "203.0.113.9", at, "2")], scanned=5_000_000)  # flow times
    _results(a, trail_columns, trail_rows, scanned=3_000_000)  # sg_changes' own query
    loaded = load_config(cfg)
    outcome = run_audit(loaded, WINDOW, out_dir=tmp_path / "out", force=True, formats=("json",),
                        clock=lambda: datetime(2026, 11, 23, tzinfo=timezone.utc),
                        aws_sessions=StubSessions(loaded.config.aws, stubs))
    by_id = {c.check_id: c for c in outcome.record.checks}
    sg, temporary = by_id["sg_changes"], by_id["temporary_exposures"]
    assert [(q.name, q.engine) for q in sg.queries][:2] == [("timeline: security-group events", "athena"),
                                                            ("timeline: flows of the interfaces that changed", "athena")]
    assert sg.stats["athena_queries"] == 3 and "temporary_exposures" not in {q.name for q in sg.queries}
    assert not any(q.engine == "athena" for q in temporary.queries)  # the timeline's cost is counted once
    (row_,) = temporary.rows
    assert (row_["rule_id"], row_["public_sources_during"], row_["public_flows_during"], row_["severity"]) == (
        "sgr-open", 1, 2, "high")
    opened = next(r for r in sg.rows if r["event_name"] == "AuthorizeSecurityGroupIngress")
    assert (opened["public_sources_after"], opened["open_until"]) == (1, "2026-11-10T14:00:00Z")


def test_a_timeline_that_cannot_be_built_errors_the_checks_that_read_it_and_the_others_run(stubs, tmp_path):
    write_inventory(tmp_path / "inventory", {"eni-web": ["10.0.1.10"]}, eni_groups={"eni-web": ["sg-web"]},
                    groups=[{"GroupId": "sg-web", "GroupName": "web", "VpcId": "vpc-1", "OwnerId": "111122223333"}])
    cfg = write_config(tmp_path, """
        sources:
          cloudtrail: {engine: athena, database: sec, tables: [trail], location: "s3://org-logs/AWSLogs/"}
          inventory: inventory
        checks:
          temporary_exposures: {}
          unused_security_groups: {}
        """)
    a = stubs["a"]
    a.add_response("start_query_execution", {"QueryExecutionId": QID})
    status(a, "FAILED", reason="HIVE_BAD_DATA: Error parsing field value")
    loaded = load_config(cfg)
    outcome = run_audit(loaded, WINDOW, out_dir=tmp_path / "out", force=True, formats=("json",),
                        clock=lambda: datetime(2026, 11, 23, tzinfo=timezone.utc),
                        aws_sessions=StubSessions(loaded.config.aws, stubs))
    by_id = {c.check_id: c for c in outcome.record.checks}
    assert by_id["temporary_exposures"].status is Status.ERROR
    assert by_id["temporary_exposures"].error.startswith("the security-group timeline could not be built: ")
    assert "HIVE_BAD_DATA" in by_id["temporary_exposures"].error
    assert by_id["unused_security_groups"].status is Status.PASS


def test_the_estimate_counts_every_object_each_per_format_table_reads(stubs):
    # Issue 18: two per-format tables, each restricted to its flow log by "$path". Athena prunes files only through
    # partitions, so each table reads every object under the day folders: 2 x 515 KB = 1.03 MB, not the 515 KB of
    # the objects whose names match. A budget of 1 MB must skip the query.
    source = AthenaSourceSpec.model_validate({
        "engine": "athena", "database": "sec", "workgroup": "audit", "output_location": "s3://results/auditor/",
        "location": "s3://org-logs/AWSLogs/",
        "tables": [{"name": "vpc_v2", "flow_log_ids": ["fl-0123456789abcdef0"]},
                   {"name": "vpc_v5", "format": "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} "
                    "${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status} "
                    "${flow-direction}", "flow_log_ids": ["fl-0fedcba9876543210"]}]})
    days = [f"2026/11/{d:02d}/" for d in range(9, 17)]

    def day_listing(prefix):
        stubs["s"].add_response("list_objects_v2", {"Contents": [
            {"Key": f"{prefix}111122223333_vpcflowlogs_us-east-1_fl-0123456789abcdef0_x.log.gz", "Size": 32_187},
            {"Key": f"{prefix}111122223333_vpcflowlogs_us-east-1_fl-0fedcba9876543210_x.log.gz", "Size": 32_188}],
            "KeyCount": 2, "IsTruncated": False}, {"Bucket": "org-logs", "Prefix": prefix})

    for _table in range(2):
        for day in days:
            day_listing(f"AWSLogs/111122223333/vpcflowlogs/us-east-1/{day}")
    clock = Clock()
    athena = AthenaEngine(sources={"flow_logs": source}, settings=AthenaSettings(), budget=Budget(1_000_000),
                          delivery_lag=timedelta(days=1), clients=lambda service, region: stubs[service],
                          scope=Scope("111122223333", "us-east-1"), region="us-east-1", sleep=clock.sleep,
                          monotonic=clock.monotonic, jitter=lambda: 0.5)
    with pytest.raises(CheckSkipped, match=r"would scan about 1\.03 MB \(32 objects under 16 partitions\)"):
        athena.run(query(), WINDOW, {})


def test_without_accounts_the_query_binds_the_callers_account(stubs, tmp_path):
    # Issue 18: with aws.regions but no accounts:, `athena ddl` makes aws_account_id an injected projection, which
    # Athena refuses to query without a static equality on it. The account of the credentials (STS) is bound.
    cfg = write_config(tmp_path, """
        aws: {regions: [us-east-1]}
        sources:
          flow_logs: {engine: athena, database: sec, tables: [vpc_v2], location: "s3://org-logs/AWSLogs/",
                      output_location: "s3://results/auditor/"}
        checks:
          exposed_well_known_ports: {}
        """)
    loaded = load_config(cfg)
    sts = boto3.client("sts", region_name="us-east-1")
    with Stubber(sts) as st:
        st.add_response("get_caller_identity", {"Account": "444455556666", "Arn": "arn:aws:iam::444455556666:user/a",
                                                "UserId": "AIDEXAMPLE"}, {})
        # the flow summary reads the logs, restricted to the caller's account
        stubs["a"].add_response("start_query_execution", {"QueryExecutionId": QID}, {
            "QueryString": ANY, "WorkGroup": "primary", "ClientRequestToken": ANY,
            "QueryExecutionContext": {"Database": "sec", "Catalog": "AwsDataCatalog"},
            "ResultConfiguration": {"OutputLocation": "s3://results/auditor/"},
            "ExecutionParameters": ["'444455556666'", "'us-east-1'", "'2026/11/09'", "'2026/11/16'", ANY, ANY]})
        status(stubs["a"], "SUCCEEDED", scanned=10)
        # the check reads the summary
        stubs["a"].add_response("start_query_execution", {"QueryExecutionId": QID}, {
            "QueryString": ANY, "WorkGroup": "primary", "ClientRequestToken": ANY,
            "QueryExecutionContext": {"Database": "sec", "Catalog": "AwsDataCatalog"},
            "ResultConfiguration": {"OutputLocation": "s3://results/auditor/"}})
        status(stubs["a"], "SUCCEEDED", scanned=10)
        stubs["a"].add_response("get_query_results", {"ResultSet": {"ResultSetMetadata": {"ColumnInfo": [
            {"Name": "dstport", "Type": "integer"}]}, "Rows": [row("dstport")]}})
        stubs["g"].add_response("delete_table", {}, {"DatabaseName": "sec", "Name": ANY})
        sessions = AwsSessions(loaded.config.aws)
        real = {**stubs, "sts": sts}
        sessions.client = lambda service, region=None, account=None, **_: real[service]  # type: ignore[method-assign]
        outcome = run_audit(loaded, WINDOW, out_dir=tmp_path / "out", force=True, formats=("json",),
                            clock=lambda: datetime(2026, 11, 23, tzinfo=timezone.utc), aws_sessions=sessions)
    (check,) = outcome.record.checks
    summary, _query = [q for q in check.queries if q.engine == "athena"]
    assert summary.name == "flow summary"
    assert '"aws_account_id" = ?' in summary.text and '"aws_region" = ?' in summary.text
    assert summary.stats.query_id == QID  # the Stubber checked its ExecutionParameters: the caller's account first
