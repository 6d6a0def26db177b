"""A run with Athena sources and the live inventory, for two accounts, end to end against an in-process moto server.

moto evaluates no SQL: each Athena query gets canned rows. They are produced here by the local engine, running
the same check query over the same records written as files, for the same account and region (a botocore hook
enqueues them as the engine fetches results). The findings of the Athena run must then equal those of a local run
over those files, account by account.
"""

from __future__ import annotations

import gzip
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from auditor.aws import AwsSessions
from auditor.builtins import builtins
from auditor.config import load_config
from auditor.engines.embedded import Workspace
from auditor.engines.local import LocalEngine
from auditor.engines.sources.aws_inventory import collect, write_snapshot
from auditor.errors import EngineError
from auditor.models import Query, Status, TimeWindow
from auditor.pipeline import run_audit
from auditor.plan import ENGINE_TABLES, plan_run
from auditor.timeline.run import build_for_run, events_window
from tests.support.flowdata import record, write_config
from tests.support.moto_server import (
    FAKE_ENV,
    athena_result,
    enqueue_athena_results,
    moto_server,
    reset,
)
from tests.support.trail import event, ingress

WINDOW = TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc))
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
A, B = "111122223333", "444455556666"
REGION_A, REGION_B = "us-east-1", "eu-west-1"
FIELDS = ("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets",
          "bytes", "start", "end", "action", "log-status")

CONFIG = f"""
    engine: athena
    aws:
      regions: [{REGION_A}]
      max_parallel: 1
    accounts:
      - {{id: "{A}", role_arn: "arn:aws:iam::{A}:role/auditor"}}
      - {{id: "{B}", role_arn: "arn:aws:iam::{B}:role/auditor", external_id: audit-2026, regions: [{REGION_B}]}}
    sources:
      flow_logs:
        engine: athena
        database: security
        region: us-east-1
        output_location: s3://athena-results/auditor/
        location: s3://org-logs/AWSLogs/
        tables: [vpc_flow_logs]
      cloudtrail:
        engine: athena
        database: security
        region: us-east-1
        output_location: s3://athena-results/auditor/
        location: s3://org-logs/AWSLogs/
        tables: [cloudtrail]
      inventory: {{engine: aws_api}}
    athena:
      max_bytes_scanned: 1 GB
    """


@pytest.fixture(scope="module")
def server():
    with pytest.MonkeyPatch.context() as mp:
        for k, v in FAKE_ENV.items():
            mp.setenv(k, v)
        with moto_server() as url:
            mp.setenv("AWS_ENDPOINT_URL", url)  # a client made without the endpoint would still stay local
            yield url


class Oracle:
    """Answers each Athena query with the local engine's rows for the same check, account and region."""

    def __init__(self, url: str, local_configs: dict[tuple[str, str], Path], cache: dict[Any, Any]) -> None:
        self.url = url
        self.local_configs = local_configs
        self.cache = cache  # the local answers do not change between runs over the same world
        self.seen: set[str] = set()
        self.sent: list[dict[str, Any]] = []

    def hook(self, client: Any) -> None:
        def before_results(params: dict[str, Any], **_: Any) -> None:
            qid = params["QueryExecutionId"]
            if qid in self.seen:
                return
            self.seen.add(qid)
            execution = client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
            self.sent.append(execution)
            m = re.match(r"-- auditor (\w+)/(\w+) (\d{12})/([a-z0-9-]+)\n", execution["Query"])
            assert m, execution["Query"][:200]
            key = (m.group(1), m.group(2), (m.group(3), m.group(4)))
            if key not in self.cache:
                self.cache[key] = self.local(*key)
            result = self.cache[key]
            enqueue_athena_results(self.url, [athena_result(result.columns, result.types, result.rows)])

        client.meta.events.register("provide-client-params.athena.GetQueryResults", before_results)

    def local(self, check_id: str, name: str, target: tuple[str, str]):
        loaded = load_config(self.local_configs[target])
        reg = builtins()
        if check_id == "timeline":
            return self.timeline(loaded, target)[name]
        plan = plan_run(loaded, reg.checks, WINDOW, NOW, {"local": "trino"})
        pc = next(p for p in plan.checks if p.spec.id == check_id)
        workspace = Workspace()
        try:
            engine = LocalEngine(workspace, flow_logs=_resolved(loaded, "flow_logs"),
                                 cloudtrail_source=_resolved(loaded, "cloudtrail"), delivery_lag=timedelta(days=1))
            workspace.load_inventory(loaded.resolve(loaded.config.sources.inventory.path))
            engine.prepare(plan.scans_for("local"))
            params = dict(pc.params)
            text = pc.spec.query_for("trino")
            window = pc.window
            if name == "chart":
                text = pc.spec.queries["chart.sql"]
                window = plan.window
                params["bucket"] = "hour" if window.duration <= timedelta(days=3) else "day"
            query = Query(check_id=check_id, name=name, text=text, dialect="trino",
                          tables=frozenset(t for t in pc.spec.meta.needs if t in ENGINE_TABLES), window=window,
                          params=params)
            return engine.run(query, window, params)
        finally:
            workspace.close()


    def timeline(self, loaded, target: tuple[str, str]) -> dict[str, Any]:
        """The timeline's queries as the local engine answers them over the same inputs, by query name."""
        key = ("timeline", target)
        if key not in self.cache:
            workspace = Workspace()
            try:
                engine = LocalEngine(workspace, flow_logs=_resolved(loaded, "flow_logs"),
                                     cloudtrail_source=_resolved(loaded, "cloudtrail"), delivery_lag=timedelta(days=1))
                snapshot = workspace.load_inventory(loaded.resolve(loaded.config.sources.inventory.path))
                engine.prepare({"flow_logs": WINDOW, "cloudtrail": events_window(WINDOW, snapshot.captured_at)})
                answers: dict[str, Any] = {}

                class Recorder:
                    name, dialect = engine.name, engine.dialect

                    def run(self, query, window, params):
                        answers[query.name] = engine.run(query, window, params)
                        return answers[query.name]

                sg = builtins().checks.get("sg_changes")
                build_for_run(workspace, WINDOW, trail_engine=Recorder(), flow_engine=Recorder(),
                              sg_events_query={"trino": sg.query_for("trino")},
                              params={"sensitive_ports": tuple(loaded.config.sensitive_ports)},
                              delivery_lag=timedelta(days=1))
                self.cache[key] = answers
            finally:
                workspace.close()
        return self.cache[key]


