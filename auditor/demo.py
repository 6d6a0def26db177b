"""Deterministic, realistic demo data: VPC Flow Logs, CloudTrail and an EC2 inventory, laid out as AWS writes them.

``generate(out, anchor)`` writes under ``out``::

    flowlogs/AWSLogs/<account>/vpcflowlogs/<region>/YYYY/MM/DD/
        <account>_vpcflowlogs_<region>_<flow-log-id>_<YYYYMMDDTHHmmZ>_<hash>.log.gz
        (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3-path.html)
    cloudtrail/AWSLogs/[<org-id>/]<account>/CloudTrail/<region>/YYYY/MM/DD/
        <account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<16 chars>.json.gz
    cloudtrail/AWSLogs/<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/...json.gz  (one digest; readers must skip it)
        (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/get-and-view-cloudtrail-log-files.html)
    inventory/<account>/<region>/describe-security-groups.json, describe-security-group-rules.json,
        describe-network-interfaces.json  (what the AWS CLI prints, plus a top-level "captured_at")

Time span. ``anchor`` is a UTC day; its midnight ends the data. Every flow record and CloudTrail event *starts* in
``[anchor - days, anchor)``. Files are foldered by *delivery* time (flow records 1..10 minutes after they start,
CloudTrail events 2..12 minutes after they happen), so the anchor day's folder holds only what was delivered after
midnight. The default report window, the last 7 whole UTC days ending at the most recent midnight, is therefore
complete when the anchor is today. The inventory is captured at the anchor's midnight.

Weeks. The span is cut into 7-day blocks counted back from the anchor; every block holds every scenario (port scan,
SSH brute force, public MySQL access, the security-group changes), with its own timing, ports and counts, so two
consecutive weekly reports both have them. Blocks alternate between two variants of the CloudTrail story, and in
the newer variant an on-call SSH session from the bastion uses the reporting host's SSH rule, which is unused in the
older variant: the second of two weekly reports resolves that finding.

Determinism. Every random choice comes from ``random.Random`` seeded from the anchor (and days), gzip headers carry
mtime 0 and no file name, and JSON is written with a fixed key order: the same arguments give the same bytes.
Resource IDs (ENIs, groups, subnets) do not depend on the anchor, so they are stable across runs.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import io
import json
import random
import shutil
import string
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

from auditor.errors import UsageError

ACCOUNT_ID = "111122223333"
ORG_ID = "o-a1b2c3d4e5"
REGION = "us-east-1"
DR_REGION = "us-west-2"
TRAIL_NAME = "org-management-events"
TRAIL_BUCKET = "acme-audit-logs-111122223333"
MARKER = ".auditor-demo.json"
OWNED_DIRS = ("flowlogs", "cloudtrail", "inventory")

# The default format, in its documented order
# (https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html).
V2_FIELDS = ("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
             "packets", "bytes", "start", "end", "action", "log-status")
# A custom format holding every v2..v5 field in a deliberately different order (bytes before packets, direction
# early), so readers must map columns by the header line that S3 delivery writes, never by position.
CUSTOM_FIELDS = ("version", "account-id", "vpc-id", "subnet-id", "instance-id", "interface-id", "az-id", "region",
                 "flow-direction", "type", "srcaddr", "dstaddr", "srcport", "dstport", "pkt-srcaddr", "pkt-dstaddr",
                 "protocol", "bytes", "packets", "start", "end", "action", "tcp-flags", "traffic-path",
                 "pkt-src-aws-service", "pkt-dst-aws-service", "sublocation-type", "sublocation-id", "log-status")

SCANNER_IP = "198.51.100.23"
BRUTE_FORCE_IP = "203.0.113.45"
CORP_IP = "192.0.2.10"  # the office's egress address; the documentation ranges all count as public here
CORP_CIDR = "192.0.2.0/28"
# Outside clients of the exposed MySQL port; each week draws a few of them.
EXPOSED_SOURCE_POOL = ("192.0.2.140", "192.0.2.141", "198.51.100.77", "198.51.100.200", "203.0.113.99",
                       "203.0.113.180")
EXPOSED_PORT = 3306
S3_PREFIX_LIST = "pl-63a5400a"  # the AWS-managed S3 prefix list of us-east-1

FLOW_LAG_MAX = timedelta(minutes=10)  # a flow record is delivered at most this long after it starts
TRAIL_LAG_MAX = timedelta(minutes=12)
DIRTY_RATE = 0.001

_WEEK = 7 * 86400
_INTERVAL = 600  # the default maximum aggregation interval of a flow log
_FLOW_FILE_SPAN = 3 * 3600  # one flow-log file per flow log per three hours of delivery
_DIURNAL = (0.35, 0.3, 0.28, 0.27, 0.3, 0.38, 0.5, 0.62, 0.75, 0.85, 0.92, 0.97,
            1.0, 1.0, 0.98, 0.95, 0.92, 0.88, 0.8, 0.7, 0.6, 0.52, 0.45, 0.4)
# First octets of plainly public IPv4 space, for background clients: none is private, shared, loopback,
# link-local, multicast or a documentation range, so only the scenario actors use the documentation ranges.
_PUBLIC_FIRST_OCTETS = (24, 31, 37, 46, 62, 66, 68, 71, 73, 77, 78, 81, 84, 86, 88, 90, 93, 95, 98, 104, 109,
                        125, 151, 173, 174, 176, 178, 185, 188, 195, 212, 217)
_SCAN_PORTS = (21, 22, 23, 25, 53, 80, 81, 88, 110, 111, 119, 135, 139, 143, 161, 179, 389, 443, 445, 465, 500,
               514, 515, 587, 631, 636, 873, 902, 993, 995, 1080, 1194, 1433, 1434, 1521, 1723, 1883, 2049, 2082,
               2083, 2181, 2375, 2376, 3000, 3128, 3306, 3389, 3690, 4369, 4443, 4848, 5000, 5060, 5432, 5555,
               5601, 5672, 5900, 5901, 5984, 5985, 5986, 6000, 6379, 6443, 6667, 7001, 7077, 7474, 8000, 8008,
               8080, 8081, 8086, 8088, 8161, 8443, 8500, 8888, 9000, 9042, 9090, 9092, 9100, 9200, 9300, 9418,
               9443, 9999, 10000, 10250, 11211, 15672, 27017, 27018, 28017, 50000, 50070)
_NOISE_PORTS = ((23, 6), (25, 6), (445, 6), (1433, 6), (3389, 6), (5900, 6), (8080, 6), (8443, 6), (9200, 6),
                (2375, 6), (27017, 6), (5432, 6), (6379, 6), (135, 6), (161, 17), (123, 17), (53, 17))
_DIRT_KINDS = ("double_space", "repeated_header", "blank", "truncated", "bad_port")


# ----------------------------------------------------------------------------------------------- the manifest

@dataclass(frozen=True)
class WeekFacts:
    """What one 7-day block holds, counted as generated. Times are UTC."""

    since: datetime
    until: datetime
    scanner_target_eni: str
    scanner_ports: int  # distinct destination ports the scanner was REJECTed on
    scanner_records: int
    bruteforce_rejects: int  # REJECTed inbound records on port 22 from the brute-force source
    bruteforce_accepts: int  # ACCEPTed inbound records on port 22 from it
    exposed_sources: tuple[str, ...]  # public sources ACCEPTed on the exposed port
    exposed_sessions: int
    sg_opened_at: datetime  # 22 from 0.0.0.0/0 authorized on the opened-then-closed group
    sg_closed_at: datetime  # and revoked again
    on_call_ssh_at: datetime | None = None  # the on-call SSH session to the reporting host (newer variant only)


@dataclass(frozen=True)
class DemoManifest:
    """The paths written and the scenario facts, so tests and demos can assert on them."""

    root: Path
    anchor: date
    days: int
    since: datetime  # every record and event starts in [since, until)
    until: datetime
    account_id: str
    regions: tuple[str, ...]
    flow_log_ids: Mapping[str, str]  # "default" / "custom" / "dr" -> fl-... ID
    flowlog_files: tuple[Path, ...]
    cloudtrail_files: tuple[Path, ...]  # log files only, the org-trail duplicate included
    digest_files: tuple[Path, ...]
    inventory_files: tuple[Path, ...]
    scanner_ip: str
    bruteforce_ip: str
    bastion_eni: str
    exposed_eni: str
    exposed_port: int
    exposed_group: str  # the group with EXPOSED_PORT open to 0.0.0.0/0
    bastion_group: str  # the group with 22 open to 0.0.0.0/0
    sg_opened_then_closed: str
    unused_group: str  # attached to no interface, not a default group
    default_groups: tuple[str, ...]  # one per VPC, attached to nothing
    uncovered_eni: str  # in the inventory, in no flow log
    duplicate_event_id: str  # the CloudTrail event written twice (org trail and account trail)
    on_call_rule: str  # the rule the on-call SSH session uses: unused in the older variant's weeks only
    weeks: tuple[WeekFacts, ...]  # newest first
    counts: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The facts, without the file lists, as JSON-ready values (what the marker file holds)."""
        def iso(dt: datetime) -> str:
            return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "anchor": self.anchor.isoformat(), "days": self.days, "since": iso(self.since), "until": iso(self.until),
            "account_id": self.account_id, "regions": list(self.regions), "flow_log_ids": dict(self.flow_log_ids),
            "scanner_ip": self.scanner_ip, "bruteforce_ip": self.bruteforce_ip, "bastion_eni": self.bastion_eni,
            "exposed_eni": self.exposed_eni, "exposed_port": self.exposed_port, "exposed_group": self.exposed_group,
            "bastion_group": self.bastion_group, "sg_opened_then_closed": self.sg_opened_then_closed,
            "unused_group": self.unused_group, "default_groups": list(self.default_groups),
            "uncovered_eni": self.uncovered_eni, "duplicate_event_id": self.duplicate_event_id,
            "on_call_rule": self.on_call_rule,
            "weeks": [{"since": iso(w.since), "until": iso(w.until), "scanner_target_eni": w.scanner_target_eni,
                       "scanner_ports": w.scanner_ports, "scanner_records": w.scanner_records,
                       "bruteforce_rejects": w.bruteforce_rejects, "bruteforce_accepts": w.bruteforce_accepts,
                       "exposed_sources": list(w.exposed_sources), "exposed_sessions": w.exposed_sessions,
                       "sg_opened_at": iso(w.sg_opened_at), "sg_closed_at": iso(w.sg_closed_at),
                       "on_call_ssh_at": iso(w.on_call_ssh_at) if w.on_call_ssh_at else None}
                      for w in self.weeks],
            "counts": dict(self.counts),
        }


