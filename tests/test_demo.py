"""The demo generator: determinism, the S3 layout, and the scenario facts counted back from the files.

Everything here parses the generated files in plain Python (gzip, split, json) so that these tests do not depend on
the project's own readers.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import time
import uuid
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.cli import main as cli_main
from auditor.demo import (
    CUSTOM_FIELDS,
    FLOW_LAG_MAX,
    MARKER,
    TRAIL_LAG_MAX,
    V2_FIELDS,
    DemoManifest,
    generate,
)
from auditor.engines.sources.files import describe, discover
from auditor.errors import UsageError

ANCHOR = date(2026, 11, 9)
# Documentation ranges are public for the tool (the scenario actors live there), so "private" means RFC 1918 only.
# Python's ipaddress.is_private would call 192.0.2.0/24 and friends private.
_RFC1918 = (re.compile(r"^10\."), re.compile(r"^172\.(1[6-9]|2\d|3[01])\."), re.compile(r"^192\.168\."))
_FLOW_NAME = re.compile(r"^(\d{12})_vpcflowlogs_([a-z0-9-]+)_(fl-[0-9a-f]{17})_(\d{8}T\d{4}Z)_([0-9a-f]{8})\.log\.gz$")
_TRAIL_NAME = re.compile(r"^(\d{12})_CloudTrail_([a-z0-9-]+)_(\d{8}T\d{4}Z)_([A-Za-z0-9]{16})\.json\.gz$")


def _public(ip: str) -> bool:
    if ":" in ip:
        return not ip.lower().startswith(("fc", "fd", "fe80"))
    return not any(p.match(ip) for p in _RFC1918)


def _folder_day(path: Path) -> datetime:
    y, m, d = path.parts[-4:-1]
    return datetime(int(y), int(m), int(d), tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoManifest, float]:
    out = tmp_path_factory.mktemp("demo") / "data"
    started = time.perf_counter()
    manifest = generate(out, ANCHOR)
    return manifest, time.perf_counter() - started


@pytest.fixture(scope="module")
def manifest(demo: tuple[DemoManifest, float]) -> DemoManifest:
    return demo[0]


class FlowFile:
    """One flow-log file, its lines classified the way a reader must: header, blank, malformed, status, record."""

    def __init__(self, path: Path) -> None:
        self.path = path
        text = gzip.decompress(path.read_bytes()).decode()
        assert text.endswith("\n"), path
        self.lines = text[:-1].split("\n")
        self.header = self.lines[0].split(" ")
        self.classes: Counter[str] = Counter(headers=1)
        self.records: list[dict[str, Any]] = []
        self.double_spaced: list[dict[str, Any]] = []
        for line in self.lines[1:]:
            fields = line.split()
            if not fields:
                self.classes["blank"] += 1
            elif fields == self.header:
                self.classes["headers"] += 1
            elif len(fields) != len(self.header):
                self.classes["malformed"] += 1
            else:
                rec: dict[str, Any] = dict(zip(self.header, fields))
                if rec["log-status"] in ("NODATA", "SKIPDATA"):
                    self.classes[rec["log-status"].lower()] += 1
                    rec["start"], rec["end"] = int(rec["start"]), int(rec["end"])
                    rec["folder"] = _folder_day(path)
                    self.records.append(rec)
                    continue
                try:
                    for k in ("srcport", "dstport", "protocol", "packets", "bytes", "start", "end"):
                        rec[k] = int(rec[k])
                except ValueError:
                    self.classes["malformed"] += 1
                    continue
                rec["folder"] = _folder_day(path)
                self.classes["records"] += 1
                self.records.append(rec)
                if "  " in line:
                    self.double_spaced.append(rec)


@pytest.fixture(scope="module")
def flow_files(manifest: DemoManifest) -> list[FlowFile]:
    return [FlowFile(p) for p in manifest.flowlog_files]


@pytest.fixture(scope="module")
def records(flow_files: list[FlowFile]) -> list[dict[str, Any]]:
    return [r for f in flow_files for r in f.records if r["log-status"] == "OK"]


@pytest.fixture(scope="module")
def inventory(manifest: DemoManifest) -> dict[str, dict[str, Any]]:
    """``region -> {SecurityGroups, SecurityGroupRules, NetworkInterfaces, captured_at}``."""
    out: dict[str, dict[str, Any]] = defaultdict(dict)
    for p in manifest.inventory_files:
        doc = json.loads(p.read_text())
        out[p.parent.name].update(doc)
    return out


@pytest.fixture(scope="module")
def events(manifest: DemoManifest) -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for p in manifest.cloudtrail_files:
        doc = json.loads(gzip.decompress(p.read_bytes()))
        assert isinstance(doc["Records"], list) and doc["Records"], p
        out.extend((p, ev) for ev in doc["Records"])
    return out


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------- determinism, speed

def test_same_anchor_gives_identical_bytes(manifest: DemoManifest, tmp_path: Path) -> None:
    again = generate(tmp_path / "again", ANCHOR)
    first, second = _tree(manifest.root), _tree(again.root)
    assert list(first) == list(second)
    assert [k for k in first if first[k] != second[k]] == []
    assert again.to_json() == manifest.to_json()


def test_gzip_headers_carry_no_time_and_no_name(manifest: DemoManifest) -> None:
    for p in manifest.flowlog_files[:20] + manifest.cloudtrail_files[:20]:
        head = p.read_bytes()[:10]
        assert head[:3] == b"\x1f\x8b\x08"
        assert head[3] & 0x08 == 0, f"{p.name}: FNAME flag set"
        assert head[4:8] == b"\0\0\0\0", f"{p.name}: mtime is not 0"


def test_another_anchor_gives_other_data(manifest: DemoManifest, tmp_path: Path) -> None:
    other = generate(tmp_path / "other", ANCHOR + timedelta(days=1))
    assert other.until - manifest.until == timedelta(days=1)
    # The same calendar day, generated for two anchors, carries different traffic.
    day = "2026/11/05"
    mine = sorted(p for p in manifest.flowlog_files if day in p.as_posix())
    theirs = sorted(p for p in other.flowlog_files if day in p.as_posix())
    assert mine and theirs
    assert [p.read_bytes() for p in mine] != [p.read_bytes() for p in theirs]
    assert json.loads(other.inventory_files[0].read_text())["captured_at"] == "2026-11-10T00:00:00Z"

    # Not just the same pattern shifted by a day: the seed follows the anchor.
    def relative(m: DemoManifest) -> list[tuple[Any, ...]]:
        return [(w.sg_opened_at - w.since, w.scanner_ports, w.bruteforce_rejects) for w in m.weeks]

    assert relative(other) != relative(manifest)


def test_generation_is_fast(demo: tuple[DemoManifest, float]) -> None:
    manifest, seconds = demo
    # ~2 s of CPU on the 2-core machine; the bound leaves room for a busy CI neighbour.
    assert seconds < 12, f"generation took {seconds:.1f}s"
    assert 50_000 <= manifest.counts["flow_records"] <= 150_000


# ------------------------------------------------------------------------------------------------- layout

def test_manifest_lists_what_discovery_finds(manifest: DemoManifest) -> None:
    assert [Path(f.path) for f in discover(manifest.root / "flowlogs", ["text"])] == list(manifest.flowlog_files)
    found = {Path(f.path) for f in discover(manifest.root / "cloudtrail", ["json"])}
    assert found == set(manifest.cloudtrail_files) | set(manifest.digest_files)
    assert all(p.is_file() for p in manifest.inventory_files)
    assert json.loads((manifest.root / MARKER).read_text())["anchor"] == ANCHOR.isoformat()


def test_flow_log_files_follow_the_s3_layout(manifest: DemoManifest) -> None:
    ids = set(manifest.flow_log_ids.values())
    for p in manifest.flowlog_files:
        m = _FLOW_NAME.match(p.name)
        assert m, p.name
        account, region, flow_log_id, stamp, _ = m.groups()
        rel = p.relative_to(manifest.root / "flowlogs").parts
        assert rel[:4] == ("AWSLogs", account, "vpcflowlogs", region)
        assert account == manifest.account_id and flow_log_id in ids
        assert stamp.startswith("".join(rel[4:7]))  # the file's time is in its folder's day
        info = describe(p)
        assert (info.account_id, info.region, info.folder_time) == (account, region, _folder_day(p))


def test_every_flow_file_starts_with_its_formats_header(flow_files: list[FlowFile], manifest: DemoManifest) -> None:
    custom = manifest.flow_log_ids["custom"]
    for f in flow_files:
        expected = CUSTOM_FIELDS if custom in f.path.name else V2_FIELDS
        assert tuple(f.header) == expected, f.path.name
    assert {tuple(f.header) for f in flow_files} == {V2_FIELDS, CUSTOM_FIELDS}


def test_custom_format_is_every_documented_field_in_another_order(corpus: Path) -> None:
    with open(corpus / "aws-docs" / "vpc-flow-log-fields.csv") as fh:
        documented = {row["field"] for row in csv.DictReader(fh)}
    assert set(CUSTOM_FIELDS) == documented
    default_order = [f for f in CUSTOM_FIELDS if f in V2_FIELDS]
    assert default_order != list(V2_FIELDS)


def test_records_start_in_the_span_and_sit_in_their_delivery_folder(flow_files: list[FlowFile],
                                                                    manifest: DemoManifest) -> None:
    since, until = int(manifest.since.timestamp()), int(manifest.until.timestamp())
    lag = int(FLOW_LAG_MAX.total_seconds())
    crossed = 0
    for f in flow_files:
        for r in f.records:
            assert since <= r["start"] < until
            day0 = int(r["folder"].timestamp())
            # Delivered (so foldered) 1..10 minutes after the start.
            assert day0 - lag <= r["start"] < day0 + 86400, (f.path.name, r["start"])
            crossed += r["start"] < day0
    assert crossed > 0, "no record started before midnight and was delivered into the next day's folder"
    anchor_day = [p for p in manifest.flowlog_files if _folder_day(p).date() == ANCHOR]
    assert anchor_day, "the anchor day's folder holds the records delivered after the last midnight"


# ----------------------------------------------------------------------------------------------- scenarios

def _in_week(r: dict[str, Any], week: Any) -> bool:
    return week.since.timestamp() <= r["start"] < week.until.timestamp()


def test_each_week_has_a_port_scan(records: list[dict[str, Any]], manifest: DemoManifest) -> None:
    assert len(manifest.weeks) == 2
    for w in manifest.weeks:
        scan = [r for r in records if r["srcaddr"] == manifest.scanner_ip and _in_week(r, w)]
        assert {r["action"] for r in scan} == {"REJECT"}
        assert {r["interface-id"] for r in scan} == {w.scanner_target_eni}
        ports = {r["dstport"] for r in scan}
        assert len(ports) == w.scanner_ports >= 50
        assert len(scan) == w.scanner_records >= 200
    targets = {w.scanner_target_eni for w in manifest.weeks}
    assert len(targets) == 2, "the two weeks scan different interfaces (one per flow-log format)"


def test_each_week_has_an_ssh_brute_force(records: list[dict[str, Any]], manifest: DemoManifest) -> None:
    for w in manifest.weeks:
        inbound = [r for r in records if r["srcaddr"] == manifest.bruteforce_ip and r["dstport"] == 22
                   and r["interface-id"] == manifest.bastion_eni and _in_week(r, w)]
        rejected = [r for r in inbound if r["action"] == "REJECT"]
        accepted = [r for r in inbound if r["action"] == "ACCEPT"]
        assert len(rejected) == w.bruteforce_rejects >= 100
        assert len(accepted) == w.bruteforce_accepts and 1 <= len(accepted) <= 10
        assert max(r["start"] for r in accepted) < min(r["start"] for r in rejected)


def test_each_week_has_public_access_to_the_exposed_port(records: list[dict[str, Any]],
                                                         manifest: DemoManifest) -> None:
    for w in manifest.weeks:
        inbound = [r for r in records if r["interface-id"] == manifest.exposed_eni and r["action"] == "ACCEPT"
                   and r["dstport"] == manifest.exposed_port and _public(r["srcaddr"]) and _in_week(r, w)]
        assert {r["srcaddr"] for r in inbound} == set(w.exposed_sources)
        assert len(w.exposed_sources) >= 3
        assert len(inbound) == w.exposed_sessions
    # The same port is also used legitimately from inside the VPC.
    assert any(r["interface-id"] == manifest.exposed_eni and r["dstport"] == manifest.exposed_port
               and not _public(r["srcaddr"]) for r in records)


def test_background_traffic(records: list[dict[str, Any]], inventory: dict[str, dict[str, Any]]) -> None:
    albs = {n["NetworkInterfaceId"] for n in inventory["us-east-1"]["NetworkInterfaces"]
            if n["Description"].startswith("ELB ")}
    web = [r for r in records if r["interface-id"] in albs and r["dstport"] in (80, 443) and _public(r["srcaddr"])]
    assert len({r["srcaddr"] for r in web}) > 1000
    assert any(":" in r["srcaddr"] for r in web), "some web clients come over IPv6"
    for port in (5432, 6379):
        east_west = [r for r in records if r["dstport"] == port and r["action"] == "ACCEPT"
                     and not _public(r["srcaddr"]) and not _public(r["dstaddr"])]
        assert len(east_west) > 1000, port
    egress = [r for r in records if not _public(r["srcaddr"]) and _public(r["dstaddr"]) and r["dstport"] == 443]
    assert len(egress) > 500
    assert any(r["protocol"] == 1 for r in records), "ICMP"


def test_accepted_inbound_from_public_has_its_return_record(records: list[dict[str, Any]]) -> None:
    keys = {(r["interface-id"], r["srcaddr"], r["dstaddr"], r["srcport"], r["dstport"]) for r in records}
    inbound = [r for r in records if r["action"] == "ACCEPT" and _public(r["srcaddr"])]
    assert len(inbound) > 5000
    missing = [r for r in inbound
               if (r["interface-id"], r["dstaddr"], r["srcaddr"], r["dstport"], r["srcport"]) not in keys]
    assert missing == []


def test_custom_records_carry_direction_and_path(records: list[dict[str, Any]]) -> None:
    custom = [r for r in records if "flow-direction" in r]
    assert {r["flow-direction"] for r in custom} == {"ingress", "egress"}
    assert {r["traffic-path"] for r in custom if r["flow-direction"] == "ingress"} == {"-"}
    assert {r["traffic-path"] for r in custom if r["flow-direction"] == "egress"} >= {"1", "7"}
    assert {r["type"] for r in custom} == {"IPv4", "IPv6"}


def test_dirty_lines_are_about_a_thousandth_and_never_scenario_records(flow_files: list[FlowFile],
                                                                       manifest: DemoManifest) -> None:
    total: Counter[str] = Counter()
    for f in flow_files:
        total.update(f.classes)
    c = manifest.counts
    assert total["records"] == c["flow_records"]
    assert total["nodata"] == c["flow_nodata"] > 0 and total["skipdata"] == c["flow_skipdata"] > 0
    assert total["blank"] == c["flow_blank"] > 0
    assert total["malformed"] == c["flow_malformed"] > 0
    assert total["headers"] == c["flow_headers"] > len(flow_files)
    double = [r for f in flow_files for r in f.double_spaced]
    assert len(double) == c["dirty_double_space"] > 0
    lines = sum(len(f.lines) for f in flow_files)
    dirty = total["blank"] + total["malformed"] + (total["headers"] - len(flow_files)) + len(double)
    assert 0.0005 <= dirty / lines <= 0.003
    actors = {manifest.scanner_ip, manifest.bruteforce_ip}
    assert not [r for r in double if r["srcaddr"] in actors or r["dstaddr"] in actors]


def test_status_records_have_no_traffic_fields(flow_files: list[FlowFile]) -> None:
    status = [r for f in flow_files for r in f.records if r["log-status"] != "OK"]
    assert {r["log-status"] for r in status} == {"NODATA", "SKIPDATA"}
    for r in status:
        assert r["srcaddr"] == r["dstaddr"] == r["srcport"] == r["action"] == "-"
        assert r["interface-id"].startswith("eni-") and r["end"] > r["start"]


# ----------------------------------------------------------------------------------------------- inventory

def test_every_flow_interface_is_in_the_inventory_with_its_addresses(
        records: list[dict[str, Any]], inventory: dict[str, dict[str, Any]], manifest: DemoManifest) -> None:
    addresses: dict[str, set[str]] = {}
    for region in inventory.values():
        for n in region["NetworkInterfaces"]:
            addresses[n["NetworkInterfaceId"]] = ({a["PrivateIpAddress"] for a in n["PrivateIpAddresses"]}
                                                  | {a["Ipv6Address"] for a in n["Ipv6Addresses"]})
    seen = set()
    for r in records:
        eni = r["interface-id"]
        assert eni in addresses, eni
        assert r["srcaddr"] in addresses[eni] or r["dstaddr"] in addresses[eni], r
        seen.add(eni)
    assert manifest.uncovered_eni in addresses and manifest.uncovered_eni not in seen
    assert set(addresses) - seen == {manifest.uncovered_eni}


def _rules_of(inv: dict[str, Any], group_id: str) -> list[dict[str, Any]]:
    return [r for r in inv["SecurityGroupRules"] if r["GroupId"] == group_id]


def test_inventory_groups(inventory: dict[str, dict[str, Any]], manifest: DemoManifest,
                          records: list[dict[str, Any]]) -> None:
    inv = inventory["us-east-1"]
    assert inv["captured_at"] == "2026-11-09T00:00:00Z"
    attached = defaultdict(set)
    for region in inventory.values():
        for n in region["NetworkInterfaces"]:
            for g in n["Groups"]:
                attached[g["GroupId"]].add(n["NetworkInterfaceId"])

    def world(group_id: str, port: int) -> bool:
        return any(not r["IsEgress"] and r.get("CidrIpv4") == "0.0.0.0/0" and r["FromPort"] <= port <= r["ToPort"]
                   for r in _rules_of(inv, group_id))

    assert world(manifest.bastion_group, 22) and manifest.bastion_eni in attached[manifest.bastion_group]
    assert world(manifest.exposed_group, manifest.exposed_port)
    assert manifest.exposed_eni in attached[manifest.exposed_group]
    groups = {g["GroupId"]: g for region in inventory.values() for g in region["SecurityGroups"]}
    assert not attached[manifest.unused_group] and groups[manifest.unused_group]["GroupName"] != "default"
    for gid in manifest.default_groups:
        assert groups[gid]["GroupName"] == "default" and not attached[gid]

    rules = [r for region in inventory.values() for r in region["SecurityGroupRules"]]
    assert any(r["IpProtocol"] == "icmp" for r in rules)
    assert any("ReferencedGroupInfo" in r and r["ReferencedGroupInfo"]["GroupId"] != r["GroupId"] for r in rules)
    assert any("PrefixListId" in r for r in rules)
    # A world-open rule on a used group that no traffic ever used, and a 10.0.0.0/8 rule likewise.
    assert world(manifest.bastion_group, 3389)
    assert not [r for r in records if r["interface-id"] == manifest.bastion_eni and r["dstport"] == 3389]
    private_8080 = [r for r in rules if r.get("CidrIpv4") == "10.0.0.0/8" and r["FromPort"] == 8080]
    assert len(private_8080) == 1
    cache_enis = attached[private_8080[0]["GroupId"]]
    assert cache_enis and not [r for r in records if r["interface-id"] in cache_enis and r["dstport"] == 8080]


def test_rules_and_groups_describe_the_same_rules(inventory: dict[str, dict[str, Any]]) -> None:
    for region in inventory.values():
        for g in region["SecurityGroups"]:
            folded = sum(len(p["UserIdGroupPairs"]) + len(p["IpRanges"]) + len(p["Ipv6Ranges"])
                         + len(p["PrefixListIds"]) for p in g["IpPermissions"] + g["IpPermissionsEgress"])
            assert folded == len(_rules_of(region, g["GroupId"])), g["GroupName"]
            for p in g["IpPermissions"] + g["IpPermissionsEgress"]:
                assert ("FromPort" in p) == (p["IpProtocol"] != "-1")
        ids = [r["SecurityGroupRuleId"] for r in region["SecurityGroupRules"]]
        assert len(ids) == len(set(ids)) and all(i.startswith("sgr-") for i in ids)


# ---------------------------------------------------------------------------------------------- CloudTrail

def test_cloudtrail_files_follow_the_s3_layout(manifest: DemoManifest) -> None:
    for p in manifest.cloudtrail_files:
        m = _TRAIL_NAME.match(p.name)
        assert m, p.name
        rel = p.relative_to(manifest.root / "cloudtrail").parts
        assert rel[0] == "AWSLogs" and "CloudTrail" in rel and m.group(1) == manifest.account_id
        assert describe(p).region == m.group(2)
    orgs = [p for p in manifest.cloudtrail_files if p.relative_to(manifest.root).parts[2].startswith("o-")]
    assert len(orgs) == 1
    (digest,) = manifest.digest_files
    assert "CloudTrail-Digest" in digest.parts
    doc = json.loads(gzip.decompress(digest.read_bytes()))
    assert "Records" not in doc and doc["awsAccountId"] == manifest.account_id and doc["logFiles"]


def test_cloudtrail_records_have_the_real_fields(events: list[tuple[Path, dict[str, Any]]],
                                                 manifest: DemoManifest) -> None:
    lag = TRAIL_LAG_MAX.total_seconds()
    for path, ev in events:
        for key in ("eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
                    "sourceIPAddress", "userAgent", "requestParameters", "responseElements", "requestID",
                    "eventID", "eventType", "recipientAccountId"):
            assert key in ev, (key, ev["eventName"])
        assert tuple(int(x) for x in ev["eventVersion"].split(".")) >= (1, 8)
        assert uuid.UUID(ev["eventID"]).version == 4
        assert ev["recipientAccountId"] == manifest.account_id
        ident = ev["userIdentity"]
        assert "arn" in ident
        if ident["type"] == "AssumedRole":
            assert ident["sessionContext"]["sessionIssuer"]["arn"].startswith("arn:aws:iam::")
        t = datetime.strptime(ev["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        assert manifest.since <= t < manifest.until
        assert ev["awsRegion"] == path.parts[-5]
        day = _folder_day(path)
        assert day - timedelta(seconds=lag) <= t < day + timedelta(days=1)


def test_exactly_one_event_is_delivered_twice(events: list[tuple[Path, dict[str, Any]]],
                                              manifest: DemoManifest) -> None:
    ids = Counter(ev["eventID"] for _, ev in events)
    assert [k for k, n in ids.items() if n > 1] == [manifest.duplicate_event_id]
    twice = [p for p, ev in events if ev["eventID"] == manifest.duplicate_event_id]
    assert sum("/o-" in p.as_posix() for p in twice) == 1


def _perm_items(ev: dict[str, Any]) -> list[dict[str, Any]]:
    return ev["requestParameters"].get("ipPermissions", {}).get("items", [])


def _world(item: dict[str, Any]) -> bool:
    return any(r["cidrIp"] == "0.0.0.0/0" for r in item.get("ipRanges", {}).get("items", []))


def test_each_week_has_every_security_group_change(events: list[tuple[Path, dict[str, Any]]],
                                                   manifest: DemoManifest) -> None:
    def at(ev: dict[str, Any]) -> datetime:
        return datetime.strptime(ev["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)

    unique = {ev["eventID"]: ev for _, ev in events}.values()
    for w in manifest.weeks:
        week = [ev for ev in unique if w.since <= at(ev) < w.until and ev["eventSource"] == "ec2.amazonaws.com"]

        def named(name: str, week: list[dict[str, Any]] = week) -> list[dict[str, Any]]:
            return [ev for ev in week if ev["eventName"] == name]

        opened = [ev for ev in named("AuthorizeSecurityGroupIngress") if "errorCode" not in ev
                  and ev["requestParameters"]["groupId"] == manifest.sg_opened_then_closed
                  and any(i["fromPort"] == 22 and _world(i) for i in _perm_items(ev))]
        closed = [ev for ev in named("RevokeSecurityGroupIngress")
                  if ev["requestParameters"]["groupId"] == manifest.sg_opened_then_closed
                  and any(i["fromPort"] == 22 and _world(i) for i in _perm_items(ev))]
        assert [at(ev) for ev in opened] == [w.sg_opened_at]
        assert [at(ev) for ev in closed] == [w.sg_closed_at] and w.sg_closed_at > w.sg_opened_at
        rule = opened[0]["responseElements"]["securityGroupRuleSet"]["items"][0]
        assert rule["securityGroupRuleId"].startswith("sgr-") and rule["cidrIpv4"] == "0.0.0.0/0"

        legacy = [ev for ev in named("AuthorizeSecurityGroupIngress") if "cidrIp" in ev["requestParameters"]]
        assert len(legacy) == 1 and legacy[0]["requestParameters"]["ipPermissions"] == {}
        assert isinstance(legacy[0]["requestParameters"]["fromPort"], int)

        failed = [ev for ev in week if ev.get("errorCode") == "Client.UnauthorizedOperation"]
        assert len(failed) == 1 and failed[0]["responseElements"] is None

        assert any(_world(i) for ev in named("AuthorizeSecurityGroupEgress") for i in _perm_items(ev))
        assert all(ev["responseElements"]["groupId"].startswith("sg-") for ev in named("CreateSecurityGroup"))
        assert named("CreateSecurityGroup")

        (modify,) = named("ModifySecurityGroupRules")
        req = modify["requestParameters"]["ModifySecurityGroupRulesRequest"]
        assert req["GroupId"].startswith("sg-") and req["SecurityGroupRule"]["SecurityGroupRule"]["CidrIpv4"]

        (nic,) = named("ModifyNetworkInterfaceAttribute")
        assert nic["requestParameters"]["groupSet"]["items"][0]["groupId"].startswith("sg-")

        assert len([ev for ev in week if ev["readOnly"]]) > 100


def test_the_older_week_opens_the_exposed_port_before_it_is_used(events: list[tuple[Path, dict[str, Any]]],
                                                                 records: list[dict[str, Any]],
                                                                 manifest: DemoManifest) -> None:
    older = manifest.weeks[-1]
    (modify,) = [ev for _, ev in events if ev["eventName"] == "ModifySecurityGroupRules"
                 and ev["requestParameters"]["ModifySecurityGroupRulesRequest"]["GroupId"] == manifest.exposed_group]
    opened = datetime.strptime(modify["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert older.since <= opened < older.until
    first = min(r["start"] for r in records if r["interface-id"] == manifest.exposed_eni
                and r["srcaddr"] in older.exposed_sources and _in_week(r, older))
    assert first > opened.timestamp()


def _shape(value: Any) -> Any:
    """The nested key structure of a JSON value, with leaves reduced to their type."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def test_authorize_events_have_the_shapes_of_real_ones(events: list[tuple[Path, dict[str, Any]]],
                                                       corpus: Path) -> None:
    real_modern = json.loads((corpus / "elastic-integrations" / "cloudtrail"
                              / "test-authorize-security-group-ingress-json.log").read_text())
    (real_legacy,) = json.loads((corpus / "stratus-red-team"
                                 / "aws.exfiltration.ec2-security-group-open-port-22-ingress.json").read_text())
    ours = [ev for _, ev in events if ev["eventName"] == "AuthorizeSecurityGroupIngress" and "errorCode" not in ev]
    modern = [ev for ev in ours if "cidrIp" not in ev["requestParameters"]]
    legacy = [ev for ev in ours if "cidrIp" in ev["requestParameters"]]
    assert modern and legacy
    for ev in modern:
        assert _shape(ev["requestParameters"]) == _shape(real_modern["requestParameters"])
        assert (_shape(ev["responseElements"]["securityGroupRuleSet"])
                == _shape(real_modern["responseElements"]["securityGroupRuleSet"]))
    for ev in legacy:
        assert _shape(ev["requestParameters"]) == _shape(real_legacy["requestParameters"])


