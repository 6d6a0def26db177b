"""probing_sources on the local engine: flow logs and CloudTrail read together. A rejected source that got in on a
port outside allowed_public_ports, or called the API, is listed; one that only knocked, or only reached 443, is
not; the check is skipped, with the reason, without one of its sources or on Logs Insights."""

from __future__ import annotations

from datetime import datetime, timezone

from auditor.builtins import builtins
from auditor.config import load_config
from auditor.models import Severity, Status
from auditor.plan import plan_run
from tests.support.flowdata import record, write_config, write_flow_log
from tests.support.runner import WINDOW, results
from tests.support.trail import event, write_trail

CONFIG = """
    sources:
      flow_logs: flows
      cloudtrail: trail
    checks:
      probing_sources: {}
    """
SCANNER, KNOCKER, WEB_ONLY, LEAKED, CLUMSY = "198.51.100.7", "203.0.113.50", "203.0.113.60", "192.0.2.200", "192.0.2.201"


def rejected(src: str, ports: range, minute: int = 0) -> list[dict]:
    return [record(srcaddr=src, dstport=p, srcport=50000 + p, action="REJECT",
                   start=f"2026-11-10T10:{(minute + i) % 60:02d}:00Z") for i, p in enumerate(ports)]


def run(tmp_path, flows, events, body=CONFIG):
    write_flow_log(tmp_path / "flows", flows)
    write_trail(tmp_path / "trail", events)
    return results(write_config(tmp_path, body))["probing_sources"]


def by_src(result):
    return {row["srcaddr"]: row for row in result.rows}


def test_a_scanner_that_got_in_on_rdp_is_high_and_one_that_used_a_key_is_high(tmp_path):
    flows = (rejected(SCANNER, range(20, 30))
             + [record(srcaddr=SCANNER, dstport=3389, srcport=51515, interface_id="eni-rdp", start="2026-11-10T11:00:00Z"),
                record(srcaddr=SCANNER, dstport=3389, srcport=51516, interface_id="eni-rdp", start="2026-11-10T11:05:00Z")]
             + rejected(LEAKED, range(1, 4)) + rejected(CLUMSY, range(8000, 8002))
             + [record(srcaddr=CLUMSY, dstport=8001, srcport=40001, interface_id="eni-app", start="2026-11-10T13:00:00Z")])
    key_user = event("DescribeInstances", {}, time="2026-11-11T09:00:00Z", arn="arn:aws:iam::111122223333:user/legacy-ops",
                     sourceIPAddress=LEAKED)
    key_user2 = event("ListBuckets", {}, time="2026-11-11T09:01:00Z", source="s3.amazonaws.com",
                      arn="arn:aws:iam::111122223333:user/legacy-ops", sourceIPAddress=LEAKED)
    refused = event("GetCallerIdentity", {}, time="2026-11-11T10:00:00Z", source="sts.amazonaws.com",
                    error="AccessDenied", sourceIPAddress=CLUMSY)
    r = run(tmp_path, flows, [key_user, key_user2, refused])
    rows = by_src(r)
    assert set(rows) == {SCANNER, LEAKED, CLUMSY}
    s = rows[SCANNER]
    assert (s["rejected_flows"], s["rejected_ports"], s["accepted_flows"]) == (10, 10, 2)
    assert s["accepted_ports"] == ["tcp/3389"] and s["accepted_interfaces"] == ["eni-rdp"]
    assert s["api_events"] == 0 and s["api_actors"] == []
    assert s["first_seen"] == "2026-11-10T10:00:00Z" and s["last_seen"] == "2026-11-10T11:05:00Z"
    leaked = rows[LEAKED]
    assert (leaked["api_events"], leaked["api_failed_events"]) == (2, 0)
    assert leaked["api_actors"] == ["arn:aws:iam::111122223333:user/legacy-ops"]
    assert leaked["accepted_flows"] == 0 and leaked["last_seen"] == "2026-11-11T09:01:00Z"
    clumsy = rows[CLUMSY]
    assert (clumsy["accepted_ports"], clumsy["api_events"], clumsy["api_failed_events"]) == (["tcp/8001"], 1, 1)
    sev = {f.key["srcaddr"]: f.severity for f in r.findings}
    assert sev == {SCANNER: Severity.HIGH, LEAKED: Severity.HIGH, CLUMSY: Severity.MEDIUM}
    assert list(r.columns) == ["srcaddr", "rejected_flows", "rejected_ports", "accepted_flows", "accepted_ports",
                               "accepted_interfaces", "api_events", "api_failed_events", "api_actors", "first_seen",
                               "last_seen", "severity"]
    titles = {f.key["srcaddr"]: f.title for f in r.findings}
    assert titles[SCANNER] == (f"{SCANNER}, rejected 10 times on 10 ports, got in on RDP (tcp/3389) to eni-rdp "
                               "(2 accepted flows)")
    assert titles[LEAKED] == f"{LEAKED}, rejected 3 times on 3 ports, made 2 API calls as legacy-ops"
    assert titles[CLUMSY].endswith("and tried 1 API call as alice, all refused")


