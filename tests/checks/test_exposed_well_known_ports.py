"""exposed_well_known_ports on the local engine: firing and clean cases, inbound and public rules."""

from __future__ import annotations

from auditor.models import Severity, Status
from tests.support.flowdata import record, write_config, write_flow_log, write_inventory
from tests.support.runner import results

V5_FIELDS = ("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets",
             "bytes", "start", "end", "action", "log-status", "flow-direction")

CONFIG = """
    sources:
      flow_logs: flows
      inventory: inventory
    checks:
      exposed_well_known_ports: {}
    """

ENIS = {"eni-db": ["10.0.2.20"], "eni-web": ["10.0.1.10", "2001:db8:1::10"], "eni-app": ["10.0.3.30"]}


def setup(tmp_path, records, fields=None):
    write_flow_log(tmp_path / "flows", records, **({"fields": fields} if fields else {}))
    write_inventory(tmp_path / "inventory", ENIS)
    return results(write_config(tmp_path, CONFIG))["exposed_well_known_ports"]


def by_key(r):
    return {(row["interface_id"], row["dstport"], row["protocol"]): row for row in r.rows}


def test_public_access_to_a_sensitive_port_is_high(tmp_path):
    recs = []
    for i, src in enumerate(["198.51.100.7", "198.51.100.7", "198.51.100.7", "203.0.113.4", "203.0.113.4",
                             "10.0.3.30", "::ffff:192.168.1.9", "45.9.8.7", "8.8.8.8", "1.1.1.1"]):
        recs.append(record(interface_id="eni-db", srcaddr=src, dstaddr="10.0.2.20", dstport=3306, srcport=50000 + i))
    # the return traffic of the same flows, seen on the same interface: outbound, not exposure
    recs += [record(interface_id="eni-db", srcaddr="10.0.2.20", dstaddr="198.51.100.7", srcport=3306, dstport=51000)]
    r = setup(tmp_path, recs)
    row = by_key(r)[("eni-db", 3306, 6)]
    assert row["accepted_flows"] == 10
    assert row["distinct_sources"] == 7
    # 10.0.3.30 is private, ::ffff:192.168.1.9 is judged by its IPv4 part (private): 5 public
    assert row["public_sources"] == 5
    assert row["sample_sources"] == ["198.51.100.7", "203.0.113.4", "1.1.1.1", "10.0.3.30", "45.9.8.7"]
    (finding,) = [f for f in r.findings if f.key["dstport"] == 3306]
    assert finding.severity is Severity.HIGH
    assert finding.key == {"interface_id": "eni-db", "dstport": 3306, "protocol": 6}
    assert r.status is Status.FAIL
    # the outbound return flow (dstport 51000 is not well-known anyway) and srcport 3306 do not make rows
    assert all(k[1] != 51000 for k in by_key(r))


def test_medium_for_other_well_known_ports_and_info_for_allowed(tmp_path):
    recs = [record(interface_id="eni-web", srcaddr="198.51.100.8", dstaddr="10.0.1.10", dstport=443),
            record(interface_id="eni-web", srcaddr="198.51.100.8", dstaddr="10.0.1.10", dstport=853),
            record(interface_id="eni-web", srcaddr="2001:db8:ffff::1", dstaddr="2001:db8:1::10", dstport=123, protocol=17)]
    r = setup(tmp_path, recs)
    sev = {(f.key["dstport"], f.key["protocol"]): f.severity for f in r.findings}
    assert sev == {(443, 6): Severity.INFO, (853, 6): Severity.MEDIUM, (123, 17): Severity.MEDIUM}


def test_clean_private_sources_only_and_not_inbound(tmp_path):
    recs = [record(interface_id="eni-db", srcaddr="10.0.3.30", dstaddr="10.0.2.20", dstport=3306),
            record(interface_id="eni-db", srcaddr="100.64.1.2", dstaddr="10.0.2.20", dstport=5432),
            # outbound from the app to the internet on 443: dstaddr is not the interface's own address
            record(interface_id="eni-app", srcaddr="10.0.3.30", dstaddr="198.51.100.9", dstport=443),
            # REJECTed public access is not exposure
            record(interface_id="eni-db", srcaddr="198.51.100.9", dstaddr="10.0.2.20", dstport=3306, action="REJECT"),
            # ICMP and high ports are out of scope
            record(interface_id="eni-db", srcaddr="198.51.100.9", dstaddr="10.0.2.20", dstport=0, protocol=1),
            record(interface_id="eni-db", srcaddr="198.51.100.9", dstaddr="10.0.2.20", dstport=40000)]
    r = setup(tmp_path, recs)
    assert r.status is Status.PASS and r.findings == ()
    assert set(by_key(r)) == {("eni-db", 3306, 6), ("eni-db", 5432, 6)}
    assert all(row["public_sources"] == 0 for row in r.rows)