# ------------------------------------------------------------------------------------------- the out folder

def test_regenerates_its_own_folder_and_refuses_a_foreign_one(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    generate(out, ANCHOR, days=1)
    (out / "notes.txt").write_text("kept")
    stale = out / "flowlogs" / "stale.log.gz"
    stale.write_bytes(b"")
    generate(out, ANCHOR, days=1)
    assert not stale.exists() and (out / "notes.txt").read_text() == "kept"

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.csv").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        generate(foreign, ANCHOR, days=1)
    with pytest.raises(UsageError, match="at least 1"):
        generate(tmp_path / "none", ANCHOR, days=0)


def test_the_demo_command(tmp_path: Path) -> None:
    """``auditor demo`` is the one way to write the demo data from the command line (no second CLI)."""
    result = CliRunner().invoke(cli_main, ["demo", "--out", str(tmp_path / "d"), "--anchor", "2026-11-09", "--days", "7"])
    assert result.exit_code == 0, result.output
    assert "flow-log files" in result.output
    assert json.loads((tmp_path / "d" / MARKER).read_text())["until"] == "2026-11-09T00:00:00Z"
    bad = CliRunner().invoke(cli_main, ["demo", "--out", str(tmp_path / "e"), "--anchor", "9 Nov"])
    assert bad.exit_code == 2 and "is not a date" in bad.output