def test_failed_api_calls_only_are_medium(tmp_path):
    refused = event("DescribeInstances", {}, time="2026-11-11T10:00:00Z", error="Client.UnauthorizedOperation",
                    sourceIPAddress=LEAKED)
    r = run(tmp_path, rejected(LEAKED, range(1, 3)), [refused])
    assert {f.key["srcaddr"]: f.severity for f in r.findings} == {LEAKED: Severity.MEDIUM}


def test_clean_when_sources_only_knock_or_reach_the_public_ports(tmp_path):
    flows = (rejected(KNOCKER, range(1, 50)) + rejected(WEB_ONLY, range(20, 25))
             + [record(srcaddr=WEB_ONLY, dstport=443, srcport=40000 + i, start=f"2026-11-10T12:{i:02d}:00Z")
                for i in range(5)]
             # A reply to our own connection (from the peer's 443 to our ephemeral port) is not getting in.
             + [record(srcaddr=KNOCKER, srcport=443, dstport=55123, start="2026-11-10T13:00:00Z")]
             # A private source rejected and accepted is not an internet source.
             + rejected("10.0.9.9", range(1, 5)) + [record(srcaddr="10.0.9.9", dstport=22, srcport=40000)]
             # An internet source accepted on RDP, but never rejected: not a prober (exposed_well_known_ports sees it).
             + [record(srcaddr="198.51.100.99", dstport=3389, srcport=40000)])
    api_elsewhere = event("DescribeInstances", {}, time="2026-11-11T10:00:00Z")  # from 198.51.100.44, never rejected
    r = run(tmp_path, flows, [api_elsewhere])
    assert r.rows == () and r.findings == () and r.status is Status.PASS
    assert any("1 other source rejected in the window was also accepted, but only on the allowed public ports "
               "(80, 443)" in n for n in r.notes)


def test_allowed_public_ports_is_a_parameter(tmp_path):
    flows = rejected(WEB_ONLY, range(20, 25)) + [record(srcaddr=WEB_ONLY, dstport=8443, srcport=40000)]
    body = CONFIG.replace("probing_sources: {}", "probing_sources: {allowed_public_ports: [443, 8443]}")
    assert run(tmp_path, flows, [], body=body).rows == ()


def test_skipped_with_the_reason_without_cloudtrail(tmp_path):
    write_flow_log(tmp_path / "flows", rejected(SCANNER, range(1, 3)))
    r = results(write_config(tmp_path, """
        sources:
          flow_logs: flows
        checks:
          probing_sources: {}
        """))["probing_sources"]
    assert r.status is Status.SKIPPED
    assert "sources.cloudtrail" in " ".join(r.notes)


def test_on_logs_insights_it_is_skipped_and_says_why(tmp_path):
    reg = builtins()
    loaded = load_config(write_config(tmp_path, """
        sources:
          flow_logs: {engine: insights, log_groups: [/vpc/flow-logs]}
          cloudtrail: {engine: insights, log_groups: [/aws/cloudtrail]}
        checks:
          probing_sources: {}
          logging_disabled: {}
        """))
    plan = plan_run(loaded, reg.checks, WINDOW, datetime(2026, 11, 23, tzinfo=timezone.utc),
                    {e.name: e.dialect for e in reg.engines})
    reasons = {pc.spec.id: pc.skip_reason for pc in plan.checks}
    assert reasons["logging_disabled"] is None  # it has a Logs Insights twin
    assert reasons["probing_sources"].startswith("cannot run on the insights engine: Logs Insights queries one "
                                                 "source at a time and cannot join the flow logs with CloudTrail")