# ---------------------------------------------------------------------------------------------- the network

@functools.cache
def _rid(prefix: str, name: str, width: int = 17) -> str:
    """A stable AWS-style ID: the same name always gives the same ID, whatever the anchor."""
    digest = hashlib.sha256(f"{prefix}:{name}".encode()).hexdigest()
    return f"{prefix}-0{digest[:width - 1]}"


def _stable_token(name: str, alphabet: str, n: int) -> str:
    digest = hashlib.sha256(name.encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:n])


@dataclass(frozen=True)
class _Subnet:
    key: str
    cidr: str
    az: str
    az_id: str
    vpc: str
    region: str

    @property
    def subnet_id(self) -> str:
        return _rid("subnet", self.key)

    @property
    def vpc_id(self) -> str:
        return _rid("vpc", self.vpc)


@dataclass(frozen=True)
class _Eni:
    key: str
    subnet: _Subnet
    ip: str
    groups: tuple[str, ...]
    flow_log: str | None  # the flow log that records this interface; None: no flow log covers it
    secondary_ips: tuple[str, ...] = ()
    public_ip: str | None = None
    ipv6: str | None = None
    instance: bool = True
    interface_type: str = "interface"
    requester_id: str | None = None  # who manages it, for interfaces AWS services create
    requester_managed: bool = False
    description: str = ""
    nitro: bool = True  # Nitro instances report traffic-path 8 (internet gateway) rather than 2

    @property
    def eni_id(self) -> str:
        return _rid("eni", self.key)

    @property
    def instance_id(self) -> str | None:
        return _rid("i", self.key) if self.instance else None


@dataclass(frozen=True)
class _Rule:
    key: str
    egress: bool
    proto: str  # "tcp" | "udp" | "icmp" | "-1"
    from_port: int = -1
    to_port: int = -1
    cidr4: str | None = None
    cidr6: str | None = None
    prefix_list: str | None = None
    group: str | None = None  # key of the referenced group
    description: str | None = None

    @property
    def rule_id(self) -> str:
        return _rid("sgr", self.key)


@dataclass(frozen=True)
class _Group:
    key: str
    name: str
    description: str
    vpc: str
    region: str
    rules: tuple[_Rule, ...]

    @property
    def group_id(self) -> str:
        return _rid("sg", self.key)


_SUBNETS = {s.key: s for s in (
    _Subnet("public-a", "10.0.0.0/24", "us-east-1a", "use1-az4", "main", REGION),
    _Subnet("public-b", "10.0.1.0/24", "us-east-1b", "use1-az6", "main", REGION),
    _Subnet("private-a", "10.0.10.0/24", "us-east-1a", "use1-az4", "main", REGION),
    _Subnet("private-b", "10.0.11.0/24", "us-east-1b", "use1-az6", "main", REGION),
    _Subnet("sandbox-c", "10.0.40.0/24", "us-east-1c", "use1-az1", "main", REGION),
    _Subnet("dr-public-a", "10.1.1.0/24", "us-west-2a", "usw2-az2", "dr", DR_REGION),
)}

_ALB_DESC = "ELB app/www-prod/50dc6c495c0c9188"

# Two flow logs split the main VPC's interfaces by availability zone, so every scenario shows up in both formats
# (in AWS each flow log watches one VPC, subnet or interface; the split here is the demo's simplification).
# The sandbox subnet has no flow log at all: its interface is the coverage gap.
_ENIS = {e.key: e for e in (
    _Eni("alb-a", _SUBNETS["public-a"], "10.0.0.45", ("web-alb",), "default", public_ip="3.214.18.45",
         ipv6="2600:1f18:4a3:6d00::45", instance=False, requester_id="amazon-elb", requester_managed=True,
         description=_ALB_DESC,
         nitro=False),
    _Eni("bastion", _SUBNETS["public-a"], "10.0.0.10", ("bastion",), "default", public_ip="54.210.33.17"),
    _Eni("nat-a", _SUBNETS["public-a"], "10.0.0.200", (), "default", public_ip="34.199.52.8", instance=False,
         interface_type="nat_gateway", requester_managed=True,
         description=f"Interface for NAT Gateway {_rid('nat', 'nat-a')}", nitro=False),
    _Eni("app-1", _SUBNETS["private-a"], "10.0.10.21", ("app-servers",), "default", secondary_ips=("10.0.10.22",)),
    _Eni("pg", _SUBNETS["private-a"], "10.0.10.50", ("db-postgres",), "default"),
    _Eni("alb-b", _SUBNETS["public-b"], "10.0.1.45", ("web-alb",), "custom", public_ip="3.219.70.12",
         ipv6="2600:1f18:4a3:6d01::45", instance=False, requester_id="amazon-elb", requester_managed=True,
         description=_ALB_DESC,
         nitro=False),
    _Eni("mysql", _SUBNETS["public-b"], "10.0.1.80", ("db-mysql-legacy",), "custom", public_ip="44.203.118.9"),
    _Eni("app-2", _SUBNETS["private-b"], "10.0.11.21", ("app-servers",), "custom"),
    _Eni("redis", _SUBNETS["private-b"], "10.0.11.60", ("cache-redis",), "custom"),
    _Eni("reporting", _SUBNETS["private-b"], "10.0.11.90", ("reporting",), "custom"),
    _Eni("sandbox", _SUBNETS["sandbox-c"], "10.0.40.15", ("sandbox",), None),
    _Eni("dr-app", _SUBNETS["dr-public-a"], "10.1.1.20", ("dr-app",), "dr", public_ip="35.88.120.31"),
)}


def _r(owner: str, n: int, egress: bool, proto: str, from_port: int = -1, to_port: int | None = None,
       **kw: Any) -> _Rule:
    """Rule ``n`` of group ``owner``; its key (and so its sgr- ID) is ``owner/n``."""
    return _Rule(f"{owner}/{n}", egress, proto, from_port, from_port if to_port is None else to_port, **kw)


_ALL_OUT = dict(cidr4="0.0.0.0/0")
_CORP_PREFIX_LIST = _rid("pl", "corp-vpn")

_GROUPS = {g.key: g for g in (
    _Group("web-alb", "web-alb", "Public load balancer for www", "main", REGION, (
        _r("web-alb", 1, False, "tcp", 80, cidr4="0.0.0.0/0"),
        _r("web-alb", 2, False, "tcp", 443, cidr4="0.0.0.0/0"),
        _r("web-alb", 3, False, "tcp", 443, cidr6="::/0"),
        _r("web-alb", 4, True, "tcp", 8080, group="app-servers", description="to targets"),
    )),
    _Group("app-servers", "app-servers", "Application servers behind the ALB", "main", REGION, (
        _r("app-servers", 1, False, "tcp", 8080, group="web-alb", description="from the ALB"),
        _r("app-servers", 2, False, "tcp", 22, group="bastion", description="SSH from the bastion"),
        _r("app-servers", 3, False, "icmp", 8, -1, cidr4="10.0.0.0/16", description="ping from the VPC"),
        _r("app-servers", 4, True, "tcp", 443, cidr4="0.0.0.0/0"),
        _r("app-servers", 5, True, "tcp", 443, prefix_list=S3_PREFIX_LIST, description="S3 gateway endpoint"),
        _r("app-servers", 6, True, "tcp", 5432, group="db-postgres"),
        _r("app-servers", 7, True, "tcp", 6379, group="cache-redis"),
        _r("app-servers", 8, True, "tcp", 3306, group="db-mysql-legacy"),
        _r("app-servers", 9, True, "tcp", 25, cidr4="0.0.0.0/0"),
        _r("app-servers", 10, True, "tcp", 4444, cidr4="0.0.0.0/0"),
    )),
    _Group("bastion", "bastion", "SSH bastion", "main", REGION, (
        _r("bastion", 1, False, "tcp", 22, cidr4="0.0.0.0/0", description="SSH"),
        _r("bastion", 2, False, "tcp", 3389, cidr4="0.0.0.0/0", description="temp vendor RDP"),
        _r("bastion", 3, True, "-1", **_ALL_OUT),
    )),
    _Group("db-postgres", "db-postgres", "PostgreSQL primary", "main", REGION, (
        _r("db-postgres", 1, False, "tcp", 5432, group="app-servers"),
        _r("db-postgres", 2, False, "tcp", 5432, group="reporting"),
        _r("db-postgres", 3, False, "tcp", 22, group="bastion"),
        _r("db-postgres", 4, False, "tcp", 5432, prefix_list=_CORP_PREFIX_LIST, description="corp VPN"),
        _r("db-postgres", 5, True, "-1", **_ALL_OUT),
    )),
    _Group("db-mysql-legacy", "db-mysql-legacy", "Legacy MySQL (to be migrated)", "main", REGION, (
        _r("db-mysql-legacy", 1, False, "tcp", EXPOSED_PORT, cidr4="0.0.0.0/0", description="partner access"),
        _r("db-mysql-legacy", 2, False, "tcp", EXPOSED_PORT, group="app-servers"),
        _r("db-mysql-legacy", 3, True, "-1", **_ALL_OUT),
    )),
    _Group("cache-redis", "cache-redis", "Redis cache", "main", REGION, (
        _r("cache-redis", 1, False, "tcp", 6379, group="app-servers"),
        _r("cache-redis", 2, False, "tcp", 8080, cidr4="10.0.0.0/8", description="old admin UI"),
        _r("cache-redis", 3, True, "-1", **_ALL_OUT),
    )),
    _Group("reporting", "reporting", "Nightly reporting job", "main", REGION, (
        _r("reporting", 1, False, "tcp", 22, group="bastion"),
        _r("reporting", 2, True, "tcp", 5432, group="db-postgres"),
    )),
    _Group("sandbox", "sandbox", "Sandbox instances", "main", REGION, (
        _r("sandbox", 1, False, "tcp", 22, cidr4="10.0.0.0/16"),
        _r("sandbox", 2, True, "-1", **_ALL_OUT),
    )),
    _Group("ftp-partner-legacy", "ftp-partner-legacy", "Partner FTP (decommissioned)", "main", REGION, (
        _r("ftp-partner-legacy", 1, False, "tcp", 20, 21, cidr4="0.0.0.0/0"),
        _r("ftp-partner-legacy", 2, True, "-1", **_ALL_OUT),
    )),
    _Group("default-main", "default", "default VPC security group", "main", REGION, (
        _r("default-main", 1, False, "-1", group="default-main"),
        _r("default-main", 2, True, "-1", **_ALL_OUT),
    )),
    _Group("dr-app", "dr-app", "Disaster-recovery app server", "dr", DR_REGION, (
        _r("dr-app", 1, False, "tcp", 22, cidr4=CORP_CIDR, description="office"),
        _r("dr-app", 2, True, "-1", **_ALL_OUT),
    )),
    _Group("default-dr", "default", "default VPC security group", "dr", DR_REGION, (
        _r("default-dr", 1, False, "-1", group="default-dr"),
        _r("default-dr", 2, True, "-1", **_ALL_OUT),
    )),
)}


