"""unused_sg_rules: ingress rules matched against inbound ACCEPTed traffic, with verdicts."""

from __future__ import annotations

from auditor.models import Severity, Status
from tests.support.flowdata import record, write_config, write_flow_log, write_inventory
from tests.support.runner import WINDOW, results

CONFIG = """
    sources:
      flow_logs: flows
      inventory: inventory
    checks:
      unused_sg_rules: {%s}
    """

ENIS = {"eni-web": ["10.0.1.10"], "eni-app": ["10.0.2.20"], "eni-dark": ["10.0.3.30"]}
ENI_GROUPS = {"eni-web": ["sg-web"], "eni-app": ["sg-app"], "eni-dark": ["sg-dark"]}


def rule(rid, gid, proto="tcp", lo=22, hi=None, cidr=None, cidr6=None, ref=None, ref_owner="111122223333", pl=None):
    r = {"SecurityGroupRuleId": rid, "GroupId": gid, "GroupOwnerId": "111122223333", "IsEgress": False,
         "IpProtocol": proto, "FromPort": lo, "ToPort": lo if hi is None else hi}
    if cidr:
        r["CidrIpv4"] = cidr
    if cidr6:
        r["CidrIpv6"] = cidr6
    if ref:
        r["ReferencedGroupInfo"] = {"GroupId": ref, "UserId": ref_owner}
    if pl:
        r["PrefixListId"] = pl
    return r


RULES = [
    rule("sgr-https", "sg-web", lo=443, cidr="0.0.0.0/0"),              # used by public HTTPS
    rule("sgr-ssh-world", "sg-web", lo=22, cidr="0.0.0.0/0"),           # world-open, no traffic -> unused, medium
    rule("sgr-range", "sg-web", lo=8000, hi=8100, cidr="10.0.0.0/8"),   # used: 8080 from 10.0.2.20
    rule("sgr-v6", "sg-web", lo=443, cidr6="::/0"),                     # used by an IPv6 client
    rule("sgr-icmp", "sg-web", proto="icmp", lo=-1, hi=-1, cidr="0.0.0.0/0"),  # used: ICMP matches on protocol
    rule("sgr-udp", "sg-web", proto="udp", lo=53, cidr="10.0.0.0/8"),  # unused: TCP 53 does not match a UDP rule
    rule("sgr-from-app", "sg-web", lo=9000, ref="sg-app"),              # used: source is eni-app, which carries sg-app
    rule("sgr-from-dark", "sg-web", lo=9100, ref="sg-dark"),            # unused: nothing from sg-dark's interfaces
    rule("sgr-xacct", "sg-web", lo=9200, ref="sg-other", ref_owner="999988887777"),  # unknown: another account
    rule("sgr-pl", "sg-web", lo=443, pl="pl-0123"),                     # unknown: prefix list
    rule("sgr-app-pg", "sg-app", lo=5432, cidr="10.0.0.0/8"),           # unused, low
    rule("sgr-dark", "sg-dark", lo=22, cidr="10.0.0.0/8"),              # unknown: eni-dark logs nothing
    rule("sgr-orphan", "sg-orphan", lo=22, cidr="0.0.0.0/0"),           # unused: group attached to nothing
]


def traffic():
    return [
        record(interface_id="eni-web", srcaddr="198.51.100.1", dstaddr="10.0.1.10", dstport=443),
        record(interface_id="eni-web", srcaddr="10.0.2.20", dstaddr="10.0.1.10", dstport=8080),
        record(interface_id="eni-web", srcaddr="2001:db8::9", dstaddr="10.0.1.10", dstport=443),
        record(interface_id="eni-web", srcaddr="198.51.100.2", dstaddr="10.0.1.10", dstport=0, protocol=1),
        record(interface_id="eni-web", srcaddr="10.0.2.20", dstaddr="10.0.1.10", dstport=9000),
        record(interface_id="eni-web", srcaddr="10.0.2.20", dstaddr="10.0.1.10", dstport=53),  # TCP, not UDP
        # REJECTed SSH from the internet does not make sgr-ssh-world used
        record(interface_id="eni-web", srcaddr="198.51.100.3", dstaddr="10.0.1.10", dstport=22, action="REJECT"),
        # eni-app logs only its outbound calls: it is covered, and 5432 is never hit
        record(interface_id="eni-app", srcaddr="10.0.2.20", dstaddr="10.0.1.10", dstport=9000),
    ]


