"""Issue 25: on Athena a run reads the window's flow logs once. A two-format account (the default format and a custom
one) in moto S3, its queries executed by the executing double (tests/support/athena_double.py), which counts the
bytes of every object each query's partitions select. The test computes the window's bytes from the objects.

- With each flow log under its own prefix (``tables[].location``), the run scans 1.0x the window's flow-log
  objects: the flow summary's CREATE TABLE AS SELECT reads each object once, and every check reads the summary.
- With both logs under one prefix, each per-format table still reads both logs' objects (Athena does not prune by
  ``"$path"``): 2.0x. That is the measurement behind keeping per-log prefixes (docs/athena-cost.md).
- Either way the findings equal the local engine's over the same files.
- The summary's table and objects are gone after a run, and after a run that stops halfway.
"""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest

from auditor.aws import AwsSessions
from auditor.config import load_config
from auditor.engines.athena.querymap import partition_days
from tests.support.athena_double import Crash, ExecutingAthena, window_objects
from tests.support.flowdata import record, ts, write_config, write_flow_log, write_inventory
from tests.support.moto_server import DEFAULT_ACCOUNT, FAKE_ENV, moto_server, reset
from tests.support.runner import WINDOW, run

DEFAULT_LOG, CUSTOM_LOG = "fl-0123456789abcdef0", "fl-0fedcba987654321f"
CUSTOM_FIELDS = ("version", "interface-id", "flow-direction", "srcaddr", "dstaddr", "dstport", "protocol", "packets",
                 "bytes", "start", "end", "action", "log-status", "account-id", "srcport")
CUSTOM_FORMAT = " ".join(f"${{{f}}}" for f in CUSTOM_FIELDS)
DAYS = {d.strftime("%Y/%m/%d") for d in partition_days(WINDOW, timedelta(days=1))}
# Without accounts:, the engine binds the credentials' account (moto's) on the account partition: the logs are its.
OWNER = DEFAULT_ACCOUNT
CHECKS = ("top_rejected_sources", "exposed_well_known_ports", "unused_sg_rules")