@dataclass(frozen=True)
class _FlowLog:
    key: str
    region: str
    fields: tuple[str, ...]

    @property
    def flow_log_id(self) -> str:
        return _rid("fl", self.key)


_FLOW_LOGS = {f.key: f for f in (
    _FlowLog("default", REGION, V2_FIELDS),
    _FlowLog("custom", REGION, CUSTOM_FIELDS),
    _FlowLog("dr", DR_REGION, V2_FIELDS),
)}


def _in_vpc(ip: str) -> bool:
    return ip.startswith("10.")


# --------------------------------------------------------------------------------------------- flow records

class _Rec(NamedTuple):
    start: int
    end: int
    delivery: int
    eni: _Eni
    src: str | None
    dst: str | None
    sport: int | None
    dport: int | None
    proto: int | None
    packets: int | None
    nbytes: int | None
    action: str | None
    flags: int | None
    direction: str | None
    status: str  # OK | NODATA | SKIPDATA
    pkt_src: str | None
    pkt_dst: str | None
    src_svc: str | None
    dst_svc: str | None
    path: int | None
    tag: str  # bg | noise | scan | brute | exposed | nodata | skipdata


class _Flows:
    """Builds flow records. A connection is logged on every covered interface at either end, both directions."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.records: list[_Rec] = []

    def add(self, eni: _Eni, start: int, dur: int, src: str, dst: str, sport: int, dport: int, proto: int,
            packets: int, nbytes: int, action: str, flags: int, direction: str, tag: str, *,
            pkt_src: str | None = None, pkt_dst: str | None = None, src_svc: str | None = None,
            dst_svc: str | None = None, path: int | None = None) -> None:
        if eni.flow_log is None:
            return
        end = start + dur
        delivery = max(end + 15, start + self.rng.randint(60, 600))
        if direction == "egress" and path is None:
            # traffic-path is logged for egress only
            # (https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html).
            path = 1 if _in_vpc(pkt_dst or dst) else (8 if eni.nitro else 2)
        self.records.append(_Rec(start, end, delivery, eni, src, dst, sport, dport, proto, packets, nbytes, action,
                                 flags, direction, "OK", pkt_src or src, pkt_dst or dst, src_svc, dst_svc, path, tag))

    def status(self, eni: _Eni, start: int, status: str) -> None:
        """A NODATA or SKIPDATA record: no addresses, ports or action."""
        end = start + self.rng.randint(500, 540)
        delivery = max(end + 15, start + self.rng.randint(60, 600))
        self.records.append(_Rec(start, end, delivery, eni, None, None, None, None, None, None, None, None, None,
                                 None, status, None, None, None, None, None, status.lower()))

    def session(self, t: int, client: _Eni | str, server: _Eni | str, cport: int, sport: int,
                c2s: tuple[int, int], s2c: tuple[int, int], dur: int, *, proto: int = 6, action: str = "ACCEPT",
                tag: str = "bg", flags: tuple[int, int] = (3, 19), server_ip: str | None = None,
                svc: str | None = None) -> None:
        """One connection. ``client``/``server`` are interfaces or outside addresses."""
        cip = client.ip if isinstance(client, _Eni) else client
        sip = server_ip or (server.ip if isinstance(server, _Eni) else server)
        path = 7 if svc else None
        if isinstance(client, _Eni):
            self.add(client, t, dur, cip, sip, cport, sport, proto, *c2s, "ACCEPT", flags[0], "egress", tag,
                     dst_svc=svc, path=path)
            if action == "ACCEPT":
                self.add(client, t, dur, sip, cip, sport, cport, proto, *s2c, "ACCEPT", flags[1], "ingress", tag,
                         src_svc=svc)
        if isinstance(server, _Eni):
            self.add(server, t, dur, cip, sip, cport, sport, proto, *c2s, action, flags[0], "ingress", tag)
            if action == "ACCEPT":
                self.add(server, t, dur, sip, cip, sport, cport, proto, *s2c, "ACCEPT", flags[1], "egress", tag)

    def via_nat(self, t: int, app: _Eni, nat: _Eni, host: str, cport: int, c2s: tuple[int, int],
                s2c: tuple[int, int], dur: int) -> None:
        """An app server reaching the internet through the NAT gateway: two records on the app, four on the NAT.

        On the gateway's interface the inside leg is addressed to the gateway and pkt-dstaddr names the host
        (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-records-examples.html).
        """
        self.add(app, t, dur, app.ip, host, cport, 443, 6, *c2s, "ACCEPT", 3, "egress", "bg")
        self.add(app, t, dur, host, app.ip, 443, cport, 6, *s2c, "ACCEPT", 19, "ingress", "bg")
        nport = self.rng.randint(1024, 65535)
        self.add(nat, t, dur, app.ip, nat.ip, cport, 443, 6, *c2s, "ACCEPT", 3, "ingress", "bg", pkt_dst=host)
        self.add(nat, t, dur, nat.ip, host, nport, 443, 6, *c2s, "ACCEPT", 3, "egress", "bg")
        self.add(nat, t, dur, host, nat.ip, 443, nport, 6, *s2c, "ACCEPT", 19, "ingress", "bg")
        self.add(nat, t, dur, nat.ip, app.ip, 443, cport, 6, *s2c, "ACCEPT", 19, "egress", "bg", pkt_src=host)


def _eph(rng: random.Random) -> int:
    return rng.randint(32768, 60999)  # the Linux ephemeral range, clear of every well-known service port


def _public_ipv4(rng: random.Random) -> str:
    return (f"{rng.choice(_PUBLIC_FIRST_OCTETS)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}."
            f"{rng.randint(1, 254)}")


def _public_ipv6(rng: random.Random) -> str:
    return (f"2a0{rng.randint(1, 9)}:{rng.randrange(0x1000, 0x10000):x}:{rng.randrange(0x10000):x}::"
            f"{rng.randrange(1, 0x10000):x}")


def _background(fl: _Flows, since: int, until: int) -> None:
    """Web, east-west, egress, admin and idle traffic for every 10-minute interval."""
    rng = fl.rng
    e = _ENIS
    clients = [_public_ipv4(rng) for _ in range(2500)] + [_public_ipv6(rng) for _ in range(60)]
    saas = [_public_ipv4(rng) for _ in range(40)]
    s3 = [f"52.{rng.randint(216, 217)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(12)]
    pools: dict[tuple[str, str], int] = {}

    def pooled(t: int, client: _Eni, server: _Eni, port: int, scale: int) -> None:
        k = (client.key, server.key)
        if k not in pools or rng.random() < 0.1:
            pools[k] = _eph(rng)
        start = t + rng.randint(0, 30)
        p1, p2 = rng.randint(scale // 4, scale), rng.randint(scale // 4, scale)
        fl.session(start, client, server, pools[k], port, (p1, p1 * rng.randint(80, 300)),
                   (p2, p2 * rng.randint(150, 1200)), rng.randint(480, 540), flags=(0, 0))

    for t0 in range(since, until, _INTERVAL):
        hour = (t0 // 3600) % 24
        load = _DIURNAL[hour]
        for _ in range(int(3.5 * load + rng.random())):
            client = rng.choice(clients)
            alb = e["alb-a"] if rng.random() < 0.5 else e["alb-b"]
            v6 = ":" in client
            port = 443 if v6 or rng.random() < 0.9 else 80  # the ALB's group opens only 443 to ::/0
            n1 = rng.randint(6, 40) if port == 443 else rng.randint(3, 6)
            n2 = rng.randint(8, 90) if port == 443 else rng.randint(3, 5)
            fl.session(t0 + rng.randrange(_INTERVAL - 60), client, alb, _eph(rng), port,
                       (n1, n1 * rng.randint(60, 400)), (n2, n2 * rng.randint(400, 1400)), rng.randint(1, 120),
                       server_ip=alb.ipv6 if v6 else None)
        for alb in (e["alb-a"], e["alb-b"]):
            for app in (e["app-1"], e["app-2"]):
                if rng.random() < 0.2 + 0.6 * load:
                    pooled(t0, alb, app, 8080, 400)
        for app in (e["app-1"], e["app-2"]):
            pooled(t0, app, e["pg"], 5432, 300)
            pooled(t0, app, e["redis"], 6379, 500)
            if rng.random() < 0.3:
                pooled(t0, app, e["mysql"], EXPOSED_PORT, 60)
            if rng.random() < 0.5 * load + 0.1:
                n1, n2 = rng.randint(5, 30), rng.randint(5, 60)
                fl.via_nat(t0 + rng.randrange(_INTERVAL - 60), app, e["nat-a"], rng.choice(saas), _eph(rng),
                           (n1, n1 * rng.randint(80, 500)), (n2, n2 * rng.randint(300, 1400)), rng.randint(1, 60))
            if rng.random() < 0.2:
                n1, n2 = rng.randint(5, 40), rng.randint(10, 300)
                fl.session(t0 + rng.randrange(_INTERVAL - 60), app, rng.choice(s3), _eph(rng), 443,
                           (n1, n1 * rng.randint(100, 1400)), (n2, n2 * rng.randint(500, 1400)), rng.randint(1, 90),
                           svc="S3")
        if t0 % 3600 == 0:  # hourly monitoring ping from the bastion
            for app in (e["app-1"], e["app-2"]):
                fl.session(t0 + rng.randint(0, 20), e["bastion"], app, 0, 0, (3, 252), (3, 252),
                           rng.randint(2, 4), proto=1, flags=(0, 0))
        if 8 <= hour < 18 and rng.random() < 0.12:  # an admin's SSH session through the bastion
            t = t0 + rng.randrange(_INTERVAL - 60)
            n = rng.randint(40, 400)
            fl.session(t, CORP_IP, e["bastion"], rng.randint(49152, 65535), 22, (n, n * 90), (n, n * 160),
                       rng.randint(60, 520))
            target = rng.choice((e["app-1"], e["app-2"], e["pg"]))
            fl.session(t + 20, e["bastion"], target, _eph(rng), 22, (n, n * 80), (n, n * 150),
                       rng.randint(30, 480))
        if rng.random() < 0.05:  # package updates from the bastion, straight through the internet gateway
            n = rng.randint(20, 200)
            fl.session(t0 + rng.randrange(_INTERVAL - 60), e["bastion"], rng.choice(saas), _eph(rng), 443,
                       (n, n * 70), (n, n * 1300), rng.randint(2, 60))
        if 2 <= hour < 3:  # the nightly reporting job; the rest of the time its interface is idle
            pooled(t0, e["reporting"], e["pg"], 5432, 800)
        else:
            fl.status(e["reporting"], t0 + rng.randint(0, 5), "NODATA")
        if rng.random() < 0.25:  # the DR region: a little egress and the odd admin login
            n = rng.randint(5, 50)
            fl.session(t0 + rng.randrange(_INTERVAL - 60), e["dr-app"], rng.choice(saas), _eph(rng), 443,
                       (n, n * 100), (n, n * 900), rng.randint(1, 60))
        if hour == 10 and t0 % 3600 == 0:
            n = rng.randint(40, 200)
            fl.session(t0 + rng.randint(0, 300), CORP_IP, e["dr-app"], rng.randint(49152, 65535), 22, (n, n * 90),
                       (n, n * 150), rng.randint(60, 280))
        # Internet background noise: single probes far below any scan threshold, never on a port that is open.
        if rng.random() < 0.2:
            target = rng.choice((e["alb-a"], e["alb-b"], e["bastion"], e["mysql"]))
            closed = [pp for pp in _NOISE_PORTS if pp[0] not in _open_ports(target)]
            port, proto = rng.choice(closed)
            fl.session(t0 + rng.randrange(_INTERVAL - 10), _public_ipv4(rng), target, rng.randint(1024, 65535),
                       port, (1, 44 if proto == 6 else 76), (0, 0), rng.randint(0, 2), proto=proto,
                       action="REJECT", tag="noise", flags=(2 if proto == 6 else 0, 0))


def _open_ports(eni: _Eni) -> set[int]:
    """Ports any source may reach on an interface (noise must not make an unused world-open rule look used)."""
    ports: set[int] = set()
    for g in eni.groups:
        for r in _GROUPS[g].rules:
            if not r.egress and r.proto in ("tcp", "udp") and (r.cidr4 == "0.0.0.0/0" or r.cidr6 == "::/0"):
                ports.update(range(r.from_port, r.to_port + 1))
    return ports


# ----------------------------------------------------------------------------------------------- scenarios

@dataclass
class _Block:
    index: int  # 0 = the newest week
    since: int
    until: int

    @property
    def variant(self) -> int:
        return self.index % 2


def _blocks(since: int, until: int) -> list[_Block]:
    out: list[_Block] = []
    end, k = until, 0
    while end > since:
        start = max(since, end - _WEEK)
        out.append(_Block(k, start, end))
        end, k = start, k + 1
    return out


def _pick(rng: random.Random, lo: int, hi: int) -> int:
    """A random second in [lo, hi), or lo when the range is empty."""
    return rng.randrange(lo, hi) if hi > lo else lo


@dataclass
class _WeekPlan:
    """When this week's CloudTrail story happens; the flow scenarios are placed around it."""

    modify_mysql_at: int | None
    nacl_added_at: int
    sg_opened_at: int
    sg_closed_at: int


