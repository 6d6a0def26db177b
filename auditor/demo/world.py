"""The demo's world: the account, the VPCs, subnets, interfaces, security groups and flow logs, the constants
every part of the demo shares, and its time and file helpers. Resource IDs do not depend on the anchor, so they
are stable across runs.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

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
WEEK = 7 * 86400
INTERVAL = 600  # the default maximum aggregation interval of a flow log
FLOW_FILE_SPAN = 3 * 3600  # one flow-log file per flow log per three hours of delivery
DIURNAL = (0.35, 0.3, 0.28, 0.27, 0.3, 0.38, 0.5, 0.62, 0.75, 0.85, 0.92, 0.97,
           1.0, 1.0, 0.98, 0.95, 0.92, 0.88, 0.8, 0.7, 0.6, 0.52, 0.45, 0.4)


# First octets of plainly public IPv4 space, for background clients: none is private, shared, loopback,
# link-local, multicast or a documentation range, so only the scenario actors use the documentation ranges.
PUBLIC_FIRST_OCTETS = (24, 31, 37, 46, 62, 66, 68, 71, 73, 77, 78, 81, 84, 86, 88, 90, 93, 95, 98, 104, 109,
                       125, 151, 173, 174, 176, 178, 185, 188, 195, 212, 217)


SCAN_PORTS = (21, 22, 23, 25, 53, 80, 81, 88, 110, 111, 119, 135, 139, 143, 161, 179, 389, 443, 445, 465, 500,
              514, 515, 587, 631, 636, 873, 902, 993, 995, 1080, 1194, 1433, 1434, 1521, 1723, 1883, 2049, 2082,
              2083, 2181, 2375, 2376, 3000, 3128, 3306, 3389, 3690, 4369, 4443, 4848, 5000, 5060, 5432, 5555,
              5601, 5672, 5900, 5901, 5984, 5985, 5986, 6000, 6379, 6443, 6667, 7001, 7077, 7474, 8000, 8008,
              8080, 8081, 8086, 8088, 8161, 8443, 8500, 8888, 9000, 9042, 9090, 9092, 9100, 9200, 9300, 9418,
              9443, 9999, 10000, 10250, 11211, 15672, 27017, 27018, 28017, 50000, 50070)


NOISE_PORTS = ((23, 6), (25, 6), (445, 6), (1433, 6), (3389, 6), (5900, 6), (8080, 6), (8443, 6), (9200, 6),
               (2375, 6), (27017, 6), (5432, 6), (6379, 6), (135, 6), (161, 17), (123, 17), (53, 17))


DIRT_KINDS = ("double_space", "repeated_header", "blank", "truncated", "bad_port")


@functools.cache
def rid(prefix: str, name: str, width: int = 17) -> str:
    """A stable AWS-style ID: the same name always gives the same ID, whatever the anchor."""
    digest = hashlib.sha256(f"{prefix}:{name}".encode()).hexdigest()
    return f"{prefix}-0{digest[:width - 1]}"


def stable_token(name: str, alphabet: str, n: int) -> str:
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
        return rid("subnet", self.key)

    @property
    def vpc_id(self) -> str:
        return rid("vpc", self.vpc)


@dataclass(frozen=True)
class Eni:
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
        return rid("eni", self.key)

    @property
    def instance_id(self) -> str | None:
        return rid("i", self.key) if self.instance else None


@dataclass(frozen=True)
class Rule:
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
        return rid("sgr", self.key)


@dataclass(frozen=True)
class _Group:
    key: str
    name: str
    description: str
    vpc: str
    region: str
    rules: tuple[Rule, ...]

    @property
    def group_id(self) -> str:
        return rid("sg", self.key)


SUBNETS = {s.key: s for s in (
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
ENIS = {e.key: e for e in (
    Eni("alb-a", SUBNETS["public-a"], "10.0.0.45", ("web-alb",), "default", public_ip="3.214.18.45",
         ipv6="2600:1f18:4a3:6d00::45", instance=False, requester_id="amazon-elb", requester_managed=True,
         description=_ALB_DESC,
         nitro=False),
    Eni("bastion", SUBNETS["public-a"], "10.0.0.10", ("bastion",), "default", public_ip="54.210.33.17"),
    Eni("nat-a", SUBNETS["public-a"], "10.0.0.200", (), "default", public_ip="34.199.52.8", instance=False,
         interface_type="nat_gateway", requester_managed=True,
         description=f"Interface for NAT Gateway {rid('nat', 'nat-a')}", nitro=False),
    Eni("app-1", SUBNETS["private-a"], "10.0.10.21", ("app-servers",), "default", secondary_ips=("10.0.10.22",)),
    Eni("pg", SUBNETS["private-a"], "10.0.10.50", ("db-postgres",), "default"),
    Eni("alb-b", SUBNETS["public-b"], "10.0.1.45", ("web-alb",), "custom", public_ip="3.219.70.12",
         ipv6="2600:1f18:4a3:6d01::45", instance=False, requester_id="amazon-elb", requester_managed=True,
         description=_ALB_DESC,
         nitro=False),
    Eni("mysql", SUBNETS["public-b"], "10.0.1.80", ("db-mysql-legacy",), "custom", public_ip="44.203.118.9"),
    Eni("app-2", SUBNETS["private-b"], "10.0.11.21", ("app-servers",), "custom"),
    Eni("redis", SUBNETS["private-b"], "10.0.11.60", ("cache-redis",), "custom"),
    Eni("reporting", SUBNETS["private-b"], "10.0.11.90", ("reporting",), "custom"),
    Eni("sandbox", SUBNETS["sandbox-c"], "10.0.40.15", ("sandbox",), None),
    Eni("dr-app", SUBNETS["dr-public-a"], "10.1.1.20", ("dr-app",), "dr", public_ip="35.88.120.31"),
)}


def _r(owner: str, n: int, egress: bool, proto: str, from_port: int = -1, to_port: int | None = None,
       **kw: Any) -> Rule:
    """Rule ``n`` of group ``owner``; its key (and so its sgr- ID) is ``owner/n``."""
    return Rule(f"{owner}/{n}", egress, proto, from_port, from_port if to_port is None else to_port, **kw)


_ALL_OUT = dict(cidr4="0.0.0.0/0")
_CORP_PREFIX_LIST = rid("pl", "corp-vpn")
GROUPS = {g.key: g for g in (
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
        return rid("fl", self.key)


FLOW_LOGS = {f.key: f for f in (
    _FlowLog("default", REGION, V2_FIELDS),
    _FlowLog("custom", REGION, CUSTOM_FIELDS),
    _FlowLog("dr", DR_REGION, V2_FIELDS),
)}


def in_vpc(ip: str) -> bool:
    return ip.startswith("10.")


def as_datetime(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def stamp_text(epoch: int) -> str:
    return as_datetime(epoch).strftime("%Y%m%dT%H%MZ")


def iso_text(epoch: int) -> str:
    return as_datetime(epoch).strftime("%Y-%m-%dT%H:%M:%SZ")


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    # mtime=0 and an empty name keep the gzip header free of anything that changes between runs.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def write_file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
