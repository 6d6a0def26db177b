"""The fault matrix's project: a small set of good inputs, each fault added beside them, and one run of the CLI.

The good inputs are known to the record, so every row can prove that a fault cost nothing else:

* flow logs, two files: 203.0.113.66 rejected 10 times on eni-web (a top_rejected_sources finding), and two
  accepted SSH flows from 198.51.100.7 through the world-open rule;
* CloudTrail, one file of three events: a world-open RDP rule opened (a high sg_changes finding), a group set on
  an interface, a group created;
* the inventory: eni-web in sg-web, whose rules open SSH to the world and 8080 to 10.0.0.0/8 (unused).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from auditor.cli import main
from tests.support.flowdata import ACCOUNT, REGION, record, write_config, write_flow_log, write_inventory
from tests.support.trail import event, ingress, write_trail

SINCE, UNTIL = "2026-11-09", "2026-11-16"
SCANNER, SSH_CLIENT = "203.0.113.66", "198.51.100.7"
FLOW_RECORDS, TRAIL_RECORDS, REJECTED = 12, 3, 10
FLOW_DAY = "AWSLogs/111122223333/vpcflowlogs/us-east-1/2026/11"
TRAIL_DAY = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11"
RDP_EVENT = "rdp-opened"

CONFIG = """
    sources:
      flow_logs: flows
      cloudtrail: trail
      inventory: inventory
    checks:
      top_rejected_sources: {min_flows: 5}
      exposed_well_known_ports: {}
      unused_sg_rules: {}
      sg_changes: {}
    """


def flow_lines(*records: dict[str, Any]) -> list[str]:
    """Flow-log lines of the default format, without the header."""
    fields = ("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
              "packets", "bytes", "start", "end", "action", "log-status")
    return [" ".join("-" if r.get(f) is None else str(r[f]) for f in fields) for r in records]


HEADER = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
          "log-status")


def good_record(**kw: Any) -> dict[str, Any]:
    """A rejected flow from the scanner to eni-web, with ``kw`` changed."""
    return record(**{"interface_id": "eni-web", "srcaddr": SCANNER, "dstaddr": "10.0.1.10", "action": "REJECT", **kw})


def trail_events() -> list[dict[str, Any]]:
    return [event("AuthorizeSecurityGroupIngress", ingress("sg-web", "tcp", 3389, 3389, "0.0.0.0/0"),
                  event_id=RDP_EVENT),
            event("ModifyNetworkInterfaceAttribute", {"networkInterfaceId": "eni-web",
                                                      "groupSet": {"items": [{"groupId": "sg-web"}]}},
                  time="2026-11-11T08:00:00Z", event_id="attach"),
            event("CreateSecurityGroup", {"groupName": "new"}, {"groupId": "sg-new"}, time="2026-11-12T09:00:00Z",
                  event_id="create")]


def make_project(root: Path, *, flows: bool = True) -> Path:
    """The good inputs and the config under ``root``; returns the config's path."""
    if flows:
        write_flow_log(root / "flows", [good_record(dstport=22 + i, srcport=40000 + i) for i in range(6)]
                       + [record(interface_id="eni-web", srcaddr=SSH_CLIENT, dstaddr="10.0.1.10", dstport=22,
                                 srcport=50000 + i) for i in range(2)], day="2026/11/10", name="good-a")
        write_flow_log(root / "flows", [good_record(dstport=100 + i, start="2026-11-11T06:00:00Z") for i in range(4)],
                       day="2026/11/11", name="good-b")
    else:
        (root / "flows").mkdir(parents=True, exist_ok=True)
    write_trail(root / "trail", trail_events())
    rules = [{"SecurityGroupRuleId": "sgr-ssh", "GroupId": "sg-web", "GroupOwnerId": ACCOUNT, "IsEgress": False,
              "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv4": "0.0.0.0/0"},
             {"SecurityGroupRuleId": "sgr-8080", "GroupId": "sg-web", "GroupOwnerId": ACCOUNT, "IsEgress": False,
              "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "CidrIpv4": "10.0.0.0/8"}]
    write_inventory(root / "inventory", {"eni-web": ["10.0.1.10"]},
                    groups=[{"GroupId": "sg-web", "GroupName": "web", "VpcId": "vpc-1", "OwnerId": ACCOUNT,
                             "Description": "web tier"}],
                    eni_groups={"eni-web": ["sg-web"]}, rules=rules)
    return write_config(root, CONFIG)


@dataclass
class Run:
    """One run of ``auditor run`` over a project: what it exited with, said and wrote."""

    root: Path
    exit_code: int
    output: str
    out: Path
    doc: dict[str, Any] | None = None
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def files(self) -> list[dict[str, Any]]:
        return self.doc["data_quality"]["files"] if self.doc else []

    def file(self, relative: str) -> dict[str, Any]:
        """The data-quality entry of the input at ``relative`` (a path under the project)."""
        wanted = str(self.root / relative)
        (entry,) = [f for f in self.files if f["path"] == wanted]
        return entry

    def total(self, name: str) -> int:
        return sum(f.get(name) or 0 for f in self.files)

    def records_under(self, folder: str) -> int:
        prefix = str(self.root / folder) + os.sep
        return sum(f["records"] for f in self.files if f["path"].startswith(prefix))

    @property
    def warnings(self) -> list[str]:
        return self.doc["run"]["warnings"] if self.doc else []


def run_cli(root: Path, config: Path, *args: str, formats: str = "json,csv,html", env: dict[str, str] | None = None,
            in_process: bool = True) -> Run:
    """``auditor run`` over the test window into ``root/out``: in this process (CliRunner), or in a child
    process with ``env`` (for what only a fresh process sees, such as the time zone)."""
    out = root / "out"
    argv = ["run", "--config", str(config), "--since", SINCE, "--until", UNTIL, "--out", str(out), "--force",
            "--format", formats, *args]
    if in_process:
        result = CliRunner().invoke(main, argv)
        code, output = result.exit_code, result.output
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
    else:
        proc = subprocess.run([sys.executable, "-m", "auditor", *argv], capture_output=True, text=True,
                              env={**os.environ, **(env or {})}, cwd=root, timeout=300)
        code, output = proc.returncode, proc.stdout + proc.stderr
    run = Run(root=root, exit_code=code, output=output, out=out)
    if (out / "findings.json").is_file():
        run.doc = json.loads((out / "findings.json").read_text())
        run.checks = {c["id"]: c for c in run.doc["checks"]}
    return run


__all__ = ["ACCOUNT", "REGION", "CONFIG", "FLOW_DAY", "FLOW_RECORDS", "HEADER", "REJECTED", "RDP_EVENT", "Run",
           "SCANNER", "SINCE", "TRAIL_DAY", "TRAIL_RECORDS", "UNTIL", "event", "flow_lines", "good_record",
           "make_project", "run_cli", "trail_events", "write_config", "write_trail"]
