"""The inventory reader, over cloud-custodian's recorded EC2 responses and small hand-made files."""

from __future__ import annotations

import gzip
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest

from auditor.engines.sources import inventory
from auditor.engines.sources.inventory import InventorySnapshot, load_inventory
from auditor.engines.sources.protocols import (
    PROTOCOL_NAMES,
    protocol_name,
    protocol_number,
)
from auditor.errors import InputError
from auditor.tables import INVENTORY_TABLES

PLACEBO = "cloud-custodian/placebo"


# --- test adapter: placebo recordings -> AWS CLI output ------------------------------------------------

def _cli_value(value: Any) -> Any:
    """boto3 values as recorded by placebo, turned into what the AWS CLI prints (datetimes as ISO text)."""
    if isinstance(value, dict):
        if value.get("__class__") == "datetime":
            return datetime(value["year"], value["month"], value["day"], value["hour"], value["minute"],
                            value["second"], value["microsecond"], tzinfo=timezone.utc).isoformat()
        return {k: _cli_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cli_value(v) for v in value]
    return value


def recorded(corpus: Path, recording: str) -> dict[str, Any]:
    """The boto3 response of one placebo recording, shaped as the CLI prints it."""
    data = json.loads((corpus / PLACEBO / recording).read_text())["data"]
    data.pop("ResponseMetadata", None)
    return _cli_value(data)


def write(folder: Path, name: str, doc: dict[str, Any], *, gz: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=2)
    if gz:
        path = folder / f"{name}.json.gz"
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path = folder / f"{name}.json"
        path.write_text(text)
    return path


def query(con: duckdb.DuckDBPyConnection, table: str) -> list[dict[str, Any]]:
    rel = con.table(table)
    return [dict(zip(rel.columns, r)) for r in rel.fetchall()]


def load(root: Path) -> tuple[duckdb.DuckDBPyConnection, InventorySnapshot]:
    con = duckdb.connect()
    return con, load_inventory(con, root)


def expected_addresses(eni: dict[str, Any]) -> set[tuple[str, str]]:
    found = {(p["PrivateIpAddress"], "private_ipv4") for p in eni.get("PrivateIpAddresses", [])}
    found |= {(a["Ipv6Address"], "ipv6") for a in eni.get("Ipv6Addresses", [])}
    found |= {(p["Association"]["PublicIp"], "public_ipv4") for p in [eni, *eni.get("PrivateIpAddresses", [])]
              if "PublicIp" in p.get("Association", {})}
    return found


def expected_rule_count(groups: list[dict[str, Any]]) -> int:
    return sum(len(perm.get(k, [])) for sg in groups for key in ("IpPermissions", "IpPermissionsEgress")
               for perm in sg.get(key, []) for k in ("IpRanges", "Ipv6Ranges", "PrefixListIds", "UserIdGroupPairs"))


# --- protocols ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "number"), [
    ("tcp", 6), ("TCP", 6), (" udp ", 17), ("icmp", 1), ("icmpv6", 58), ("ICMPv6", 58), ("ipv6-icmp", 58),
    ("-1", -1), (-1, -1), ("all", -1), ("6", 6), (6, 6), ("50", 50), ("0", 0), ("255", 255),
    ("256", None), ("-2", None), ("tcpx", None), ("", None), (None, None), (True, None), (6.0, None),
])
def test_protocol_number(value: object, number: int | None) -> None:
    assert protocol_number(value) == number


def test_protocol_names_round_trip() -> None:
    for number, name in PROTOCOL_NAMES.items():
        assert protocol_number(name) == number and protocol_name(number) == name
    assert protocol_name(99) == "99" and protocol_name(None) == "unknown"


# --- cloud-custodian recordings -------------------------------------------------------------------------