def _records():
    scan = [record(interface_id="eni-web", srcaddr="198.51.100.7", dstport=1000 + i, action="REJECT",
                   start=f"2026-11-1{i % 3}T{i % 24:02d}:10:00Z") for i in range(40)]
    ssh = [record(interface_id="eni-web", srcaddr="203.0.113.9", dstport=22, srcport=40000 + i,
                  start=f"2026-11-12T0{i}:00:00Z") for i in range(4)]
    inside = [record(interface_id="eni-web", srcaddr="10.0.2.5", dstport=5432, start="2026-11-13T09:00:00Z")]
    early = [record(interface_id="eni-web", srcaddr="198.51.100.99", dstport=3389, start="2026-11-08T23:59:00Z")]
    return scan, ssh, inside, early


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The same files locally and in S3, once under one shared prefix and once under a prefix per flow log."""
    root = tmp_path_factory.mktemp("two-formats")
    scan, ssh, inside, early = _records()
    custom = [dict(r, **{"flow-direction": "ingress"}) for r in ssh + inside]
    files = [
        (DEFAULT_LOG, write_flow_log(root / "logs", scan[:20], day="2026/11/10", name=DEFAULT_LOG, account=OWNER)),
        (DEFAULT_LOG, write_flow_log(root / "logs", scan[20:] + early, day="2026/11/09", name=DEFAULT_LOG, account=OWNER)),
        (CUSTOM_LOG, write_flow_log(root / "logs", custom, fields=CUSTOM_FIELDS, day="2026/11/13", name=CUSTOM_LOG, account=OWNER)),
        # outside the window and its delivery lag: no query may read these
        (DEFAULT_LOG, write_flow_log(root / "logs", scan[:5], day="2026/11/20", name=DEFAULT_LOG, account=OWNER)),
        (CUSTOM_LOG, write_flow_log(root / "logs", [dict(custom[0], start=ts("2026-11-02T05:00:00Z"))],
                                    fields=CUSTOM_FIELDS, day="2026/11/02", name=CUSTOM_LOG, account=OWNER)),
    ]
    # sgr-rdp admits only the record of 8 November: unused in the report week, used in a 14-day lookback
    rules = [{"SecurityGroupRuleId": rid, "GroupId": "sg-web", "GroupOwnerId": "111122223333", "IsEgress": False,
              "IpProtocol": "tcp", "FromPort": port, "ToPort": port, "CidrIpv4": cidr}
             for rid, port, cidr in (("sgr-ssh", 22, "0.0.0.0/0"), ("sgr-rdp", 3389, "0.0.0.0/0"),
                                     ("sgr-db", 5432, "10.0.0.0/8"), ("sgr-old", 8443, "0.0.0.0/0"))]
    write_inventory(root / "inventory", {"eni-web": ["10.0.1.10"]}, eni_groups={"eni-web": ["sg-web"]},
                    groups=[{"GroupId": "sg-web", "GroupName": "web", "VpcId": "vpc-1", "OwnerId": "111122223333"}],
                    rules=rules)
    local = write_config(root, """
        sources:
          flow_logs: logs/AWSLogs
          inventory: inventory
        checks: {top_rejected_sources: {min_flows: 10}, exposed_well_known_ports: {}, unused_sg_rules: {}}
        """)
    lookback = root / "lookback"
    lookback.mkdir()
    write_config(lookback, """
        sources:
          flow_logs: ../logs/AWSLogs
          inventory: ../inventory
        checks: {top_rejected_sources: {min_flows: 10}, unused_sg_rules: {lookback: 14d}}
        """)
    return {"root": root, "files": files, "local": local, "lookback": lookback / "config.yaml"}


@pytest.fixture(scope="module")
def server(world):
    with pytest.MonkeyPatch.context() as mp:
        for k, v in FAKE_ENV.items():
            mp.setenv(k, v)
        with moto_server() as url:
            mp.setenv("AWS_ENDPOINT_URL", url)
            reset(url)
            s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
            for bucket in ("org-logs", "athena-results"):
                s3.create_bucket(Bucket=bucket)
            for log_id, path in world["files"]:
                key = "AWSLogs/" + path.as_posix().split("/AWSLogs/", 1)[1]
                for prefix in ("", f"{log_id}/"):  # the shared prefix, and the log's own
                    s3.put_object(Bucket="org-logs", Key=prefix + key, Body=path.read_bytes())
            boto3.client("glue", endpoint_url=url, region_name="us-east-1").create_database(
                DatabaseInput={"Name": "sec"})
            yield url


CHECKS_YAML = "{top_rejected_sources: {min_flows: 10}, exposed_well_known_ports: {}, unused_sg_rules: {}}"


def _config(tmp_path, per_log: bool, budget: int, checks: str = CHECKS_YAML):
    def located(log_id):
        return f', location: "s3://org-logs/{log_id}/AWSLogs/"' if per_log else ""
    return write_config(tmp_path, f"""
        sources:
          flow_logs:
            engine: athena
            database: sec
            region: us-east-1
            output_location: s3://athena-results/auditor/
            location: s3://org-logs/AWSLogs/
            tables:
              - {{name: vpc_default, flow_log_ids: [{DEFAULT_LOG}]{located(DEFAULT_LOG)}}}
              - {{name: vpc_custom, format: "{CUSTOM_FORMAT}", flow_log_ids: [{CUSTOM_LOG}]{located(CUSTOM_LOG)}}}
          inventory: {json.dumps(str(tmp_path.parent / "inventory"))}
        athena:
          max_bytes_scanned: {budget}
        checks: {checks}
        """)


class DoubleSessions(AwsSessions):
    def __init__(self, settings, url, double):
        super().__init__(settings, endpoint_url=url)
        self.double = double

    def client(self, service, region=None, account=None):
        return self.double if service == "athena" else super().client(service, region, account)


def _run(world, server, tmp_path, *, per_log, crash_at=None, budget=10**9, checks=CHECKS_YAML):
    config_dir = world["root"] / f"athena-{'per-log' if per_log else 'shared'}-{tmp_path.name}-{budget}"
    config_dir.mkdir()
    loaded = load_config(_config(config_dir, per_log, budget, checks))
    s3 = boto3.client("s3", endpoint_url=server, region_name="us-east-1")
    glue = boto3.client("glue", endpoint_url=server, region_name="us-east-1")
    double = ExecutingAthena(s3, glue, loaded.config.sources.flow_logs, crash_at=crash_at)
    outcome = run(config_dir / "config.yaml", aws_sessions=DoubleSessions(loaded.config.aws, server, double),
                  formats=("json", "html"))
    return outcome, double


def _window_bytes(server, per_log: bool) -> int:
    s3 = boto3.client("s3", endpoint_url=server, region_name="us-east-1")
    if per_log:
        return sum(sum(window_objects(s3, f"s3://org-logs/{log}/AWSLogs/", DAYS).values())
                   for log in (DEFAULT_LOG, CUSTOM_LOG))
    return sum(window_objects(s3, "s3://org-logs/AWSLogs/", DAYS).values())


def _findings(record_):
    """The findings, and every check's rows: the same on Athena as on the local engine."""
    return (sorted((c.check_id, f.severity.value, f.title) for c in record_.checks for f in c.findings),
            {c.check_id: c.rows for c in record_.checks})


