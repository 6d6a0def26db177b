"""unused_security_groups: groups attached to no interface, from the inventory alone."""

from __future__ import annotations

import json

import pytest

from auditor.models import Severity, Status
from tests.support.flowdata import write_config, write_inventory
from tests.support.runner import results

CONFIG = """
    sources:
      inventory: inventory
    checks:
      unused_security_groups: {}
    """


def group(gid, name, vpc="vpc-1"):
    return {"GroupId": gid, "GroupName": name, "VpcId": vpc, "OwnerId": "111122223333", "Description": name,
            "IpPermissions": [], "IpPermissionsEgress": []}


def rule(rid, gid, port=22, cidr="10.0.0.0/8", ref=None, egress=False):
    r = {"SecurityGroupRuleId": rid, "GroupId": gid, "GroupOwnerId": "111122223333", "IsEgress": egress,
         "IpProtocol": "tcp", "FromPort": port, "ToPort": port}
    if ref:
        r["ReferencedGroupInfo"] = {"GroupId": ref, "UserId": "111122223333"}
    else:
        r["CidrIpv4"] = cidr
    return r


def test_fires_for_a_group_on_no_interface_with_its_rules_and_referrers(tmp_path):
    groups = [group("sg-used", "web"), group("sg-idle", "old-batch"), group("sg-def", "default"), group("sg-ref", "app")]
    rules = [rule("sgr-1", "sg-idle", 22), rule("sgr-2", "sg-idle", 443), rule("sgr-3", "sg-idle", 0, egress=True),
             rule("sgr-4", "sg-used", 5432, ref="sg-idle"), rule("sgr-5", "sg-ref", 80, ref="sg-idle")]
    write_inventory(tmp_path / "inventory", {"eni-a": ["10.0.0.5"]}, groups=groups, rules=rules,
                    eni_groups={"eni-a": ["sg-used", "sg-ref"]})
    r = results(write_config(tmp_path, CONFIG))["unused_security_groups"]
    assert r.status is Status.FAIL
    assert [row["group_id"] for row in r.rows] == ["sg-idle"]  # default excluded, attached ones excluded
    row = r.rows[0]
    assert row["group_name"] == "old-batch" and row["vpc_id"] == "vpc-1"
    assert row["ingress_rules"] == 2
    assert row["referenced_by"] == ["sg-ref", "sg-used"]
    assert [(f.severity, f.key) for f in r.findings] == [(Severity.LOW, {"group_id": "sg-idle"})]


def test_clean_when_every_group_is_attached(tmp_path):
    write_inventory(tmp_path / "inventory", {"eni-a": ["10.0.0.5"], "eni-b": ["10.0.0.6"]},
                    groups=[group("sg-1", "a"), group("sg-2", "b"), group("sg-d", "default")],
                    eni_groups={"eni-a": ["sg-1"], "eni-b": ["sg-2"]})
    r = results(write_config(tmp_path, CONFIG))["unused_security_groups"]
    assert r.status is Status.PASS and r.rows == () and r.findings == ()


def _unwrap_placebo(src, dest):
    """cloud-custodian's placebo recordings -> the AWS CLI JSON our reader takes (test-side adapter)."""
    def plain(v):
        if isinstance(v, dict):
            if v.get("__class__") == "datetime":
                return "2023-01-01T00:00:00Z"
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v
    dest.mkdir(parents=True)
    groups, enis = [], []
    for f in sorted(src.glob("ec2.DescribeSecurityGroups_*.json")):
        groups += plain(json.loads(f.read_text())["data"]).get("SecurityGroups", [])
    for f in sorted(src.glob("ec2.DescribeNetworkInterfaces_*.json")):
        enis += plain(json.loads(f.read_text())["data"]).get("NetworkInterfaces", [])
    seen = {}
    for g in groups:
        seen.setdefault(g["GroupId"], g)
    (dest / "describe-security-groups.json").write_text(json.dumps({"SecurityGroups": list(seen.values())}))
    (dest / "describe-network-interfaces.json").write_text(json.dumps({"NetworkInterfaces": enis}))


@pytest.mark.parametrize(("case", "expected"), [
    # Upstream cloud-custodian expects sg-13de8f75 and sg-f6a42890 unused; sg-13de8f75 is a VPC's default
    # group, which this check leaves out by design.
    ("test_security_group_unused", ["sg-f6a42890"]),
])
def test_cloud_custodian_recordings(tmp_path, corpus, case, expected):
    _unwrap_placebo(corpus / "cloud-custodian" / "placebo" / case, tmp_path / "inventory")
    r = results(write_config(tmp_path, CONFIG))["unused_security_groups"]
    assert [row["group_id"] for row in r.rows] == expected


def test_cloud_custodian_used_recording(tmp_path, corpus):
    # Upstream expects used = {sg-f9cc4d9f, sg-0a2cb503a229c31c1, sg-1c8a186c}: those must never be reported.
    _unwrap_placebo(corpus / "cloud-custodian" / "placebo" / "test_security_group_used", tmp_path / "inventory")
    r = results(write_config(tmp_path, CONFIG))["unused_security_groups"]
    reported = {row["group_id"] for row in r.rows}
    assert not reported & {"sg-f9cc4d9f", "sg-0a2cb503a229c31c1", "sg-1c8a186c"}
    all_groups = json.loads((tmp_path / "inventory" / "describe-security-groups.json").read_text())["SecurityGroups"]
    non_default = {g["GroupId"] for g in all_groups if g["GroupName"] != "default"}
    assert reported == non_default - {"sg-f9cc4d9f", "sg-0a2cb503a229c31c1", "sg-1c8a186c"}