def _resolved(loaded, name):
    spec = getattr(loaded.config.sources, name)
    return spec.model_copy(update={"path": loaded.resolve(spec.path)})


class MotoSessions(AwsSessions):
    """Every client on the moto server; Athena clients answered by the oracle; one account may be broken."""

    def __init__(self, settings, url: str, oracle: Oracle | None = None, broken: str | None = None,
                 session=None) -> None:
        super().__init__(settings, endpoint_url=url, session=session)
        self.oracle = oracle
        self.broken = broken

    def client(self, service, region=None, account=None):
        if account is not None and account.id == self.broken:
            raise EngineError(f"account {account.id}: cannot assume {account.role_arn}: AccessDenied: not authorized")
        client = super().client(service, region, account)
        if service == "athena" and self.oracle is not None:
            self.oracle.hook(client)
        return client


def _account_session(url: str, account: str, region: str):
    import boto3
    sts = boto3.client("sts", endpoint_url=url, region_name=region)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/setup", RoleSessionName="setup")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=region)


def _build_account(url: str, account: str, region: str, *, world_open_port: int, unused_group: bool) -> dict[str, str]:
    """A VPC with two interfaces, a world-open rule and (maybe) an unattached group, and a REJECT-only flow log."""
    ec2 = _account_session(url, account, region).client("ec2", endpoint_url=url)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    bare = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24")["Subnet"]["SubnetId"]
    web = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": world_open_port, "ToPort": world_open_port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    db = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    if unused_group:
        ec2.create_security_group(GroupName="old-admin", Description="unused", VpcId=vpc)
    eni = ec2.create_network_interface(SubnetId=subnet, Groups=[web, db], PrivateIpAddress="10.0.1.10")["NetworkInterface"]
    other = ec2.create_network_interface(SubnetId=bare, Groups=[web], PrivateIpAddress="10.0.2.20")["NetworkInterface"]
    s3 = _account_session(url, account, region).client("s3", endpoint_url=url)
    s3.create_bucket(Bucket=f"fl-{account}", **({} if region == "us-east-1" else
                                               {"CreateBucketConfiguration": {"LocationConstraint": region}}))
    ec2.create_flow_logs(ResourceIds=[subnet], ResourceType="Subnet", TrafficType="REJECT",
                         LogDestinationType="s3", LogDestination=f"arn:aws:s3:::fl-{account}")
    return {"vpc": vpc, "subnet": subnet, "eni": eni["NetworkInterfaceId"], "other": other["NetworkInterfaceId"],
            "web": web}