def test_flow_direction_decides_when_the_inventory_does_not_know_the_interface(tmp_path):
    recs = [record(interface_id="eni-unknown", srcaddr="198.51.100.1", dstaddr="172.31.0.5", dstport=22,
                   flow_direction="ingress", version=5),
            record(interface_id="eni-unknown", srcaddr="198.51.100.2", dstaddr="172.31.0.5", dstport=23,
                   flow_direction="egress", version=5)]
    r = setup(tmp_path, recs, fields=V5_FIELDS)
    assert set(by_key(r)) == {("eni-unknown", 22, 6)}
    assert r.findings[0].severity is Severity.HIGH


def _world(rid, gid, proto, lo, hi, cidr="0.0.0.0/0"):
    return {"SecurityGroupRuleId": rid, "GroupId": gid, "GroupOwnerId": "111122223333", "IsEgress": False,
            "IpProtocol": proto, "FromPort": lo, "ToPort": hi, "CidrIpv4" if ":" not in cidr else "CidrIpv6": cidr}


def test_rule_side_world_open_column_and_rows_without_traffic(tmp_path):
    rules = [_world("sgr-ssh", "sg-bastion", "tcp", 22, 22),          # traffic from public: world_open true
             _world("sgr-rdp", "sg-bastion", "tcp", 3389, 3389, "::/0"),  # no traffic: a zero row, medium
             _world("sgr-ftp", "sg-bastion", "tcp", 21, 21, "10.0.0.0/8"),  # not world-open: nothing
             _world("sgr-range", "sg-db", "tcp", 5000, 5500),           # range: its sensitive ports 5000, 5432, 5500
             _world("sgr-https", "sg-bastion", "tcp", 443, 443),        # allowed public port: a row, no finding
             _world("sgr-smtp", "sg-bastion", "tcp", 465, 465)]         # well-known, not sensitive: low
    write_flow_log(tmp_path / "flows", [
        record(interface_id="eni-bastion", srcaddr="198.51.100.5", dstaddr="10.0.9.9", dstport=22),
        record(interface_id="eni-db", srcaddr="10.0.1.10", dstaddr="10.0.2.20", dstport=5432)])
    write_inventory(tmp_path / "inventory", {"eni-bastion": ["10.0.9.9"], "eni-db": ["10.0.2.20"]},
                    eni_groups={"eni-bastion": ["sg-bastion"], "eni-db": ["sg-db"]}, rules=rules)
    r = results(write_config(tmp_path, CONFIG))["exposed_well_known_ports"]
    rows = by_key(r)
    assert rows[("eni-bastion", 22, 6)]["world_open"] is True and rows[("eni-bastion", 22, 6)]["public_sources"] == 1
    zero = rows[("eni-bastion", 3389, 6)]
    assert (zero["accepted_flows"], zero["distinct_sources"], zero["public_sources"], zero["sample_sources"],
            zero["world_open"]) == (0, 0, 0, [], True)
    assert ("eni-bastion", 21, 6) not in rows
    assert {k for k in rows if k[0] == "eni-db"} == {("eni-db", 5000, 6), ("eni-db", 5432, 6), ("eni-db", 5500, 6)}
    assert rows[("eni-db", 5432, 6)]["accepted_flows"] == 1 and rows[("eni-db", 5432, 6)]["world_open"] is True
    sev = {(f.key["interface_id"], f.key["dstport"]): f.severity for f in r.findings}
    assert sev == {("eni-bastion", 22): Severity.HIGH, ("eni-bastion", 3389): Severity.MEDIUM,
                   ("eni-db", 5000): Severity.MEDIUM, ("eni-db", 5432): Severity.MEDIUM,
                   ("eni-db", 5500): Severity.MEDIUM, ("eni-bastion", 465): Severity.LOW}
    assert rows[("eni-bastion", 443, 6)]["world_open"] is True
