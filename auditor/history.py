"""Run history: stored run records, and what changed since the previous comparable run.

Records live in ``state_dir/runs/`` (never inside the reports folder, so cleaning old reports never erases
history). Each is versioned (``record_version``); a record from a newer version is skipped with a
warning rather than misread. Trends come from stored records only, never from re-querying AWS.

"Previous run" of a check: the latest stored run over the same sources whose window ended at or before
this run's ``since``, and in which that check ran (pass or fail). So re-running the same window compares
with the week before, not with itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from auditor.models import (
    Change,
    CheckResult,
    Finding,
    ResolvedFinding,
    RunRecord,
    Severity,
    Status,
    TimeWindow,
    TrendPoint,
)

RECORD_VERSION = 1
TREND_RUNS = 12


@dataclass(frozen=True)
class StoredCheck:
    status: str
    findings: Mapping[str, tuple[str, str]]  # active fingerprint -> (title, severity)
    metric: float


@dataclass(frozen=True)
class StoredRun:
    run_id: str
    since: datetime
    until: datetime
    sources_key: str
    checks: Mapping[str, StoredCheck]


def sources_key(sources: Any) -> str:
    """A hash of the configured sources: only runs over the same inputs are compared."""
    data = sources.model_dump(mode="json") if hasattr(sources, "model_dump") else sources
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def metric_value(check: CheckResult) -> float:
    """The check's key metric: its active findings, or the sum of a numeric row column."""
    if check.metric == "findings":
        return float(len(check.active_findings))
    return float(sum(r.get(check.metric) or 0 for r in check.rows if isinstance(r.get(check.metric), (int, float))))


def record_document(record: RunRecord, findings_doc: Mapping[str, Any]) -> dict[str, Any]:
    """What is stored for a run: the findings document plus what comparing runs needs."""
    return {"record_version": RECORD_VERSION, "sources_key": record.sources_key,
            "metrics": {c.check_id: metric_value(c) for c in record.checks}, "findings": findings_doc}


class History:
    """The run records in one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "runs"
        self.warnings: list[str] = []

    def save(self, record: RunRecord, findings_doc: Mapping[str, Any]) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{record.window.until.strftime('%Y%m%dT%H%M%SZ')}-{record.id}.json"
        tmp = path.with_suffix(".json.tmp")
        try:
            tmp.write_text(json.dumps(record_document(record, findings_doc), indent=1, ensure_ascii=False))
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a full disk leaves no half record behind
            raise
        return path

    def load(self) -> list[StoredRun]:
        runs = []
        deliveries = []
        for path in sorted(self.dir.glob("*.json")) if self.dir.is_dir() else []:
            try:
                doc = json.loads(path.read_text())
                version = doc.get("record_version")
                if version != RECORD_VERSION:
                    self.warnings.append(f"{path.name}: run record version {version} is not {RECORD_VERSION}; skipped")
                    continue
                runs.append(_stored(doc))
                if isinstance(doc.get("delivery"), dict):
                    run = doc["findings"]["run"]
                    deliveries.append({**doc["delivery"], "run_id": run["id"], "finished_at": run.get("finished_at")})
            except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
                self.warnings.append(f"{path.name}: unreadable run record ({exc}); skipped")
        self.warnings.extend(_delivery_warnings(deliveries))
        return runs

    def record_delivery(self, run_id: str, delivery: Mapping[str, Any]) -> bool:
        """Add how a run's report was mailed (auditor.deliver) to its stored record; the next report shows a failure."""
        for path in sorted(self.dir.glob(f"*-{run_id}.json")) if self.dir.is_dir() else []:
            doc = json.loads(path.read_text())
            doc["delivery"] = dict(delivery)
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False))
            os.replace(tmp, path)
            return True
        return False


def _delivery_warnings(deliveries: list[Mapping[str, Any]]) -> list[str]:
    """A warning for each suite whose latest delivery failed; a later successful one clears it.

    "Latest" is by the time the run finished (then the time of the delivery), not by file name: the records of
    re-runs of one window differ only in their random run IDs."""
    latest: dict[str, Mapping[str, Any]] = {}
    for d in sorted(deliveries, key=lambda d: (_time_or_min(d.get("finished_at")), _time_or_min(d.get("at")))):
        latest[str(d.get("suite") or "")] = d
    return [f"the report of run {d['run_id']} (suite {suite}) was not delivered to {', '.join(d.get('recipients') or ())}: "
            f"{d.get('error')} ({d.get('attempts')} attempts, last at {d.get('at')}); it is kept at {d.get('report')}"
            for suite, d in sorted(latest.items()) if d.get("status") == "failed"]