def _flow_file(root: Path, account: str, region: str, day: str, records) -> Path:
    folder = root / "AWSLogs" / account / "vpcflowlogs" / region / day
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{account}_vpcflowlogs_{region}_fl-0123456789abcdef0_{day.replace('/', '')}T0000Z_0001.log.gz"
    lines = [" ".join(FIELDS)] + [" ".join(str(r.get(f, "-")) for f in FIELDS) for r in records]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    return path


def _trail_file(root: Path, account: str, region: str, day: str, events) -> Path:
    folder = root / "AWSLogs" / account / "CloudTrail" / region / day
    folder.mkdir(parents=True, exist_ok=True)
    fixed = [{**e, "recipientAccountId": account, "awsRegion": region} for e in events]
    path = folder / f"{account}_CloudTrail_{region}_{day.replace('/', '')}T1200Z_0001.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"Records": fixed}).encode(), mtime=0))
    return path


@pytest.fixture(scope="module")
def world(server, tmp_path_factory):
    """Two accounts in moto and, for each, the same records as local files, uploaded to the log bucket too.
    Built once: the tests only read it."""
    tmp_path = tmp_path_factory.mktemp("aws-world")
    reset(server)
    ids = {A: _build_account(server, A, REGION_A, world_open_port=22, unused_group=True),
           B: _build_account(server, B, REGION_B, world_open_port=443, unused_group=False)}
    local = tmp_path / "local"
    scanner = [record(interface_id=ids[A]["eni"], srcaddr="198.51.100.7", dstaddr="10.0.1.10", dstport=1000 + i,
                      action="REJECT", start=f"2026-11-10T{10 + i % 8:02d}:00:00Z", account_id=A) for i in range(120)]
    ssh = [record(interface_id=ids[A]["eni"], srcaddr="203.0.113.9", dstaddr="10.0.1.10", dstport=22, srcport=40000 + i,
                  account_id=A) for i in range(3)]
    web = [record(interface_id=ids[B]["eni"], srcaddr="192.0.2.44", dstaddr="10.0.1.10", dstport=443, account_id=B)]
    files = [_flow_file(local / A, A, REGION_A, "2026/11/10", scanner + ssh),
             _flow_file(local / B, B, REGION_B, "2026/11/12", web),
             _trail_file(local / A, A, REGION_A, "2026/11/10",
                         [event("AuthorizeSecurityGroupIngress", ingress(ids[A]["web"], "tcp", 3389, 3389, "0.0.0.0/0"))])]
    import boto3
    s3 = boto3.client("s3", endpoint_url=server, region_name="us-east-1")
    for bucket in ("org-logs", "athena-results"):
        s3.create_bucket(Bucket=bucket)
    for f in files:
        key = "AWSLogs/" + f.as_posix().split("/AWSLogs/", 1)[1]
        s3.put_object(Bucket="org-logs", Key=key, Body=f.read_bytes())
    # the live inventory, saved: the local run reads the same groups, rules and interfaces
    configs = {}
    for account, region in ((A, REGION_A), (B, REGION_B)):
        ec2 = _account_session(server, account, region).client("ec2", endpoint_url=server)
        write_snapshot(local / account / "inventory", collect(ec2, account, region))
        (local / account / "AWSLogs" / account / "CloudTrail").mkdir(parents=True, exist_ok=True)
        configs[(account, region)] = write_config(local / account, f"""
            sources:
              flow_logs: AWSLogs/{account}/vpcflowlogs
              cloudtrail: AWSLogs/{account}/CloudTrail
              inventory: inventory
            """)
    return {"ids": ids, "local_configs": configs, "answers": {}, "session": boto3.Session()}


def _run(world, server, tmp_path, config=CONFIG, **kw):
    loaded = load_config(write_config(tmp_path, config))
    oracle = Oracle(server, world["local_configs"], world["answers"])
    sessions = MotoSessions(loaded.config.aws, server, oracle=oracle, session=world["session"], **kw)
    outcome = run_audit(loaded, WINDOW, out_dir=tmp_path / "out", force=True, clock=lambda: NOW,
                        aws_sessions=sessions, formats=("json", "csv", "html"))
    return outcome, oracle


def _local_findings(world):
    from tests.support.runner import run as local_run
    out = {}
    for (account, _region), cfg in world["local_configs"].items():
        record_ = local_run(cfg).record
        out[account] = sorted((c.check_id, f.severity.value, f.title, json.dumps(f.key, sort_keys=True))
                              for c in record_.checks for f in c.findings)
    return out