def _scratch_left(server):
    s3 = boto3.client("s3", endpoint_url=server, region_name="us-east-1")
    glue = boto3.client("glue", endpoint_url=server, region_name="us-east-1")
    objects = s3.list_objects_v2(Bucket="athena-results", Prefix="auditor/auditor-flow-summary/").get("Contents", [])
    tables = [t["Name"] for t in glue.get_tables(DatabaseName="sec")["TableList"]]
    return [o["Key"] for o in objects], tables


@pytest.fixture(scope="module")
def local_findings(world):
    record_ = run(world["local"]).record
    assert not [c.error for c in record_.checks if c.error]
    return _findings(record_)


def test_per_log_prefixes_read_the_window_once_with_the_local_engines_findings(world, server, tmp_path,
                                                                             local_findings):
    outcome, double = _run(world, server, tmp_path, per_log=True)
    record_ = outcome.record
    assert not [c.error for c in record_.checks if c.error]
    assert _findings(record_) == local_findings
    assert {"top_rejected_sources", "exposed_well_known_ports", "unused_sg_rules"} <= {
        c for c, *_ in local_findings[0]}
    unused = {r["rule_id"] for r in local_findings[1]["unused_sg_rules"] if r["verdict"] == "unused"}
    assert unused == {"sgr-rdp", "sgr-old"}  # the week alone: the 8 November record is outside it

    window = _window_bytes(server, per_log=True)
    flow_log_bytes = sum(e.flow_log_bytes for e in double.ledger)
    assert window > 0 and flow_log_bytes <= 1.1 * window
    assert flow_log_bytes == window  # every object of the window, once; none outside it
    readers = [e for e in double.ledger if e.flow_log_keys]
    assert len(readers) == 1 and "CREATE TABLE" in readers[0].text  # the summary, and only it, reads the logs
    assert all(k.split("/AWSLogs/")[1].split("/", 3)[3][:10] in DAYS for k in readers[0].flow_log_keys)
    assert len(double.ledger) == 5  # the summary, three checks and the chart
    # the report: each query's bytes, and the run against the window
    note = next(n for n in record_.data_quality.notes if n.startswith("Athena: 5 queries scanned"))
    # with a few KB of logs the summary's Parquet outweighs them; the logs themselves were read once
    assert "the window's logs (" in note and "which were read 1.0× (the rest read the flow summary)" in note
    assert "which were read 1.0×" in (outcome.out_dir / "report.html").read_text()
    assert record_.data_quality.counters["athena_log_bytes"] == window
    # the summary was created (Parquet in S3, a table in Glue) and is gone
    assert double.created
    assert _scratch_left(server) == ([], [])


