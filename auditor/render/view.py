"""Building the report's view model (:mod:`auditor.render.model`) from a run record and the check specs.

``build_view`` is a pure function of the run record and the check specs. Templates only place the
strings it produces; they never format a number, a date or a severity themselves, so a user who
overrides a template cannot get those wrong. Text goes through the one formatting layer
(:mod:`auditor.formatting`), tables through :mod:`auditor.render.layout`. Charts are part of the view
too: SVG images drawn from the record (:mod:`auditor.render.charts`), handed to the templates as ``data:`` URIs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from auditor import formatting as fmt
from auditor.checks import CheckSpec
from auditor.evaluate import input_warnings
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
from auditor.output import query_digest, query_text
from auditor.render import charts as chartlib
from auditor.render import layout
from auditor.render.model import (
    ActionView,
    AttachmentView,
    ChangeSummary,
    ChartView,
    CheckView,
    ControlView,
    FileRow,
    FindingView,
    Label,
    Problem,
    QualityView,
    QueryView,
    ReportView,
    ResolvedView,
    SeverityTotal,
    SummaryRow,
    TrendView,
)

log = logging.getLogger(__name__)

DEFAULT_TITLE = "Network security audit"
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
_CHANGE_ORDER = {Change.ESCALATED: 0, Change.NEW: 0, None: 1, Change.PERSISTING: 2, Change.DE_ESCALATED: 2}


def build_view(record: RunRecord, specs: Mapping[str, CheckSpec], *, table_limit: int = 50,
               title: str = DEFAULT_TITLE, generated_at: datetime | None = None,
               attachments: Mapping[str, bytes] | None = None, charts: bool = True,
               engines: Mapping[str, str] | None = None, appendix: str = "table") -> ReportView:
    """Turn a run record into the report's view model.

    ``specs`` maps check IDs to their metadata; a check without a spec still renders, from its result
    alone. ``engines`` maps each registered engine to its query dialect, to name the engines that can run
    each check. ``generated_at`` defaults to the run's end, so the same record always renders the same report.
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
    dialects = dict(engines or {})
    checks = tuple(_check_view(r, specs.get(r.check_id), table_limit, record, utc(generated).date(), attached, charts,
                               dialects) for r in results)
    window = record.window
    status_counts = {s: sum(1 for r in results if r.status is s) for s in sorted(Status, key=_STATUS_ORDER.get)}
    worst = record.worst_severity()
    active_total = sum(len(r.active_findings) for r in results)
    suppressed_total = sum(len(r.findings) - len(r.active_findings) for r in results)
    return ReportView(
        title=title,
        run_id=record.id,
        engine=record.engine,
        window_since=fmt.when(window.since),
        window_until=fmt.when(window.until),
        window_text=f"{fmt.when(window.since)} \u2264 t < {fmt.when(window.until)}",
        window_short=fmt.window(window.since, window.until),
        window_length=fmt.span(window.duration.total_seconds()),
        generated_at=fmt.when(generated),
        generated_iso=iso_z(generated),
        started_at=fmt.when(record.started_at),
        finished_at=fmt.when(record.finished_at),
        duration=fmt.span((utc(record.finished_at) - utc(record.started_at)).total_seconds()),
        tool_version=record.tool_version,
        schema_version=record.schema_version,
        inventory_captured_at=fmt.when(record.inventory_captured_at) if record.inventory_captured_at else "",
        accounts_text=fmt.listing(record.accounts or _seen(results, "account_id")),
        regions_text=fmt.listing(record.regions or _seen(results, "region")),
        previous_run_text=(fmt.compared_with(record.previous_window) if record.previous_window else
                           f"run {record.previous_run_id}" if record.previous_run_id else
                           "none: this is the first run over these sources and window length"),
        status_text=(f"{fmt.count(len(results), 'check')}: "
                     + ", ".join(f"{n:,} {_STATUS_WORDS[s]}" for s, n in status_counts.items() if n)
                     if results else "No checks ran"),
        findings_text=(fmt.count(active_total, "active finding")
                       + (f" ({suppressed_total:,} more suppressed)" if suppressed_total else "")),
        errors_text=f"{fmt.count(status_counts[Status.ERROR], 'check')} could not run",
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
        attachments=tuple(AttachmentView(name, fmt.size(len(data)), hashlib.sha256(data).hexdigest())
                          for name, data in (attachments or {}).items()),
        table_limit=table_limit,
        appendix_full=appendix == "full",
    )


