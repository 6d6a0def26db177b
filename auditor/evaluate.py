"""Query rows -> check results: JSON-ready rows, findings, status and severity. Pure functions."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from auditor.checks import CheckSpec
from auditor.models import CheckResult, Finding, QueryRun, Severity, Status, iso_z


def json_value(value: Any) -> Any:
    """A row value as findings.json wants it: times as ISO 8601 UTC with Z, integers as integers."""
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and value.is_integer() and not math.isinf(value):
        return int(value)
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    return value


def normalize_rows(columns: Iterable[str], rows: Iterable[Mapping[str, Any]]) -> tuple[tuple[str, ...], tuple[dict[str, Any], ...]]:
    cols = tuple(columns)
    return cols, tuple({c: json_value(r.get(c)) for c in cols} for r in rows)


def fingerprint(check_id: str, account_id: str | None, region: str | None, key: Mapping[str, Any]) -> str:
    """A finding's identity across runs: check ID, account, region and the key columns of its row.

    It never depends on row position, titles or counts, so a finding that persists keeps its fingerprint.
    """
    canonical = json.dumps([check_id, account_id or "", region or "", sorted((k, json_value(v)) for k, v in key.items())],
                           separators=(",", ":"), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def findings_from_rows(spec: CheckSpec, rows: Iterable[Mapping[str, Any]]) -> tuple[Finding, ...]:
    """One finding for every row whose ``severity`` column is set."""
    out = []
    for row in rows:
        sev = row.get("severity")
        if sev is None:
            continue
        key = {k: row.get(k) for k in spec.key}
        account, region = row.get("account_id"), row.get("region")
        out.append(Finding(check_id=spec.id, severity=Severity.parse(str(sev)), title=spec.finding_title(row),
                           key=key, account_id=account, region=region,
                           fingerprint=fingerprint(spec.id, account, region, key)))
    return tuple(out)


def status_and_severity(active: tuple[Finding, ...], default: Severity) -> tuple[Status, Severity]:
    """fail with the highest active finding's severity, or pass with the check's default severity."""
    if not active:
        return Status.PASS, default
    return Status.FAIL, max((f.severity for f in active), key=lambda s: s.rank)


def check_result(spec: CheckSpec, columns: Iterable[str], rows: Iterable[Mapping[str, Any]],
                 queries: tuple[QueryRun, ...], stats: Mapping[str, Any] | None = None,
                 notes: tuple[str, ...] = (), chart: Iterable[Mapping[str, Any]] = ()) -> CheckResult:
    """A finished check: status fail when it has findings, pass otherwise."""
    cols, json_rows = normalize_rows(columns, rows)
    findings = findings_from_rows(spec, json_rows)
    status, severity = status_and_severity(findings, spec.severity)
    chart_rows = tuple({k: json_value(v) for k, v in r.items()} for r in chart)
    return CheckResult(check_id=spec.id, title=spec.title, status=status,
                       severity=severity, columns=cols, rows=json_rows, findings=findings,
                       stats={"rows": len(json_rows), "findings": len(findings), **(stats or {})},
                       queries=queries, notes=notes, default_severity=spec.severity, chart=chart_rows,
                       metric=spec.meta.metric)


def errored(spec: CheckSpec, message: str, queries: tuple[QueryRun, ...] = ()) -> CheckResult:
    return CheckResult(check_id=spec.id, title=spec.title, status=Status.ERROR, severity=spec.severity,
                       error=message, queries=queries, default_severity=spec.severity, metric=spec.meta.metric)


def skipped(spec: CheckSpec, reason: str) -> CheckResult:
    return CheckResult(check_id=spec.id, title=spec.title, status=Status.SKIPPED, severity=spec.severity,
                       notes=(reason,), stats={"skip_reason": reason}, default_severity=spec.severity,
                       metric=spec.meta.metric)


def meets(findings: Iterable[Finding], threshold: Severity) -> bool:
    """Whether any unsuppressed finding is at or above ``threshold`` (for --fail-on)."""
    return any(f.severity.rank >= threshold.rank and not f.suppressed for f in findings)
