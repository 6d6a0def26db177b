"""A fast, deterministic generator of N VPC flow records in the layout AWS writes to S3, with matching
CloudTrail and EC2 inventory, for the benchmark (``benchmarks/run.py``).

* Two flow logs over one VPC: one in the default format, one in a custom v5 format in another field order
  (https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html). Each file starts with its header
  line, as S3 delivery writes it, and is gzipped.
* Files are dated by *delivery*: a file holding records of the hour ending at 24:00 lands in the next day's
  folder (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3-path.html).
* About 0.1% of the lines are dirty, concentrated in one file in twenty (as a broken writer or a CloudWatch
  export would be): double spaces, repeated headers, blank lines, truncated lines, a port that is no number.
* Every value comes from integer hashing of (file, line), so the same arguments always give the same bytes.
  DuckDB builds the lines; zlib compresses them in two threads (zlib releases the GIL).

Usage: ``python benchmarks/generate.py --records 1000000 --out benchmarks/data/1000000``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb

# The same two formats as the demo data: the default one, and every v2..v5 field in another order.
from auditor.demo import CUSTOM_FIELDS, V2_FIELDS

ACCOUNT = "111122223333"
REGION = "us-east-1"
FIRST_DAY = date(2026, 3, 2)  # a Monday; the window is [FIRST_DAY, FIRST_DAY + days)
FLOW_LOGS = (("fl-0a1b2c3d4e5f60001", V2_FIELDS), ("fl-0a1b2c3d4e5f60002", CUSTOM_FIELDS))
ENIS_PER_FLOW_LOG = 24
TARGET_RECORDS_PER_FILE = 20_000
DIRTY_FILE_EVERY = 20  # one file in twenty is dirty ...
DIRTY_LINE_EVERY = 50  # ... and one line in fifty of it: 0.1% overall
MARKER = "manifest.json"
# bump when the bytes change, so a stale dataset is regenerated. 3: IPv6 sources are valid addresses (version 2
# wrote a group of up to five hex digits, which no reader can parse).
GENERATOR_VERSION = 3

# Well-known and sensitive ports the synthetic services listen on, and the ports scanners probe.
_SERVICE_PORTS = [443, 443, 443, 443, 80, 80, 22, 3306]
_INTERNAL_PORTS = [5432, 6379, 8080, 443]
_PROBE_PORTS = [22, 23, 25, 80, 110, 135, 139, 443, 445, 1433, 1521, 2375, 3306, 3389, 5432, 5900, 6379, 8080,
                8443, 9200, 11211, 27017]
_PUBLIC_FIRST_OCTETS = [24, 31, 37, 46, 62, 66, 68, 71, 73, 77, 78, 81, 84, 86, 88, 90, 93, 95, 98, 104, 109,
                        125, 151, 173, 174, 176, 178, 185, 188, 195, 212, 217]
_SCANNERS = 40  # heavy hitters among the rejected sources


@dataclass
class Manifest:
    """What was generated, with the line classes the reader must find."""

    records: int
    days: int
    first_day: str
    files: int
    dirty_files: int
    lines: dict[str, int] = field(default_factory=dict)  # records, nodata, headers, blank, malformed
    bytes_on_disk: int = 0
    seconds: float = 0.0
    generator_version: int = GENERATOR_VERSION

    @property
    def since(self) -> str:
        return self.first_day

    @property
    def until(self) -> str:
        return (date.fromisoformat(self.first_day) + timedelta(days=self.days)).isoformat()


def _rid(prefix: str, name: str) -> str:
    return f"{prefix}-0{hashlib.sha256(f'{prefix}:{name}'.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class _Eni:
    index: int
    eni_id: str
    address: str
    subnet_id: str
    az_id: str
    instance_id: str
    groups: tuple[str, ...]


def _enis() -> list[_Eni]:
    out = []
    roles = ("web", "web", "app", "app", "db", "cache", "bastion", "legacy")
    for k in range(len(FLOW_LOGS) * ENIS_PER_FLOW_LOG):
        subnet = k // 12
        role = roles[k % len(roles)]
        out.append(_Eni(k, _rid("eni", f"bench-{k}"), f"10.0.{subnet}.{10 + k}", _rid("subnet", f"bench-{subnet}"),
                        ("use1-az4", "use1-az6")[subnet % 2], _rid("i", f"bench-{k}"), (_group(role),)))
    return out


def _group(role: str) -> str:
    return _rid("sg", f"bench-{role}")


# 31-bit integer mixing: deterministic, independent of DuckDB's own hash(), and free of overflow in BIGINT.
_MIX = ("CREATE OR REPLACE MACRO mix(x, k) AS "
        "(xor(((x + k * 7919) % 2147483647) * 48271 % 2147483647, "
        "(((x + k * 7919) % 2147483647) * 48271 % 2147483647) >> 13) * 69621 + k) % 2147483647")

# One file's lines, in order, each with its class. $n lines after the header; $base seeds the hashes;
# records start in [$t0, $t0 + $span).
_ROWS = """
WITH h AS (
  SELECT i, mix($base + i, 1) AS h1, mix($base + i, 2) AS h2, mix($base + i, 3) AS h3, mix($base + i, 4) AS h4
  FROM range($n) t(i)
), v AS (
  SELECT i, h1, h2, h3, h4,
    h1 % 1000 AS roll,
    $eni0 + h2 % $enis AS eni,
    -- a public address from a skewed pool (the minimum of two draws favours low indices)
    least(h3 % 262144, (h3 >> 12) % 262144) AS p,
    $t0 + h2 % $span AS start,
    1024 + h4 % 64512 AS ephemeral
  FROM h
), pub AS (
  SELECT *,
    CASE WHEN h4 % 200 = 0 THEN '2600:1f18:' || printf('%x:%x', p // 65536, p % 65536) || '::' || printf('%x', h1 % 65536)
         ELSE $octets[1 + p % 32] || '.' || (p // 32) % 256 || '.' || (p // 8192) % 32 || '.' || 1 + h1 % 254
    END AS public_addr,
    $eni_addr[1 + (eni + 1 + h3 % ($enis - 1)) % $all_enis] AS peer_addr
  FROM v
), rec AS (
  SELECT i, h1, h2, h4, eni, start,
    start + 1 + h4 % 59 AS "end",
    CASE WHEN roll >= 995 THEN 'SKIPDATA' WHEN roll >= 985 THEN 'NODATA' ELSE 'OK' END AS status,
    CASE WHEN roll < 380 THEN public_addr
         WHEN roll < 620 THEN $eni_addr[1 + eni]
         WHEN roll < 800 THEN peer_addr
         WHEN h3 % 10 < 3 THEN '198.18.' || (h3 // 10) % $scanners || '.7'
         ELSE public_addr END AS src,
    CASE WHEN roll < 380 THEN $eni_addr[1 + eni]
         WHEN roll < 620 THEN public_addr
         ELSE $eni_addr[1 + eni] END AS dst,
    CASE WHEN roll < 380 THEN ephemeral
         WHEN roll < 620 THEN $service[1 + h2 % 8]
         ELSE ephemeral END AS sport,
    CASE WHEN roll < 380 THEN $service[1 + h2 % 8]
         WHEN roll < 620 THEN ephemeral
         WHEN roll < 800 THEN $internal[1 + h4 % 4]
         WHEN h3 % 10 < 3 THEN (h4 // 7) % 1024 + 1
         ELSE $probe[1 + h4 % 22] END AS dport,
    CASE WHEN roll >= 800 AND h4 % 9 = 0 THEN 17 ELSE 6 END AS proto,
    1 + h4 % 40 AS packets,
    CASE WHEN roll BETWEEN 380 AND 619 THEN 'egress' ELSE 'ingress' END AS direction,
    CASE WHEN roll >= 800 THEN 'REJECT' ELSE 'ACCEPT' END AS action
  FROM pub
), line AS (
  SELECT i, h2, h4,
    CASE WHEN status = 'OK' THEN {ok_line} ELSE {nodata_line} END AS line,
    CASE WHEN status = 'OK' THEN 0 ELSE 1 END AS cls
  FROM rec
)
SELECT -1 AS i, $header AS line, 3 AS cls
UNION ALL
SELECT i,
  CASE WHEN NOT $dirty OR h4 % $dirty_every <> 0 THEN line
       WHEN (h2 // 7) % 5 = 0 THEN regexp_replace(line, ' ', '  ')
       WHEN (h2 // 7) % 5 = 1 THEN $header
       WHEN (h2 // 7) % 5 = 2 THEN NULL
       WHEN (h2 // 7) % 5 = 3 THEN array_to_string(string_split(line, ' ')[:-4], ' ')
       ELSE array_to_string(list_transform(string_split(line, ' '),
                                           lambda x, j: CASE WHEN j = $dport_pos THEN 'http' ELSE x END), ' ')
  END AS line,
  CASE WHEN NOT $dirty OR h4 % $dirty_every <> 0 THEN cls
       WHEN (h2 // 7) % 5 = 0 THEN cls
       WHEN (h2 // 7) % 5 = 1 THEN 3
       WHEN (h2 // 7) % 5 = 2 THEN 4
       ELSE 2 END AS cls
FROM line
"""

_CLASSES = {0: "records", 1: "nodata", 2: "malformed", 3: "headers", 4: "blank"}

# The SQL of each field's text, for traffic records and for NODATA/SKIPDATA ones ('-' where AWS writes '-').
_OK_VALUES = {
    "version": "'{version}'", "account-id": f"'{ACCOUNT}'", "interface-id": "$eni_id[1 + eni]",
    "srcaddr": "src", "dstaddr": "dst", "srcport": "CAST(sport AS VARCHAR)", "dstport": "CAST(dport AS VARCHAR)",
    "protocol": "CAST(proto AS VARCHAR)", "packets": "CAST(packets AS VARCHAR)",
    "bytes": "CAST(packets * (40 + h2 % 1400) AS VARCHAR)", "start": "CAST(start AS VARCHAR)",
    "end": "CAST(\"end\" AS VARCHAR)", "action": "action", "log-status": "status",
    "vpc-id": "$vpc_id", "subnet-id": "$subnet_id[1 + eni]", "instance-id": "$instance_id[1 + eni]",
    "az-id": "$az_id[1 + eni]", "region": f"'{REGION}'", "flow-direction": "direction",
    "type": "CASE WHEN contains(src, ':') OR contains(dst, ':') THEN 'IPv6' ELSE 'IPv4' END",
    "pkt-srcaddr": "src", "pkt-dstaddr": "dst", "tcp-flags": "CASE WHEN proto = 6 THEN CAST([2, 18, 19, 3][1 + h4 % 4] AS VARCHAR) ELSE '0' END",
    "traffic-path": "CASE WHEN action = 'ACCEPT' AND direction = 'egress' THEN '8' ELSE '-' END",
    "pkt-src-aws-service": "'-'", "pkt-dst-aws-service": "'-'", "sublocation-type": "'-'", "sublocation-id": "'-'",
}
_NODATA_KEEPS = {"version", "account-id", "interface-id", "start", "end", "log-status", "vpc-id", "subnet-id",
                 "instance-id", "az-id", "region"}


def _line_sql(fields: tuple[str, ...], version: str) -> tuple[str, str]:
    ok = [_OK_VALUES[f].format(version=version) for f in fields]
    nodata = [_OK_VALUES[f].format(version=version) if f in _NODATA_KEEPS else "'-'" for f in fields]
    return "concat_ws(' ', " + ", ".join(ok) + ")", "concat_ws(' ', " + ", ".join(nodata) + ")"


@dataclass(frozen=True)
class _FileJob:
    index: int
    flow_log: int
    start: int  # epoch seconds of the first record's earliest start
    span: int
    records: int
    path: Path
    dirty: bool


def _plan(root: Path, records: int, days: int) -> list[_FileJob]:
    per_day = max(1, min(24, round(records / (len(FLOW_LOGS) * days * TARGET_RECORDS_PER_FILE))))
    slots = len(FLOW_LOGS) * days * per_day
    span = 86400 // per_day
    t0 = int(datetime.combine(FIRST_DAY, datetime.min.time(), timezone.utc).timestamp())
    jobs = []
    dirty_slot = (DIRTY_FILE_EVERY // 2) % min(slots, DIRTY_FILE_EVERY)  # at least one dirty file, however few
    for s in range(slots):
        fl, rest = divmod(s, days * per_day)
        slot_start = t0 + rest * span
        n = records // slots + (1 if s < records % slots else 0)
        # S3 delivery: the file lands a few minutes after its last record, in the folder of that moment.
        delivered = datetime.fromtimestamp(slot_start + span + 300, timezone.utc)
        flow_log_id = FLOW_LOGS[fl][0]
        stamp = delivered.strftime("%Y%m%dT%H%MZ")
        tag = hashlib.sha256(f"{flow_log_id}/{s}".encode()).hexdigest()[:8]
        path = (root / "flowlogs" / "AWSLogs" / ACCOUNT / "vpcflowlogs" / REGION / delivered.strftime("%Y/%m/%d")
                / f"{ACCOUNT}_vpcflowlogs_{REGION}_{flow_log_id}_{stamp}_{tag}.log.gz")
        jobs.append(_FileJob(s, fl, slot_start, span, n, path, s % DIRTY_FILE_EVERY == dirty_slot))
    return jobs


def _write_file(con: duckdb.DuckDBPyConnection, job: _FileJob, enis: list[_Eni]) -> dict[str, int]:
    fields = FLOW_LOGS[job.flow_log][1]
    ok_line, nodata_line = _line_sql(fields, "2" if fields == V2_FIELDS else "5")
    header = " ".join(fields)
    params = {
        "n": job.records, "base": job.index * 10_000_019, "t0": job.start, "span": job.span,
        "eni0": job.flow_log * ENIS_PER_FLOW_LOG, "enis": ENIS_PER_FLOW_LOG, "all_enis": len(enis),
        "octets": [str(o) for o in _PUBLIC_FIRST_OCTETS], "scanners": _SCANNERS,
        "eni_addr": [e.address for e in enis], "eni_id": [e.eni_id for e in enis],
        "subnet_id": [e.subnet_id for e in enis], "instance_id": [e.instance_id for e in enis],
        "az_id": [e.az_id for e in enis], "vpc_id": _rid("vpc", "bench"),
        "service": _SERVICE_PORTS, "internal": _INTERNAL_PORTS, "probe": _PROBE_PORTS,
        "header": header, "dirty": job.dirty, "dirty_every": DIRTY_LINE_EVERY,
        "dport_pos": fields.index("dstport") + 1,
    }
    used = {k: v for k, v in params.items() if f"${k}" in _ROWS or f"${k}" in ok_line + nodata_line}
    con.execute("CREATE OR REPLACE TEMP TABLE gen AS " + _ROWS.format(ok_line=ok_line, nodata_line=nodata_line), used)
    text = con.execute("SELECT string_agg(coalesce(line, ''), chr(10) ORDER BY i) || chr(10) FROM gen").fetchone()[0]
    counts = {_CLASSES[c]: n for c, n in con.execute("SELECT cls, count(*) FROM gen GROUP BY cls").fetchall()}
    con.execute("DROP TABLE gen")
    job.path.parent.mkdir(parents=True, exist_ok=True)
    # zlib's gzip wrapper (wbits 31) writes mtime 0 and no file name: the same bytes on every run.
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    job.path.write_bytes(compressor.compress(text.encode()) + compressor.flush())
    return counts


def _inventory(root: Path, enis: list[_Eni]) -> None:
    """describe-network-interfaces, -security-groups and -security-group-rules, as the AWS CLI writes them."""
    folder = root / "inventory" / ACCOUNT / REGION
    folder.mkdir(parents=True, exist_ok=True)
    vpc = _rid("vpc", "bench")
    captured = {"captured_at": f"{FIRST_DAY.isoformat()}T00:00:00Z"}
    interfaces = [{"NetworkInterfaceId": e.eni_id, "VpcId": vpc, "SubnetId": e.subnet_id, "OwnerId": ACCOUNT,
                   "AvailabilityZone": f"{REGION}{'ab'[int(e.az_id[-1] == '6')]}", "Status": "in-use",
                   "InterfaceType": "interface", "RequesterManaged": False,
                   "Attachment": {"InstanceId": e.instance_id},
                   "Groups": [{"GroupId": g, "GroupName": g} for g in e.groups],
                   "PrivateIpAddresses": [{"PrivateIpAddress": e.address, "Primary": True}], "Ipv6Addresses": []}
                  for e in enis]
    roles = ("web", "app", "db", "cache", "bastion", "legacy", "unused")
    groups = [{"GroupId": _group(r), "GroupName": f"bench-{r}", "VpcId": vpc, "OwnerId": ACCOUNT,
               "Description": f"benchmark {r}"} for r in roles]

    def rule(role: str, n: int, proto: str, lo: int, hi: int, *, cidr: str | None = None, ref: str | None = None,
             egress: bool = False) -> dict:
        r = {"SecurityGroupRuleId": _rid("sgr", f"{role}/{n}"), "GroupId": _group(role), "GroupOwnerId": ACCOUNT,
             "IsEgress": egress, "IpProtocol": proto, "FromPort": lo, "ToPort": hi}
        if cidr:
            r["CidrIpv4"] = cidr
        if ref:
            r["ReferencedGroupInfo"] = {"GroupId": _group(ref), "UserId": ACCOUNT}
        return r

    rules = [rule("web", 1, "tcp", 443, 443, cidr="0.0.0.0/0"), rule("web", 2, "tcp", 80, 80, cidr="0.0.0.0/0"),
             rule("web", 3, "tcp", 22, 22, cidr="0.0.0.0/0"),
             rule("app", 1, "tcp", 8080, 8080, ref="web"), rule("app", 2, "tcp", 9000, 9100, cidr="10.0.0.0/16"),
             rule("db", 1, "tcp", 5432, 5432, ref="app"), rule("db", 2, "tcp", 1433, 1433, cidr="10.0.0.0/8"),
             rule("cache", 1, "tcp", 6379, 6379, cidr="10.0.0.0/16"),
             rule("bastion", 1, "tcp", 22, 22, cidr="0.0.0.0/0"),
             rule("legacy", 1, "tcp", 3306, 3306, cidr="0.0.0.0/0"), rule("legacy", 2, "-1", -1, -1, cidr="0.0.0.0/0"),
             rule("unused", 1, "tcp", 3389, 3389, cidr="0.0.0.0/0")]
    rules += [rule(r, 99, "-1", -1, -1, cidr="0.0.0.0/0", egress=True) for r in roles]
    (folder / "describe-network-interfaces.json").write_text(json.dumps({"NetworkInterfaces": interfaces, **captured}))
    (folder / "describe-security-groups.json").write_text(json.dumps({"SecurityGroups": groups, **captured}))
    (folder / "describe-security-group-rules.json").write_text(json.dumps({"SecurityGroupRules": rules, **captured}))


def _cloudtrail(root: Path, records: int, days: int) -> int:
    """S3 CloudTrail log files: read-only noise plus security-group changes, some opening the world."""
    total = max(100, min(50_000, records // 2000))
    t0 = int(datetime.combine(FIRST_DAY, datetime.min.time(), timezone.utc).timestamp())
    per_day = max(1, total // days)
    written = 0
    for d in range(days):
        events = []
        for k in range(per_day):
            t = t0 + d * 86400 + (k * 86400) // per_day
            seq = d * per_day + k
            name, request = "DescribeInstances", {"instancesSet": {}}
            if seq % 50 == 0:
                name = "AuthorizeSecurityGroupIngress"
                request = {"groupId": _group(("web", "legacy", "bastion")[seq % 3]), "ipPermissions": {"items": [
                    {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "groups": {}, "ipv6Ranges": {},
                     "prefixListIds": {}, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}
            elif seq % 50 == 25:
                name = "RevokeSecurityGroupIngress"
                request = {"groupId": _group("web"), "ipPermissions": {"items": [
                    {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "groups": {}, "ipv6Ranges": {},
                     "prefixListIds": {}, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}
            stamp = datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            events.append({"eventVersion": "1.09", "userIdentity": {
                "type": "IAMUser", "principalId": "AIDABENCH", "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/bench-{seq % 7}"}, "eventTime": stamp,
                "eventSource": "ec2.amazonaws.com", "eventName": name, "awsRegion": REGION,
                "sourceIPAddress": "198.51.100.44", "userAgent": "aws-cli/2.17.60", "requestParameters": request,
                "responseElements": None, "requestID": _rid("req", str(seq))[4:],
                "eventID": hashlib.sha256(f"event/{seq}".encode()).hexdigest()[:32], "readOnly": name.startswith("Describe"),
                "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCOUNT,
                "eventCategory": "Management"})
        day = FIRST_DAY + timedelta(days=d)
        folder = root / "cloudtrail" / "AWSLogs" / ACCOUNT / "CloudTrail" / REGION / day.strftime("%Y/%m/%d")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{ACCOUNT}_CloudTrail_{REGION}_{day:%Y%m%d}T2355Z_{hashlib.sha256(str(d).encode()).hexdigest()[:16]}.json.gz"
        (folder / name).write_bytes(gzip.compress(json.dumps({"Records": events}).encode(), mtime=0))
        written += len(events)
    return written


def generate(root: Path, records: int, *, days: int = 7, workers: int = 2) -> Manifest:
    """Write ``records`` flow records over ``days`` days from :data:`FIRST_DAY`, plus CloudTrail and inventory,
    under ``root`` (``flowlogs/``, ``cloudtrail/``, ``inventory/``). Reuses a complete dataset of the same
    arguments; returns its manifest."""
    marker = root / MARKER
    if marker.exists():
        old = json.loads(marker.read_text())
        if (old.get("records"), old.get("days"), old.get("generator_version")) == (records, days, GENERATOR_VERSION):
            return Manifest(**old)
    started = time.perf_counter()
    enis = _enis()
    jobs = _plan(root, records, days)

    def run(batch: list[_FileJob]) -> list[dict[str, int]]:
        con = duckdb.connect(config={"threads": 1})
        con.execute(_MIX)
        try:
            return [_write_file(con, job, enis) for job in batch]
        finally:
            con.close()

    totals: dict[str, int] = {name: 0 for name in _CLASSES.values()}
    with ThreadPoolExecutor(workers) as pool:
        for counts in pool.map(run, [jobs[w::workers] for w in range(workers)]):
            for c in counts:
                for k, v in c.items():
                    totals[k] += v
    _inventory(root, enis)
    _cloudtrail(root, records, days)
    size = sum(j.path.stat().st_size for j in jobs)
    manifest = Manifest(records=records, days=days, first_day=FIRST_DAY.isoformat(), files=len(jobs),
                        dirty_files=sum(j.dirty for j in jobs), lines=totals, bytes_on_disk=size,
                        seconds=round(time.perf_counter() - started, 2))
    marker.write_text(json.dumps(asdict(manifest), indent=2))
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    m = generate(args.out, args.records, days=args.days, workers=min(2, os.cpu_count() or 1))
    json.dump(asdict(m), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
