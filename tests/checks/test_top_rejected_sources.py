"""top_rejected_sources on the local engine: a firing case, a clean case, and its edges."""

from __future__ import annotations

import json

from auditor.models import Severity, Status
from tests.support.flowdata import record, write_config, write_flow_log
from tests.support.runner import results

CONFIG = """
    sources:
      flow_logs: flows
    checks:
      top_rejected_sources: {top_n: %(top_n)d, min_flows: 5, scan_ports: 3}
    """


def config(tmp_path, top_n=20):
    return write_config(tmp_path, CONFIG % {"top_n": top_n})


def test_fires_medium_for_a_scanner_and_low_for_a_brute_forcer(tmp_path):
    flows = tmp_path / "flows"
    scan = [record(srcaddr="198.51.100.23", dstport=p, action="REJECT", start=f"2026-11-10T01:{p % 60:02d}:00Z",
                   packets=1, bytes=44) for p in range(20, 30)]          # 10 records, 10 ports
    brute = [record(srcaddr="192.0.2.77", dstport=22, action="REJECT", start=f"2026-11-11T02:{i:02d}:00Z",
                    packets=2, bytes=120) for i in range(7)]              # 7 records, 1 port
    quiet = [record(srcaddr="203.0.113.5", dstport=3389, action="REJECT")]  # 1 record: listed, no finding
    accepted = [record(srcaddr="198.51.100.23", dstport=443, action="ACCEPT")]  # not counted
    write_flow_log(flows, scan + brute + quiet + accepted)
    r = results(config(tmp_path))["top_rejected_sources"]
    assert r.status is Status.FAIL
    assert [row["srcaddr"] for row in r.rows] == ["198.51.100.23", "192.0.2.77", "203.0.113.5"]
    top = r.rows[0]
    assert top["rejected_flows"] == 10 and top["distinct_dstports"] == 10
    assert top["packets"] == 10 and top["bytes"] == 440
    assert top["first_seen"] == "2026-11-10T01:20:00Z" and top["last_seen"] == "2026-11-10T01:29:00Z"
    assert r.rows[1]["rejected_flows"] == 7 and r.rows[1]["distinct_dstports"] == 1
    sev = {f.key["srcaddr"]: f.severity for f in r.findings}
    assert sev == {"198.51.100.23": Severity.MEDIUM, "192.0.2.77": Severity.LOW}
    assert r.severity is Severity.MEDIUM
    assert ("198.51.100.23 was rejected 10 times on 10 destination ports between 2026-11-10 01:20 UTC and "
            "2026-11-10 01:29 UTC: a port scan") in [f.title for f in r.findings]
    json.dumps([dict(row) for row in r.rows])  # rows are JSON-ready


def test_clean_when_nothing_reaches_min_flows(tmp_path):
    flows = tmp_path / "flows"
    write_flow_log(flows, [record(srcaddr="198.51.100.23", dstport=22, action="REJECT") for _ in range(4)]
                   + [record(action="ACCEPT") for _ in range(50)])
    r = results(config(tmp_path))["top_rejected_sources"]
    assert r.status is Status.PASS and r.findings == ()
    assert len(r.rows) == 1 and r.rows[0]["rejected_flows"] == 4


def test_window_is_half_open_and_nodata_is_not_traffic(tmp_path):
    flows = tmp_path / "flows"
    inside = [record(srcaddr="198.51.100.1", action="REJECT", start="2026-11-09T00:00:00Z")]
    at_until = [record(srcaddr="198.51.100.2", action="REJECT", start="2026-11-16T00:00:00Z")]
    before = [record(srcaddr="198.51.100.3", action="REJECT", start="2026-11-08T23:59:59Z")]
    skip = [record(srcaddr="198.51.100.4", action="REJECT", log_status="SKIPDATA")]
    write_flow_log(flows, inside + before, day="2026/11/09")
    write_flow_log(flows, at_until + skip, day="2026/11/16")
    r = results(config(tmp_path))["top_rejected_sources"]
    assert [row["srcaddr"] for row in r.rows] == ["198.51.100.1"]


def test_top_n_and_tie_order(tmp_path):
    flows = tmp_path / "flows"
    recs = [record(srcaddr=f"198.51.100.{i}", action="REJECT") for i in (9, 3, 7) for _ in range(2)]
    recs += [record(srcaddr="198.51.100.1", action="REJECT") for _ in range(3)]
    write_flow_log(flows, recs)
    r = results(config(tmp_path, top_n=3))["top_rejected_sources"]
    assert [row["srcaddr"] for row in r.rows] == ["198.51.100.1", "198.51.100.3", "198.51.100.7"]
