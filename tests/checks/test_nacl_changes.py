"""nacl_changes on the local engine: entries set, replaced and deleted, the previous entry named from an earlier call
of the window or from the inventory's network ACLs (captured before the call), or said to be unknown."""

from __future__ import annotations

import json

from auditor.models import Severity, Status
from tests.support.flowdata import ACCOUNT, REGION, write_config, write_inventory
from tests.support.runner import results
from tests.support.trail import event, write_trail

CONFIG = """
    sources:
      cloudtrail: trail
    checks:
      nacl_changes: {}
    """
WITH_INVENTORY = """
    sources:
      cloudtrail: trail
      inventory: inventory
    checks:
      nacl_changes: {}
    """
ACL = "acl-0a1b2c3d4e5f60718"


def entry(number, action, proto, lo, hi, cidr, *, egress=False, acl=ACL):
    req = {"networkAclId": acl, "ruleNumber": number, "egress": egress, "ruleAction": action, "icmpTypeCode": {},
           "aclProtocol": str(proto), "cidrBlock": cidr}
    if lo is not None:
        req["portRange"] = {"from": lo, "to": hi}
    return req


def run(tmp_path, events, body=CONFIG):
    write_trail(tmp_path / "trail", events)
    return results(write_config(tmp_path, body))["nacl_changes"]


def rows(result):
    return {row["event_id"]: row for row in result.rows}


def severities(result):
    return {f.key["event_id"]: f.severity for f in result.findings}


def titles(result):
    return {f.key["event_id"]: f.title for f in result.findings}


def test_an_inbound_allow_from_the_internet_on_rdp_is_high_and_reads_in_words(tmp_path):
    rdp = event("CreateNetworkAclEntry", entry(90, "allow", 6, 3389, 3389, "0.0.0.0/0"), time="2026-11-10T01:00:00Z",
                arn="arn:aws:sts::111122223333:assumed-role/DeveloperRole/dave@example.com")
    everything = event("CreateNetworkAclEntry", entry(95, "allow", -1, None, None, "::/0"), time="2026-11-10T02:00:00Z")
    web = event("CreateNetworkAclEntry", entry(100, "allow", 6, 443, 443, "0.0.0.0/0"), time="2026-11-10T03:00:00Z")
    out = event("CreateNetworkAclEntry", entry(100, "allow", 6, 3389, 3389, "0.0.0.0/0", egress=True),
                time="2026-11-10T04:00:00Z")
    r = run(tmp_path, [rdp, everything, web, out])
    assert severities(r) == {rdp["eventID"]: Severity.HIGH, everything["eventID"]: Severity.HIGH,
                             web["eventID"]: Severity.LOW, out["eventID"]: Severity.LOW}
    row = rows(r)[rdp["eventID"]]
    assert (row["network_acl_id"], row["rule_number"], row["egress"], row["rule_action"], row["protocol"],
            row["from_port"], row["to_port"], row["cidr"]) == (ACL, 90, False, "allow", 6, 3389, 3389, "0.0.0.0/0")
    assert rows(r)[everything["eventID"]]["protocol"] == -1 and rows(r)[everything["eventID"]]["from_port"] is None
    assert titles(r)[rdp["eventID"]] == (f"Inbound rule 90 allows RDP (tcp/3389) from the internet on {ACL}, added "
                                         "by dave@example.com (DeveloperRole)")
    assert titles(r)[everything["eventID"]].startswith("Inbound rule 95 allows all traffic from the internet")
    assert r.status is Status.FAIL and r.severity is Severity.HIGH


def test_deleting_a_deny_set_earlier_in_the_window_is_medium_and_names_it(tmp_path):
    deny = event("CreateNetworkAclEntry", entry(80, "deny", 6, 22, 22, "203.0.113.9/32"), time="2026-11-10T01:00:00Z")
    gone = event("DeleteNetworkAclEntry", {"networkAclId": ACL, "ruleNumber": 80, "egress": False},
                 time="2026-11-12T01:00:00Z")
    unknown = event("DeleteNetworkAclEntry", {"networkAclId": ACL, "ruleNumber": 70, "egress": False},
                    time="2026-11-12T02:00:00Z")
    replaced_unknown = event("ReplaceNetworkAclEntry", entry(60, "allow", 6, 8443, 8443, "10.0.0.0/8"),
                             time="2026-11-12T03:00:00Z")
    r = run(tmp_path, [deny, gone, unknown, replaced_unknown])
    sev = severities(r)
    assert sev[gone["eventID"]] is Severity.MEDIUM
    assert sev[unknown["eventID"]] is Severity.LOW and sev[replaced_unknown["eventID"]] is Severity.LOW
    got = rows(r)[gone["eventID"]]
    assert (got["rule_action"], got["protocol"], got["from_port"], got["cidr"]) == ("deny", 6, 22, "203.0.113.9/32")
    assert got["previous_entry"] == "deny SSH (tcp/22) from 203.0.113.9/32"
    assert rows(r)[unknown["eventID"]]["previous_entry"] == "previous entry unknown"
    assert rows(r)[unknown["eventID"]]["rule_action"] is None
    assert rows(r)[replaced_unknown["eventID"]]["previous_entry"] == "previous entry unknown"
    assert titles(r)[gone["eventID"]] == (f"alice deleted inbound rule 80 on {ACL} (it was: deny SSH (tcp/22) from "
                                          "203.0.113.9/32)")
    assert titles(r)[unknown["eventID"]].endswith("(previous entry unknown)")