def test_two_accounts_end_to_end_match_the_local_engine(world, server, tmp_path):
    outcome, oracle = _run(world, server, tmp_path)
    record_ = outcome.record
    assert not [c.error for c in record_.checks if c.error]
    assert {c.check_id: c.status for c in record_.checks} == {
        "exposed_well_known_ports": Status.FAIL, "sg_changes": Status.FAIL, "top_rejected_sources": Status.FAIL,
        "unused_security_groups": Status.FAIL, "unused_sg_rules": Status.FAIL, "temporary_exposures": Status.PASS,
        # issue 21's signals: this world holds no logging, network ACL or probing events
        "logging_disabled": Status.PASS, "nacl_changes": Status.PASS, "probing_sources": Status.PASS}
    assert (record_.accounts, record_.regions) == ((A, B), (REGION_B, REGION_A))

    # The same findings as the local engine over the same records, account by account.
    expected = _local_findings(world)
    got = {acct: sorted((c.check_id, f.severity.value, f.title, json.dumps(f.key, sort_keys=True))
                        for c in record_.checks for f in c.findings if f.account_id == acct) for acct in (A, B)}
    assert got == expected
    assert expected[A] and any(c == "top_rejected_sources" for c, *_ in expected[A])

    # Every row carries its account and region.
    for check in record_.checks:
        for row in check.rows:
            assert (row["account_id"], row["region"]) in {(A, REGION_A), (B, REGION_B)}, (check.check_id, row)

    # One Athena query per engine check and target, plus top_rejected_sources' chart per target, plus one flow
    # summary (CREATE TABLE AS SELECT) per target: the only queries that read the flow logs, the timeline's narrow
    # flow_times apart. The security-group timeline adds its own queries per target (at least its SG events), listed
    # with the first check that reads it; they read CloudTrail up to the live inventory's capture time.
    queries = [q for c in record_.checks for q in c.queries if q.engine == "athena"]
    charts = [e for e in oracle.sent if re.match(r"-- auditor \w+/chart ", e["Query"])]
    summaries = [q for q in queries if q.name.startswith("flow summary")]
    timeline = [q for q in queries if q.name.startswith("timeline: ")]
    assert len([q for q in timeline if q.name.startswith("timeline: security-group events")]) == 2
    assert len(charts) == 2 and len(summaries) == 2
    assert len(queries) == 14 + len(charts) + len(summaries) + len(timeline)  # 7 engine checks x 2 targets
    # probing_sources reads both tables in one query, each restricted like the others
    probing = [e["Query"] for e in oracle.sent if e["Query"].startswith("-- auditor probing_sources/query ")]
    assert len(probing) == 2
    assert all('"security"."vpc_flow_logs"' in t and '"security"."cloudtrail"' in t for t in probing)
    assert len(oracle.sent) == len(queries) - len(summaries)  # results are fetched for all but the CTAS
    assert sorted(q.name for q in queries if q.name.startswith("chart")) == [
        f"chart ({A}/{REGION_A})", f"chart ({B}/{REGION_B})"]
    assert all(q.stats.query_id and q.stats.bytes_scanned is not None for q in queries)
    for summary in summaries:
        assert summary.text.split("\n")[1].startswith('CREATE TABLE "security"."auditor_flow_summary_')
        assert "external_location = 's3://athena-results/auditor/auditor-flow-summary/" in summary.text
        assert '"security"."vpc_flow_logs"' in summary.text and '"day" BETWEEN ? AND ?' in summary.text
    for execution in oracle.sent:
        text, params = execution["Query"], execution.get("ExecutionParameters", [])
        account, region = re.match(r"-- auditor \w+/\w+ (\d{12})/([a-z0-9-]+)", text).groups()
        assert "FROM flow_logs" not in text and "FROM cloudtrail\n" not in text
        if '"security"."auditor_flow_summary_' in text:  # a ported flow-log check reads its target's summary
            assert "vpc_flow_logs" not in text
        else:  # a query over the logs themselves, restricted to its account, region and days
            assert '"aws_account_id" = ?' in text and '"aws_region" = ?' in text and '"day" BETWEEN ? AND ?' in text
            assert params[:3] == [f"'{account}'", f"'{region}'", "'2026/11/09'"]
            if not text.startswith("-- auditor timeline/"):
                assert params[3] == "'2026/11/16'"
        assert text.count("?") == len(params)
        assert execution["WorkGroup"] == "primary"
        assert execution["QueryExecutionContext"]["Database"] == "security"

    # The report: the cost appendix and the coverage section.
    html = (outcome.out_dir / "report.html").read_text()
    quality = record_.data_quality
    assert any(n.startswith(f"Athena: {len(queries)} queries scanned") for n in quality.notes)
    assert quality.counters["athena_queries"] == len(queries)
    assert any(n.startswith(f"{A}/{REGION_A}: ") and "checks ran" in n for n in quality.notes)
    ids = world["ids"]
    assert quality.counters["coverage_interfaces"] == 4
    assert quality.counters["coverage_interfaces_unlogged"] == 2  # the interfaces in the subnets without a log
    assert quality.counters["flow_logs_reject_only"] == 2
    assert any(ids[A]["other"] in n and "have no active flow log" in n for n in quality.notes)
    assert any("records REJECT traffic only" in n for n in quality.notes)
    assert "records REJECT traffic only" in html and "estimated cost" in html
    top = next(c for c in record_.checks if c.check_id == "top_rejected_sources")
    # 2 queries and 2 charts, each billed at least 10 MB; the flow summaries are listed with the first flow-log check
    assert top.stats["athena_queries"] == 4 and top.stats["estimated_cost"] == "$0.0002"
    exposed = next(c for c in record_.checks if c.check_id == "exposed_well_known_ports")
    # (the timeline's queries are listed with it too, the first check that reads the timeline)
    assert sorted(q.name.split(" (")[0] for q in exposed.queries
                  if q.engine == "athena" and not q.name.startswith("timeline: ")) == ["flow summary"] * 2 + ["query"] * 2
    # The charts of both targets are in the merged check (issue 18: they were run, billed and dropped), and the
    # report draws them.
    assert top.chart and sum(r["flows"] for r in top.chart) >= sum(r["rejected_flows"] for r in top.rows)
    assert {r["srcaddr"] for r in top.rows} <= {r["source"] for r in top.chart}
    assert "Rejected flows per day, top 5 sources stacked" in html
    import jsonschema

    import auditor
    schema = json.loads((Path(auditor.__file__).parent / "schemas" / "findings.schema.json").read_text())
    jsonschema.validate(json.loads((outcome.out_dir / "findings.json").read_text()), schema)