def _scenarios(fl: _Flows, block: _Block, plan: _WeekPlan) -> WeekFacts:
    rng = fl.rng
    e = _ENIS
    lo, hi = block.since, block.until

    # Port scan: one documentation-range source sweeps a load balancer node three or four times, each sweep from
    # one source port (as nmap does), every probe a lone SYN that the security group rejects.
    target = e["alb-b"] if block.variant == 0 else e["alb-a"]
    ports = rng.sample([p for p in _SCAN_PORTS if p not in _open_ports(target)], rng.randint(70, 90))
    sweeps = rng.randint(3, 4)
    scan_records = 0
    for _ in range(sweeps):
        t = _pick(rng, lo + 3600, hi - 2 * 3600)
        sport = rng.randint(40000, 65000)
        for p in rng.sample(ports, len(ports)):
            t += rng.randint(0, 2)
            n = rng.randint(1, 2)
            fl.add(target, t, rng.randint(0, 2), SCANNER_IP, target.ip, sport, p, 6, n, 44 * n, "REJECT", 2,
                   "ingress", "scan")
            scan_records += 1

    # SSH brute force on the bastion: a few attempts get through (22 is open to the world), then the security
    # automation adds a network ACL deny for the source and the rest are rejected at the subnet.
    bastion = e["bastion"]
    n_acc, n_rej = rng.randint(3, 5), rng.randint(400, 650)
    t = plan.nacl_added_at - n_acc * 40 - 30
    for _ in range(n_acc):
        n = rng.randint(18, 30)
        fl.session(t, BRUTE_FORCE_IP, bastion, rng.randint(32768, 60999), 22, (n, n * 95), (n + 2, (n + 2) * 120),
                   rng.randint(4, 12), tag="brute")
        t += rng.randint(30, 40)
    t = plan.nacl_added_at + 5
    for _ in range(n_rej):
        n = rng.randint(1, 3)
        fl.add(bastion, t, rng.randint(0, 6 if n > 1 else 0), BRUTE_FORCE_IP, bastion.ip, rng.randint(32768, 60999),
               22, 6, n, 60 * n, "REJECT", 2, "ingress", "brute")
        t += rng.randint(3, 15)

    # Public access to the legacy MySQL port: a few outside addresses connect and are accepted, after the rule was
    # opened to 0.0.0.0/0 (in the older week, by the ModifySecurityGroupRules event).
    mysql = e["mysql"]
    sources = tuple(sorted(rng.sample(EXPOSED_SOURCE_POOL, rng.randint(3, 5))))
    first = (plan.modify_mysql_at + 3600) if plan.modify_mysql_at is not None else lo
    sessions = 0
    for src in sources:
        for _ in range(rng.randint(4, 12)):
            n1, n2 = rng.randint(8, 40), rng.randint(10, 120)
            fl.session(_pick(rng, first, hi - 900), src, mysql, _eph(rng), EXPOSED_PORT,
                       (n1, n1 * rng.randint(70, 300)), (n2, n2 * rng.randint(200, 1400)), rng.randint(1, 300),
                       tag="exposed")
            sessions += 1

    # SKIPDATA: the capacity hiccups AWS reports when records could not be captured.
    for _ in range(2):
        fl.status(e["app-2"], _pick(rng, lo, hi - _INTERVAL), "SKIPDATA")

    return WeekFacts(since=_dt(lo), until=_dt(hi), scanner_target_eni=target.eni_id, scanner_ports=len(ports),
                     scanner_records=scan_records, bruteforce_rejects=n_rej, bruteforce_accepts=n_acc,
                     exposed_sources=sources, exposed_sessions=sessions, sg_opened_at=_dt(plan.sg_opened_at),
                     sg_closed_at=_dt(plan.sg_closed_at))