def _acls(tmp_path, captured_at):
    write_inventory(tmp_path / "inventory", {"eni-a": ["10.0.0.5"]}, captured_at=captured_at)
    doc = {"captured_at": captured_at, "NetworkAcls": [{
        "NetworkAclId": ACL, "VpcId": "vpc-1", "OwnerId": ACCOUNT, "IsDefault": False, "Entries": [
            {"RuleNumber": 50, "Egress": False, "RuleAction": "deny", "Protocol": "6",
             "PortRange": {"From": 3389, "To": 3389}, "CidrBlock": "0.0.0.0/0"},
            {"RuleNumber": 32767, "Egress": False, "RuleAction": "deny", "Protocol": "-1", "CidrBlock": "0.0.0.0/0"}]}]}
    (tmp_path / "inventory" / ACCOUNT / REGION / "describe-network-acls.json").write_text(json.dumps(doc))


def test_a_replaced_deny_is_named_from_the_inventory_captured_before_the_call(tmp_path):
    _acls(tmp_path, "2026-11-09T00:00:00Z")
    opened = event("ReplaceNetworkAclEntry", entry(50, "allow", 6, 3389, 3389, "0.0.0.0/0"), time="2026-11-10T05:00:00Z")
    r = run(tmp_path, [opened], body=WITH_INVENTORY)
    row = rows(r)[opened["eventID"]]
    assert row["previous_entry"] == "deny RDP (tcp/3389) from the internet"
    assert row["rule_action"] == "allow"
    assert severities(r) == {opened["eventID"]: Severity.HIGH}  # the new entry opens RDP: high beats medium
    assert titles(r)[opened["eventID"]].endswith("(it was: deny RDP (tcp/3389) from the internet)")


def test_a_replaced_deny_is_medium_and_an_inventory_captured_after_the_call_is_not_used(tmp_path):
    _acls(tmp_path, "2026-11-09T00:00:00Z")
    narrowed = event("ReplaceNetworkAclEntry", entry(50, "allow", 6, 8443, 8443, "10.0.0.0/8"),
                     time="2026-11-10T05:00:00Z")
    r = run(tmp_path, [narrowed], body=WITH_INVENTORY)
    assert severities(r) == {narrowed["eventID"]: Severity.MEDIUM}
    (tmp_path / "out").rename(tmp_path / "out-1")
    _acls(tmp_path, "2026-11-15T00:00:00Z")  # captured after the call: it shows the entry as the call left it
    r = run(tmp_path, [narrowed], body=WITH_INVENTORY)
    assert rows(r)[narrowed["eventID"]]["previous_entry"] == "previous entry unknown"
    assert severities(r) == {narrowed["eventID"]: Severity.LOW}


def test_failed_calls_are_low_with_their_error_and_acl_calls_are_listed(tmp_path):
    refused = event("CreateNetworkAclEntry", entry(90, "allow", 6, 22, 22, "0.0.0.0/0"), time="2026-11-10T01:00:00Z",
                    error="Client.UnauthorizedOperation")
    created = event("CreateNetworkAcl", {"vpcId": "vpc-1"}, {"networkAcl": {"networkAclId": "acl-new"}},
                    time="2026-11-10T02:00:00Z")
    moved = event("ReplaceNetworkAclAssociation", {"associationId": "aclassoc-1", "networkAclId": "acl-new"},
                  time="2026-11-10T03:00:00Z")
    r = run(tmp_path, [refused, created, moved])
    assert severities(r) == {refused["eventID"]: Severity.LOW, created["eventID"]: Severity.LOW,
                             moved["eventID"]: Severity.LOW}
    assert rows(r)[refused["eventID"]]["error_code"] == "Client.UnauthorizedOperation"
    assert rows(r)[created["eventID"]]["network_acl_id"] == "acl-new"
    assert titles(r)[refused["eventID"]] == ("alice tried to set inbound rule 90 on acl-0a1b2c3d4e5f60718 to allow "
                                             "SSH (tcp/22) from the internet, refused (Client.UnauthorizedOperation)")
    assert titles(r)[moved["eventID"]] == "alice moved a subnet to the network ACL acl-new"


def test_clean_without_network_acl_changes(tmp_path):
    r = run(tmp_path, [event("DescribeNetworkAcls", {}, time="2026-11-10T01:00:00Z"),
                       event("AuthorizeSecurityGroupIngress", {"groupId": "sg-1"}, time="2026-11-10T02:00:00Z"),
                       event("CreateNetworkAclEntry", entry(90, "allow", 6, 22, 22, "0.0.0.0/0"),
                             source="rds.amazonaws.com", time="2026-11-10T03:00:00Z")])
    assert r.rows == () and r.findings == () and r.status is Status.PASS