def test_a_failing_account_is_shown_and_the_other_is_audited(world, server, tmp_path):
    outcome, oracle = _run(world, server, tmp_path, broken=B)
    record_ = outcome.record
    sg = next(c for c in record_.checks if c.check_id == "unused_security_groups")
    # The check keeps account A's findings and names B's failure. (Its status is recomputed from the findings
    # by the suppression stage, which overrides the merged "error"; see the report to the lead.)
    assert f"{B}/{REGION_B}" in sg.error and "AccessDenied" in sg.error
    assert {f.account_id for f in sg.findings} == {A}
    assert sg.stats["targets"] == "1 of 2 ran"
    assert any(w.startswith(f"{B}/{REGION_B} could not be audited") for w in record_.warnings)
    assert any(n.startswith(f"{B}/{REGION_B}: failed, no check ran") for n in record_.data_quality.notes)
    assert all(re.search(rf" {A}/", e["Query"]) for e in oracle.sent)  # nothing ran for B
    html = (outcome.out_dir / "report.html").read_text()
    assert f"{B}/{REGION_B} could not be audited" in html and "AccessDenied" in html


def test_a_query_over_the_scan_budget_is_skipped_and_says_so(world, server, tmp_path):
    outcome, oracle = _run(world, server, tmp_path, CONFIG.replace("max_bytes_scanned: 1 GB", "max_bytes_scanned: 100"))
    by_id = {c.check_id: c for c in outcome.record.checks}
    top = by_id["top_rejected_sources"]
    # Account A's flow-log objects are larger than 100 bytes: its queries are skipped; B's file is too.
    assert top.status is Status.SKIPPED
    assert "max_bytes_scanned" in " ".join(top.notes)
    assert by_id["unused_security_groups"].status is Status.FAIL  # the inventory-only check still runs
    assert not [e for e in oracle.sent if "top_rejected_sources" in e["Query"]]


def test_merged_chart_rows_add_up_by_bucket_and_source():
    from auditor.execute import merge_chart_rows

    a = [{"bucket": "2026-11-10T00:00:00Z", "source": "203.0.113.9", "flows": 3},
         {"bucket": "2026-11-10T00:00:00Z", "source": "other", "flows": 1}]
    b = [{"bucket": "2026-11-10T00:00:00Z", "source": "203.0.113.9", "flows": 2},
         {"bucket": "2026-11-11T00:00:00Z", "source": "198.51.100.1", "flows": 5}]
    assert sorted(merge_chart_rows([a, b]), key=lambda r: (r["bucket"], r["source"])) == [
        {"bucket": "2026-11-10T00:00:00Z", "source": "203.0.113.9", "flows": 5},
        {"bucket": "2026-11-10T00:00:00Z", "source": "other", "flows": 1},
        {"bucket": "2026-11-11T00:00:00Z", "source": "198.51.100.1", "flows": 5}]
