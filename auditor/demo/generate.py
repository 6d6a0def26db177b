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

import hashlib
import json
import random
import shutil
from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path

from auditor.clock import utcnow
from auditor.demo.flows import (
    Flows,
    background,
    brute_force_turns_to_scanning,
    on_call_fixes,
    plan_week,
    scenarios,
    week_blocks,
    write_flow_files,
)
from auditor.demo.inventory import inventory_documents
from auditor.demo.manifest import DemoManifest
from auditor.demo.trail import Trail, cloudtrail_story, read_only_noise, signal_story, write_trail_files
from auditor.demo.world import (
    ACCOUNT_ID,
    BRUTE_FORCE_IP,
    DR_REGION,
    ENIS,
    EXPOSED_PORT,
    FLOW_LOGS,
    GROUPS,
    MARKER,
    OWNED_DIRS,
    REGION,
    SCANNER_IP,
    as_datetime,
    rid,
    write_file,
)
from auditor.errors import UsageError

# The demo that `make run` writes: five weeks, the last one reported and the four before backfilled, so that the
# first report has trends, and persisting, escalated, resolved and aged-out findings.
DEMO_DAYS = 35
ESCALATION_DAYS = 21  # shorter demos (the tests') keep the data they always had


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
    anchor = anchor or utcnow().date()
    if days < 1:
        raise UsageError(f"days must be at least 1, not {days}")
    root = Path(out)
    _prepare(root)
    until = int(datetime(anchor.year, anchor.month, anchor.day, tzinfo=timezone.utc).timestamp())
    since = until - days * 86400
    counts: dict[str, int] = defaultdict(int)

    plan_rng = random.Random(_seed(anchor, days, "plan"))
    blocks = week_blocks(since, until)
    plans = [plan_week(plan_rng, b) for b in blocks]

    flows = Flows(random.Random(_seed(anchor, days, "flows")))
    background(flows, since, until)
    flows.rng = random.Random(_seed(anchor, days, "scenarios"))
    weeks = tuple(scenarios(flows, b, p) for b, p in zip(blocks, plans))
    on_call = on_call_fixes(flows, blocks, random.Random(_seed(anchor, days, "on-call")))
    weeks = tuple(w if t is None else replace(w, on_call_ssh_at=as_datetime(t)) for w, t in zip(weeks, on_call))
    if days >= ESCALATION_DAYS:  # a demo long enough for a backfilled history: the escalation lands in its newest week
        brute_force_turns_to_scanning(flows, blocks, random.Random(_seed(anchor, days, "escalation")))
    flow_files = write_flow_files(root, flows.records, random.Random(_seed(anchor, days, "dirt")), counts)

    trail = Trail(random.Random(_seed(anchor, days, "cloudtrail")))
    read_only_noise(trail, since, until)
    opened = [cloudtrail_story(trail, b, p) for b, p in zip(blocks, plans)]
    trail.rng = random.Random(_seed(anchor, days, "signals"))  # its own stream: the stories above keep their IDs
    for b, p in zip(blocks, plans):
        signal_story(trail, b, p)
    duplicate = opened[0]
    trail_files, digest_files = write_trail_files(root, trail, duplicate,
                                                   random.Random(_seed(anchor, days, "trail-files")), counts)

    inventory_files = []
    for region in (REGION, DR_REGION):
        for name, doc in inventory_documents(region, until).items():
            # The CLI's own JSON output: four-space indent, keys in the API's order.
            inventory_files.append(write_file(root / "inventory" / ACCOUNT_ID / region / name,
                                          (json.dumps(doc, indent=4) + "\n").encode()))

    manifest = DemoManifest(
        root=root, anchor=anchor, days=days, since=as_datetime(since), until=as_datetime(until), account_id=ACCOUNT_ID,
        regions=(REGION, DR_REGION), flow_log_ids={k: f.flow_log_id for k, f in FLOW_LOGS.items()},
        flowlog_files=tuple(sorted(flow_files)), cloudtrail_files=tuple(sorted(trail_files)),
        digest_files=tuple(digest_files), inventory_files=tuple(inventory_files), scanner_ip=SCANNER_IP,
        bruteforce_ip=BRUTE_FORCE_IP, bastion_eni=ENIS["bastion"].eni_id, exposed_eni=ENIS["mysql"].eni_id,
        exposed_port=EXPOSED_PORT, exposed_group=GROUPS["db-mysql-legacy"].group_id,
        bastion_group=GROUPS["bastion"].group_id, sg_opened_then_closed=GROUPS["app-servers"].group_id,
        unused_group=GROUPS["ftp-partner-legacy"].group_id, on_call_rule=rid("sgr", "reporting/1"),
        default_groups=(GROUPS["default-main"].group_id, GROUPS["default-dr"].group_id),
        uncovered_eni=ENIS["sandbox"].eni_id, duplicate_event_id=duplicate["eventID"], weeks=weeks,
        counts=dict(sorted(counts.items())))
    (root / MARKER).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")
    return manifest
