"""temporary_exposures on the local engine: world-open rules closed again inside the window, with what came
through while they were open."""

from __future__ import annotations

from auditor.models import Severity, Status
from tests.checks.test_exposure_timeline import inbound, rule
from tests.support.flowdata import ACCOUNT, write_config, write_flow_log, write_inventory
from tests.support.runner import results
from tests.support.trail import authorized, event, modified, revoked, write_trail

CONFIG = """
    sources:
      flow_logs: flows
      cloudtrail: trail
      inventory: inventory
    checks:
      temporary_exposures: {}
    """


def run(tmp_path, events, flows, rules=(), captured_at="2026-11-20T00:00:00Z"):
    for e in events:
        write_trail(tmp_path / "trail", [e], day=e["eventTime"][:10].replace("-", "/"))
    write_trail(tmp_path / "trail", [event("DescribeInstances", {}, time="2026-11-19T23:00:00Z")], day="2026/11/19")
    write_flow_log(tmp_path / "flows", flows)
    write_inventory(tmp_path / "inventory", {"eni-web": ["10.0.1.10"], "eni-db": ["10.0.0.7"]},
                    eni_groups={"eni-web": ["sg-web"], "eni-db": ["sg-db"]}, rules=list(rules),
                    groups=[{"GroupId": g, "GroupName": g[3:], "VpcId": "vpc-1", "OwnerId": ACCOUNT}
                            for g in ("sg-web", "sg-db")],
                    captured_at=captured_at)
    return results(write_config(tmp_path, CONFIG))["temporary_exposures"]


def test_rdp_opened_and_revoked_in_the_same_hour_with_traffic_is_high(tmp_path):
    opened = authorized("sg-web", 3389, "0.0.0.0/0", "sgr-rdp", "2026-11-10T12:00:00Z")
    closed = revoked("sg-web", 3389, "0.0.0.0/0", "2026-11-10T12:40:00Z")
    r = run(tmp_path, [opened, closed], [
        inbound("eni-web", "10.0.1.10", "203.0.113.9", 3389, "2026-11-10T12:10:00Z"),
        inbound("eni-web", "10.0.1.10", "198.51.100.4", 3389, "2026-11-10T12:20:00Z"),
        inbound("eni-web", "10.0.1.10", "198.51.100.4", 3389, "2026-11-10T12:21:00Z"),
        inbound("eni-web", "10.0.1.10", "10.0.5.5", 3389, "2026-11-10T12:22:00Z"),  # private: not counted
        inbound("eni-web", "10.0.1.10", "192.0.2.77", 3389, "2026-11-10T13:00:00Z"),  # after the revoke
        inbound("eni-db", "10.0.0.7", "192.0.2.78", 3389, "2026-11-10T12:30:00Z")])  # not the group's interface
    (row,) = r.rows
    assert (row["rule_id"], row["group_id"], row["protocol"], row["from_port"], row["to_port"], row["source"]) == (
        "sgr-rdp", "sg-web", 6, 3389, 3389, "0.0.0.0/0")
    assert (row["opened_at"], row["closed_at"]) == ("2026-11-10T12:00:00Z", "2026-11-10T12:40:00Z")
    assert row["opened_by"] == row["closed_by"] == "arn:aws:iam::111122223333:user/alice"
    assert (row["public_sources_during"], row["public_flows_during"]) == (2, 3)
    assert [f.severity for f in r.findings] == [Severity.HIGH] and r.status is Status.FAIL


def test_nothing_came_through_is_medium_and_other_ports_low(tmp_path):
    r = run(tmp_path, [authorized("sg-web", 22, "0.0.0.0/0", "sgr-ssh", "2026-11-10T12:00:00Z"),
                       revoked("sg-web", 22, "0.0.0.0/0", "2026-11-11T12:00:00Z"),
                       authorized("sg-web", 8443, "0.0.0.0/0", "sgr-alt", "2026-11-10T12:00:00Z"),
                       revoked("sg-web", 8443, "0.0.0.0/0", "2026-11-11T12:00:00Z")],
            [inbound("eni-web", "10.0.1.10", "203.0.113.9", 8443, "2026-11-10T13:00:00Z")])
    sev = {row["rule_id"]: (row["severity"], row["public_sources_during"]) for row in r.rows}
    assert sev == {"sgr-ssh": ("medium", 0), "sgr-alt": ("low", 1)}


def test_a_narrowing_modify_closes_the_world_open_version(tmp_path):
    r = run(tmp_path, [authorized("sg-db", 5432, "0.0.0.0/0", "sgr-pg", "2026-11-10T12:00:00Z"),
                       modified("sg-db", "sgr-pg", 5432, "10.0.0.0/8", "2026-11-10T18:00:00Z")],
            [], rules=[rule("sgr-pg", "sg-db", 5432, "10.0.0.0/8")])
    (row,) = r.rows
    assert (row["rule_id"], row["closed_at"], row["severity"]) == ("sgr-pg", "2026-11-10T18:00:00Z", "medium")


def test_clean_a_rule_still_open_at_the_end_and_a_narrow_one_are_not_temporary(tmp_path):
    r = run(tmp_path, [authorized("sg-web", 22, "0.0.0.0/0", "sgr-ssh", "2026-11-10T12:00:00Z"),
                       authorized("sg-web", 3389, "198.51.100.0/24", "sgr-rdp", "2026-11-10T12:00:00Z"),
                       revoked("sg-web", 3389, "198.51.100.0/24", "2026-11-10T13:00:00Z")],
            [inbound("eni-web", "10.0.1.10", "203.0.113.9", 22, "2026-11-10T13:00:00Z")],
            rules=[rule("sgr-ssh", "sg-web", 22, "0.0.0.0/0")])
    assert r.rows == () and r.findings == () and r.status is Status.PASS
