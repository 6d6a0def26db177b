"""exposed_well_known_ports over the security-group timeline: which rule let the traffic in (admitted_by) and the
exposure class, with the rules as they were when the flows came, on the local engine."""

from __future__ import annotations

from auditor.models import Severity
from tests.support.flowdata import ACCOUNT, record, write_config, write_flow_log, write_inventory
from tests.support.runner import results
from tests.support.trail import authorized, event, group_set, modified, revoked, write_trail

CONFIG = """
    sources:
      flow_logs: flows
      cloudtrail: trail
      inventory: inventory
    checks:
      exposed_well_known_ports: {}
    """
CAPTURED = "2026-11-20T00:00:00Z"  # after the window (2026-11-09..16): the timeline walks back to it


def rule(rid, gid, port, cidr, proto="tcp"):
    return {"SecurityGroupRuleId": rid, "GroupId": gid, "GroupOwnerId": ACCOUNT, "IsEgress": False,
            "IpProtocol": proto, "FromPort": port, "ToPort": port,
            "CidrIpv4" if ":" not in cidr else "CidrIpv6": cidr}


def inbound(eni, addr, src, port, start):
    return record(interface_id=eni, srcaddr=src, dstaddr=addr, dstport=port, start=start)


def run(tmp_path, *, enis, eni_groups, rules, events, flows, captured_at=CAPTURED, config=CONFIG):
    for e in events:  # each event in the delivery folder of its day
        write_trail(tmp_path / "trail", [e], day=e["eventTime"][:10].replace("-", "/"))
    write_trail(tmp_path / "trail", [event("DescribeInstances", {}, time="2026-11-19T23:00:00Z")], day="2026/11/19")
    write_flow_log(tmp_path / "flows", flows)
    write_inventory(tmp_path / "inventory", enis, eni_groups=eni_groups, rules=rules, captured_at=captured_at)
    outcome = results(write_config(tmp_path, config))
    return outcome["exposed_well_known_ports"]


def rows(result):
    return {(r["interface_id"], r["dstport"]): r for r in result.rows}


def severity(result):
    return {(f.key["interface_id"], f.key["dstport"]): f.severity for f in result.findings}


def test_each_exposure_class_with_the_rules_that_admitted_it(tmp_path):
    r = run(tmp_path,
            enis={"eni-bastion": ["10.0.0.5"], "eni-admin": ["10.0.0.6"], "eni-db": ["10.0.0.7"]},
            eni_groups={"eni-bastion": ["sg-bastion"], "eni-admin": ["sg-admin"], "eni-db": ["sg-db"]},
            rules=[rule("sgr-ssh", "sg-bastion", 22, "0.0.0.0/0"),
                   rule("sgr-admin", "sg-admin", 22, "198.51.100.0/24"),
                   rule("sgr-pg", "sg-db", 5432, "::/0")],
            events=[],
            flows=[inbound("eni-bastion", "10.0.0.5", "203.0.113.9", 22, "2026-11-10T12:00:00Z"),
                   inbound("eni-admin", "10.0.0.6", "198.51.100.7", 22, "2026-11-10T12:00:00Z"),
                   inbound("eni-admin", "10.0.0.6", "203.0.113.50", 3389, "2026-11-10T12:00:00Z")])
    got = rows(r)
    assert (got[("eni-bastion", 22)]["exposure"], got[("eni-bastion", 22)]["admitted_by"]) == ("reached_world_open",
                                                                                                 ["sgr-ssh"])
    assert (got[("eni-admin", 22)]["exposure"], got[("eni-admin", 22)]["admitted_by"]) == ("reached_allow_listed",
                                                                                             ["sgr-admin"])
    # no rule of eni-admin's group admits 3389 and its state is known throughout: the inventory must be missing one
    assert (got[("eni-admin", 3389)]["exposure"], got[("eni-admin", 3389)]["unexplained_reason"]) == (
        "reached_unexplained", "no_rule_admits")
    assert got[("eni-db", 5432)]["exposure"] == "open_idle" and got[("eni-db", 5432)]["admitted_by"] == []
    assert severity(r) == {("eni-bastion", 22): Severity.HIGH, ("eni-admin", 22): Severity.LOW,
                           ("eni-admin", 3389): Severity.HIGH, ("eni-db", 5432): Severity.MEDIUM}