def _stored(doc: Mapping[str, Any]) -> StoredRun:
    f = doc["findings"]
    run = f["run"]
    checks = {}
    for c in f["checks"]:
        active = {x["fingerprint"]: (x["title"], x["severity"]) for x in c["findings"] if not x.get("suppressed")}
        checks[c["id"]] = StoredCheck(status=c["status"], findings=active, metric=float(doc["metrics"].get(c["id"], 0)))
    return StoredRun(run_id=run["id"], since=_time(run["since"]), until=_time(run["until"]),
                     sources_key=doc["sources_key"], checks=checks)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _time_or_min(text: Any) -> datetime:
    try:
        return _time(text) if isinstance(text, str) else datetime.min.replace(tzinfo=timezone.utc)
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)


def compare(record: RunRecord, history: Iterable[StoredRun], event_like: Mapping[str, bool]) -> RunRecord:
    """Mark each finding new or persisting, list what the previous run had and this one lacks, and add trends.

    Pure: the stored runs come in as values.
    """
    comparable = [r for r in history if r.sources_key == record.sources_key and r.until <= record.window.since
                  and r.run_id != record.id]
    # One record per window: a re-run of a window replaces the earlier run of it.
    latest: dict[tuple[datetime, datetime], StoredRun] = {}
    for r in sorted(comparable, key=lambda r: r.run_id):
        latest[(r.since, r.until)] = r
    ordered = sorted(latest.values(), key=lambda r: r.until)
    previous_ids = []
    checks = []
    for check in record.checks:
        prev = next((r for r in reversed(ordered) if r.checks.get(check.check_id)
                     and r.checks[check.check_id].status in (Status.PASS.value, Status.FAIL.value)), None)
        checks.append(_compare_check(check, prev, event_like.get(check.check_id, False), ordered, record))
        if prev is not None:
            previous_ids.append((prev.until, prev.run_id))
    previous = max(previous_ids)[1] if previous_ids else None
    window = next((TimeWindow(r.since, r.until) for r in ordered if r.run_id == previous), None)
    return replace(record, checks=tuple(checks), previous_run_id=previous, previous_window=window)


def _changed(finding: Finding, before: tuple[str, str] | None) -> Finding:
    """new; persisting; or escalated / de-escalated when it persists with a higher / lower severity than the
    previous run gave it (``previous_severity``)."""
    if before is None:
        return replace(finding, change=Change.NEW)
    previous = Severity.parse(before[1])
    if finding.severity.rank > previous.rank:
        return replace(finding, change=Change.ESCALATED, previous_severity=previous)
    if finding.severity.rank < previous.rank:
        return replace(finding, change=Change.DE_ESCALATED, previous_severity=previous)
    return replace(finding, change=Change.PERSISTING)


def _compare_check(check: CheckResult, prev: StoredRun | None, event_like: bool,
                   ordered: list[StoredRun], record: RunRecord) -> CheckResult:
    ran = check.status in (Status.PASS, Status.FAIL)
    before = prev.checks[check.check_id].findings if prev is not None else {}
    findings = tuple(_changed(f, before.get(f.fingerprint)) for f in check.findings)
    resolved: tuple[ResolvedFinding, ...] = ()
    if ran and prev is not None:
        now = {f.fingerprint for f in check.findings}  # a finding suppressed now is not resolved
        label = "aged out" if event_like else "resolved"
        resolved = tuple(ResolvedFinding(fp, title, Severity.parse(sev), label)
                         for fp, (title, sev) in sorted(before.items(), key=lambda kv: kv[1]) if fp not in now)
    points = [TrendPoint(r.run_id, r.until, r.checks[check.check_id].metric) for r in ordered
              if check.check_id in r.checks and r.checks[check.check_id].status in (Status.PASS.value, Status.FAIL.value)]
    if ran:
        points.append(TrendPoint(record.id, record.window.until, metric_value(check)))
    return replace(check, findings=findings, resolved=resolved, trend=tuple(points[-TREND_RUNS:]))
