"""The report's view model: every formatting decision, made once, in plain frozen values.

``build_view`` is a pure function of the run record and the check specs. Templates only place the
strings it produces; they never format a number, a date or a severity themselves, so a user who
overrides a template cannot get those wrong. Charts are part of the view too: SVG images drawn from
the record (auditor/render/charts.py), handed to the templates as ``data:`` URIs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable, Mapping, Protocol, Sequence

from auditor.models import (
    Change,
    CheckResult,
    DataQuality,
    Finding,
    QueryRun,
    ResolvedFinding,
    RunRecord,
    Severity,
    Status,
    TrendPoint,
    iso_z,
    utc,
)
from auditor.evaluate import input_warnings
from auditor.render import charts as chartlib

log = logging.getLogger(__name__)

DEFAULT_TITLE = "Network security audit"
MAX_CELL_CHARS = 240  # a cell longer than this (a policy document, a long user agent) is cut; the CSV has it whole
LINE_CLASSES = ("records", "nodata", "headers", "blank", "malformed", "invalid", "duplicates")
TOP_ACTIONS = 5
EXPIRY_NOTICE_DAYS = 14  # a suppression expiring this soon is flagged beside its finding

# Worst first: what needs action leads the report, what could not run comes next.
_STATUS_ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.NO_DATA: 2, Status.PASS: 3, Status.SKIPPED: 4}
_SEVERITIES = sorted(Severity, key=lambda s: -s.rank)
_STATUS_WORDS = {Status.FAIL: "failed", Status.ERROR: "errored", Status.NO_DATA: "had no data", Status.PASS: "passed",
                 Status.SKIPPED: "skipped"}
_STATUS_TEXT = {Status.FAIL: "Fail", Status.ERROR: "Error", Status.NO_DATA: "No data", Status.PASS: "Pass",
                Status.SKIPPED: "Skipped"}
_CHANGE_ORDER = {Change.NEW: 0, None: 1, Change.PERSISTING: 2}


class CheckSpec(Protocol):
    """What the renderer needs from a check's metadata (the check library's spec satisfies this).

    Also read when present: ``engines`` (names of the engines that can run the check) and
    ``meta.compliance`` (controls with ``framework``, ``version``, ``control`` and ``title``).
    """

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def risk(self) -> str: ...
    @property
    def remediation(self) -> str: ...
    @property
    def severity(self) -> Severity: ...
    @property
    def key(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Label:
    """A status, severity or change as shown: ``value`` names the CSS class, ``text`` is what the reader sees."""

    value: str
    text: str


@dataclass(frozen=True)
class Cell:
    text: str
    kind: str  # "text" | "num" | "null" | "json": picks alignment and style
    full_length: int = 0  # the original length when ``text`` was cut, else 0


@dataclass(frozen=True)
class Column:
    name: str
    is_key: bool  # one of the check's key columns (what identifies a finding)
    width: str  # CSS width, e.g. "12.5%"
    numeric: bool  # every value shown is a number: right-aligned, header too


@dataclass(frozen=True)
class Table:
    """A bounded table: at most ``table_limit`` rows, with a note saying where the rest is."""

    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    total: int
    truncated: bool
    note: str  # "" when every row is shown
    wide: bool  # too wide for a portrait page: its section prints on landscape pages
    dense: bool = False  # too wide even on its side: printed in a smaller font


@dataclass(frozen=True)
class ChartView:
    """An SVG chart, embedded as a data: URI (it loads nothing), with its text equivalent."""

    title: str
    alt: str
    src: str  # data:image/svg+xml;base64,...
    width: str  # CSS length, e.g. "176mm"
    height: str


@dataclass(frozen=True)
class TrendView:
    metric: str  # "findings", "rejected flows"
    text: str  # "4 this run, 6 the run before; 2 to 9 over the last 7 runs"
    chart: ChartView | None  # None with fewer than two runs


@dataclass(frozen=True)
class FindingView:
    severity: Label
    title: str
    key_text: str  # "srcaddr=203.0.113.9, dstport=22"
    where: str  # "123456789012 / eu-west-1", "" when unknown
    change: Label | None = None  # new / persisting; None when the run had nothing to compare with
    fingerprint: str = ""  # shortened, for matching with findings.json and exports
    suppressed: bool = False
    owner: str = ""  # of the suppression
    reason: str = ""
    expires: str = ""  # "2026-12-01"
    expiry_note: str = ""  # "expires in 9 days", "expired 3 days ago", "" when far off


@dataclass(frozen=True)
class ResolvedView:
    severity: Label
    title: str
    fingerprint: str
    label: Label  # resolved / aged out


@dataclass(frozen=True)
class ControlView:
    framework: str
    version: str
    control: str
    title: str


@dataclass(frozen=True)
class QueryView:
    check_id: str
    check_title: str
    anchor: str  # of the query's block in the appendix
    name: str
    engine: str
    duration: str
    rows: str
    bytes_scanned: str  # "" when the engine does not report it
    records_scanned: str
    query_id: str
    params: tuple[tuple[str, str], ...]
    truncated: bool
    text: str


@dataclass(frozen=True)
class CheckView:
    id: str
    anchor: str
    title: str
    status: Label
    severity: Label
    actionable: bool  # failed or errored: worth a reader's attention
    description: tuple[str, ...]  # paragraphs: what the check looks at
    risk: tuple[str, ...]  # why it matters
    remediation: tuple[str, ...]
    engines: str
    findings: tuple[FindingView, ...]  # active (unsuppressed) findings, worst first, bounded
    findings_have_where: bool  # some finding names an account or region: show that column
    findings_total: int  # active findings
    findings_note: str
    new_count: int
    persisting_count: int
    change_text: str  # "2 new, 1 persisting" or ""
    suppressed: tuple[FindingView, ...]  # bounded
    suppressed_total: int
    suppressed_note: str
    resolved: tuple[ResolvedView, ...]  # bounded
    resolved_total: int
    resolved_heading: str  # "Resolved since the previous run", "Aged out since the previous run", ...
    resolved_note: str
    charts: tuple[ChartView, ...]
    trend: TrendView | None
    controls: tuple[ControlView, ...]
    table: Table
    csv_path: str
    error: str
    skip_reason: str
    notes: tuple[str, ...]
    stats: tuple[tuple[str, str], ...]
    queries: tuple[QueryView, ...]


@dataclass(frozen=True)
class SummaryRow:
    id: str
    anchor: str
    title: str
    status: Label
    severity: Label
    findings: int  # active
    new: int
    suppressed: int
    resolved: int
    rows: int
    actionable: bool  # failed or errored: worth a reader's attention
    trend: ChartView | None


@dataclass(frozen=True)
class SeverityTotal:
    severity: Label
    findings: int  # active findings
    new: int  # active findings new since the previous run
    checks: int  # failed checks whose worst finding has this severity


@dataclass(frozen=True)
class ChangeSummary:
    new: int
    persisting: int
    resolved: int
    aged_out: int
    suppressed: int
    previous_run_id: str
    text: str  # one sentence for the summary


@dataclass(frozen=True)
class ActionView:
    """One of the top things to act on: an active finding, worst and newest first."""

    severity: Label
    change: Label | None
    title: str
    where: str
    check_id: str
    check_title: str
    anchor: str
    step: str  # the first sentence of the check's remediation


@dataclass(frozen=True)
class Problem:
    """An errored check (with its message) or a skipped one (with its reason)."""

    id: str
    anchor: str
    title: str
    message: str


@dataclass(frozen=True)
class FileRow:
    path: str
    counts: tuple[Cell, ...]  # one per line class, in LINE_CLASSES order
    has_malformed: bool  # something in it was skipped: malformed or invalid lines, or the file itself
    error: str = ""  # why the file (or folder) could not be read, or not to its end
    notes: tuple[str, ...] = ()  # the skipped events it held, named


@dataclass(frozen=True)
class QualityView:
    files_text: str  # "Read 3 of 4 files present."
    malformed_text: str  # "12 malformed lines could not be read." or "No malformed lines."
    unreadable_text: str  # "2 files or folders could not be read, or not to the end." or ""
    malformed: int
    columns: tuple[str, ...]  # the line classes
    path_prefix: str  # the folder every file path starts with, shown once; "" when there is none
    files: tuple[FileRow, ...]  # files with skipped or repeated-header lines, worst first, bounded
    files_total: int  # every file read
    files_total_text: str  # "All 4 files"
    note: str  # "" when every file is shown
    totals: tuple[Cell, ...]  # one per line class, over every file (not only the shown ones)
    notes: tuple[str, ...]
    counters: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class AttachmentView:
    name: str
    size: str
    sha256: str


@dataclass(frozen=True)
class ReportView:
    title: str
    run_id: str
    engine: str
    window_since: str
    window_until: str
    window_text: str
    window_short: str  # for the running header: "2024-05-06 to 2024-05-13"
    window_length: str
    generated_at: str
    generated_iso: str  # for the document's metadata
    started_at: str
    finished_at: str
    duration: str
    tool_version: str
    schema_version: int
    inventory_captured_at: str
    accounts_text: str  # "111122223333, 444455556666" or "not recorded"
    regions_text: str
    previous_run_text: str  # "run 1a2b3c4d (2024-04-29 to 2024-05-06)" or a sentence saying there was none
    status_text: str  # "9 checks: 2 failed, 1 errored, 5 passed, 1 skipped"
    findings_text: str  # "12 active findings (2 suppressed)"
    errors_text: str  # "1 check could not run"
    incomplete: bool  # some check errored: the report does not cover everything it should
    no_data: tuple[Problem, ...]  # checks whose sources yielded no usable record, with why
    no_data_text: str  # the sentence the report and the mail open with when there are such checks; else ""
    worst_severity: Label | None
    summary: tuple[SummaryRow, ...]
    severity_totals: tuple[SeverityTotal, ...]
    findings_total: int  # active findings
    change: ChangeSummary
    top_actions: tuple[ActionView, ...]
    warnings: tuple[str, ...]
    errors: tuple[Problem, ...]
    skipped: tuple[Problem, ...]
    checks: tuple[CheckView, ...]
    coverage: tuple[tuple[str, str], ...]  # what the run covered, as label/value pairs
    quality: QualityView
    queries: tuple[QueryView, ...]
    attachments: tuple[AttachmentView, ...]  # files embedded in the PDF, with their SHA-256
    table_limit: int


def build_view(record: RunRecord, specs: Mapping[str, CheckSpec], *, table_limit: int = 50,
               title: str = DEFAULT_TITLE, generated_at: datetime | None = None,
               attachments: Mapping[str, bytes] | None = None, charts: bool = True) -> ReportView:
    """Turn a run record into the report's view model.

    ``specs`` maps check IDs to their metadata; a check without a spec still renders, from its result
    alone. ``generated_at`` defaults to the run's end, so the same record always renders the same report.
    ``attachments`` (name -> bytes) are the files the PDF will embed: they are listed with their
    SHA-256, and bounded tables name them. ``charts=False`` leaves the charts out (they cost about
    0.1 s each to draw).
    """
    if table_limit < 1:
        raise ValueError(f"table_limit must be at least 1, not {table_limit}")
    order = sorted(range(len(record.checks)), key=lambda i: _check_order(record.checks[i], i))
    results = [record.checks[i] for i in order]
    generated = generated_at if generated_at is not None else record.finished_at
    attached = frozenset(attachments or ())
    checks = tuple(_check_view(r, specs.get(r.check_id), table_limit, record, utc(generated).date(), attached, charts)
                   for r in results)
    window = record.window
    status_counts = {s: sum(1 for r in results if r.status is s) for s in sorted(Status, key=_STATUS_ORDER.get)}
    worst = record.worst_severity()
    active_total = sum(len(r.active_findings) for r in results)
    suppressed_total = sum(len(r.findings) - len(r.active_findings) for r in results)
    return ReportView(
        title=title,
        run_id=record.id,
        engine=record.engine,
        window_since=_when(window.since),
        window_until=_when(window.until),
        window_text=f"{_when(window.since)} \u2264 t < {_when(window.until)}",
        window_short=f"{_short_when(window.since)} to {_short_when(window.until)}",
        window_length=_span(window.duration.total_seconds()),
        generated_at=_when(generated),
        generated_iso=iso_z(generated),
        started_at=_when(record.started_at),
        finished_at=_when(record.finished_at),
        duration=_span((utc(record.finished_at) - utc(record.started_at)).total_seconds()),
        tool_version=record.tool_version,
        schema_version=record.schema_version,
        inventory_captured_at=_when(record.inventory_captured_at) if record.inventory_captured_at else "",
        accounts_text=_listing(record.accounts or _seen(results, "account_id")),
        regions_text=_listing(record.regions or _seen(results, "region")),
        previous_run_text=(f"run {record.previous_run_id}" if record.previous_run_id else
                           "none: this is the first run over these sources and window length"),
        status_text=(f"{_count(len(results), 'check')}: "
                     + ", ".join(f"{n:,} {_STATUS_WORDS[s]}" for s, n in status_counts.items() if n)
                     if results else "No checks ran"),
        findings_text=(_count(active_total, "active finding")
                       + (f" ({suppressed_total:,} more suppressed)" if suppressed_total else "")),
        errors_text=f"{_count(status_counts[Status.ERROR], 'check')} could not run",
        incomplete=record.errored,
        no_data=tuple(Problem(c.id, c.anchor, c.title, c.notes[0] if c.notes else "") for c in checks
                      if c.status.value == Status.NO_DATA.value),
        no_data_text=_no_data_text(status_counts[Status.NO_DATA]),
        worst_severity=_severity(worst) if worst else None,
        summary=tuple(_summary_row(r, c) for r, c in zip(results, checks)),
        severity_totals=_severity_totals(results),
        findings_total=active_total,
        change=_change_summary(record, results),
        top_actions=_top_actions(results, checks),
        warnings=_warnings(record),
        errors=tuple(Problem(c.id, c.anchor, c.title, c.error) for c in checks if c.status.value == "error"),
        skipped=tuple(Problem(c.id, c.anchor, c.title, c.skip_reason) for c in checks if c.status.value == "skipped"),
        checks=checks,
        coverage=_coverage(record, results),
        quality=_quality_view(record.data_quality, table_limit),
        queries=tuple(q for c in checks for q in c.queries),
        attachments=tuple(AttachmentView(name, _bytes(len(data)), hashlib.sha256(data).hexdigest())
                          for name, data in (attachments or {}).items()),
        table_limit=table_limit,
    )


def _no_data_text(n: int) -> str:
    if not n:
        return ""
    return (f"{_count(n, 'check')} read no usable record in {'its' if n == 1 else 'their'} window, so this report "
            f"cannot vouch for what {'it covers' if n == 1 else 'they cover'}: an empty or misplaced source is "
            "no pass.")


def _check_order(result: CheckResult, index: int) -> tuple[int, int, int]:
    return (_STATUS_ORDER[result.status], -result.severity.rank, index)


def _status(status: Status) -> Label:
    return Label(status.value, _STATUS_TEXT[status])


def _severity(severity: Severity) -> Label:
    return Label(severity.value, severity.value.capitalize())


def _change(change: Change | None) -> Label | None:
    if change is None:
        return None
    return Label(change.value, "New" if change is Change.NEW else "Persisting")


def _check_view(result: CheckResult, spec: CheckSpec | None, table_limit: int, record: RunRecord,
                today: date, attached: frozenset[str], draw: bool) -> CheckView:
    key = tuple(spec.key) if spec is not None else ()
    columns = result.columns or _columns_of(result.rows)
    csv_path = f"results/{result.check_id}.csv"
    where_csv = (f"the attachment {csv_path}" if csv_path in attached else csv_path)

    active = _worst_first(result.active_findings)
    shown = active[:table_limit]
    suppressed = _worst_first(tuple(f for f in result.findings if f.suppressed))
    resolved = tuple(sorted(result.resolved, key=lambda r: -r.severity.rank))
    skip_reason = ""
    if result.status is Status.SKIPPED:
        skip_reason = result.error or "; ".join(result.notes) or "no reason was recorded"
    error = ""
    if result.status is Status.ERROR:
        error = result.error or "the check failed without an error message"
    ran = result.status in (Status.PASS, Status.FAIL)
    new = sum(1 for f in active if f.change is Change.NEW)
    persisting = sum(1 for f in active if f.change is Change.PERSISTING)
    labels = {r.label for r in result.resolved}
    return CheckView(
        id=result.check_id,
        anchor=_anchor(result.check_id),
        title=result.title or (spec.title if spec is not None else result.check_id),
        status=_status(result.status),
        severity=_severity(result.severity),
        actionable=result.status in (Status.FAIL, Status.ERROR, Status.NO_DATA),
        description=_paragraphs(spec.description if spec is not None else ""),
        risk=_paragraphs(spec.risk if spec is not None else ""),
        remediation=_paragraphs(spec.remediation if spec is not None else ""),
        engines=", ".join(getattr(spec, "engines", ()) or ()),
        findings=tuple(_finding_view(f, today) for f in shown),
        findings_have_where=any(f.account_id or f.region for f in shown + suppressed[:table_limit]),
        findings_total=len(active),
        findings_note=_bounded_note(len(shown), len(active), "active findings", "every finding is in findings.json"),
        new_count=new,
        persisting_count=persisting,
        change_text=", ".join(t for t in (f"{new:,} new" if new else "", f"{persisting:,} persisting" if persisting else "") if t),
        suppressed=tuple(_finding_view(f, today) for f in suppressed[:table_limit]),
        suppressed_total=len(suppressed),
        suppressed_note=_bounded_note(min(len(suppressed), table_limit), len(suppressed), "suppressed findings",
                                      "every finding is in findings.json"),
        resolved=tuple(_resolved_view(r) for r in resolved[:table_limit]),
        resolved_total=len(resolved),
        resolved_heading=_resolved_heading(labels),
        resolved_note=_bounded_note(min(len(resolved), table_limit), len(resolved), "",
                                    "every one is in findings.json"),
        charts=_charts(result, record) if draw and ran else (),
        trend=_trend(result.trend, result.metric, draw) if ran or result.trend else None,
        controls=_controls(spec),
        table=_table(columns, result.rows, key, table_limit,
                     lambda n, total: f"showing {n:,} of {total:,} rows; all {total:,} are in {where_csv}"),
        csv_path=csv_path,
        error=error,
        skip_reason=skip_reason,
        # A skipped check's notes are its reason, shown once in that place.
        notes=() if result.status is Status.SKIPPED and not result.error else tuple(result.notes),
        stats=tuple((str(k), _cell(v).text) for k, v in result.stats.items()),
        queries=tuple(_query_view(result, q, i) for i, q in enumerate(result.queries)),
    )


def _worst_first(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    # Stable: within a severity, new before persisting, then the check's own order (e.g. most flows first).
    return tuple(sorted(findings, key=lambda f: (-f.severity.rank, _CHANGE_ORDER.get(f.change, 1))))


def _bounded_note(shown: int, total: int, noun: str, rest: str) -> str:
    if total <= shown:
        return ""
    return f"showing {shown:,} of {total:,}{' ' + noun if noun else ''}; {rest}"


def _resolved_heading(labels: set[str]) -> str:
    if labels == {"aged out"}:
        return "Aged out since the previous run"
    if labels == {"resolved"} or not labels:
        return "Resolved since the previous run"
    return "Resolved or aged out since the previous run"


def _resolved_view(r: ResolvedFinding) -> ResolvedView:
    label = Label("aged-out" if r.label == "aged out" else re.sub(r"[^a-z0-9-]+", "-", r.label.lower()),
                  r.label.capitalize())
    return ResolvedView(_severity(r.severity), r.title, _short_fingerprint(r.fingerprint), label)


def _short_fingerprint(fingerprint: str) -> str:
    return fingerprint[:12]


def _charts(result: CheckResult, record: RunRecord) -> tuple[ChartView, ...]:
    """The charts a check's data supports: recognised by the columns present, not by the check's ID."""
    out: list[ChartView] = []
    chart_rows = tuple(getattr(result, "chart", ()) or ())
    if chart_rows and {"bucket", "flows"} <= set(chart_rows[0]) and {"srcaddr", "source"} & set(chart_rows[0]):
        hourly = record.window.duration <= chartlib.HOURLY_MAX
        chart = _drawn(result.check_id, chartlib.rejected_flows_chart, chart_rows, record.window)
        if chart is not None:
            out.append(_chart_view(f"Rejected flows per {'hour' if hourly else 'day'}, "
                                   f"top {chartlib.TOP_SOURCES} sources stacked", chart))
    if {"dstport", "protocol", "public_sources"} <= set(result.columns):
        chart = _drawn(result.check_id, chartlib.exposed_ports_chart, result.rows)
        if chart is not None:
            out.append(_chart_view("Exposed ports: distinct public sources per port, shaded by severity", chart))
    return tuple(out)


def _drawn(what: str, draw: Callable[..., chartlib.Chart | None], *args: Any) -> chartlib.Chart | None:
    """A chart, or None when it cannot be drawn: a chart is an illustration of data the report also
    shows as text, so a failure to draw one (a missing font, an SVG refused as unsafe) is logged and
    the report goes on without it."""
    try:
        return draw(*args)
    except Exception:  # noqa: BLE001 - see the docstring
        log.warning("could not draw a chart for %s; the report leaves it out", what, exc_info=True)
        return None


def _chart_view(title: str, chart: chartlib.Chart) -> ChartView:
    return ChartView(title, chart.alt, chart.data_uri, f"{chart.width_mm:g}mm", f"{chart.height_mm:g}mm")


def _trend(points: Sequence[TrendPoint], metric: str, draw: bool) -> TrendView | None:
    if not points:
        return None
    recent = list(points)[-chartlib.SPARKLINE_RUNS:]
    values = [p.value for p in recent]
    name = metric.replace("_", " ")
    text = f"{_plain(values[-1])} this run"
    if len(values) > 1:
        text += (f", {_plain(values[-2])} the run before; {_plain(min(values))} to {_plain(max(values))} "
                 f"over the last {len(values)} runs")
    else:
        text += "; earlier runs will show here"
    chart = _drawn(metric, chartlib.sparkline, values) if draw and len(values) > 1 else None
    return TrendView(name, text, _chart_view(f"{name} over the last {len(values)} runs", chart) if chart else None)


def _controls(spec: CheckSpec | None) -> tuple[ControlView, ...]:
    meta = getattr(spec, "meta", None)
    controls = getattr(meta, "compliance", None) or getattr(spec, "compliance", None) or ()
    return tuple(ControlView(str(c.framework), str(c.version), str(c.control), str(getattr(c, "title", "") or ""))
                 for c in controls)


def _change_summary(record: RunRecord, results: Sequence[CheckResult]) -> ChangeSummary:
    active = [f for r in results for f in r.active_findings]
    new = sum(1 for f in active if f.change is Change.NEW)
    persisting = sum(1 for f in active if f.change is Change.PERSISTING)
    aged = sum(1 for r in results for x in r.resolved if x.label == "aged out")
    resolved = sum(len(r.resolved) for r in results) - aged
    suppressed = sum(1 for r in results for f in r.findings if f.suppressed)
    if record.previous_run_id:
        parts = [f"{new:,} new", f"{persisting:,} persisting", f"{resolved:,} resolved"]
        if aged:
            parts.append(f"{aged:,} aged out")
        text = f"Since run {record.previous_run_id}: " + ", ".join(parts) + "."
    else:
        text = "There is no earlier comparable run, so nothing is marked resolved."
    if suppressed:
        text += f" {_count(suppressed, 'finding')} {'is' if suppressed == 1 else 'are'} suppressed by exceptions."
    return ChangeSummary(new, persisting, resolved, aged, suppressed, record.previous_run_id or "", text)


def _top_actions(results: Sequence[CheckResult], checks: Sequence[CheckView]) -> tuple[ActionView, ...]:
    ranked = sorted(
        ((f, i, j) for i, r in enumerate(results) for j, f in enumerate(r.active_findings)),
        key=lambda t: (-t[0].severity.rank, _CHANGE_ORDER.get(t[0].change, 1), t[1], t[2]),
    )
    out = []
    for finding, i, _ in ranked[:TOP_ACTIONS]:
        check = checks[i]
        out.append(ActionView(_severity(finding.severity), _change(finding.change), finding.title,
                              _where(finding), check.id, check.title, check.anchor,
                              _first_sentence(" ".join(check.remediation))))
    return tuple(out)


def _first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return match.group(1) if match else text


def _coverage(record: RunRecord, results: Sequence[CheckResult]) -> tuple[tuple[str, str], ...]:
    ran = [r for r in results if r.status in (Status.PASS, Status.FAIL)]
    blind = sum(1 for r in results if r.status is Status.NO_DATA)
    rows = [
        ("Window", f"{_when(record.window.since)} to {_when(record.window.until)} ({_span(record.window.duration.total_seconds())})"),
        ("Accounts", _listing(record.accounts or _seen(results, "account_id"))),
        ("Regions", _listing(record.regions or _seen(results, "region"))),
        ("Engine", record.engine),
        ("Checks", f"{len(ran):,} of {len(results):,} ran to completion"
                   + (f"; {blind:,} had no data" if blind else "")),
        ("Files", f"{record.data_quality.files_read:,} read of {record.data_quality.files_present:,} present"),
    ]
    if record.inventory_captured_at:
        rows.append(("Inventory", f"captured {_when(record.inventory_captured_at)}"))
    return tuple(rows)


def _seen(results: Sequence[CheckResult], attr: str) -> tuple[str, ...]:
    """Accounts or regions named by findings, when the run record does not list them."""
    return tuple(sorted({v for r in results for f in r.findings if (v := getattr(f, attr))}))


def _listing(values: Sequence[str]) -> str:
    return ", ".join(values) if values else "not recorded"


def _where(finding: Finding) -> str:
    return " / ".join(x for x in (finding.account_id, finding.region) if x)


def _columns_of(rows: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return tuple(seen)


def _table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], key: Sequence[str], limit: int,
           note: Callable[[int, int], str]) -> Table:
    shown = rows[:limit]
    total = len(rows)
    cells = tuple(tuple(_cell(row.get(c)) for c in columns) for row in shown)
    natural = _natural_widths(columns, cells)
    wide = sum(n for n, _ in natural) > _PORTRAIT_CHARS
    dense = sum(f for _, f in natural) > _LANDSCAPE_CHARS
    page = int(_LANDSCAPE_CHARS * _DENSE_SCALE) if dense else _LANDSCAPE_CHARS if wide else _PORTRAIT_CHARS
    widths = _column_widths(natural, page)
    return Table(
        columns=tuple(Column(c, c in key, w, _numeric(cells, i)) for i, (c, w) in enumerate(zip(columns, widths))),
        rows=cells,
        total=total,
        truncated=total > len(shown),
        note=note(len(shown), total) if total > len(shown) else "",
        wide=wide,
        dense=dense,
    )


# Widths are counted in characters of the table font (7.5 pt): an A4 page less its margins holds
# about 110 of them upright and 165 on its side. A cell's padding costs about 2.
_PORTRAIT_CHARS = 110
_LANDSCAPE_CHARS = 165
_CELL_PADDING = 2
_SHORT_COLUMN = 18  # headers longer than this may wrap
_WORD_CAP = 26  # a value without spaces up to this long (IDs, addresses, timestamps) is never broken
_BREAKABLE_FLOOR = 10  # the least a column of longer words (ARNs, user agents) gets; they break anyway
_LONG_CAP = 50  # past this, a long column's share stops growing: it wraps instead
_DENSE_SCALE = 7.5 / 6.5  # a table too wide even on its side prints at 6.5 pt instead of 7.5 pt


def _numeric(cells: Sequence[Sequence[Cell]], i: int) -> bool:
    kinds = {row[i].kind for row in cells} - {"null"}
    return kinds == {"num"}


def _natural_widths(columns: Sequence[str], cells: Sequence[Sequence[Cell]]) -> list[tuple[float, float]]:
    """Per column, in characters: the width it would like (its longest value or its header), and the
    least it should get: its longest word when every word is short (IDs, addresses, times, which
    should never break), else a small floor, since long words (and JSON) break anyway."""
    out = []
    for i, name in enumerate(columns):
        texts = [row[i].text for row in cells]
        longest = max((_chars(t) for t in texts), default=0)
        word = max((_chars(w) for t in texts for w in t.split()), default=0)
        header = min(len(name), _SHORT_COLUMN) * 1.1  # bold header text is about 10% wider
        natural = max(header, longest, 2) + _CELL_PADDING
        atomic = word <= _WORD_CAP and not any(row[i].kind == "json" for row in cells)
        floor = min(natural, max(min(header, 12.0), word if atomic else _BREAKABLE_FLOOR, 2) + _CELL_PADDING)
        out.append((natural, floor))
    return out


def _chars(text: str) -> float:
    # A digit is about 15% wider than the average character of DejaVu Sans (0.64 em against 0.55):
    # without this, a 12-digit account ID breaks in a column sized for 12 characters.
    return len(text) + 0.15 * sum(c.isdigit() for c in text)


def _column_widths(widths: Sequence[tuple[float, float]], page: int) -> tuple[str, ...]:
    """Column widths as percentages of the table.

    The tables use fixed layout: WeasyPrint's automatic layout measures the narrowest possible width
    of every cell, which with long unbreakable values (ARNs, user agents) made a 300-row report take
    30 s. Every column first gets its floor (its longest word, capped), so IDs, addresses and times
    never break mid-word, which also spares WeasyPrint many retries at breaking lines; long columns
    then share what is left, and wrap at spaces.
    """
    if not widths:
        return ()
    natural = [n for n, _ in widths]
    floors = [f for _, f in widths]
    if sum(natural) <= page:
        chosen = natural
    elif sum(floors) <= page:
        growth = [max(min(n, _LONG_CAP) - f, 0.0) for n, f in widths]
        share = min(1.0, (page - sum(floors)) / sum(growth)) if sum(growth) else 0.0
        chosen = [f + g * share for f, g in zip(floors, growth)]
    else:  # too many columns to keep every word whole
        chosen = floors
    total = sum(chosen)
    return tuple(f"{100 * w / total:.2f}%" for w in chosen)


def _cell(value: Any) -> Cell:
    if value is None:
        return Cell("\u2014", "null")
    if isinstance(value, bool):
        return Cell("true" if value else "false", "text")
    if isinstance(value, int):
        # No thousands separators: most integers in these tables are ports, protocol numbers and IDs.
        return Cell(str(value), "num")
    if isinstance(value, (float, Decimal)):
        return Cell(_number(value), "num")
    if isinstance(value, datetime):
        return Cell(utc(value).strftime("%Y-%m-%d %H:%M:%SZ"), "text")
    if isinstance(value, date):
        return Cell(value.isoformat(), "text")
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return _cut(_compact_json(sorted(value, key=str) if isinstance(value, (set, frozenset)) else value), "json")
    if isinstance(value, bytes):
        return _cut(value.hex(), "text")
    text = str(value)
    if text[:1] in ("[", "{") and text[-1:] in ("]", "}"):
        try:
            return _cut(_compact_json(json.loads(text)), "json")
        except ValueError:
            pass
    return _cut(text, "text")


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False, default=str)


def _cut(text: str, kind: str) -> Cell:
    if len(text) <= MAX_CELL_CHARS:
        return Cell(text, kind)
    return Cell(text[: MAX_CELL_CHARS - 1] + "\u2026", kind, len(text))


def _number(value: float | Decimal) -> str:
    if value != value:  # NaN
        return "NaN"
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    if abs(number) >= 1:
        # Counts, rates and averages: two decimals are plenty, and no scientific notation.
        return f"{number:.2f}".rstrip("0").rstrip(".")
    return f"{number:.4g}"


def _finding_view(finding: Finding, today: date) -> FindingView:
    key_text = ", ".join(f"{k}={_cell(v).text}" for k, v in finding.key.items())
    view = FindingView(_severity(finding.severity), finding.title, key_text, _where(finding), _change(finding.change),
                       _short_fingerprint(finding.fingerprint))
    s = finding.suppression
    if s is None:
        return view
    days = (s.expires - today).days
    if days < 0:
        note = f"expired {_count(-days, 'day')} ago"
    elif days == 0:
        note = "expires today"
    elif days <= EXPIRY_NOTICE_DAYS:
        note = f"expires in {_count(days, 'day')}"
    else:
        note = ""
    return FindingView(view.severity, view.title, view.key_text, view.where, view.change, view.fingerprint,
                       True, s.owner, s.reason, s.expires.isoformat(), note)


def _query_view(result: CheckResult, run: QueryRun, index: int) -> QueryView:
    stats = run.stats
    return QueryView(
        check_id=result.check_id,
        check_title=result.title,
        anchor=f"{_anchor(result.check_id)}-q{index + 1}",
        name=run.name,
        engine=run.engine or stats.engine,
        duration=_seconds(stats.duration_s),
        rows=f"{run.rows:,}",
        bytes_scanned=_bytes(stats.bytes_scanned) if stats.bytes_scanned is not None else "",
        records_scanned=f"{stats.records_scanned:,}" if stats.records_scanned is not None else "",
        query_id=stats.query_id or "",
        params=tuple((str(k), _param(v)) for k, v in stats.params.items()),
        truncated=stats.truncated,
        # The text the engine ran (after transpiling) is the evidence; the planned text is the fallback.
        text=(stats.text_as_run or run.text).strip("\n"),
    )


def _param(value: Any) -> str:
    if isinstance(value, datetime):
        return iso_z(value)
    return _cell(value).text


def _summary_row(result: CheckResult, check: CheckView) -> SummaryRow:
    return SummaryRow(
        id=check.id,
        anchor=check.anchor,
        title=check.title,
        status=check.status,
        severity=check.severity,
        findings=check.findings_total,
        new=check.new_count,
        suppressed=check.suppressed_total,
        resolved=check.resolved_total,
        rows=len(result.rows),
        actionable=check.actionable,
        trend=check.trend.chart if check.trend else None,
    )


def _severity_totals(results: Sequence[CheckResult]) -> tuple[SeverityTotal, ...]:
    totals = []
    for severity in _SEVERITIES:
        active = [f for r in results for f in r.active_findings if f.severity is severity]
        checks = sum(1 for r in results if r.status is Status.FAIL and r.severity is severity)
        totals.append(SeverityTotal(_severity(severity), len(active), sum(1 for f in active if f.change is Change.NEW),
                                    checks))
    return tuple(totals)


def _warnings(record: RunRecord) -> tuple[str, ...]:
    # The pipeline puts the input warnings in the record already; a record made otherwise gets them here.
    warnings = list(record.warnings) + list(input_warnings(record.data_quality))
    return tuple(dict.fromkeys(warnings))  # in order, without repeats


def _quality_view(quality: DataQuality, limit: int) -> QualityView:
    # Only files with lines that were skipped or out of place are listed, worst first: a demo week has
    # hundreds of clean files, and listing the first 50 of them showed nothing. The totals row counts
    # every file, and findings.json lists every file.
    notable = [f for f in quality.files
               if f.error or f.malformed or f.invalid or f.blank or f.duplicates or f.headers > 1 or f.notes]
    files = sorted(notable, key=lambda f: (not f.error, -(f.malformed + f.invalid),
                                           -(f.blank + f.duplicates + f.headers)))
    totals = {c: sum(getattr(f, c) for f in quality.files) for c in LINE_CLASSES}
    shown = files[:limit]
    clean = len(quality.files) - len(files)
    parts = []
    if len(files) > len(shown):
        parts.append(f"showing {len(shown):,} of the {len(files):,} files with skipped lines, worst first")
    if clean and files:
        parts.append(f"{_count(clean, 'file')} with nothing skipped {'is' if clean == 1 else 'are'} not listed")
    note = "; ".join(parts) + ("; every file is in findings.json" if parts else "")
    malformed = totals["malformed"]
    prefix = _common_folder([f.path for f in shown])
    total_files = len(quality.files)
    return QualityView(
        files_text=f"Read {quality.files_read:,} of {_count(quality.files_present, 'file')} present.",
        malformed_text=(f"{_count(malformed, 'malformed line')} could not be read and were skipped."
                        if malformed else "No malformed lines."),
        unreadable_text=(f"{_count(len(quality.unreadable), 'file or folder', 'files or folders')} could not be "
                         "read, or not to the end." if quality.unreadable else ""),
        malformed=malformed,
        columns=LINE_CLASSES,
        path_prefix=prefix,
        files=tuple(FileRow(f.path[len(prefix):], tuple(_count_cell(getattr(f, c)) for c in LINE_CLASSES),
                            f.malformed > 0 or f.invalid > 0 or bool(f.error), f.error or "", f.notes)
                    for f in shown),
        files_total=total_files,
        files_total_text=(f"All {_count(total_files, 'file')}" if files or not total_files else
                          f"All {_count(total_files, 'file')} (none had a line skipped)"),
        note=note,
        totals=tuple(_count_cell(totals[c]) for c in LINE_CLASSES),
        notes=tuple(quality.notes),
        counters=tuple((k, f"{v:,}") for k, v in sorted(quality.counters.items())),
    )


def _common_folder(paths: Sequence[str]) -> str:
    """The longest folder (ending in "/") that every path starts with, if there are several paths."""
    if len(paths) < 2:
        return ""
    common = os.path.commonprefix(list(paths))
    return common[: common.rfind("/") + 1]


def _count_cell(n: int) -> Cell:
    return Cell(f"{n:,}", "num zero" if n == 0 else "num")


def _count(n: int, noun: str, plural: str = "") -> str:
    if plural:
        return f"{n:,} {noun if n == 1 else plural}"
    return f"{n:,} {noun}{_s(n)}"


def _paragraphs(text: str) -> tuple[str, ...]:
    return tuple(" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip()) if p.strip())


def _anchor(check_id: str) -> str:
    return "check-" + re.sub(r"[^A-Za-z0-9_-]+", "-", check_id)


def _when(dt: datetime) -> str:
    return utc(dt).strftime("%Y-%m-%d %H:%M:%S UTC")


def _short_when(dt: datetime) -> str:
    dt = utc(dt)
    return dt.strftime("%Y-%m-%d") if (dt.hour, dt.minute, dt.second) == (0, 0, 0) else dt.strftime("%Y-%m-%d %H:%M")


def _span(seconds: float) -> str:
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute"), (secs, "second")]
    words = [f"{n} {unit}{_s(n)}" for n, unit in parts if n]
    return " ".join(words[:2]) or "0 seconds"


def _seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs} s"


def _bytes(n: int) -> str:
    # Decimal units, as Athena reports and bills data scanned.
    if n < 1000:
        return f"{n:,} B"
    size, unit = float(n), "B"
    for unit in ("KB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000:
            break
    return f"{size:.1f} {unit}"


def _plain(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _s(n: int) -> str:
    return "" if n == 1 else "s"

