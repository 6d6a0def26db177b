"""Suppressions: config ``exceptions`` matched against findings. Pure functions.

A suppressed finding stays listed, marked with the exception that matched, and counts toward neither the
check's status nor ``--fail-on``. An expired exception suppresses nothing and is warned about, and so is
one that expires within 14 days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from auditor.config import ExceptionSpec, LoadedConfig
from auditor.evaluate import json_value, status_and_severity
from auditor.models import CheckResult, Finding, Status, Suppression
from auditor.registry import did_you_mean

EXPIRY_WARNING = timedelta(days=14)


def validate_exceptions(loaded: LoadedConfig, key_columns: Mapping[str, Sequence[str]]) -> None:
    """Each exception must name a known check and only its key columns (errors point into the config)."""

    for i, exc in enumerate(loaded.config.exceptions):
        if exc.check not in key_columns:
            raise loaded.error(f"exception for unknown check '{exc.check}'{did_you_mean(exc.check, list(key_columns))}",
                               ("exceptions", i, "check"))
        allowed = key_columns[exc.check]
        for column in exc.match:
            if column not in allowed and column not in ("account_id", "region"):
                raise loaded.error(f"'{column}' is not a key column of {exc.check}{did_you_mean(column, list(allowed))}; "
                                   f"match on: {', '.join(allowed)}", ("exceptions", i, "match", column), key=True)
        if not exc.match:
            raise loaded.error("an exception must match at least one key column", ("exceptions", i, "match"))


def _matches(exc: ExceptionSpec, finding: Finding) -> bool:
    if exc.check != finding.check_id:
        return False
    values = {**finding.key, "account_id": finding.account_id, "region": finding.region}
    return all(_same(values.get(col), want) for col, want in exc.match.items())


def _same(have: Any, want: Any) -> bool:
    # Config values come from YAML: 22 and "22" mean the same port; compare as text after normalising.
    return str(json_value(have)) == str(json_value(want))


def apply(checks: Iterable[CheckResult], exceptions: Sequence[ExceptionSpec], today: date) -> tuple[tuple[CheckResult, ...], tuple[str, ...]]:
    """Mark the findings that live exceptions match; recompute status and severity from the rest."""
    live = [e for e in exceptions if e.expires >= today]
    out = []
    for check in checks:
        if not check.findings or check.status is Status.ERROR:
            out.append(check)
            continue
        findings = []
        for f in check.findings:
            hit = next((e for e in live if _matches(e, f)), None)
            findings.append(replace(f, suppression=Suppression(hit.owner, hit.reason, hit.expires)) if hit else f)
        status, severity = status_and_severity(tuple(x for x in findings if not x.suppressed), check.default_severity or check.severity)
        if check.status is Status.NO_DATA:
            status = Status.NO_DATA  # suppressing its findings does not give a check without data a pass
        out.append(replace(check, findings=tuple(findings), status=status, severity=severity))
    return tuple(out), expiry_warnings(exceptions, today)


def expiry_warnings(exceptions: Sequence[ExceptionSpec], today: date) -> tuple[str, ...]:
    warnings = []
    for e in exceptions:
        match = ", ".join(f"{k}={v}" for k, v in e.match.items())
        if e.expires < today:
            warnings.append(f"exception for {e.check} ({match}, owner {e.owner}) expired on {e.expires.isoformat()}: "
                            "its findings count again; renew it or remove it")
        elif e.expires - today <= EXPIRY_WARNING:
            warnings.append(f"exception for {e.check} ({match}, owner {e.owner}) expires on {e.expires.isoformat()}")
    return tuple(warnings)