def test_one_shared_prefix_reads_each_object_once_per_table(world, server, tmp_path, local_findings):
    outcome, double = _run(world, server, tmp_path, per_log=False)
    record_ = outcome.record
    assert not [c.error for c in record_.checks if c.error]
    assert _findings(record_) == local_findings  # "$path" keeps each table's own records
    window = _window_bytes(server, per_log=False)
    flow_log_bytes = sum(e.flow_log_bytes for e in double.ledger)
    # Both per-format tables read both logs' objects: the measurement behind per-log prefixes. One table of raw
    # lines split by each file's format would read the objects under the shared prefix once: the window, 1.0x,
    # the same bytes as per-log prefixes.
    assert flow_log_bytes == 2 * window
    note = next(n for n in record_.data_quality.notes if n.startswith("Athena: 5 queries scanned"))
    assert "which were read 2.0×" in note
    assert _scratch_left(server) == ([], [])


def test_a_lookback_reads_a_summary_of_its_own_window(world, server, tmp_path):
    """unused_sg_rules over 14 days reads a summary of those 14 days; the other checks the report week's. Each is
    built once, and the findings are the local engine's."""
    local = _findings(run(world["lookback"]).record)
    outcome, double = _run(world, server, tmp_path, per_log=True,
                           checks="{top_rejected_sources: {min_flows: 10}, unused_sg_rules: {lookback: 14d}}")
    assert not [c.error for c in outcome.record.checks if c.error]
    assert _findings(outcome.record) == local
    ctas = [e for e in double.ledger if "CREATE TABLE" in e.text]
    assert len(ctas) == 2 and len(double.ledger) == 5  # two summaries, two check queries and the chart
    week, fortnight = sorted(ctas, key=lambda e: len(e.flow_log_keys))
    assert set(week.flow_log_keys) < set(fortnight.flow_log_keys)  # the 2 Nov file is in the lookback only
    assert any("/2026/11/02/" in k for k in fortnight.flow_log_keys)
    unused = {r["rule_id"] for r in outcome.record.checks[-1].rows if r["verdict"] == "unused"}
    assert unused == {"sgr-old"}  # sgr-rdp was used on 8 November, inside the lookback
    assert _scratch_left(server) == ([], [])


def test_a_run_that_stops_halfway_leaves_no_summary_behind(world, server, tmp_path):
    with pytest.raises(Crash):
        _run(world, server, tmp_path, per_log=True, crash_at=1)  # after the summary, at the first check's query
    assert _scratch_left(server) == ([], [])


def test_the_budget_estimate_of_the_summary_is_what_it_scans(world, server, tmp_path):
    """For text flow logs the estimate (an S3 listing of the pruned partitions, every object there) equals the
    bytes the summary scans: a budget one byte short skips it, and every flow-log check says why."""
    scanned = 2 * _window_bytes(server, per_log=False)
    outcome, double = _run(world, server, tmp_path, per_log=False, budget=scanned - 1)
    assert not double.ledger
    for check in outcome.record.checks:
        assert check.status.value == "skipped" and "max_bytes_scanned" in " ".join(check.notes), check.check_id
    outcome, double = _run(world, server, tmp_path, per_log=False, budget=scanned + 10**6)
    summary = next(q for c in outcome.record.checks for q in c.queries if q.name.startswith("flow summary"))
    assert summary.stats.bytes_scanned == double.ledger[0].flow_log_bytes == scanned
    assert outcome.record.data_quality.counters["athena_window_bytes"] == scanned // 2