def _no_data_text(n: int) -> str:
    if not n:
        return ""
    return (f"{fmt.count(n, 'check')} read no usable record in {'its' if n == 1 else 'their'} window, so this report "
            f"cannot vouch for what {'it covers' if n == 1 else 'they cover'}: an empty or misplaced source is "
            "no pass.")


def _check_order(result: CheckResult, index: int) -> tuple[int, int, int]:
    return (_STATUS_ORDER[result.status], -result.severity.rank, index)


def _status(status: Status) -> Label:
    return Label(status.value, _STATUS_TEXT[status])


def _severity(severity: Severity) -> Label:
    return Label(severity.value, severity.value.capitalize())


_CHANGE_TEXT = {Change.NEW: "New", Change.PERSISTING: "Persisting", Change.ESCALATED: "Escalated",
                Change.DE_ESCALATED: "De-escalated"}


def _change(change: Change | None, previous: Severity | None = None) -> Label | None:
    if change is None:
        return None
    text = _CHANGE_TEXT[change]
    if previous is not None:
        text += f" (was {previous.value})"
    return Label(change.value, text)


def _check_view(result: CheckResult, spec: CheckSpec | None, table_limit: int, record: RunRecord,
                today: date, attached: frozenset[str], draw: bool, dialects: Mapping[str, str]) -> CheckView:
    key = tuple(spec.key) if spec is not None else ()
    columns = result.columns or layout.columns_of(result.rows)
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
    persisting = sum(1 for f in active if f.change is not None and f.change is not Change.NEW)
    escalated = sum(1 for f in active if f.change is Change.ESCALATED)
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
        engines=", ".join(name for name, dialect in dialects.items() if spec is not None and spec.runs_on(dialect)),
        findings=tuple(_finding_view(f, today) for f in shown),
        findings_have_where=any(f.account_id or f.region for f in shown + suppressed[:table_limit]),
        findings_total=len(active),
        findings_note=_bounded_note(len(shown), len(active), "active findings", "every finding is in findings.json"),
        new_count=new,
        persisting_count=persisting,
        change_text=", ".join(t for t in (f"{new:,} new" if new else "", f"{persisting:,} persisting" if persisting else "",
                                          f"{escalated:,} of them escalated" if escalated else "") if t),
        suppressed=tuple(_finding_view(f, today) for f in suppressed[:table_limit]),
        suppressed_total=len(suppressed),
        suppressed_note=_bounded_note(min(len(suppressed), table_limit), len(suppressed), "suppressed findings",
                                      "every finding is in findings.json"),
        resolved=tuple(_resolved_view(r) for r in resolved[:table_limit]),
        resolved_total=len(resolved),
        resolved_heading=_resolved_heading(labels),
        resolved_note=_bounded_note(min(len(resolved), table_limit), len(resolved), "",
                                    "every one is in findings.json"),
        charts=_charts(result, record, spec.meta.chart if spec is not None else None) if draw and ran else (),
        trend=_trend(result.trend, result.metric, draw) if ran or result.trend else None,
        controls=_controls(spec),
        table=layout.table(columns, result.rows, key, table_limit,
                     lambda n, total: f"showing {n:,} of {total:,} rows; all {total:,} are in {where_csv}"),
        csv_path=csv_path,
        error=error,
        skip_reason=skip_reason,
        # A skipped check's notes are its reason, shown once in that place.
        notes=() if result.status is Status.SKIPPED and not result.error else tuple(result.notes),
        stats=tuple((str(k), layout.cell(v).text) for k, v in result.stats.items()),
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


def _charts(result: CheckResult, record: RunRecord, chart: str | None) -> tuple[ChartView, ...]:
    """The chart a check's ``check.yaml`` names (``chart:``), drawn from its rows or its chart query's rows."""
    out: list[ChartView] = []
    chart_rows = result.chart
    if chart == "rejected_flows" and chart_rows:
        hourly = record.window.duration <= chartlib.HOURLY_MAX
        chart = _drawn(result.check_id, chartlib.rejected_flows_chart, chart_rows, record.window)
        if chart is not None:
            out.append(_chart_view(f"Rejected flows per {'hour' if hourly else 'day'}, "
                                   f"top {chartlib.TOP_SOURCES} sources stacked", chart))
    if chart == "exposed_ports" and result.rows:
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
    text = f"{fmt.plain(values[-1])} this run"
    if len(values) > 1:
        text += (f", {fmt.plain(values[-2])} the run before; {fmt.plain(min(values))} to {fmt.plain(max(values))} "
                 f"over the last {len(values)} runs")
    else:
        text += "; earlier runs will show here"
    chart = _drawn(metric, chartlib.sparkline, values) if draw and len(values) > 1 else None
    return TrendView(name, text, _chart_view(f"{name} over the last {len(values)} runs", chart) if chart else None)


