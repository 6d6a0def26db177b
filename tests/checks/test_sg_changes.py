"""sg_changes on the local engine: request shapes, directions, failures, and severities."""

from __future__ import annotations

import json
import shutil

from auditor.models import Severity, Status, TimeWindow
from tests.support.flowdata import write_config, write_inventory
from tests.support.runner import results
from tests.support.trail import event, ingress, write_trail

CONFIG = """
    sources:
      cloudtrail: trail
      inventory: inventory
    checks:
      sg_changes: {}
    """


def run(tmp_path, events, rules=()):
    write_trail(tmp_path / "trail", events)
    write_inventory(tmp_path / "inventory", {"eni-a": ["10.0.0.5"]}, rules=rules)
    return results(write_config(tmp_path, CONFIG))["sg_changes"]


def by_id(result):
    return {row["event_id"]: row for row in result.rows}


def severities(result):
    return {f.key["event_id"]: f.severity for f in result.findings}


def test_modern_world_open_ssh_is_high_and_carries_the_event_id(tmp_path):
    e = event("AuthorizeSecurityGroupIngress", ingress("sg-1", "tcp", 22, 22, "0.0.0.0/0"))
    r = run(tmp_path, [e])
    assert severities(r) == {e["eventID"]: Severity.HIGH}
    row = by_id(r)[e["eventID"]]
    assert row["group_id"] == "sg-1"
    assert row["rules"] == [{"direction": "ingress", "protocol": 6, "from_port": 22, "to_port": 22, "source": "0.0.0.0/0"}]
    assert row["actor"] == "arn:aws:iam::111122223333:user/alice"
    assert row["event_time"] == "2026-11-10T12:00:00Z" and row["source_ip"] == "198.51.100.44"
    assert r.status is Status.FAIL


def test_legacy_flat_shape_from_a_real_detonation_is_high(tmp_path, corpus):
    # Stratus Red Team's captured AuthorizeSecurityGroupIngress: flat cidrIp/fromPort/toPort, CIDR x.x.x.x/0.
    src = corpus / "stratus-red-team" / "aws.exfiltration.ec2-security-group-open-port-22-ingress.json"
    (e,) = json.loads(src.read_text())
    folder = tmp_path / "trail"
    folder.mkdir()
    shutil.copy(src, folder / src.name)
    write_inventory(tmp_path / "inventory", {})
    config = write_config(tmp_path, CONFIG)
    t = e["eventTime"][:10]
    from datetime import date, datetime, timedelta, timezone
    day = datetime.combine(date.fromisoformat(t), datetime.min.time(), tzinfo=timezone.utc)
    r = results(config, TimeWindow(day, day + timedelta(days=1)))["sg_changes"]
    row = by_id(r)[e["eventID"]]
    assert row["rules"] == [{"direction": "ingress", "protocol": 6, "from_port": 22, "to_port": 22,
                             "source": e["requestParameters"]["cidrIp"]}]
    assert row["group_id"] == e["requestParameters"]["groupId"]
    assert severities(r)[e["eventID"]] is Severity.HIGH


def test_string_ports_and_ranges_covering_a_sensitive_port(tmp_path):
    e1 = event("AuthorizeSecurityGroupIngress", ingress("sg-1", "tcp", "3000", "3400", "::/0"), time="2026-11-10T01:00:00Z")
    e2 = event("AuthorizeSecurityGroupIngress", ingress("sg-1", "tcp", "8443", "8443", "0.0.0.0/0"), time="2026-11-10T02:00:00Z")
    e3 = event("AuthorizeSecurityGroupIngress", ingress("sg-1", "-1", None, None, "0.0.0.0/0"), time="2026-11-10T03:00:00Z")
    e4 = event("AuthorizeSecurityGroupIngress", ingress("sg-1", "tcp", 22, 22, "10.0.0.0/8"), time="2026-11-10T04:00:00Z")
    r = run(tmp_path, [e1, e2, e3, e4])
    assert severities(r) == {e1["eventID"]: Severity.HIGH, e2["eventID"]: Severity.MEDIUM,
                             e3["eventID"]: Severity.CRITICAL}
    assert "tcp/3306" in by_id(r)[e1["eventID"]]["summary"] and "tcp/3389" in by_id(r)[e1["eventID"]]["summary"]
    assert by_id(r)[e3["eventID"]]["rules"][0]["protocol"] == -1


def test_failed_call_is_low_and_egress_world_open_is_not_high(tmp_path):
    failed = event("AuthorizeSecurityGroupIngress", ingress("sg-1", "tcp", 22, 22, "0.0.0.0/0"),
                   error="Client.UnauthorizedOperation", time="2026-11-10T05:00:00Z",
                   arn=None, userIdentity={"type": "AssumedRole", "principalId": "AROAX:bob",
                                           "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/dev"}}})
    egress = event("AuthorizeSecurityGroupEgress", ingress("sg-1", "-1", None, None, "0.0.0.0/0"), time="2026-11-10T06:00:00Z")
    r = run(tmp_path, [failed, egress])
    sev = severities(r)
    assert sev[failed["eventID"]] is Severity.LOW
    assert by_id(r)[failed["eventID"]]["error_code"] == "Client.UnauthorizedOperation"
    assert by_id(r)[failed["eventID"]]["actor"] == "arn:aws:iam::111122223333:role/dev"
    assert sev[egress["eventID"]] is Severity.INFO
    assert by_id(r)[egress["eventID"]]["rules"][0]["direction"] == "egress"