def test_security_group_unused_recording(corpus: Path, tmp_path: Path) -> None:
    groups_doc = recorded(corpus, "test_security_group_unused/ec2.DescribeSecurityGroups_1.json")
    enis_doc = recorded(corpus, "test_security_group_unused/ec2.DescribeNetworkInterfaces_1.json")
    write(tmp_path, "describe-security-groups", groups_doc)
    write(tmp_path, "describe-network-interfaces", enis_doc)
    con, snap = load(tmp_path)

    groups = {g["group_id"]: g for g in query(con, "sg_groups")}
    assert set(groups) == {sg["GroupId"] for sg in groups_doc["SecurityGroups"]} == {
        "sg-13de8f75", "sg-f9cc4d9f", "sg-f6a42890"}
    assert (groups["sg-f6a42890"]["group_name"], groups["sg-f6a42890"]["vpc_id"]) == ("rds-launch-wizard",
                                                                                      "vpc-4a9ff72e")
    # No zone on a group: the region is the one all of the folder's interfaces are in.
    assert {g["region"] for g in groups.values()} == {"us-west-2"}
    assert {g["account_id"] for g in groups.values()} == {"644160558196"}

    rules = query(con, "sg_rules")
    assert len(rules) == expected_rule_count(groups_doc["SecurityGroups"])
    postgres = [r for r in rules if r["group_id"] == "sg-f6a42890" and not r["is_egress"]]
    assert [(r["protocol"], r["from_port"], r["to_port"], r["cidr_ipv4"], r["rule_id"]) for r in postgres] == [
        (6, 5432, 5432, "108.56.194.116/32", "sg-f6a42890:ingress:6:5432-5432:108.56.194.116/32")]
    self_ref = [r for r in rules if r["group_id"] == "sg-13de8f75" and not r["is_egress"]]
    assert [(r["protocol"], r["from_port"], r["to_port"], r["referenced_group_id"], r["referenced_group_owner_id"],
             r["cidr_ipv4"], r["rule_id"]) for r in self_ref] == [
        (-1, -1, -1, "sg-13de8f75", "644160558196", None, "sg-13de8f75:ingress:-1:all:sg-13de8f75")]
    assert any("derived" in w and "describe-security-group-rules" in w for w in snap.warnings)

    enis = query(con, "enis")
    assert len(enis) == len(enis_doc["NetworkInterfaces"]) == 3
    assert {(r["interface_id"], r["group_id"]) for r in query(con, "eni_groups")} == {
        (e["interface_id"], "sg-f9cc4d9f") for e in enis}
    assert all(e["requester_managed"] is True and e["region"] == "us-west-2" for e in enis)
    addresses = {(r["interface_id"], r["address"], r["kind"]) for r in query(con, "eni_addresses")}
    assert addresses == {(e["NetworkInterfaceId"], a, k) for e in enis_doc["NetworkInterfaces"]
                         for a, k in expected_addresses(e)}
    assert ("eni-794e5a04", "52.41.66.102", "public_ipv4") in addresses
    assert snap.accounts == ("644160558196",) and snap.regions == ("us-west-2",)
    assert [(Path(f.path).name, f.records) for f in snap.files] == [
        ("describe-network-interfaces.json", 3), ("describe-security-groups.json", 3)]