def test_clean_private_traffic_has_no_class(tmp_path):
    r = run(tmp_path, enis={"eni-db": ["10.0.0.7"]}, eni_groups={"eni-db": ["sg-db"]},
            rules=[rule("sgr-pg", "sg-db", 5432, "10.0.0.0/8")], events=[],
            flows=[inbound("eni-db", "10.0.0.7", "10.0.3.3", 5432, "2026-11-10T12:00:00Z")])
    (row,) = r.rows
    assert (row["exposure"], row["admitted_by"], row["severity"]) == (None, [], None)
    assert r.findings == ()


def test_a_rule_opened_and_revoked_in_the_same_hour_admits_only_then(tmp_path):
    r = run(tmp_path, enis={"eni-web": ["10.0.1.10"]}, eni_groups={"eni-web": ["sg-web"]}, rules=[],
            events=[authorized("sg-web", 3389, "0.0.0.0/0", "sgr-rdp", "2026-11-10T12:00:00Z"),
                    revoked("sg-web", 3389, "0.0.0.0/0", "2026-11-10T12:40:00Z")],
            flows=[inbound("eni-web", "10.0.1.10", "203.0.113.9", 3389, "2026-11-10T12:10:00Z"),
                   inbound("eni-web", "10.0.1.10", "198.51.100.3", 22, "2026-11-10T13:30:00Z")])
    got = rows(r)
    assert (got[("eni-web", 3389)]["exposure"], got[("eni-web", 3389)]["admitted_by"]) == ("reached_world_open",
                                                                                             ["sgr-rdp"])
    # the rule was gone at 13:30 and the group's state is known: nothing admitted this one
    assert got[("eni-web", 22)]["exposure"] == "reached_unexplained"
    assert got[("eni-web", 22)]["unexplained_reason"] == "no_rule_admits"


def test_idle_only_for_the_part_of_the_window_a_rule_was_open(tmp_path):
    # opened on 11-10 12:00, revoked 12:30; traffic from the internet came at 14:00 when the rule was gone, through
    # an allow-listed rule: the port is reached_allow_listed, and world_open says a world rule held for part of it
    r = run(tmp_path, enis={"eni-web": ["10.0.1.10"]}, eni_groups={"eni-web": ["sg-web"]},
            rules=[rule("sgr-vpn", "sg-web", 22, "198.51.100.0/24")],
            events=[authorized("sg-web", 22, "0.0.0.0/0", "sgr-open", "2026-11-10T12:00:00Z"),
                    revoked("sg-web", 22, "0.0.0.0/0", "2026-11-10T12:30:00Z")],
            flows=[inbound("eni-web", "10.0.1.10", "198.51.100.3", 22, "2026-11-10T14:00:00Z")])
    row = rows(r)[("eni-web", 22)]
    assert (row["exposure"], row["admitted_by"], row["world_open"]) == ("reached_allow_listed", ["sgr-vpn"], True)
    assert severity(r) == {("eni-web", 22): Severity.LOW}


def test_a_modify_with_no_prior_state_leaves_the_time_before_it_unknown(tmp_path):
    r = run(tmp_path, enis={"eni-db": ["10.0.0.7"]}, eni_groups={"eni-db": ["sg-db"]},
            rules=[rule("sgr-mysql", "sg-db", 3306, "203.0.113.0/24")],
            events=[modified("sg-db", "sgr-mysql", 3306, "203.0.113.0/24", "2026-11-12T00:00:00Z")],
            flows=[inbound("eni-db", "10.0.0.7", "45.1.1.1", 3306, "2026-11-11T08:00:00Z"),
                   inbound("eni-db", "10.0.0.7", "203.0.113.5", 3306, "2026-11-13T08:00:00Z")])
    row = rows(r)[("eni-db", 3306)]
    assert (row["exposure"], row["unexplained_reason"]) == ("reached_unexplained", "state_unknown")
    assert row["admitted_by"] == ["sgr-mysql"]  # the later source, after the modify
    assert severity(r) == {("eni-db", 3306): Severity.HIGH}
    # the finding says so in words, and its advice is to find out how the sources got in, not to narrow a CIDR
    (finding,) = r.findings
    assert "no rule known to be in force admits these sources: the group's rules at the time are unknown" in finding.title
    assert finding.remediation.startswith("Find out how these sources got in: CloudTrail does not say which rules")