def _modify(rule_id: str, cidr: str, port: int) -> dict:
    return {"ModifySecurityGroupRulesRequest": {"GroupId": "sg-9", "SecurityGroupRule": {
        "SecurityGroupRuleId": rule_id,
        "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "CidrIpv4": cidr}}}}


def test_modify_security_group_rules_with_and_without_the_rule_in_the_inventory(tmp_path):
    known_egress = event("ModifySecurityGroupRules", _modify("sgr-egress", "0.0.0.0/0", 22), time="2026-11-10T07:00:00Z")
    unknown = event("ModifySecurityGroupRules", _modify("sgr-gone", "0.0.0.0/0", 3389), time="2026-11-10T08:00:00Z")
    rules = [{"SecurityGroupRuleId": "sgr-egress", "GroupId": "sg-9", "GroupOwnerId": "111122223333", "IsEgress": True,
              "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv4": "0.0.0.0/0"}]
    r = run(tmp_path, [known_egress, unknown], rules=rules)
    rows = by_id(r)
    assert rows[known_egress["eventID"]]["rules"][0]["direction"] == "egress"
    assert rows[known_egress["eventID"]]["group_id"] == "sg-9"
    assert known_egress["eventID"] not in {k for k, s in severities(r).items() if s.rank >= Severity.HIGH.rank}
    assert severities(r)[unknown["eventID"]] is Severity.HIGH
    assert "assumed ingress" in rows[unknown["eventID"]]["summary"]


def test_clean_with_benign_changes_and_noise(tmp_path):
    create = event("CreateSecurityGroup", {"groupName": "web", "vpcId": "vpc-1"}, {"groupId": "sg-new", "_return": True},
                   time="2026-11-10T09:00:00Z")
    attach = event("ModifyNetworkInterfaceAttribute",
                   {"networkInterfaceId": "eni-a", "groupSet": {"items": [{"groupId": "sg-new"}, {"groupId": "sg-1"}]}},
                   time="2026-11-10T10:00:00Z")
    user_data = event("ModifyInstanceAttribute", {"instanceId": "i-1", "userData": "<sensitiveDataRemoved>"},
                      time="2026-11-10T11:00:00Z")
    describe = event("DescribeSecurityGroups", {}, time="2026-11-10T11:30:00Z")
    other_service = event("AuthorizeSecurityGroupIngress", ingress("sg-1", "tcp", 22, 22, "0.0.0.0/0"),
                          source="rds.amazonaws.com", time="2026-11-10T11:40:00Z")
    revoke = event("RevokeSecurityGroupIngress", ingress("sg-1", "tcp", 22, 22, "0.0.0.0/0"), time="2026-11-10T13:00:00Z")
    r = run(tmp_path, [create, attach, user_data, describe, other_service, revoke])
    rows = by_id(r)
    assert set(rows) == {create["eventID"], attach["eventID"], revoke["eventID"]}
    assert rows[create["eventID"]]["group_id"] == "sg-new"
    assert rows[attach["eventID"]]["group_id"] == "eni-a"
    assert [x["source"] for x in rows[attach["eventID"]]["rules"]] == ["sg-new", "sg-1"]
    assert r.status is Status.PASS and r.findings == ()
    assert [row["event_name"] for row in r.rows] == ["CreateSecurityGroup", "ModifyNetworkInterfaceAttribute",
                                                     "RevokeSecurityGroupIngress"]


def test_duplicate_events_from_two_trails_count_once(tmp_path):
    e = event("AuthorizeSecurityGroupIngress", ingress("sg-1", "tcp", 22, 22, "0.0.0.0/0"))
    write_trail(tmp_path / "trail", [e])
    r = run(tmp_path, [e])
    assert len(r.rows) == 1 and len(r.findings) == 1


def test_the_same_event_from_two_trails_is_judged_once_on_every_engine():
    # Athena and Insights read an organization trail's and an account trail's copy of a call as two rows; the
    # hook keeps the first (the local reader has dropped the copy already). No event ID: never a duplicate.
    from auditor.checks import HookContext
    from auditor.checks.sg_changes.hook import transform
    row = {"event_id": "e-1", "event_time": "2026-11-10T12:00:00Z", "event_name": "DeleteSecurityGroup",
           "request_parameters": json.dumps({"groupId": "sg-1"}), "error_code": None}
    other = dict(row, event_id="e-2", request_parameters=json.dumps({"groupId": "sg-2"}))
    anonymous = dict(row, event_id=None)
    _, out = transform((), [row, dict(row), other, anonymous, dict(anonymous)], HookContext(params={}, rule_egress={}))
    assert [(r["event_id"], r["group_id"]) for r in out] == [("e-1", "sg-1"), ("e-2", "sg-2"), (None, "sg-1"),
                                                              (None, "sg-1")]