def test_security_group_used_recording(corpus: Path, tmp_path: Path) -> None:
    groups_doc = recorded(corpus, "test_security_group_used/ec2.DescribeSecurityGroups_1.json")
    enis_doc = recorded(corpus, "test_security_group_used/ec2.DescribeNetworkInterfaces_1.json")
    write(tmp_path, "describe-security-groups", groups_doc, gz=True)
    write(tmp_path, "describe-network-interfaces", enis_doc, gz=True)
    con, snap = load(tmp_path)

    ssh = [(r["protocol"], r["from_port"], r["to_port"], r["cidr_ipv4"]) for r in query(con, "sg_rules")
           if r["group_id"] == "sg-6bfe7312" and not r["is_egress"]]
    assert ssh == [(6, 22, 22, "0.0.0.0/0")]
    lambda_egress = [(r["protocol"], r["from_port"], r["to_port"]) for r in query(con, "sg_rules")
                     if r["group_id"] == "sg-1c8a186c" and r["is_egress"]]
    assert lambda_egress == [(6, 0, 65535)]

    enis = {e["interface_id"]: e for e in query(con, "enis")}
    assert set(enis) == {e["NetworkInterfaceId"] for e in enis_doc["NetworkInterfaces"]}
    assert len(enis) == 4
    for src in enis_doc["NetworkInterfaces"]:
        row = enis[src["NetworkInterfaceId"]]
        assert (row["interface_type"], row["status"], row["requester_managed"], row["owner_id"], row["account_id"],
                row["instance_id"], row["subnet_id"]) == (
            src.get("InterfaceType"), src["Status"], src["RequesterManaged"], src["OwnerId"], src["OwnerId"],
            src.get("Attachment", {}).get("InstanceId"), src["SubnetId"])
    assert enis["eni-caa070b4"]["instance_id"] == "i-017cf4e2a33b853fe"
    used = {r["group_id"] for r in query(con, "eni_groups")}
    assert used == {g["GroupId"] for e in enis_doc["NetworkInterfaces"] for g in e["Groups"]} == {
        "sg-f9cc4d9f", "sg-0a2cb503a229c31c1", "sg-1c8a186c"}  # what cloud-custodian's test_used expects
    assert [f.records for f in snap.files] == [4, len(groups_doc["SecurityGroups"])]
    assert all(f.path.endswith(".json.gz") for f in snap.files)


# --- layout, captured_at, missing files -----------------------------------------------------------------

def test_account_region_folders(corpus: Path, tmp_path: Path) -> None:
    unused = tmp_path / "111111111111" / "us-east-1"
    used = tmp_path / "nested" / "222222222222" / "eu-west-1"
    write(unused, "describe-security-groups",
          recorded(corpus, "test_security_group_unused/ec2.DescribeSecurityGroups_1.json"))
    write(used, "describe-security-groups",
          recorded(corpus, "test_security_group_used/ec2.DescribeSecurityGroups_1.json"))
    write(used, "describe-network-interfaces",
          recorded(corpus, "test_security_group_used/ec2.DescribeNetworkInterfaces_1.json"))
    con, snap = load(tmp_path)

    assert snap.accounts == ("111111111111", "222222222222")
    assert snap.regions == ("eu-west-1", "us-east-1")
    # The folders win over OwnerId and AvailabilityZone (the recordings say 644160558196 / us-west-2).
    per_folder = con.execute("SELECT account_id, region, count(*) FROM sg_groups GROUP BY ALL ORDER BY 1").fetchall()
    assert per_folder == [("111111111111", "us-east-1", 3), ("222222222222", "eu-west-1", 7)]
    assert set(con.execute("SELECT DISTINCT account_id, region FROM eni_addresses").fetchall()) == {
        ("222222222222", "eu-west-1")}
    assert set(con.execute("SELECT DISTINCT account_id, region FROM sg_rules").fetchall()) == {
        ("111111111111", "us-east-1"), ("222222222222", "eu-west-1")}
    missing = [w for w in snap.warnings if "describe-network-interfaces" in w]
    assert missing == ["111111111111/us-east-1: no describe-network-interfaces.json; "
                       "enis, eni_groups and eni_addresses have no rows from this folder"]


def test_captured_at_from_the_file_else_mtime(tmp_path: Path) -> None:
    stamped = write(tmp_path, "describe-security-groups",
                    {"captured_at": "2024-05-01T12:00:00Z", "SecurityGroups": []})
    unstamped = write(tmp_path, "describe-network-interfaces", {"NetworkInterfaces": []})
    june = datetime(2024, 6, 1, tzinfo=timezone.utc)
    os.utime(unstamped, (june.timestamp(), june.timestamp()))
    os.utime(stamped, (june.timestamp(), june.timestamp()))  # ignored: the file says when it was captured
    assert load(tmp_path)[1].captured_at == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)

    april = datetime(2024, 4, 1, 8, 30, tzinfo=timezone.utc)
    os.utime(unstamped, (april.timestamp(), april.timestamp()))
    assert load(tmp_path)[1].captured_at == april  # the oldest file dates the snapshot

    write(tmp_path, "describe-security-groups", {"captured_at": "last tuesday", "SecurityGroups": []})
    os.utime(tmp_path / "describe-security-groups.json", (june.timestamp(), june.timestamp()))
    snap = load(tmp_path)[1]
    assert snap.captured_at == april
    assert any("'last tuesday'" in w for w in snap.warnings)


