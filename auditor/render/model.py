"""The report's view model: plain frozen values, every formatting decision already made. Templates only place
the strings these hold (:mod:`auditor.render.view` builds them)."""

from __future__ import annotations

from dataclasses import dataclass


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
    remediation: str = ""  # what to do about this finding, when its check words it per finding
    severity_rank: int = 0  # to sort by severity in the HTML (critical highest)


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
    sha256: str = ""  # of the text as run: the line of queries.sql it matches


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
    escalated: int = 0
    de_escalated: int = 0
    compared_with: str = ""  # "the week of 2026-11-16 (16–22 Nov 2026)", "" without an earlier run


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
    step: str  # the finding's own remediation, else the first sentence of the check's


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
    appendix_full: bool = False  # config.yaml report.appendix: full: the queries' text printed too
