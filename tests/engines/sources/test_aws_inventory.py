"""The live inventory against moto: the same tables as a snapshot read from files, the snapshot command, paging,
and the flow-log coverage section."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from auditor.aws import AwsSessions, Target
from auditor.cli import main
from auditor.config import load_config
from auditor.engines.embedded import Workspace
from auditor.engines.sources import aws_inventory
from auditor.tables import INVENTORY_TABLES
from tests.support.flowdata import write_config
from tests.support.moto_server import FAKE_ENV, moto_server, reset

A = "111122223333"
CAPTURED = datetime(2026, 11, 12, 6, 30, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def server():
    with pytest.MonkeyPatch.context() as mp:
        for k, v in FAKE_ENV.items():
            mp.setenv(k, v)
        with moto_server() as url:
            mp.setenv("AWS_ENDPOINT_URL", url)  # the CLI's own sessions find the server through the standard variable
            yield url


@pytest.fixture(scope="module")
def account(server):
    """One account with a VPC, two subnets, three interfaces, groups and rules, and three flow logs."""
    reset(server)
    sts = boto3.client("sts", region_name="us-east-1")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{A}:role/setup", RoleSessionName="setup")["Credentials"]
    session = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"], region_name="us-east-1")
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    logged = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    bare = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24")["Subnet"]["SubnetId"]
    web = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    ec2.create_security_group(GroupName="spare", Description="unused", VpcId=vpc)
    enis = [ec2.create_network_interface(SubnetId=s, Groups=[web], PrivateIpAddress=ip)["NetworkInterface"]["NetworkInterfaceId"]
            for s, ip in ((logged, "10.0.1.10"), (logged, "10.0.1.11"), (bare, "10.0.2.10"))]
    session.client("s3").create_bucket(Bucket="fl-bucket")
    ec2.create_flow_logs(ResourceIds=[logged], ResourceType="Subnet", TrafficType="REJECT", LogDestinationType="s3",
                         LogDestination="arn:aws:s3:::fl-bucket", LogFormat="${version} ${srcaddr} ${dstaddr}")
    ec2.create_flow_logs(ResourceIds=[enis[0]], ResourceType="NetworkInterface", TrafficType="ACCEPT",
                         LogDestinationType="s3", LogDestination="arn:aws:s3:::fl-bucket")
    ec2.create_flow_logs(ResourceIds=[enis[2]], ResourceType="NetworkInterface", TrafficType="ALL",
                         LogGroupName="missing-group",
                         DeliverLogsPermissionArn=f"arn:aws:iam::{A}:role/flowlogs")  # delivery FAILS: no such group
    return {"vpc": vpc, "logged": logged, "bare": bare, "enis": enis, "web": web}


def _config(tmp_path, extra=""):
    return load_config(write_config(tmp_path, f"""
        aws: {{regions: [us-east-1]}}
        accounts:
          - {{id: "{A}", role_arn: "arn:aws:iam::{A}:role/auditor"}}
        sources:
          inventory: {{engine: aws_api}}
          {extra}
        """))


def _tables(workspace):
    return {t: sorted(workspace.con.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in INVENTORY_TABLES}


def test_live_inventory_fills_the_same_tables_as_its_snapshot_from_files(server, account, tmp_path):
    loaded = _config(tmp_path)
    sessions = AwsSessions(loaded.config.aws, endpoint_url=server)
    live = Workspace()
    snapshot, coverage = aws_inventory.load(live.con, loaded, sessions, Target(loaded.config.accounts[0], "us-east-1"),
                                            clock=lambda: CAPTURED)
    assert snapshot.captured_at == CAPTURED and snapshot.accounts == (A,) and snapshot.regions == ("us-east-1",)
    assert {f.path for f in snapshot.files} == {f"aws:{A}/us-east-1/describe-{k}.json" for k in
                                                 ("security-groups", "security-group-rules", "network-interfaces",
                                                  "network-acls")}
    live_tables = _tables(live)
    # The VPC's default network ACL (ec2:DescribeNetworkAcls): its allow-all entry 100 and the final deny, each way.
    acl_entries = {(r[4], r[5], r[6], r[7]) for r in live_tables["nacl_entries"]}
    assert {(100, False, "allow", -1), (100, True, "allow", -1)} <= acl_entries

    # `auditor inventory snapshot --out DIR` writes the AWS CLI shape; the file reader loads the same rows.
    out = tmp_path / "snap"
    result = CliRunner().invoke(main, ["inventory", "snapshot", "--out", str(out), "--config", str(loaded.path)])
    assert result.exit_code == 0, result.output
    folder = out / A / "us-east-1"
    doc = json.loads((folder / "describe-network-interfaces.json").read_text())
    assert set(doc) == {"NetworkInterfaces", "captured_at"} and len(doc["NetworkInterfaces"]) == 3
    assert (folder / "describe-flow-logs.json").exists()
    from_files = Workspace()
    from_files.load_inventory(out)
    assert _tables(from_files) == live_tables
    groups = {r[3] for r in live_tables["sg_groups"]}
    assert {"web", "spare", "default"} <= groups
    rules = [r for r in live_tables["sg_rules"] if r[3] == account["web"] and not r[5]]
    assert sorted((r[6], r[7], r[9] or r[10]) for r in rules) == [(6, 22, "0.0.0.0/0"), (6, 443, "::/0")]
    assert all(r[0] == A and r[1] == "us-east-1" for t in live_tables.values() for r in t)

    assert coverage.counters["coverage_interfaces"] == 3
    assert coverage.counters["coverage_interfaces_unlogged"] == 0  # the third is covered, its delivery fails
    # eni 0: REJECT (its subnet) + ACCEPT (its own log) is everything; eni 1 has the subnet's REJECT only
    assert coverage.counters["coverage_interfaces_partial"] == 1
    assert any("logged for ACCEPT or REJECT traffic only: " + account["enis"][1] in n for n in coverage.notes)
    assert coverage.counters["flow_logs_delivery_failed"] == 1
    assert coverage.counters["flow_logs_reject_only"] == 1 and coverage.counters["flow_logs_accept_only"] == 1
    assert any(account["bare"] in n and "subnets have no active flow log" in n for n in coverage.notes)
    assert any("format ${version} ${srcaddr} ${dstaddr}" in n for n in coverage.notes)
    assert any("cannot deliver: Access error" in n for n in coverage.notes)


def test_coverage_warns_when_no_athena_table_has_a_logs_format(server, account, tmp_path):
    loaded = _config(tmp_path, 'flow_logs: {engine: athena, database: sec, tables: [vpc_v2], '
                               'location: "s3://org-logs/AWSLogs/"}')
    sessions = AwsSessions(loaded.config.aws, endpoint_url=server)
    _, coverage = aws_inventory.load(Workspace().con, loaded, sessions, Target(loaded.config.accounts[0], "us-east-1"))
    odd = [n for n in coverage.notes if "writes a format no configured Athena flow-log table has" in n]
    assert len(odd) == 1  # the custom-format S3 log; the default-format one matches the v2 table


def test_every_page_of_every_describe_call_is_read(monkeypatch):
    for k, v in FAKE_ENV.items():
        monkeypatch.setenv(k, v)
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    with Stubber(ec2) as stub:
        stub.add_response("describe_security_groups", {"SecurityGroups": [{"GroupId": "sg-1"}], "NextToken": "p2"}, {})
        stub.add_response("describe_security_groups", {"SecurityGroups": [{"GroupId": "sg-2"}]}, {"NextToken": "p2"})
        stub.add_response("describe_security_group_rules", {"SecurityGroupRules": []}, {})
        stub.add_response("describe_network_interfaces", {"NetworkInterfaces": [{"NetworkInterfaceId": "eni-1"}],
                                                          "NextToken": "n2"}, {})
        stub.add_response("describe_network_interfaces", {"NetworkInterfaces": [{"NetworkInterfaceId": "eni-2"}]},
                          {"NextToken": "n2"})
        stub.add_response("describe_network_acls", {"NetworkAcls": [{"NetworkAclId": "acl-1"}], "NextToken": "a2"},
                          {})
        stub.add_response("describe_network_acls", {"NetworkAcls": [{"NetworkAclId": "acl-2"}]}, {"NextToken": "a2"})
        docs = aws_inventory.collect(ec2, A, "us-east-1", coverage=False, clock=lambda: CAPTURED)
    assert [g["GroupId"] for g in docs.items["describe-security-groups"]] == ["sg-1", "sg-2"]
    assert [a["NetworkAclId"] for a in docs.items["describe-network-acls"]] == ["acl-1", "acl-2"]
    assert [e["NetworkInterfaceId"] for e in docs.items["describe-network-interfaces"]] == ["eni-1", "eni-2"]


def test_a_role_without_describe_network_acls_loses_only_that_file(monkeypatch):
    for k, v in FAKE_ENV.items():
        monkeypatch.setenv(k, v)
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    with Stubber(ec2) as stub:
        stub.add_response("describe_security_groups", {"SecurityGroups": [{"GroupId": "sg-1"}]}, {})
        stub.add_response("describe_security_group_rules", {"SecurityGroupRules": []}, {})
        stub.add_response("describe_network_interfaces", {"NetworkInterfaces": []}, {})
        stub.add_client_error("describe_network_acls", "UnauthorizedOperation", "You are not authorized", 403)
        docs = aws_inventory.collect(ec2, A, "us-east-1", coverage=False, clock=lambda: CAPTURED)
    assert "describe-network-acls" not in docs.items and len(docs.items["describe-security-groups"]) == 1
    (warning,) = docs.warnings
    assert warning.startswith(f"{A}/us-east-1: ec2:DescribeNetworkAcls failed: UnauthorizedOperation")
    assert "auditor iam-policy" in warning


def test_an_api_failure_names_the_account_region_and_call(monkeypatch):
    for k, v in FAKE_ENV.items():
        monkeypatch.setenv(k, v)
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    from auditor.errors import EngineError
    with Stubber(ec2) as stub:
        stub.add_client_error("describe_security_groups", "UnauthorizedOperation", "You are not authorized", 403)
        with pytest.raises(EngineError, match=rf"{A}/us-east-1: ec2:DescribeSecurityGroups failed: UnauthorizedOperation"):
            aws_inventory.collect(ec2, A, "us-east-1")


def test_coverage_of_a_vpc_level_log_covers_every_interface():
    docs = aws_inventory.Documents(A, "us-east-1", CAPTURED, {
        "describe-flow-logs": ({"FlowLogId": "fl-1", "ResourceId": "vpc-1", "TrafficType": "ALL",
                                "FlowLogStatus": "ACTIVE", "DeliverLogsStatus": "SUCCESS"},),
        "describe-network-interfaces": ({"NetworkInterfaceId": "eni-1", "SubnetId": "subnet-1", "VpcId": "vpc-1"},
                                        {"NetworkInterfaceId": "eni-2", "SubnetId": "subnet-9", "VpcId": "vpc-2"}),
        "describe-subnets": ({"SubnetId": "subnet-1", "VpcId": "vpc-1"}, {"SubnetId": "subnet-9", "VpcId": "vpc-2"}),
        "describe-vpcs": ({"VpcId": "vpc-1"}, {"VpcId": "vpc-2"}),
    })
    q = aws_inventory.coverage(docs)
    assert q.counters["coverage_interfaces_unlogged"] == 1 and q.counters["coverage_interfaces_partial"] == 0
    assert q.counters["coverage_subnets_unlogged"] == 1 and q.counters["coverage_vpcs_unlogged"] == 1
    assert any("1 of 2 network interfaces have no active flow log" in n and "eni-2" in n for n in q.notes)


def test_accounts_are_audited_in_parallel_into_one_report(server, account, tmp_path):
    b = "444455556666"
    sts = boto3.client("sts", region_name="eu-west-1")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{b}:role/setup", RoleSessionName="setup")["Credentials"]
    ec2 = boto3.client("ec2", region_name="eu-west-1", aws_access_key_id=creds["AccessKeyId"],
                       aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    lonely = ec2.create_security_group(GroupName="lonely", Description="unused", VpcId=vpc)["GroupId"]
    cfg = write_config(tmp_path, f"""
        aws: {{regions: [us-east-1], max_parallel: 2}}
        accounts:
          - {{id: "{A}", role_arn: "arn:aws:iam::{A}:role/auditor"}}
          - {{id: "{b}", role_arn: "arn:aws:iam::{b}:role/auditor", regions: [eu-west-1]}}
        sources:
          inventory: {{engine: aws_api}}
        checks:
          unused_security_groups: {{}}
        """)
    from auditor.models import Status, TimeWindow
    from auditor.pipeline import run_audit
    loaded = load_config(cfg)
    window = TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc))
    outcome = run_audit(loaded, window, out_dir=tmp_path / "out", force=True, formats=("json",),
                        clock=lambda: datetime(2026, 11, 23, tzinfo=timezone.utc),
                        aws_sessions=AwsSessions(loaded.config.aws, endpoint_url=server))
    (check,) = outcome.record.checks
    assert check.status is Status.FAIL
    found = {(f.account_id, f.region, f.key["group_id"]) for f in check.findings}
    assert (b, "eu-west-1", lonely) in found
    assert {a for a, _, _ in found} == {A, b}
    assert outcome.record.accounts == (A, b) and outcome.record.regions == ("eu-west-1", "us-east-1")
    assert all(row["account_id"] in (A, b) for row in check.rows)