def test_missing_files_are_warnings(tmp_path: Path) -> None:
    con, snap = load(tmp_path)
    assert snap.captured_at is None and snap.files == () and snap.accounts == ()
    assert len(snap.warnings) == 3
    assert all(w.startswith(f"{tmp_path.as_posix()}: no describe-") for w in snap.warnings)
    assert all(query(con, table) == [] for table in INVENTORY_TABLES)
    with pytest.raises(InputError):
        load_inventory(duckdb.connect(), tmp_path / "nowhere")


def test_unreadable_files_are_counted_and_warned(tmp_path: Path) -> None:
    (tmp_path / "describe-security-groups.json").write_text("{ not json")
    write(tmp_path, "describe-network-interfaces", {"Reservations": []})
    write(tmp_path, "describe-security-group-rules", {"SecurityGroupRules": [
        {"SecurityGroupRuleId": "sgr-1", "GroupId": "sg-1", "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "CidrIpv4": "10.0.0.0/8", "IsEgress": False},
        "not an object",
        {"SecurityGroupRuleId": "sgr-2"},
    ]})
    con, snap = load(tmp_path)
    assert [(Path(f.path).name, f.records, f.malformed) for f in snap.files] == [
        ("describe-network-interfaces.json", 0, 1), ("describe-security-groups.json", 0, 1),
        ("describe-security-group-rules.json", 1, 2)]
    assert [r["rule_id"] for r in query(con, "sg_rules")] == ["sgr-1"]
    assert len([w for w in snap.warnings if "not readable JSON" in w or "no top-level" in w
                or "item(s) skipped" in w]) == 3


def test_unreadable_rules_file_falls_back_to_ip_permissions(tmp_path: Path) -> None:
    (tmp_path / "describe-security-group-rules.json.gz").write_bytes(b"\x1f\x8b truncated")
    write(tmp_path, "describe-security-groups", {"SecurityGroups": [
        {"GroupId": "sg-a", "OwnerId": "123456789012",
         "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                            "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}]})
    con, snap = load(tmp_path)
    assert [r["rule_id"] for r in query(con, "sg_rules")] == ["sg-a:ingress:6:22-22:0.0.0.0/0"]
    assert [(Path(f.path).name, f.malformed) for f in snap.files] == [
        ("describe-security-groups.json", 0), ("describe-security-group-rules.json.gz", 1)]
    assert any("not readable JSON" in w for w in snap.warnings)
    assert any("derived" in w for w in snap.warnings)


# --- rules: from describe-security-group-rules, and derived -------------------------------------------------

RULES = {"captured_at": "2024-05-01T12:00:00Z", "SecurityGroupRules": [
    {"SecurityGroupRuleId": "sgr-tcp", "GroupId": "sg-a", "GroupOwnerId": "123456789012", "IsEgress": False,
     "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv4": "0.0.0.0/0", "Description": "ssh"},
    {"SecurityGroupRuleId": "sgr-all", "GroupId": "sg-a", "GroupOwnerId": "123456789012", "IsEgress": True,
     "IpProtocol": "-1", "FromPort": -1, "ToPort": -1, "CidrIpv6": "::/0"},
    {"SecurityGroupRuleId": "sgr-icmp6", "GroupId": "sg-a", "GroupOwnerId": "123456789012", "IsEgress": False,
     "IpProtocol": "icmpv6", "FromPort": 128, "ToPort": 0, "CidrIpv6": "2001:db8::/32"},
    {"SecurityGroupRuleId": "sgr-six", "GroupId": "sg-a", "GroupOwnerId": "123456789012", "IsEgress": False,
     "IpProtocol": "6", "FromPort": 443, "ToPort": 443, "PrefixListId": "pl-63a5400a"},
    {"SecurityGroupRuleId": "sgr-pair", "GroupId": "sg-a", "GroupOwnerId": "123456789012", "IsEgress": False,
     "IpProtocol": "udp", "FromPort": 53, "ToPort": 53,
     "ReferencedGroupInfo": {"GroupId": "sg-b", "UserId": "210987654321", "VpcId": "vpc-peer",
                             "VpcPeeringConnectionId": "pcx-1", "PeeringStatus": "active"},
     "SecurityGroupRuleArn": "arn:aws:ec2:ap-south-1:123456789012:security-group-rule/sgr-pair"},
    {"SecurityGroupRuleId": "sgr-odd", "GroupId": "sg-a", "GroupOwnerId": "123456789012", "IsEgress": False,
     "IpProtocol": "smtp", "FromPort": 25, "ToPort": 25, "CidrIpv4": "10.0.0.0/8"},
]}


def test_rules_file_is_used_when_present(tmp_path: Path) -> None:
    folder = tmp_path / "123456789012" / "ap-south-1"
    write(folder, "describe-security-group-rules", RULES)
    write(folder, "describe-security-groups", {"SecurityGroups": [
        {"GroupId": "sg-a", "GroupName": "web", "OwnerId": "123456789012", "VpcId": "vpc-1", "Description": "d",
         "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1,
                            "IpRanges": [{"CidrIp": "1.1.1.1/32"}]}]}]})
    con, snap = load(tmp_path)
    got = {r["rule_id"]: r for r in query(con, "sg_rules")}
    assert set(got) == {r["SecurityGroupRuleId"] for r in RULES["SecurityGroupRules"]}  # IpPermissions not used
    assert {k: (r["protocol"], r["from_port"], r["to_port"], r["is_egress"]) for k, r in got.items()} == {
        "sgr-tcp": (6, 22, 22, False), "sgr-all": (-1, -1, -1, True), "sgr-icmp6": (58, 128, 0, False),
        "sgr-six": (6, 443, 443, False), "sgr-pair": (17, 53, 53, False), "sgr-odd": (None, 25, 25, False)}
    pair = got["sgr-pair"]
    assert (pair["referenced_group_id"], pair["referenced_group_owner_id"], pair["referenced_vpc_id"],
            pair["cidr_ipv4"]) == ("sg-b", "210987654321", "vpc-peer", None)
    assert (got["sgr-six"]["prefix_list_id"], got["sgr-six"]["cidr_ipv4"]) == ("pl-63a5400a", None)
    assert (got["sgr-all"]["cidr_ipv6"], got["sgr-tcp"]["description"]) == ("::/0", "ssh")
    assert {(r["account_id"], r["region"]) for r in got.values()} == {("123456789012", "ap-south-1")}
    assert not any("derived" in w for w in snap.warnings)
    assert any("'smtp'" in w and "protocol is NULL" in w for w in snap.warnings)
    assert snap.captured_at == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)  # older than the other file's mtime


