"""Query rows -> check results: JSON-ready rows, findings, status and severity. Pure functions."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from auditor import formatting as fmt
from auditor.checks import CheckSpec
from auditor.models import CheckResult, DataQuality, Finding, Names, QueryRun, Severity, Status, iso_z


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


def findings_from_rows(spec: CheckSpec, rows: Iterable[Mapping[str, Any]],
                       names: Names | None = None) -> tuple[Finding, ...]:
    """One finding for every row whose ``severity`` column is set, titled (and advised) in words, with the
    inventory's ``names`` for the interfaces and groups it mentions."""
    out = []
    for row in rows:
        sev = row.get("severity")
        if sev is None:
            continue
        key = {k: row.get(k) for k in spec.key}
        account, region = row.get("account_id"), row.get("region")
        out.append(Finding(check_id=spec.id, severity=Severity.parse(str(sev)), title=spec.finding_title(row, names),
                           key=key, account_id=account, region=region,
                           fingerprint=fingerprint(spec.id, account, region, key),
                           remediation=spec.finding_remediation(row, names)))
    return tuple(out)


def status_and_severity(active: tuple[Finding, ...], default: Severity) -> tuple[Status, Severity]:
    """fail with the highest active finding's severity, or pass with the check's default severity."""
    if not active:
        return Status.PASS, default
    return Status.FAIL, max((f.severity for f in active), key=lambda s: s.rank)


# How a finding of a no_data check is labelled, by the source that yielded nothing.
NO_EVIDENCE = {"flow_logs": "no flow evidence in the window", "cloudtrail": "no CloudTrail evidence in the window",
               "inventory": "no inventory evidence"}
SOURCE_WORDS = {"flow_logs": "the flow logs", "cloudtrail": "CloudTrail", "inventory": "the inventory"}


def check_result(spec: CheckSpec, columns: Iterable[str], rows: Iterable[Mapping[str, Any]],
                 queries: tuple[QueryRun, ...], stats: Mapping[str, Any] | None = None,
                 notes: tuple[str, ...] = (), chart: Iterable[Mapping[str, Any]] = (),
                 no_data: tuple[str, ...] = (), names: Names | None = None) -> CheckResult:
    """A finished check: status fail when it has findings, pass otherwise.

    ``no_data`` names the sources the check reads that yielded no usable record in its window. The status is
    then no_data, whatever the rows: the check cannot say pass, and an absence of evidence is no finding. A
    check whose findings say that something was *not* seen (``findings_from_absence``) keeps no row at all;
    another keeps the rows that other sources gave (a world-open rule from the inventory), and their findings
    say that the evidence was missing.
    """
    if no_data and spec.meta.findings_from_absence:
        rows = ()
    cols, json_rows = normalize_rows(columns, rows)
    findings = findings_from_rows(spec, json_rows, names)
    if no_data:
        label = "; ".join(NO_EVIDENCE.get(s, f"no {s} evidence") for s in no_data)
        findings = tuple(replace(f, title=f"{f.title} ({label})") for f in findings)
        notes = (no_data_note(no_data, spec.meta.findings_from_absence, bool(json_rows)),) + tuple(notes)
        severity = status_and_severity(findings, spec.severity)[1]
        status = Status.NO_DATA
    else:
        status, severity = status_and_severity(findings, spec.severity)
    chart_rows = tuple({k: json_value(v) for k, v in r.items()} for r in chart)
    return CheckResult(check_id=spec.id, title=spec.title, status=status,
                       severity=severity, columns=cols, rows=json_rows, findings=findings,
                       stats={"rows": len(json_rows), "findings": len(findings), **(stats or {})},
                       queries=queries, notes=notes, default_severity=spec.severity, chart=chart_rows,
                       metric=spec.meta.metric, no_data_sources=tuple(no_data))


def no_data_note(sources: Iterable[str], from_absence: bool, has_rows: bool) -> str:
    """The sentences that say why a check has no data, and what that means for its rows."""
    sources = tuple(sources)
    names = " and ".join(SOURCE_WORDS.get(s, s) for s in sources)
    said = f"{names[0].upper()}{names[1:]} yielded no usable record in the window"
    if from_absence:
        return f"{said}. Its verdicts would rest on an absence of evidence, so it gives none."
    if has_rows:
        labels = "; ".join(NO_EVIDENCE.get(s, f"no {s} evidence") for s in sources)
        return (f"{said}, so it cannot say pass. The rows shown are configuration facts from its other sources, "
                f"each finding marked '{labels}'.")
    return f"{said}, so it cannot say pass."


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


SHOWN_UNREADABLE = 3  # unreadable inputs named in the warning; the data-quality section lists them all


def input_counters(quality: DataQuality) -> dict[str, int]:
    """The skipped input as data-quality counters, for tooling that reads findings.json."""
    return {"inputs_unreadable": len(quality.unreadable), "lines_malformed": quality.malformed,
            "records_invalid": quality.invalid}


def input_warnings(quality: DataQuality) -> tuple[str, ...]:
    """The warnings that say what input a run had to skip: files and folders it could not read, malformed lines,
    invalid records. Without ``--strict`` they are the only sign of it: the run still exits 0."""
    out = []
    unreadable = quality.unreadable
    if unreadable:
        named = "; ".join(f"{f.path}: {f.error}" for f in unreadable[:SHOWN_UNREADABLE])
        more = len(unreadable) - SHOWN_UNREADABLE
        noun = "input file or folder" if len(unreadable) == 1 else "input files or folders"
        out.append(f"{len(unreadable):,} {noun} could not be read, or not to the end, and "
                   f"{'was' if len(unreadable) == 1 else 'were'} skipped: {named}"
                   + (f"; and {more:,} more" if more > 0 else "") + " (see Data quality).")
    if quality.malformed:
        files = sum(1 for f in quality.files if f.malformed)
        out.append(f"{fmt.count(quality.malformed, 'malformed line')} in {fmt.count(files, 'file')} "
                   "could not be read and were skipped (see Data quality).")
    if quality.invalid:
        files = sum(1 for f in quality.files if f.invalid)
        out.append(f"{fmt.count(quality.invalid, 'record')} in {fmt.count(files, 'file')} held values no log holds (a port "
                   "over 65535, a negative count, a start after the end, an address that is no IP address, a request "
                   "that is no JSON object) and were left out of the checks (see Data quality).")
    return tuple(out)
