"""What a demo run wrote: the files and the facts each week holds (``.auditor-demo.json``), which the tests read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any


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