def _controls(spec: CheckSpec | None) -> tuple[ControlView, ...]:
    controls = spec.meta.compliance if spec is not None else ()
    return tuple(ControlView(c.framework, c.version, c.control, c.title) for c in controls)


def _change_summary(record: RunRecord, results: Sequence[CheckResult]) -> ChangeSummary:
    active = [f for r in results for f in r.active_findings]
    new = sum(1 for f in active if f.change is Change.NEW)
    escalated = sum(1 for f in active if f.change is Change.ESCALATED)
    de_escalated = sum(1 for f in active if f.change is Change.DE_ESCALATED)
    persisting = sum(1 for f in active if f.change is Change.PERSISTING) + escalated + de_escalated
    aged = sum(1 for r in results for x in r.resolved if x.label == "aged out")
    resolved = sum(len(r.resolved) for r in results) - aged
    suppressed = sum(1 for r in results for f in r.findings if f.suppressed)
    compared = ""
    if record.previous_run_id:
        parts = [f"{new:,} new", f"{persisting:,} persisting"
                 + (f" ({escalated:,} escalated{f', {de_escalated:,} de-escalated' if de_escalated else ''})"
                    if escalated else f" ({de_escalated:,} de-escalated)" if de_escalated else ""),
                 f"{resolved:,} resolved"]
        if aged:
            parts.append(f"{aged:,} aged out")
        compared = (fmt.compared_with(record.previous_window) if record.previous_window
                    else f"run {record.previous_run_id}")
        text = f"Compared with {compared}: " + ", ".join(parts) + "."
    else:
        text = "There is no earlier comparable run, so nothing is marked resolved."
    if suppressed:
        text += f" {fmt.count(suppressed, 'finding')} {'is' if suppressed == 1 else 'are'} suppressed by exceptions."
    return ChangeSummary(new, persisting, resolved, aged, suppressed, record.previous_run_id or "", text, escalated,
                         de_escalated, compared)


def _top_actions(results: Sequence[CheckResult], checks: Sequence[CheckView]) -> tuple[ActionView, ...]:
    ranked = sorted(
        ((f, i, j) for i, r in enumerate(results) for j, f in enumerate(r.active_findings)),
        key=lambda t: (-t[0].severity.rank, _CHANGE_ORDER.get(t[0].change, 1), t[1], t[2]),
    )
    out = []
    for finding, i, _ in ranked[:TOP_ACTIONS]:
        check = checks[i]
        out.append(ActionView(_severity(finding.severity), _change(finding.change, finding.previous_severity),
                              finding.title, _where(finding), check.id, check.title, check.anchor,
                              finding.remediation or _first_sentence(" ".join(check.remediation))))
    return tuple(out)


def _first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return match.group(1) if match else text


def _coverage(record: RunRecord, results: Sequence[CheckResult]) -> tuple[tuple[str, str], ...]:
    ran = [r for r in results if r.status in (Status.PASS, Status.FAIL)]
    blind = sum(1 for r in results if r.status is Status.NO_DATA)
    rows = [
        ("Window", f"{fmt.window(record.window.since, record.window.until)} ({fmt.when(record.window.since)} to "
                   f"{fmt.when(record.window.until)}, end excluded)"),
        ("Accounts", fmt.listing(record.accounts or _seen(results, "account_id"))),
        ("Regions", fmt.listing(record.regions or _seen(results, "region"))),
        ("Engine", record.engine),
        ("Checks", f"{len(ran):,} of {len(results):,} ran to completion"
                   + (f"; {blind:,} had no data" if blind else "")),
        ("Files", f"{record.data_quality.files_read:,} read of {record.data_quality.files_present:,} present"),
    ]
    if record.inventory_captured_at:
        rows.append(("Inventory", f"captured {fmt.when(record.inventory_captured_at)}"))
    return tuple(rows)