def test_an_unexplained_exposure_on_a_port_that_is_world_open_now_is_advised_as_unexplained(tmp_path):
    # open to the world in the inventory now, but by a modify after the traffic came: the state then is unknown
    r = run(tmp_path, enis={"eni-db": ["10.0.0.7"]}, eni_groups={"eni-db": ["sg-db"]},
            rules=[rule("sgr-ssh", "sg-db", 22, "0.0.0.0/0")],
            events=[modified("sg-db", "sgr-ssh", 22, "0.0.0.0/0", "2026-11-12T00:00:00Z")],
            flows=[inbound("eni-db", "10.0.0.7", "45.1.1.1", 22, "2026-11-11T08:00:00Z")])
    row = rows(r)[("eni-db", 22)]
    assert (row["exposure"], row["unexplained_reason"], row["world_open"]) == ("reached_unexplained",
                                                                               "state_unknown", True)
    (finding,) = r.findings
    assert "no rule known to be in force admits these sources" in finding.title
    assert finding.remediation.startswith("Remove 0.0.0.0/0 and ::/0 from the rule that opens SSH (tcp/22) now, "
                                          "and find out how these sources got in: CloudTrail does not say")


def test_an_interface_that_changed_groups_mid_window_is_judged_by_the_groups_of_the_time(tmp_path):
    common = dict(enis={"eni-x": ["10.0.0.8"], "eni-y": ["10.0.0.9"]},
                  eni_groups={"eni-x": ["sg-open"], "eni-y": ["sg-open"]},
                  rules=[rule("sgr-vpn", "sg-vpn", 22, "198.51.100.0/24"), rule("sgr-world", "sg-open", 22, "0.0.0.0/0")],
                  events=[group_set("eni-x", ["sg-vpn"], "2026-11-11T00:00:00Z"),
                          group_set("eni-y", ["sg-vpn"], "2026-11-11T00:00:00Z"),
                          group_set("eni-x", ["sg-open"], "2026-11-13T00:00:00Z"),
                          group_set("eni-y", ["sg-open"], "2026-11-13T00:00:00Z")])
    r = run(tmp_path, **common,
            flows=[inbound("eni-x", "10.0.0.8", "198.51.100.9", 22, "2026-11-12T00:00:00Z"),
                   inbound("eni-x", "10.0.0.8", "8.8.8.8", 22, "2026-11-14T00:00:00Z"),
                   inbound("eni-y", "10.0.0.9", "198.51.100.9", 22, "2026-11-12T00:00:00Z"),
                   inbound("eni-y", "10.0.0.9", "203.0.113.1", 22, "2026-11-10T00:00:00Z")])
    got = rows(r)
    assert (got[("eni-x", 22)]["exposure"], got[("eni-x", 22)]["admitted_by"]) == ("reached_world_open",
                                                                                     ["sgr-vpn", "sgr-world"])
    # eni-y carries the world-open group at capture, but its internet traffic came while it carried sg-vpn; the
    # one before the first groupSet change (11-10) is unknown: the event carries the new set only
    assert got[("eni-y", 22)]["exposure"] == "reached_unexplained"
    assert got[("eni-y", 22)]["unexplained_reason"] == "state_unknown"
    assert got[("eni-y", 22)]["admitted_by"] == ["sgr-vpn"]


def test_the_check_says_where_the_rules_cannot_be_known(tmp_path):
    r = run(tmp_path, enis={"eni-db": ["10.0.0.7"]}, eni_groups={"eni-db": ["sg-db"]},
            rules=[rule("sgr-mysql", "sg-db", 3306, "203.0.113.0/24")],
            events=[modified("sg-db", "sgr-mysql", 3306, "203.0.113.0/24", "2026-11-12T00:00:00Z")],
            flows=[inbound("eni-db", "10.0.0.7", "45.1.1.1", 3306, "2026-11-11T08:00:00Z")])
    assert ("timeline: rule sgr-mysql of sg-db cannot be known until 2026-11-12T00:00:00Z: before "
            "ModifySecurityGroupRules at 2026-11-12 00:00 UTC, which does not carry the old rule") in r.notes
