"""Findings as OCSF 1.1.0 Detection Finding events (class 2004, category 2 "Findings").

One event per finding, active and suppressed, plus one "Close" event per finding the previous run
had and this one lacks. Required attributes are pinned in
auditor/schemas/ocsf-1.1.0-detection_finding.required.json (tests check every event against it).

Mapping (https://schema.ocsf.io/1.1.0/classes/detection_finding):
- ``activity_id``: 1 Create for a new finding (or when there is nothing to compare with),
  2 Update for a persisting one, 3 Close for a resolved or aged-out one.
- ``status_id``: 1 New, 3 Suppressed (a config exception matched; its owner, reason and expiry go in
  ``comment``), 4 Resolved.
- ``finding_info.uid`` is the finding's fingerprint, stable across runs, so a consumer can follow
  one finding from Create to Close.
- The cloud profile is applied: ``cloud.provider`` is "AWS", with the account and region when known.
- What OCSF has no attribute for (the check ID, the key columns, the compliance controls) goes in
  ``unmapped.auditor``, with ``check_status``.
- A finding of a check with status ``no_data`` (a configuration fact reported while a source it reads yielded
  no usable record, e.g. a world-open rule with no flow evidence in the window) says so in ``status_detail``.
  A ``no_data`` check closes nothing: the previous run's findings are not resolved by an absence of evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from auditor.checks import CheckSpec
from auditor.exports import (
    TOOL,
    controls,
    data_sources,
    fingerprint,
    resources,
    spec_text,
)
from auditor.models import Change, CheckResult, Finding, ResolvedFinding, RunRecord, Severity, Status, utc

OCSF_VERSION = "1.1.0"
CLASS_UID = 2004
CATEGORY_UID = 2
_SEVERITY_ID = {Severity.INFO: 1, Severity.LOW: 2, Severity.MEDIUM: 3, Severity.HIGH: 4, Severity.CRITICAL: 5}
_SEVERITY_NAME = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
_ACTIVITY = {1: "Create", 2: "Update", 3: "Close"}
_STATUS = {1: "New", 3: "Suppressed", 4: "Resolved"}
_AWS_ACCOUNT = 10  # OCSF account type_id "AWS Account"


def to_ocsf(record: RunRecord, specs: Mapping[str, CheckSpec]) -> list[dict[str, Any]]:
    """Every finding of the run, and every resolved one, as an OCSF Detection Finding event."""
    events: list[dict[str, Any]] = []
    for check in record.checks:
        spec = specs.get(check.check_id)
        for finding in check.findings:
            events.append(_finding_event(record, spec, finding, check))
        for gone in check.resolved:
            events.append(_closed_event(record, spec, check.check_id, check.title, gone))
    return events


def _finding_event(record: RunRecord, spec: CheckSpec | None, finding: Finding, check: CheckResult) -> dict[str, Any]:
    check_title = check.title
    # OCSF activity 1 Create, 2 Update: a finding the previous run had (whatever its severity now) is an update.
    activity = 1 if finding.change in (None, Change.NEW) else 2
    status = 3 if finding.suppressed else 1
    account = finding.account_id or _only(record.accounts)
    region = finding.region or _only(record.regions)
    event = _base(record, spec, finding.check_id, check_title, activity, status, finding.severity,
                  fingerprint(finding), finding.title, account, region)
    event["resources"] = [
        {"uid": r.id, "type": r.ocsf_type, "data": {r.column: r.value} if r.column else {"key": r.value},
         **({"region": region} if region else {})}
        for r in resources(finding, account_id=account, region=region)
    ]
    if finding.suppression is not None:
        s = finding.suppression
        event["comment"] = f"Suppressed by {s.owner} until {s.expires.isoformat()}: {s.reason}"
    if check.status is Status.NO_DATA:
        event["status_detail"] = " ".join(check.notes[:1]) or "no data"
    event["unmapped"]["auditor"].update({
        "check_status": check.status.value,
        "key": {k: _plain(v) for k, v in finding.key.items()},
        "change": finding.change.value if finding.change else None,
        "previous_severity": finding.previous_severity.value if finding.previous_severity else None,
        "suppression": finding.suppression.to_json() if finding.suppression else None,
    })
    return event


def _closed_event(record: RunRecord, spec: CheckSpec | None, check_id: str, check_title: str,
                  gone: ResolvedFinding) -> dict[str, Any]:
    event = _base(record, spec, check_id, check_title, 3, 4, gone.severity, gone.fingerprint, gone.title,
                  _only(record.accounts), _only(record.regions))
    event["unmapped"]["auditor"].update({"change": gone.label, "previous_run_id": record.previous_run_id})
    return event


def _base(record: RunRecord, spec: CheckSpec | None, check_id: str, check_title: str, activity: int, status: int,
          severity: Severity, uid: str, title: str, account: str | None, region: str | None) -> dict[str, Any]:
    severity_id = _SEVERITY_ID[severity]
    cloud: dict[str, Any] = {"provider": "AWS"}
    if account:
        cloud["account"] = {"uid": account, "type_id": _AWS_ACCOUNT, "type": "AWS Account"}
    if region:
        cloud["region"] = region
    finding_info: dict[str, Any] = {
        "uid": uid,
        "title": title,
        "types": [check_id],
        "analytic": {"uid": check_id, "name": spec_text(spec, "title") or check_title, "type_id": 1, "type": "Rule"},
    }
    description = spec_text(spec, "description")
    if description:
        finding_info["desc"] = description
    sources = data_sources(spec)
    if sources:
        finding_info["data_sources"] = sources
    event: dict[str, Any] = {
        "activity_id": activity,
        "activity_name": _ACTIVITY[activity],
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + activity,
        "type_name": f"Detection Finding: {_ACTIVITY[activity]}",
        "time": _ms(record.finished_at),
        "start_time": _ms(record.window.since),
        "end_time": _ms(record.window.until),
        "severity_id": severity_id,
        "severity": _SEVERITY_NAME[severity_id],
        "status_id": status,
        "status": _STATUS[status],
        "message": title,
        "finding_info": finding_info,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": TOOL, "vendor_name": TOOL, "version": record.tool_version},
            "profiles": ["cloud"],
            "uid": f"{record.id}/{uid}",
            "correlation_uid": record.id,
        },
        "cloud": cloud,
        "unmapped": {"auditor": {"check_id": check_id, "run_id": record.id, "compliance": controls(spec)}},
    }
    remediation = spec_text(spec, "remediation")
    if remediation:
        event["remediation"] = {"desc": remediation}
    return event


def _ms(dt: datetime) -> int:
    return int(utc(dt).timestamp() * 1000)


def _only(values: tuple[str, ...]) -> str | None:
    return values[0] if len(values) == 1 else None


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