def _seen(results: Sequence[CheckResult], attr: str) -> tuple[str, ...]:
    """Accounts or regions named by findings, when the run record does not list them."""
    return tuple(sorted({v for r in results for f in r.findings if (v := getattr(f, attr))}))


def _where(finding: Finding) -> str:
    return " / ".join(x for x in (finding.account_id, finding.region) if x)


def _finding_view(finding: Finding, today: date) -> FindingView:
    key_text = ", ".join(f"{k}={v}" for k, v in finding.key.items())
    view = FindingView(_severity(finding.severity), finding.title, key_text, _where(finding),
                       _change(finding.change, finding.previous_severity), _short_fingerprint(finding.fingerprint),
                       remediation=finding.remediation, severity_rank=finding.severity.rank)
    s = finding.suppression
    if s is None:
        return view
    days = (s.expires - today).days
    if days < 0:
        note = f"expired {fmt.count(-days, 'day')} ago"
    elif days == 0:
        note = "expires today"
    elif days <= EXPIRY_NOTICE_DAYS:
        note = f"expires in {fmt.count(days, 'day')}"
    else:
        note = ""
    return FindingView(view.severity, view.title, view.key_text, view.where, view.change, view.fingerprint,
                       True, s.owner, s.reason, s.expires.isoformat(), note, finding.remediation, finding.severity.rank)


def _query_view(result: CheckResult, run: QueryRun, index: int) -> QueryView:
    stats = run.stats
    return QueryView(
        check_id=result.check_id,
        check_title=result.title,
        anchor=f"{_anchor(result.check_id)}-q{index + 1}",
        name=run.name,
        engine=run.engine or stats.engine,
        duration=fmt.seconds(stats.duration_s),
        rows=f"{run.rows:,}",
        bytes_scanned=fmt.size(stats.bytes_scanned) if stats.bytes_scanned is not None else "",
        records_scanned=f"{stats.records_scanned:,}" if stats.records_scanned is not None else "",
        query_id=stats.query_id or "",
        params=tuple((str(k), _param(v)) for k, v in stats.params.items()),
        truncated=stats.truncated,
        # The text the engine ran (after transpiling) is the evidence; the planned text is the fallback.
        text=query_text(run),
        sha256=query_digest(run),
    )


def _param(value: Any) -> str:
    if isinstance(value, datetime):
        return iso_z(value)
    return layout.cell(value).text


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
        parts.append(f"{fmt.count(clean, 'file')} with nothing skipped {'is' if clean == 1 else 'are'} not listed")
    note = "; ".join(parts) + ("; every file is in findings.json" if parts else "")
    malformed = totals["malformed"]
    prefix = _common_folder([f.path for f in shown])
    total_files = len(quality.files)
    return QualityView(
        files_text=f"Read {quality.files_read:,} of {fmt.count(quality.files_present, 'file')} present.",
        malformed_text=(f"{fmt.count(malformed, 'malformed line')} could not be read and were skipped."
                        if malformed else "No malformed lines."),
        unreadable_text=(f"{fmt.count(len(quality.unreadable), 'file or folder', 'files or folders')} could not be "
                         "read, or not to the end." if quality.unreadable else ""),
        malformed=malformed,
        columns=LINE_CLASSES,
        path_prefix=prefix,
        files=tuple(FileRow(f.path[len(prefix):], tuple(layout.count_cell(getattr(f, c)) for c in LINE_CLASSES),
                            f.malformed > 0 or f.invalid > 0 or bool(f.error), f.error or "", f.notes)
                    for f in shown),
        files_total=total_files,
        files_total_text=(f"All {fmt.count(total_files, 'file')}" if files or not total_files else
                          f"All {fmt.count(total_files, 'file')} (none had a line skipped)"),
        note=note,
        totals=tuple(layout.count_cell(totals[c]) for c in LINE_CLASSES),
        notes=tuple(quality.notes),
        counters=tuple((k, f"{v:,}") for k, v in sorted(quality.counters.items())),
    )


def _common_folder(paths: Sequence[str]) -> str:
    """The longest folder (ending in "/") that every path starts with, if there are several paths."""
    if len(paths) < 2:
        return ""
    common = os.path.commonprefix(list(paths))
    return common[: common.rfind("/") + 1]


def _paragraphs(text: str) -> tuple[str, ...]:
    return tuple(" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip()) if p.strip())


def _anchor(check_id: str) -> str:
    return "check-" + re.sub(r"[^A-Za-z0-9_-]+", "-", check_id)