def run(tmp_path, params="", window=WINDOW, records=None):
    write_flow_log(tmp_path / "flows", traffic() if records is None else records)
    groups = [{"GroupId": g, "GroupName": g, "VpcId": "vpc-1", "OwnerId": "111122223333"}
              for g in ("sg-web", "sg-app", "sg-dark", "sg-orphan")]
    write_inventory(tmp_path / "inventory", ENIS, groups=groups, eni_groups=ENI_GROUPS, rules=RULES)
    return results(write_config(tmp_path, CONFIG % params), window)["unused_sg_rules"]


def test_verdicts_for_every_kind_of_rule(tmp_path):
    r = run(tmp_path)
    verdicts = {row["rule_id"]: row["verdict"] for row in r.rows}
    assert verdicts == {
        "sgr-ssh-world": "unused", "sgr-udp": "unused", "sgr-from-dark": "unused", "sgr-app-pg": "unused",
        "sgr-orphan": "unused", "sgr-xacct": "unknown", "sgr-pl": "unknown", "sgr-dark": "unknown",
    }
    sev = {f.key["rule_id"]: f.severity for f in r.findings}
    assert sev == {"sgr-ssh-world": Severity.MEDIUM, "sgr-orphan": Severity.MEDIUM, "sgr-udp": Severity.LOW,
                   "sgr-from-dark": Severity.LOW, "sgr-app-pg": Severity.LOW}
    row = next(x for x in r.rows if x["rule_id"] == "sgr-from-dark")
    assert row["source"] == "sg-dark" and row["protocol"] == 6 and row["from_port"] == 9100
    assert next(x for x in r.rows if x["rule_id"] == "sgr-pl")["source"] == "pl-0123"
    assert r.status is Status.FAIL


def test_clean_when_every_rule_is_used(tmp_path):
    recs = traffic() + [
        record(interface_id="eni-web", srcaddr="198.51.100.9", dstaddr="10.0.1.10", dstport=22),
        record(interface_id="eni-web", srcaddr="10.9.9.9", dstaddr="10.0.1.10", dstport=53, protocol=17),
        record(interface_id="eni-web", srcaddr="10.0.3.30", dstaddr="10.0.1.10", dstport=9100),
        record(interface_id="eni-app", srcaddr="10.0.1.10", dstaddr="10.0.2.20", dstport=5432),
        record(interface_id="eni-dark", srcaddr="10.0.1.10", dstaddr="10.0.3.30", dstport=22),
    ]
    global RULES
    saved = RULES
    RULES = [r for r in saved if r["SecurityGroupRuleId"] not in ("sgr-xacct", "sgr-pl", "sgr-orphan")]
    try:
        r = run(tmp_path, records=recs)
    finally:
        RULES = saved
    assert r.rows == () and r.findings == () and r.status is Status.PASS


def test_lookback_reaches_before_the_window_and_is_reported(tmp_path):
    old_ssh = record(interface_id="eni-web", srcaddr="198.51.100.9", dstaddr="10.0.1.10", dstport=22,
                     start="2026-10-01T00:00:00Z")
    write_flow_log(tmp_path / "flows", [old_ssh], day="2026/10/01")
    short = {row["rule_id"] for row in run(tmp_path).rows}
    assert "sgr-ssh-world" in short
    long = run(tmp_path, params="lookback: 90d")
    assert "sgr-ssh-world" not in {row["rule_id"] for row in long.rows}
    assert any("lookback" in n and "90d" in n for n in long.notes)