def test_rules_derived_from_ip_permissions(tmp_path: Path) -> None:
    write(tmp_path, "describe-security-groups", {"SecurityGroups": [{
        "GroupId": "sg-a", "GroupName": "app", "OwnerId": "123456789012", "VpcId": "vpc-1",
        "SecurityGroupArn": "arn:aws:ec2:eu-north-1:123456789012:security-group/sg-a",
        "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
             "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "web"}, {"CidrIp": "10.0.0.0/8"}],
             "Ipv6Ranges": [{"CidrIpv6": "::/0"}], "PrefixListIds": [{"PrefixListId": "pl-1"}],
             "UserIdGroupPairs": [{"GroupId": "sg-a", "UserId": "123456789012"},
                                  {"GroupId": "sg-x", "UserId": "210987654321", "VpcId": "vpc-2"}]},
            {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "192.0.2.0/24"}]},
        ],
        "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    }]})
    con, snap = load(tmp_path)
    got = {r["rule_id"]: r for r in query(con, "sg_rules")}
    assert sorted(got) == sorted([
        "sg-a:ingress:6:443-443:0.0.0.0/0", "sg-a:ingress:6:443-443:10.0.0.0/8", "sg-a:ingress:6:443-443:::/0",
        "sg-a:ingress:6:443-443:pl-1", "sg-a:ingress:6:443-443:sg-a", "sg-a:ingress:6:443-443:210987654321/sg-x",
        "sg-a:ingress:1:8--1:192.0.2.0/24", "sg-a:egress:-1:all:0.0.0.0/0"])
    cross = got["sg-a:ingress:6:443-443:210987654321/sg-x"]
    assert (cross["referenced_group_id"], cross["referenced_group_owner_id"], cross["referenced_vpc_id"]) == (
        "sg-x", "210987654321", "vpc-2")
    assert (got["sg-a:ingress:6:443-443:pl-1"]["prefix_list_id"], got["sg-a:ingress:6:443-443:::/0"]["cidr_ipv6"]) == (
        "pl-1", "::/0")
    assert got["sg-a:ingress:6:443-443:0.0.0.0/0"]["description"] == "web"
    icmp = got["sg-a:ingress:1:8--1:192.0.2.0/24"]
    assert (icmp["protocol"], icmp["from_port"], icmp["to_port"]) == (1, 8, -1)  # ICMP type 8, every code
    egress = got["sg-a:egress:-1:all:0.0.0.0/0"]
    assert (egress["is_egress"], egress["from_port"], egress["to_port"]) == (True, -1, -1)
    # No path, no interfaces: the group's ARN names its region and account.
    assert {(r["account_id"], r["region"]) for r in got.values()} == {("123456789012", "eu-north-1")}
    assert snap.regions == ("eu-north-1",)