def _on_call_fixes(fl: _Flows, blocks: Sequence[_Block], rng: random.Random) -> list[int | None]:
    """In the newer variant's weeks, an on-call engineer fixes the nightly reporting job over SSH from the bastion.

    That session is the only traffic the reporting group's SSH rule ever matches, so the rule is unused in the
    older variant's weeks and used in the newer one's: a state finding that one weekly report has and the next
    resolves. It draws from its own ``rng`` so that adding it moved no other scenario.
    """
    saved, fl.rng = fl.rng, rng
    try:
        out: list[int | None] = []
        for block in blocks:
            if block.variant != 0 or block.until - block.since < 2 * 86400:
                out.append(None)
                continue
            day = block.since + rng.randrange((block.until - block.since) // 86400 - 1) * 86400
            t = day + 3 * 3600 + rng.randint(300, 2400)  # just after the nightly job's hour
            n = rng.randint(60, 300)
            fl.session(t, _ENIS["bastion"], _ENIS["reporting"], _eph(rng), 22, (n, n * 80), (n, n * 150),
                       rng.randint(300, 1500))
            out.append(t)
        return out
    finally:
        fl.rng = saved


def _plan(rng: random.Random, block: _Block) -> _WeekPlan:
    lo, hi = block.since, block.until
    modify = _pick(rng, lo + 1800, min(hi, lo + 6 * 3600)) if block.variant == 1 else None
    nacl = _pick(rng, max(lo + 4 * 3600, (modify or lo) + 3600), hi - 4 * 3600)
    opened = _pick(rng, lo + 3600, hi - 7 * 3600)
    closed = opened + rng.randint(90 * 60, 5 * 3600)
    return _WeekPlan(modify, nacl, opened, closed)


def _dt(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def _stamp(epoch: int) -> str:
    return _dt(epoch).strftime("%Y%m%dT%H%MZ")


def _iso(epoch: int) -> str:
    return _dt(epoch).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------------ flow-log files

def _v2_line(r: _Rec) -> str:
    if r.status != "OK":
        return f"2 {ACCOUNT_ID} {r.eni.eni_id} - - - - - - - {r.start} {r.end} - {r.status}"
    return (f"2 {ACCOUNT_ID} {r.eni.eni_id} {r.src} {r.dst} {r.sport} {r.dport} {r.proto} {r.packets} {r.nbytes} "
            f"{r.start} {r.end} {r.action} OK")


# The values _custom_line computes, in this order; the template puts them in CUSTOM_FIELDS order.
_CUSTOM_VALUES = ("version", "account-id", "vpc-id", "subnet-id", "instance-id", "interface-id", "az-id", "region",
                  "start", "end", "log-status", "flow-direction", "type", "srcaddr", "dstaddr", "srcport", "dstport",
                  "pkt-srcaddr", "pkt-dstaddr", "protocol", "bytes", "packets", "action", "tcp-flags", "traffic-path",
                  "pkt-src-aws-service", "pkt-dst-aws-service", "sublocation-type", "sublocation-id")
_CUSTOM_TEMPLATE = " ".join(f"{{{_CUSTOM_VALUES.index(f)}}}" for f in CUSTOM_FIELDS)


@functools.cache
def _eni_columns(eni: _Eni) -> tuple[str, ...]:
    sub = eni.subnet
    return ("5", ACCOUNT_ID, sub.vpc_id, sub.subnet_id, eni.instance_id or "-", eni.eni_id, sub.az_id, sub.region)


def _custom_line(r: _Rec) -> str:
    if r.status != "OK":
        return _CUSTOM_TEMPLATE.format(*_eni_columns(r.eni), r.start, r.end, r.status, *("-",) * 18)
    return _CUSTOM_TEMPLATE.format(
        *_eni_columns(r.eni), r.start, r.end, r.status, r.direction, "IPv6" if ":" in r.src else "IPv4", r.src,
        r.dst, r.sport, r.dport, r.pkt_src, r.pkt_dst, r.proto, r.nbytes, r.packets, r.action, r.flags,
        "-" if r.path is None else r.path, r.src_svc or "-", r.dst_svc or "-", "-", "-")


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    # mtime=0 and an empty name keep the gzip header free of anything that changes between runs.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _write_flow_files(root: Path, records: list[_Rec], rng: random.Random,
                      counts: dict[str, int]) -> list[Path]:
    files: dict[tuple[str, int], list[_Rec]] = defaultdict(list)
    for r in records:
        assert r.eni.flow_log is not None
        files[(r.eni.flow_log, r.delivery // _FLOW_FILE_SPAN)].append(r)
    ordered = sorted(files.items(), key=lambda kv: (kv[0][0], kv[0][1]))
    for _, recs in ordered:
        recs.sort(key=lambda r: r.start)

    # ~0.1% dirty lines, always made from background records of the main region so no scenario fact depends on
    # how forgiving a reader is. Truncated and bad-port lines are extra, corrupted copies; the double-spaced
    # record is the real one (a whitespace-splitting reader still reads it).
    candidates = [(fi, li) for fi, (key, recs) in enumerate(ordered) if _FLOW_LOGS[key[0]].region == REGION
                  for li, r in enumerate(recs) if r.tag == "bg"]
    n_dirty = max(len(_DIRT_KINDS), round(len(records) * DIRTY_RATE))
    kinds = [_DIRT_KINDS[i % len(_DIRT_KINDS)] for i in range(n_dirty)]
    dirt = dict(zip(sorted(rng.sample(candidates, n_dirty)), kinds))

    written: list[Path] = []
    for fi, ((fl_key, bucket), recs) in enumerate(ordered):
        flow_log = _FLOW_LOGS[fl_key]
        header = " ".join(flow_log.fields)
        render = _v2_line if flow_log.fields == V2_FIELDS else _custom_line
        lines = [header]
        counts["flow_headers"] += 1
        for li, r in enumerate(recs):
            line = render(r)
            kind = dirt.get((fi, li))
            counts["flow_nodata" if r.status == "NODATA" else "flow_skipdata" if r.status == "SKIPDATA"
                   else "flow_records"] += 1
            if kind == "double_space":
                cut = line.index(" ", len(line) // 2)
                line = line[:cut] + " " + line[cut:]
            lines.append(line)
            if kind == "repeated_header":
                lines.append(header)
                counts["flow_headers"] += 1
            elif kind == "blank":
                lines.append("")
            elif kind == "truncated":
                # Cut inside the fourth-last field: at least three fields are missing.
                parts = line.split(" ")
                lines.append(" ".join(parts[:-4]) + " " + parts[-4][: max(1, len(parts[-4]) // 2)])
            elif kind == "bad_port":
                parts = line.split(" ")
                parts[flow_log.fields.index("dstport")] = "http"
                lines.append(" ".join(parts))
            if kind:
                counts[f"dirty_{kind}"] += 1
        last_delivery = max(r.delivery for r in recs)
        stamp = _stamp(last_delivery - last_delivery % 300)
        day = _dt(bucket * _FLOW_FILE_SPAN)
        tag = hashlib.sha256(f"{flow_log.flow_log_id}/{stamp}/{fi}".encode()).hexdigest()[:8]
        name = f"{ACCOUNT_ID}_vpcflowlogs_{flow_log.region}_{flow_log.flow_log_id}_{stamp}_{tag}.log.gz"
        path = (root / "flowlogs" / "AWSLogs" / ACCOUNT_ID / "vpcflowlogs" / flow_log.region
                / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}" / name)
        written.append(_write(path, _gzip(("\n".join(lines) + "\n").encode())))
    counts["flow_malformed"] = counts["dirty_truncated"] + counts["dirty_bad_port"]
    counts["flow_blank"] = counts["dirty_blank"]
    counts["flow_files"] = len(written)
    return written


# ------------------------------------------------------------------------------------------------ CloudTrail

@dataclass(frozen=True)
class _Actor:
    kind: str  # "role" | "user" | "service"
    name: str  # role or user name
    session: str
    user_agent: str
    source_ip: str
    mfa: bool = False
    console: bool = False
    invoked_by: str | None = None


_ALNUM_UPPER = string.ascii_uppercase + string.digits
_CLI_UA = ("aws-cli/2.17.60 md/awscrt#0.21.2 ua/2.0 os/linux#6.8.0-1016-aws md/arch#x86_64 lang/python#3.12.6 "
           "md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#ec2.{cmd}")
_ACTORS = {
    "alice": _Actor("role", "AdminRole", "alice@example.com", "console.ec2.amazonaws.com", CORP_IP, mfa=True,
                    console=True),
    "bob": _Actor("role", "AdminRole", "bob@example.com", "console.ec2.amazonaws.com", "192.0.2.11", mfa=True,
                  console=True),
    "dave": _Actor("role", "DeveloperRole", "dave@example.com", _CLI_UA, "192.0.2.12"),
    "legacy": _Actor("user", "legacy-ops", "", "Boto/2.49.0 Python/2.7.18 Linux/4.14.256-197.484.amzn2.x86_64",
                     "54.210.33.17"),
    "ci": _Actor("role", "ci-deployer", "GitHubActions",
                 "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.70.0 "
                 "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.32.2 ua/2.1 "
                 "os/linux lang/go#1.23.1 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.181.0", "20.51.200.14"),
    "guard": _Actor("role", "security-automation", "ssh-guard",
                    "Boto3/1.34.145 md/Botocore#1.34.145 ua/2.0 os/linux#5.10.224-233.876.amzn2.x86_64 "
                    "md/arch#x86_64 lang/python#3.12.5 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 "
                    "cfg/retry-mode#legacy Botocore/1.34.145", "3.91.171.20"),
    "monitor": _Actor("role", "ReadOnlyMonitoring", "inventory-collector",
                      "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.173.0",
                      "54.210.33.17"),
    "config": _Actor("service", "AWSServiceRoleForConfig", "AWSConfig-Describe", "config.amazonaws.com",
                     "config.amazonaws.com", invoked_by="config.amazonaws.com"),
}


class _Trail:
    """Builds CloudTrail records.

    Fields: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.events: list[tuple[int, str, dict[str, Any]]] = []  # (epoch, region, record)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def identity(self, actor: _Actor, t: int) -> dict[str, Any]:
        day = _dt(t).strftime("%Y%m%d")
        if actor.kind == "user":
            return {"type": "IAMUser", "principalId": "AIDA" + _stable_token(actor.name, _ALNUM_UPPER, 17),
                    "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/{actor.name}", "accountId": ACCOUNT_ID,
                    "accessKeyId": "AKIA" + _stable_token("key:" + actor.name, _ALNUM_UPPER, 16),
                    "userName": actor.name}
        role_path = "aws-service-role/config.amazonaws.com/" if actor.kind == "service" else ""
        role_pid = "AROA" + _stable_token(actor.name, _ALNUM_UPPER, 17)
        ident: dict[str, Any] = {
            "type": "AssumedRole", "principalId": f"{role_pid}:{actor.session}",
            "arn": f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{actor.name}/{actor.session}", "accountId": ACCOUNT_ID,
            "accessKeyId": "ASIA" + _stable_token(f"{actor.name}/{actor.session}/{day}", _ALNUM_UPPER, 16),
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": role_pid,
                                  "arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{role_path}{actor.name}",
                                  "accountId": ACCOUNT_ID, "userName": actor.name},
                "attributes": {"creationDate": _iso(t - self.rng.randint(60, 3000)),
                               "mfaAuthenticated": "true" if actor.mfa else "false"}}}
        if actor.invoked_by:
            ident["invokedBy"] = actor.invoked_by
        return ident

    def event(self, t: int, name: str, who: str, request: Any, response: Any = "ok", *, region: str = REGION,
              source: str = "ec2.amazonaws.com", read_only: bool = False,
              error: tuple[str, str] | None = None) -> dict[str, Any]:
        actor = _ACTORS[who]
        request_id = self.uuid()
        if response == "ok":
            response = {"requestId": request_id, "_return": True}
        ua = actor.user_agent.format(cmd=_cli_command(name))
        ev: dict[str, Any] = {"eventVersion": "1.10", "userIdentity": self.identity(actor, t), "eventTime": _iso(t),
                              "eventSource": source, "eventName": name, "awsRegion": region,
                              "sourceIPAddress": actor.source_ip, "userAgent": ua}
        if error:
            ev["errorCode"], ev["errorMessage"] = error
            response = None
        ev.update({"requestParameters": request, "responseElements": response, "requestID": request_id,
                   "eventID": self.uuid(), "readOnly": read_only, "eventType": "AwsApiCall",
                   "managementEvent": True, "recipientAccountId": ACCOUNT_ID, "eventCategory": "Management"})
        if actor.kind != "service":
            host = f"{source.split('.')[0]}.{region}.amazonaws.com" if source == "ec2.amazonaws.com" else source
            ev["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                                "clientProvidedHostHeader": host}
        if actor.console:
            ev["sessionCredentialFromConsole"] = "true"
        self.events.append((t, region, ev))
        return ev


def _cli_command(event_name: str) -> str:
    out = "".join("-" + c.lower() if c.isupper() else c for c in event_name)
    return out.lstrip("-")


def _perm(proto: str, from_port: int, to_port: int, cidr: str | None = None, cidr6: str | None = None) -> dict:
    """One ``ipPermissions.items[]`` entry as CloudTrail records it (empty lists logged as ``{}``)."""
    return {"ipProtocol": proto, "fromPort": from_port, "toPort": to_port, "groups": {},
            "ipRanges": {"items": [{"cidrIp": cidr}]} if cidr else {},
            "ipv6Ranges": {"items": [{"cidrIpv6": cidr6}]} if cidr6 else {}, "prefixListIds": {}}


def _rule_set(group: str, rule_id: str, egress: bool, proto: str, from_port: int, to_port: int, cidr: str) -> dict:
    return {"items": [{"groupOwnerId": ACCOUNT_ID, "groupId": group, "securityGroupRuleId": rule_id,
                       "isEgress": egress, "ipProtocol": proto, "fromPort": from_port, "toPort": to_port,
                       "cidrIpv4": cidr,
                       "securityGroupRuleArn": f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:security-group-rule/{rule_id}"}]}


def _authorize(tr: _Trail, t: int, who: str, group: str, proto: str, from_port: int, to_port: int, cidr: str,
               *, egress: bool = False, rule_key: str) -> dict:
    name = "AuthorizeSecurityGroupEgress" if egress else "AuthorizeSecurityGroupIngress"
    request = {"groupId": group, "ipPermissions": {"items": [_perm(proto, from_port, to_port, cidr)]}}
    ev = tr.event(t, name, who, request, response=None)
    ev["responseElements"] = {"requestId": ev["requestID"], "_return": True,
                              "securityGroupRuleSet": _rule_set(group, _rid("sgr", rule_key), egress, proto,
                                                                from_port, to_port, cidr)}
    return ev


def _cloudtrail_story(tr: _Trail, block: _Block, plan: _WeekPlan) -> dict[str, Any]:
    """Every security-group change the checks look for, once per week, in two alternating variants."""
    rng = tr.rng
    lo, hi = block.since, block.until
    g = {k: grp.group_id for k, grp in _GROUPS.items()}
    e = _ENIS
    tag = _dt(lo).strftime("%Y%m%d")

    def when(lo_: int = lo, hi_: int = hi) -> int:
        return _pick(rng, lo_ + 1800, hi_ - 1800)

    # 22 opened to the world on the app servers' group from the console, and closed again a few hours later.
    opened = _authorize(tr, plan.sg_opened_at, "alice", g["app-servers"], "tcp", 22, 22, "0.0.0.0/0",
                        rule_key=f"app-servers/open22/{tag}")
    tr.event(plan.sg_closed_at, "RevokeSecurityGroupIngress", "bob",
             {"groupId": g["app-servers"], "ipPermissions": {"items": [_perm("tcp", 22, 22, "0.0.0.0/0")]}})

    # The legacy flat request shape (cidrIp/fromPort/toPort/ipProtocol at the top, ipPermissions empty), as old
    # SDKs still send it; these calls created the rules the inventory shows unused.
    if block.variant == 1:
        legacy = (g["bastion"], 3389, "0.0.0.0/0", "bastion/2")
    else:
        legacy = (g["cache-redis"], 8080, "10.0.0.0/8", "cache-redis/2")
    ev = tr.event(when(), "AuthorizeSecurityGroupIngress", "legacy",
                  {"groupId": legacy[0], "ipPermissions": {}, "ipProtocol": "tcp", "fromPort": legacy[1],
                   "toPort": legacy[1], "cidrIp": legacy[2]}, response=None)
    ev["responseElements"] = {"requestId": ev["requestID"], "_return": True,
                              "securityGroupRuleSet": _rule_set(legacy[0], _rid("sgr", legacy[3]), False, "tcp",
                                                                legacy[1], legacy[1], legacy[2])}

    # A developer tries to open PostgreSQL to the world and is refused.
    denied = f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:security-group/{g['db-postgres']}"
    who = tr.identity(_ACTORS["dave"], lo)["arn"]
    encoded = base64.urlsafe_b64encode(rng.randbytes(180)).decode().rstrip("=")
    tr.event(when(), "AuthorizeSecurityGroupIngress", "dave",
             {"groupId": g["db-postgres"], "ipPermissions": {"items": [_perm("tcp", 5432, 5432, "0.0.0.0/0")]}},
             error=("Client.UnauthorizedOperation",
                    f"You are not authorized to perform this operation. User: {who} is not authorized to perform: "
                    f"ec2:AuthorizeSecurityGroupIngress on resource: {denied} because no identity-based policy "
                    f"allows the ec2:AuthorizeSecurityGroupIngress action. Encoded authorization failure message: "
                    f"{encoded}"))

    # World-open egress from the app servers (SMTP one week, 4444 the other): the inventory keeps both rules.
    port, rule_key = (25, "app-servers/9") if block.variant == 1 else (4444, "app-servers/10")
    _authorize(tr, when(), "ci", g["app-servers"], "tcp", port, port, "0.0.0.0/0", egress=True, rule_key=rule_key)

    # A group is created: the partner FTP group that is never attached, or a canary that is deleted again.
    if block.variant == 1:
        t = when()
        ev = tr.event(t, "CreateSecurityGroup", "ci",
                      {"groupName": "ftp-partner-legacy", "groupDescription": "Partner FTP (decommissioned)",
                       "vpcId": _SUBNETS["public-a"].vpc_id}, response=None)
        ev["responseElements"] = {"requestId": ev["requestID"], "_return": True,
                                  "groupId": g["ftp-partner-legacy"],
                                  "securityGroupArn": f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:security-group/"
                                                      f"{g['ftp-partner-legacy']}"}
        _authorize(tr, t + rng.randint(20, 90), "ci", g["ftp-partner-legacy"], "tcp", 20, 21, "0.0.0.0/0",
                   rule_key="ftp-partner-legacy/1")
    else:
        t = when(lo, hi - 4 * 3600)
        canary = _rid("sg", f"canary/{tag}")
        ev = tr.event(t, "CreateSecurityGroup", "alice",
                      {"groupName": f"canary-{tag}", "groupDescription": "connectivity canary",
                       "vpcId": _SUBNETS["public-a"].vpc_id}, response=None)
        ev["responseElements"] = {"requestId": ev["requestID"], "_return": True, "groupId": canary,
                                  "securityGroupArn": f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:security-group/{canary}"}
        tr.event(t + rng.randint(3600, 3 * 3600), "DeleteSecurityGroup", "alice", {"groupId": canary})

    # ModifySecurityGroupRules wraps its request in capitalised keys
    # (see the cloud-trail-lake-query-samples ec2-public-security-group query). The older week's change is what
    # opened MySQL to the world.
    if block.variant == 1:
        assert plan.modify_mysql_at is not None
        mod = (plan.modify_mysql_at, g["db-mysql-legacy"], "db-mysql-legacy/1", EXPOSED_PORT, "partner access")
    else:
        mod = (when(), g["bastion"], "bastion/2", 3389, "temp vendor RDP")
    ev = tr.event(mod[0], "ModifySecurityGroupRules", "alice", {"ModifySecurityGroupRulesRequest": {
        "GroupId": mod[1], "SecurityGroupRule": {
            "SecurityGroupRuleId": _rid("sgr", mod[2]), "tag": 1,
            "SecurityGroupRule": {"CidrIpv4": "0.0.0.0/0", "IpProtocol": "tcp", "FromPort": mod[3],
                                  "ToPort": mod[3], "Description": mod[4]}}}}, response=None)
    ev["responseElements"] = {"ModifySecurityGroupRulesResponse": {
        "requestId": ev["requestID"], "return": True, "xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/"}}

    # Groups swapped on an interface (the groupSet form of ModifyNetworkInterfaceAttribute).
    eni, grp = (e["mysql"], "db-mysql-legacy") if block.variant == 1 else (e["app-2"], "app-servers")
    tr.event(when(), "ModifyNetworkInterfaceAttribute", "ci",
             {"networkInterfaceId": eni.eni_id, "groupSet": {"items": [{"groupId": g[grp]}]}})

    # The network ACL deny that turns the brute force's attempts into REJECTs, and its removal two days on.
    acl = _rid("acl", "main")
    entry = {"networkAclId": acl, "ruleNumber": 90, "egress": False, "ruleAction": "deny", "icmpTypeCode": {},
             "portRange": {"from": 22, "to": 22}, "aclProtocol": "6", "cidrBlock": f"{BRUTE_FORCE_IP}/32"}
    tr.event(plan.nacl_added_at, "CreateNetworkAclEntry", "guard", entry)
    removed = plan.nacl_added_at + 2 * 86400 + rng.randint(0, 3600)
    if removed < hi:
        tr.event(removed, "DeleteNetworkAclEntry", "guard", {"networkAclId": acl, "ruleNumber": 90,
                                                            "egress": False})
    return opened


_READ_ONLY = (
    ("DescribeInstances", {"instancesSet": {}, "filterSet": {}}),
    ("DescribeSecurityGroups", {"securityGroupSet": {}, "securityGroupIdSet": {}, "filterSet": {}}),
    ("DescribeSecurityGroupRules", {"DescribeSecurityGroupRulesRequest": {"MaxResults": 1000}}),
    ("DescribeNetworkInterfaces", {"networkInterfaceIdSet": {}, "filterSet": {}}),
    ("DescribeVpcs", {"vpcSet": {}, "filterSet": {}}),
    ("DescribeSubnets", {"subnetSet": {}, "filterSet": {}}),
    ("DescribeFlowLogs", {"DescribeFlowLogsRequest": {}}),
    ("DescribeInstanceStatus", {"instancesSet": {}, "filterSet": {}, "includeAllInstances": False}),
)


def _read_only_noise(tr: _Trail, since: int, until: int) -> None:
    rng = tr.rng
    for hour_start in range(since, until, 3600):
        for _ in range(rng.randint(1, 4)):
            name, request = rng.choice(_READ_ONLY)
            who = rng.choice(("monitor", "config", "config", "alice", "ci"))
            region = DR_REGION if rng.random() < 0.1 else REGION
            tr.event(hour_start + rng.randrange(3600), name, who, request, response=None, region=region,
                     read_only=True)
        if rng.random() < 0.08:
            tr.event(hour_start + rng.randrange(3600), "GetCallerIdentity", "ci", None, response=None,
                     source="sts.amazonaws.com", read_only=True)


def _write_trail_files(root: Path, tr: _Trail, duplicate: dict[str, Any], rng: random.Random,
                       counts: dict[str, int]) -> tuple[list[Path], list[Path]]:
    buckets: dict[tuple[str, int], list[tuple[int, int, dict]]] = defaultdict(list)
    for t, region, ev in sorted(tr.events, key=lambda x: x[0]):
        delivered = t + rng.randint(120, 720)
        buckets[(region, delivered // 3600)].append((t, delivered, ev))
    alnum = string.ascii_letters + string.digits
    written: list[Path] = []

    def put(base: Path, region: str, entries: list[tuple[int, int, dict]]) -> Path:
        last = max(d for _, d, _ in entries)
        day = _dt(last)
        name = (f"{ACCOUNT_ID}_CloudTrail_{region}_{_stamp(last)}_"
                f"{''.join(rng.choice(alnum) for _ in range(16))}.json.gz")
        body = json.dumps({"Records": [ev for _, _, ev in entries]}, separators=(",", ":"))
        return _write(base / "CloudTrail" / region / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}" / name,
                      _gzip(body.encode()))

    account_base = root / "cloudtrail" / "AWSLogs" / ACCOUNT_ID
    for (region, _), entries in sorted(buckets.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        path = put(account_base, region, entries)
        written.append(path)
        counts["trail_events"] += len(entries)
        if any(ev is duplicate for _, _, ev in entries):
            # The same event delivered again by an organization trail to its own prefix.
            t, delivered, _ = next(x for x in entries if x[2] is duplicate)
            written.append(put(root / "cloudtrail" / "AWSLogs" / ORG_ID / ACCOUNT_ID, region,
                               [(t, delivered + 60, duplicate)]))
            counts["trail_duplicates"] += 1
    counts["trail_files"] = len(written)

    # One digest file (the hourly integrity record); it has no Records and every reader must skip it
    # (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/
    # cloudtrail-log-file-validation-digest-file-structure.html).
    account_trail = (ACCOUNT_ID, "CloudTrail", REGION)
    last = [p for p in written if p.relative_to(root / "cloudtrail").parts[1:4] == account_trail][-3:]
    digest_end = max(_file_stamp(p) for p in last)
    day = _dt(digest_end)
    digest_name = f"{ACCOUNT_ID}_CloudTrail-Digest_{REGION}_{TRAIL_NAME}_{REGION}_{day:%Y%m%dT%H%M%SZ}.json.gz"
    digest_key = (f"AWSLogs/{ACCOUNT_ID}/CloudTrail-Digest/{REGION}/{day:%Y}/{day:%m}/{day:%d}/{digest_name}")
    digest = {
        "awsAccountId": ACCOUNT_ID, "digestStartTime": _iso(digest_end - 3600), "digestEndTime": _iso(digest_end),
        "digestS3Bucket": TRAIL_BUCKET, "digestS3Object": digest_key,
        "digestPublicKeyFingerprint": hashlib.md5(b"demo-key").hexdigest(),  # noqa: S324 - a fingerprint shape
        "digestSignatureAlgorithm": "SHA256withRSA", "newestEventTime": _iso(digest_end - 120),
        "oldestEventTime": _iso(digest_end - 3600), "previousDigestS3Bucket": TRAIL_BUCKET,
        "previousDigestS3Object": None, "previousDigestHashValue": None, "previousDigestHashAlgorithm": None,
        "previousDigestSignature": None,
        "logFiles": [{"s3Bucket": TRAIL_BUCKET, "s3Object": p.relative_to(root / "cloudtrail").as_posix(),
                      "hashValue": hashlib.sha256(p.read_bytes()).hexdigest(), "hashAlgorithm": "SHA-256",
                      "newestEventTime": _iso(_file_stamp(p)), "oldestEventTime": _iso(_file_stamp(p) - 3600)}
                     for p in last],
    }
    digest_path = _write(root / "cloudtrail" / digest_key, _gzip(json.dumps(digest, separators=(",", ":")).encode()))
    return written, [digest_path]


def _file_stamp(path: Path) -> int:
    stamp = path.name.split("_")[3]
    return int(datetime.strptime(stamp, "%Y%m%dT%H%MZ").replace(tzinfo=timezone.utc).timestamp())


# ------------------------------------------------------------------------------------------------- inventory

def _ip_permissions(rules: Iterable[_Rule]) -> list[dict[str, Any]]:
    """Rules folded into IpPermissions the way DescribeSecurityGroups returns them: one entry per
    protocol and port range, with every source of that range listed inside it."""
    perms: dict[tuple[str, int, int], dict[str, Any]] = {}
    for r in rules:
        key = (r.proto, r.from_port, r.to_port)
        if key not in perms:
            p: dict[str, Any] = {"IpProtocol": r.proto}
            if r.proto != "-1":
                p.update(FromPort=r.from_port, ToPort=r.to_port)
            p.update(UserIdGroupPairs=[], IpRanges=[], Ipv6Ranges=[], PrefixListIds=[])
            perms[key] = p
        p = perms[key]
        desc = {"Description": r.description} if r.description else {}
        if r.group:
            p["UserIdGroupPairs"].append({**desc, "UserId": ACCOUNT_ID, "GroupId": _GROUPS[r.group].group_id})
        elif r.cidr4:
            p["IpRanges"].append({**desc, "CidrIp": r.cidr4})
        elif r.cidr6:
            p["Ipv6Ranges"].append({**desc, "CidrIpv6": r.cidr6})
        elif r.prefix_list:
            p["PrefixListIds"].append({**desc, "PrefixListId": r.prefix_list})
    return list(perms.values())


def _inventory(region: str, captured: int) -> dict[str, dict[str, Any]]:
    groups = [grp for grp in _GROUPS.values() if grp.region == region]
    enis = [eni for eni in _ENIS.values() if eni.subnet.region == region]
    captured_at = _iso(captured)
    sgs, rules = [], []
    for grp in groups:
        vpc_id = _rid("vpc", grp.vpc)
        entry: dict[str, Any] = {"GroupId": grp.group_id,
                                 "IpPermissionsEgress": _ip_permissions(r for r in grp.rules if r.egress)}
        if grp.name != "default":
            entry["Tags"] = [{"Key": "Name", "Value": grp.name}]
        entry.update({"VpcId": vpc_id,
                      "SecurityGroupArn": f"arn:aws:ec2:{region}:{ACCOUNT_ID}:security-group/{grp.group_id}",
                      "OwnerId": ACCOUNT_ID, "GroupName": grp.name, "Description": grp.description,
                      "IpPermissions": _ip_permissions(r for r in grp.rules if not r.egress)})
        sgs.append(entry)
        for r in grp.rules:
            rule: dict[str, Any] = {"SecurityGroupRuleId": r.rule_id, "GroupId": grp.group_id,
                                    "GroupOwnerId": ACCOUNT_ID, "IsEgress": r.egress, "IpProtocol": r.proto,
                                    "FromPort": r.from_port, "ToPort": r.to_port}
            if r.group:
                rule["ReferencedGroupInfo"] = {"GroupId": _GROUPS[r.group].group_id, "UserId": ACCOUNT_ID}
            elif r.cidr4:
                rule["CidrIpv4"] = r.cidr4
            elif r.cidr6:
                rule["CidrIpv6"] = r.cidr6
            elif r.prefix_list:
                rule["PrefixListId"] = r.prefix_list
            if r.description:
                rule["Description"] = r.description
            rule["Tags"] = []
            rule["SecurityGroupRuleArn"] = f"arn:aws:ec2:{region}:{ACCOUNT_ID}:security-group-rule/{r.rule_id}"
            rules.append(rule)

    nics = []
    for i, eni in enumerate(enis):
        dns_suffix = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
        pub_suffix = "compute-1.amazonaws.com" if region == "us-east-1" else f"{region}.compute.amazonaws.com"

        def private_dns(ip: str, dns_suffix: str = dns_suffix) -> str:
            return f"ip-{ip.replace('.', '-')}.{dns_suffix}"

        association = None
        if eni.public_ip:
            owner = "amazon-elb" if eni.requester_id == "amazon-elb" else ACCOUNT_ID
            association = {"IpOwnerId": owner, "PublicDnsName": f"ec2-{eni.public_ip.replace('.', '-')}.{pub_suffix}",
                           "PublicIp": eni.public_ip}
            if owner == ACCOUNT_ID:
                association = {"AllocationId": _rid("eipalloc", eni.key), "AssociationId": _rid("eipassoc", eni.key),
                               **association}
        nic: dict[str, Any] = {}
        if association:
            nic["Association"] = association
        attach_time = _iso(captured - (120 + 11 * i) * 86400 - 3600 * (i + 3))
        if eni.instance_id:
            nic["Attachment"] = {"AttachTime": attach_time.replace("Z", "+00:00"),
                                 "AttachmentId": _rid("eni-attach", eni.key), "DeleteOnTermination": True,
                                 "DeviceIndex": 0, "NetworkCardIndex": 0, "InstanceId": eni.instance_id,
                                 "InstanceOwnerId": ACCOUNT_ID, "Status": "attached"}
        else:
            nic["Attachment"] = {"AttachTime": attach_time.replace("Z", "+00:00"),
                                 "AttachmentId": _rid("ela-attach", eni.key), "DeleteOnTermination": False,
                                 "DeviceIndex": 1, "NetworkCardIndex": 0,
                                 "InstanceOwnerId": "amazon-elb" if eni.requester_id == "amazon-elb" else "amazon-aws",
                                 "Status": "attached"}
        mac = hashlib.sha256(f"mac:{eni.key}".encode()).hexdigest()
        ips = [{**({"Association": association} if association else {}), "Primary": True,
                "PrivateDnsName": private_dns(eni.ip), "PrivateIpAddress": eni.ip}]
        ips += [{"Primary": False, "PrivateDnsName": private_dns(ip), "PrivateIpAddress": ip}
                for ip in eni.secondary_ips]
        nic.update({
            "AvailabilityZone": eni.subnet.az, "Description": eni.description,
            "Groups": [{"GroupId": _GROUPS[k].group_id, "GroupName": _GROUPS[k].name} for k in eni.groups],
            "InterfaceType": eni.interface_type,
            "Ipv6Addresses": [{"Ipv6Address": eni.ipv6, "IsPrimaryIpv6": False}] if eni.ipv6 else [],
            "MacAddress": "0e:" + ":".join(mac[j:j + 2] for j in range(0, 10, 2)),
            "NetworkInterfaceId": eni.eni_id, "OwnerId": ACCOUNT_ID, "PrivateDnsName": private_dns(eni.ip),
            "PrivateIpAddress": eni.ip, "PrivateIpAddresses": ips, "Ipv4Prefixes": [], "Ipv6Prefixes": []})
        if eni.requester_id:
            nic["RequesterId"] = eni.requester_id
        nic.update({"RequesterManaged": eni.requester_managed,
                    "SourceDestCheck": eni.interface_type != "nat_gateway", "Status": "in-use",
                    "SubnetId": eni.subnet.subnet_id, "TagSet": [], "VpcId": eni.subnet.vpc_id})
        nics.append(nic)
    return {"describe-security-groups.json": {"SecurityGroups": sgs, "captured_at": captured_at},
            "describe-security-group-rules.json": {"SecurityGroupRules": rules, "captured_at": captured_at},
            "describe-network-interfaces.json": {"NetworkInterfaces": nics, "captured_at": captured_at}}


# ------------------------------------------------------------------------------------------------ generate

def _seed(anchor: date, days: int, part: str) -> int:
    return int.from_bytes(hashlib.sha256(f"auditor-demo/{anchor.isoformat()}/{days}/{part}".encode()).digest()[:8],
                          "big")


def _prepare(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise UsageError(f"{out} is not empty and holds no {MARKER}: it was not written by the demo "
                             "generator, so nothing there is replaced (choose an empty or new directory)")
        for name in OWNED_DIRS:  # only what an earlier run of the generator wrote
            shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)


def generate(out: str | Path, anchor: date | None = None, days: int = 14) -> DemoManifest:
    """Write ``days`` days of demo flow logs, CloudTrail and inventory ending at ``anchor``'s midnight (UTC).

    ``anchor`` defaults to today (UTC). The same ``anchor`` and ``days`` always give byte-identical files.
    ``out`` must be new, empty, or a directory an earlier call wrote (its three data folders are replaced).
    """
    if isinstance(anchor, datetime):
        anchor = (anchor if anchor.tzinfo is None else anchor.astimezone(timezone.utc)).date()
    anchor = anchor or datetime.now(timezone.utc).date()
    if days < 1:
        raise UsageError(f"days must be at least 1, not {days}")
    root = Path(out)
    _prepare(root)
    until = int(datetime(anchor.year, anchor.month, anchor.day, tzinfo=timezone.utc).timestamp())
    since = until - days * 86400
    counts: dict[str, int] = defaultdict(int)

    plan_rng = random.Random(_seed(anchor, days, "plan"))
    blocks = _blocks(since, until)
    plans = [_plan(plan_rng, b) for b in blocks]

    flows = _Flows(random.Random(_seed(anchor, days, "flows")))
    _background(flows, since, until)
    flows.rng = random.Random(_seed(anchor, days, "scenarios"))
    weeks = tuple(_scenarios(flows, b, p) for b, p in zip(blocks, plans))
    on_call = _on_call_fixes(flows, blocks, random.Random(_seed(anchor, days, "on-call")))
    weeks = tuple(w if t is None else replace(w, on_call_ssh_at=_dt(t)) for w, t in zip(weeks, on_call))
    flow_files = _write_flow_files(root, flows.records, random.Random(_seed(anchor, days, "dirt")), counts)

    trail = _Trail(random.Random(_seed(anchor, days, "cloudtrail")))
    _read_only_noise(trail, since, until)
    opened = [_cloudtrail_story(trail, b, p) for b, p in zip(blocks, plans)]
    duplicate = opened[0]
    trail_files, digest_files = _write_trail_files(root, trail, duplicate,
                                                   random.Random(_seed(anchor, days, "trail-files")), counts)

    inventory_files = []
    for region in (REGION, DR_REGION):
        for name, doc in _inventory(region, until).items():
            # The CLI's own JSON output: four-space indent, keys in the API's order.
            inventory_files.append(_write(root / "inventory" / ACCOUNT_ID / region / name,
                                          (json.dumps(doc, indent=4) + "\n").encode()))

    manifest = DemoManifest(
        root=root, anchor=anchor, days=days, since=_dt(since), until=_dt(until), account_id=ACCOUNT_ID,
        regions=(REGION, DR_REGION), flow_log_ids={k: f.flow_log_id for k, f in _FLOW_LOGS.items()},
        flowlog_files=tuple(sorted(flow_files)), cloudtrail_files=tuple(sorted(trail_files)),
        digest_files=tuple(digest_files), inventory_files=tuple(inventory_files), scanner_ip=SCANNER_IP,
        bruteforce_ip=BRUTE_FORCE_IP, bastion_eni=_ENIS["bastion"].eni_id, exposed_eni=_ENIS["mysql"].eni_id,
        exposed_port=EXPOSED_PORT, exposed_group=_GROUPS["db-mysql-legacy"].group_id,
        bastion_group=_GROUPS["bastion"].group_id, sg_opened_then_closed=_GROUPS["app-servers"].group_id,
        unused_group=_GROUPS["ftp-partner-legacy"].group_id, on_call_rule=_rid("sgr", "reporting/1"),
        default_groups=(_GROUPS["default-main"].group_id, _GROUPS["default-dr"].group_id),
        uncovered_eni=_ENIS["sandbox"].eni_id, duplicate_event_id=duplicate["eventID"], weeks=weeks,
        counts=dict(sorted(counts.items())))
    (root / MARKER).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")
    return manifest
