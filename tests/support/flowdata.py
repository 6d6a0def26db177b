"""Tiny hand-made inputs for check tests: flow-log files in the S3 layout, inventory JSON, configs."""

from __future__ import annotations

import gzip
import json
import textwrap
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

DEFAULT_FIELDS = ("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
                  "packets", "bytes", "start", "end", "action", "log-status")
ACCOUNT, REGION = "111122223333", "us-east-1"


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=timezone.utc).timestamp())


def record(**kw: Any) -> dict[str, Any]:
    """A flow-log record with sensible defaults; ``start`` may be an ISO string. Keys use underscores."""
    r = {"version": 2, "account-id": ACCOUNT, "interface-id": "eni-web", "srcaddr": "203.0.113.9", "dstaddr": "10.0.1.10",
         "srcport": 40000, "dstport": 443, "protocol": 6, "packets": 3, "bytes": 180, "start": "2026-11-10T12:00:00Z",
         "action": "ACCEPT", "log-status": "OK"}
    r.update({k.replace("_", "-"): v for k, v in kw.items()})
    if isinstance(r["start"], str):
        r["start"] = ts(r["start"])
    r.setdefault("end", r["start"] + 60)
    return r


def write_flow_log(root: Path, records: Iterable[Mapping[str, Any]], *, fields: tuple[str, ...] = DEFAULT_FIELDS,
                   day: str = "2026/11/10", name: str = "fl-test", account: str = ACCOUNT, region: str = REGION,
                   header: bool = True) -> Path:
    """One gzipped flow-log file under AWSLogs/<account>/vpcflowlogs/<region>/<day>/, as S3 delivery writes it."""
    folder = root / "AWSLogs" / account / "vpcflowlogs" / region / day
    folder.mkdir(parents=True, exist_ok=True)
    existing = len(list(folder.glob("*.log.gz")))
    path = folder / f"{account}_vpcflowlogs_{region}_{name}_{day.replace('/', '')}T0000Z_{existing:08x}.log.gz"
    lines = [" ".join(fields)] if header else []
    for r in records:
        lines.append(" ".join("-" if r.get(f) is None else str(r.get(f)) for f in fields))
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def write_inventory(root: Path, enis: Mapping[str, Iterable[str]], groups: Iterable[Mapping[str, Any]] = (),
                    eni_groups: Mapping[str, Iterable[str]] | None = None, rules: Iterable[Mapping[str, Any]] = (),
                    captured_at: str = "2026-11-10T00:00:00Z") -> Path:
    """AWS-CLI-shaped inventory JSON: ENIs with their private addresses, groups and rules."""
    folder = root / ACCOUNT / REGION
    folder.mkdir(parents=True, exist_ok=True)
    eni_groups = eni_groups or {}
    interfaces = [{"NetworkInterfaceId": eni, "VpcId": "vpc-1", "SubnetId": "subnet-1", "OwnerId": ACCOUNT,
                   "AvailabilityZone": "us-east-1a", "Status": "in-use", "InterfaceType": "interface",
                   "RequesterManaged": False,
                   "Groups": [{"GroupId": g, "GroupName": g} for g in eni_groups.get(eni, ())],
                   "PrivateIpAddresses": [{"PrivateIpAddress": a, "Primary": i == 0}
                                          for i, a in enumerate(addrs) if ":" not in a],
                   "Ipv6Addresses": [{"Ipv6Address": a} for a in addrs if ":" in a]}
                  for eni, addrs in enis.items()]
    doc = {"captured_at": captured_at}
    (folder / "describe-network-interfaces.json").write_text(json.dumps({"NetworkInterfaces": interfaces, **doc}))
    (folder / "describe-security-groups.json").write_text(json.dumps({"SecurityGroups": list(groups), **doc}))
    (folder / "describe-security-group-rules.json").write_text(json.dumps({"SecurityGroupRules": list(rules), **doc}))
    return root


def write_config(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(textwrap.dedent(body).lstrip())
    return p