def test_interfaces_without_a_path(tmp_path: Path) -> None:
    write(tmp_path, "describe-network-interfaces", {"NetworkInterfaces": [{
        "NetworkInterfaceId": "eni-1", "OwnerId": "123456789012", "AvailabilityZone": "us-west-2-lax-1a",
        "InterfaceType": "interface", "Status": "in-use", "RequesterManaged": False, "VpcId": "vpc-1",
        "SubnetId": "subnet-1", "Attachment": {"InstanceId": "i-1"},
        "Groups": [{"GroupId": "sg-1"}, {"GroupId": "sg-2"}],
        "PrivateIpAddress": "10.0.0.5",
        "PrivateIpAddresses": [
            {"PrivateIpAddress": "10.0.0.5", "Primary": True, "Association": {"PublicIp": "203.0.113.5"}},
            {"PrivateIpAddress": "10.0.0.6", "Primary": False, "Association": {"PublicIp": "203.0.113.6"}}],
        "Ipv6Addresses": [{"Ipv6Address": "2001:db8::5"}],
        "Association": {"PublicIp": "203.0.113.5"},
    }]})
    con, snap = load(tmp_path)
    assert query(con, "enis")[0]["region"] == "us-west-2"  # a Local Zone's parent region
    assert sorted((r["address"], r["kind"]) for r in query(con, "eni_addresses")) == [
        ("10.0.0.5", "private_ipv4"), ("10.0.0.6", "private_ipv4"), ("2001:db8::5", "ipv6"),
        ("203.0.113.5", "public_ipv4"), ("203.0.113.6", "public_ipv4")]
    assert [r["group_id"] for r in query(con, "eni_groups")] == ["sg-1", "sg-2"]


def test_every_column_is_documented() -> None:
    doc = inventory.__doc__ or ""
    sections = dict(re.findall(r"^``(\w+)`` — (.*?)(?=^``\w+`` — |\Z)", doc, flags=re.M | re.S))
    assert set(sections) == set(INVENTORY_TABLES)
    for table, columns in INVENTORY_TABLES.items():
        for name, kind in columns:
            assert f"``{name}`` {kind}" in sections[table], (table, name)
