"""sg_changes' columns from the security-group timeline: what came through after a change opened ingress."""

from __future__ import annotations

from tests.checks.test_exposure_timeline import inbound
from tests.support.flowdata import write_config, write_flow_log, write_inventory
from tests.support.runner import results
from tests.support.trail import authorized, event, revoked, write_trail

CONFIG = """
    sources:
      flow_logs: flows
      cloudtrail: trail
      inventory: inventory
    checks:
      sg_changes: {}
    """


def run(tmp_path, events, flows, config=CONFIG):
    for e in events:
        write_trail(tmp_path / "trail", [e], day=e["eventTime"][:10].replace("-", "/"))
    write_trail(tmp_path / "trail", [event("DescribeInstances", {}, time="2026-11-19T23:00:00Z")], day="2026/11/19")
    write_flow_log(tmp_path / "flows", flows)
    write_inventory(tmp_path / "inventory", {"eni-web": ["10.0.1.10"], "eni-db": ["10.0.0.7"]},
                    eni_groups={"eni-web": ["sg-web"], "eni-db": ["sg-db"]}, captured_at="2026-11-20T00:00:00Z")
    r = results(write_config(tmp_path, config))["sg_changes"]
    return r, {row["event_name"] + "@" + row["event_time"]: row for row in r.rows}


def test_the_callers_own_address_among_those_that_connected_afterwards(tmp_path):
    opened = authorized("sg-web", 22, "0.0.0.0/0", "sgr-ssh", "2026-11-10T07:58:00Z")  # from 198.51.100.44
    closed = revoked("sg-web", 22, "0.0.0.0/0", "2026-11-10T10:00:00Z")
    r, rows = run(tmp_path, [opened, closed], [
        inbound("eni-web", "10.0.1.10", "203.0.113.9", 22, "2026-11-10T07:00:00Z"),   # before the change
        inbound("eni-web", "10.0.1.10", "198.51.100.44", 22, "2026-11-10T08:01:00Z"),  # the caller's own address
        inbound("eni-web", "10.0.1.10", "203.0.113.9", 22, "2026-11-10T09:00:00Z"),
        inbound("eni-web", "10.0.1.10", "203.0.113.9", 22, "2026-11-10T09:05:00Z"),
        inbound("eni-web", "10.0.1.10", "203.0.113.9", 443, "2026-11-10T09:05:00Z"),  # not the opened port
        inbound("eni-web", "10.0.1.10", "10.0.9.9", 22, "2026-11-10T09:06:00Z"),      # private
        inbound("eni-db", "10.0.0.7", "192.0.2.1", 22, "2026-11-10T09:00:00Z"),       # not the group's interface
        inbound("eni-web", "10.0.1.10", "192.0.2.2", 22, "2026-11-10T10:30:00Z")])    # after the revoke
    row = rows["AuthorizeSecurityGroupIngress@2026-11-10T07:58:00Z"]
    assert (row["public_sources_after"], row["public_flows_after"], row["open_until"], row["actor_ip_seen_after"]) == (
        2, 3, "2026-11-10T10:00:00Z", True)
    assert row["summary"].endswith("; 2 internet addresses connected afterwards, one of them the caller's own")
    (finding,) = [f for f in r.findings if f.key["event_id"] == opened["eventID"]]
    assert "one of them the caller's own" in finding.title
    revoke = rows["RevokeSecurityGroupIngress@2026-11-10T10:00:00Z"]
    assert (revoke["public_sources_after"], revoke["open_until"], revoke["actor_ip_seen_after"]) == (None, None, None)


def test_clean_nothing_came_and_the_rule_is_still_open(tmp_path):
    _, rows = run(tmp_path, [authorized("sg-web", 3389, "0.0.0.0/0", "sgr-rdp", "2026-11-10T07:58:00Z")],
                  [inbound("eni-web", "10.0.1.10", "203.0.113.9", 3389, "2026-11-10T07:00:00Z")])
    row = rows["AuthorizeSecurityGroupIngress@2026-11-10T07:58:00Z"]
    assert (row["public_sources_after"], row["public_flows_after"], row["open_until"], row["actor_ip_seen_after"]) == (
        0, 0, None, False)
    assert row["summary"].endswith("; no internet address connected afterwards")


def test_without_flow_logs_the_counts_are_unknown_not_zero(tmp_path):
    config = CONFIG.replace("      flow_logs: flows\n", "")
    _, rows = run(tmp_path, [authorized("sg-web", 3389, "0.0.0.0/0", "sgr-rdp", "2026-11-10T07:58:00Z")], [],
                  config=config)
    row = rows["AuthorizeSecurityGroupIngress@2026-11-10T07:58:00Z"]
    assert (row["public_sources_after"], row["actor_ip_seen_after"]) == (None, None)
