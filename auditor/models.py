"""Frozen values handed from one pipeline stage to the next.

config -> plan -> execute -> evaluate -> render. Every stage takes and returns these; none of them
holds a connection, a client or a clock.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

SCHEMA_VERSION = 1
# The logical tables an engine serves; the inventory lives in the embedded database.
ENGINE_TABLES = ("flow_logs", "cloudtrail")


class Severity(str, enum.Enum):
    """How bad a finding is. Ordered: critical is the highest."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    @classmethod
    def parse(cls, value: str) -> Severity:
        return cls(value.strip().lower())


_SEVERITY_RANK = {Severity.CRITICAL: 4, Severity.HIGH: 3, Severity.MEDIUM: 2, Severity.LOW: 1, Severity.INFO: 0}


class Status(str, enum.Enum):
    """Whether a check found something (fail), nothing (pass), could not run (error), was not run (skipped),
    or ran over a source that yielded no usable record in its window (no_data): it cannot say pass."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIPPED = "skipped"
    NO_DATA = "no_data"


def utc(dt: datetime) -> datetime:
    """Return ``dt`` as an aware UTC datetime; a naive datetime is taken to be UTC."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def iso_z(dt: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix, to the second (the precision of flow logs)."""
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class TimeWindow:
    """A half-open UTC interval: ``since <= t < until``."""

    since: datetime
    until: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "since", utc(self.since))
        object.__setattr__(self, "until", utc(self.until))
        if self.since >= self.until:
            raise ValueError(f"window start {iso_z(self.since)} is not before its end {iso_z(self.until)}")

    @property
    def since_s(self) -> int:
        return int(self.since.timestamp())

    @property
    def until_s(self) -> int:
        return int(self.until.timestamp())

    @property
    def duration(self) -> timedelta:
        return self.until - self.since

    def contains(self, t: datetime) -> bool:
        return self.since <= utc(t) < self.until

    def union(self, other: TimeWindow) -> TimeWindow:
        return TimeWindow(min(self.since, other.since), max(self.until, other.until))

    def __str__(self) -> str:
        return f"{iso_z(self.since)}..{iso_z(self.until)}"


@dataclass(frozen=True)
class InputFile:
    """One file found under a source, with what its path tells about it."""

    path: str
    size: int
    kind: str  # "text" | "parquet" | "json"
    folder_time: datetime | None = None  # delivery date (and hour) from the S3 folders, None when undated
    folder_span: timedelta | None = None  # 1 day, or 1 hour for hourly folders
    account_id: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class FileQuality:
    """Line classes counted in one input file (or a folder that could not be listed). Every line the reader
    got lands in exactly one class; ``error`` says why the file, or part of it, could not be read."""

    path: str
    records: int = 0
    nodata: int = 0  # NODATA / SKIPDATA records: not traffic
    headers: int = 0  # header lines, the first one included
    blank: int = 0
    malformed: int = 0  # skipped: wrong field count, non-numeric numbers, unparsable JSON
    duplicates: int = 0  # CloudTrail events dropped because their eventID was already seen
    invalid: int = 0  # skipped: parsed, but a value is out of range or cannot be interpreted (port 70000, start > end)
    error: str | None = None  # the file (or folder) could not be read, or not to its end: why
    notes: tuple[str, ...] = ()  # the skipped events this file held, named (bounded)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "records": self.records, "nodata": self.nodata, "headers": self.headers,
                "blank": self.blank, "malformed": self.malformed, "duplicates": self.duplicates,
                "invalid": self.invalid, "error": self.error, "notes": list(self.notes)}


@dataclass(frozen=True)
class DataQuality:
    """What the run read and what it had to skip."""

    files: tuple[FileQuality, ...] = ()
    files_read: int = 0
    files_present: int = 0
    notes: tuple[str, ...] = ()  # human sentences, e.g. "412 records had no direction"
    counters: Mapping[str, int] = field(default_factory=dict)

    def merge(self, other: DataQuality) -> DataQuality:
        counters = dict(self.counters)
        for k, v in other.counters.items():
            counters[k] = counters.get(k, 0) + v
        return DataQuality(self.files + other.files, self.files_read + other.files_read,
                           self.files_present + other.files_present, self.notes + other.notes, counters)

    @property
    def malformed(self) -> int:
        return sum(f.malformed for f in self.files)

    @property
    def invalid(self) -> int:
        return sum(f.invalid for f in self.files)

    @property
    def unreadable(self) -> tuple[FileQuality, ...]:
        """The files and folders that could not be read, or not to their end."""
        return tuple(f for f in self.files if f.error)

    @property
    def skipped_input(self) -> bool:
        """Whether any input was skipped: an unreadable file or folder, a malformed line, an invalid record.
        Blank lines, headers, NODATA records and duplicate events are expected and are not counted here."""
        return bool(self.unreadable) or self.malformed > 0 or self.invalid > 0


@dataclass(frozen=True)
class Query:
    """A query as planned: its text in the source dialect, and what it reads."""

    check_id: str
    name: str  # "query" (the engine query) or "report" (the embedded second phase)
    text: str
    dialect: str  # "trino" | "insights"
    tables: frozenset[str]
    window: TimeWindow
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryStats:
    engine: str
    text_as_run: str
    duration_s: float = 0.0
    query_id: str | None = None
    bytes_scanned: int | None = None
    records_scanned: int | None = None
    truncated: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)
    cost_usd: float | None = None  # estimated from the config's price table, for engines that bill per scan
    notes: tuple[str, ...] = ()  # sentences for the check's notes (e.g. a result that stayed truncated)


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    stats: QueryStats
    types: tuple[str, ...] = ()  # SQL type names of the columns (DuckDB names), when the engine reports them

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


class Change(str, enum.Enum):
    """A finding compared with the previous comparable run: escalated and de-escalated ones persist with a higher
    or a lower severity than they had then (``previous_severity``)."""

    NEW = "new"
    PERSISTING = "persisting"
    ESCALATED = "escalated"
    DE_ESCALATED = "de-escalated"


@dataclass(frozen=True)
class InterfaceName:
    """What the inventory says of a network interface, to name it next to its ID."""

    name: str = ""  # its Name tag
    instance_id: str = ""
    description: str = ""


@dataclass(frozen=True)
class Names:
    """Names of the things finding titles mention, from the inventory: interfaces and security groups."""

    interfaces: Mapping[str, InterfaceName] = field(default_factory=dict)
    groups: Mapping[str, str] = field(default_factory=dict)  # group ID -> group name

    def merge(self, other: Names) -> Names:
        return Names({**self.interfaces, **other.interfaces}, {**self.groups, **other.groups})


@dataclass(frozen=True)
class Suppression:
    """The config exception that matched a finding."""

    owner: str
    reason: str
    expires: date

    def to_json(self) -> dict[str, Any]:
        return {"owner": self.owner, "reason": self.reason, "expires": self.expires.isoformat()}


@dataclass(frozen=True)
class Finding:
    check_id: str
    severity: Severity
    title: str
    key: Mapping[str, Any]  # the key columns of the row the finding comes from
    account_id: str | None = None
    region: str | None = None
    fingerprint: str = ""  # stable across runs: check + account + region + key columns
    change: Change | None = None  # set by the history stage
    suppression: Suppression | None = None  # set when a config exception matches
    remediation: str = ""  # what to do about this finding, when its check words it per finding
    previous_severity: Severity | None = None  # escalated / de-escalated: the severity the previous run gave it

    @property
    def suppressed(self) -> bool:
        return self.suppression is not None

    def to_json(self) -> dict[str, Any]:
        out = {"severity": self.severity.value, "title": self.title, **dict(self.key),
               "fingerprint": self.fingerprint, "change": self.change.value if self.change else None,
               "suppressed": self.suppressed}
        if self.previous_severity is not None:
            out["previous_severity"] = self.previous_severity.value
        if self.remediation:
            out["remediation"] = self.remediation
        if self.suppression is not None:
            out["suppression"] = self.suppression.to_json()
        return out


@dataclass(frozen=True)
class ResolvedFinding:
    """A finding the previous comparable run had and this one lacks."""

    fingerprint: str
    title: str
    severity: Severity
    label: str  # "resolved", or "aged out" for event-like checks

    def to_json(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "title": self.title, "severity": self.severity.value, "label": self.label}


@dataclass(frozen=True)
class TrendPoint:
    """A check's key metric in one run, oldest first in CheckResult.trend (this run last)."""

    run_id: str
    until: datetime
    value: float

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "until": iso_z(self.until), "value": self.value}


@dataclass(frozen=True)
class QueryRun:
    """One query as it was run, for the appendix."""

    name: str
    engine: str
    text: str
    stats: QueryStats
    rows: int


@dataclass(frozen=True)
class CheckResult:
    check_id: str
    title: str
    status: Status
    severity: Severity  # the highest finding's, or the check's default when there is none
    columns: tuple[str, ...] = ()
    rows: tuple[Mapping[str, Any], ...] = ()
    findings: tuple[Finding, ...] = ()
    stats: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    queries: tuple[QueryRun, ...] = ()
    notes: tuple[str, ...] = ()
    resolved: tuple[ResolvedFinding, ...] = ()
    trend: tuple[TrendPoint, ...] = ()
    metric: str = "findings"  # what trend counts
    default_severity: Severity | None = None  # the check's own severity, shown when no active finding sets one
    chart: tuple[Mapping[str, Any], ...] = ()  # rows of the check's chart query, if it has one
    no_data_sources: tuple[str, ...] = ()  # status no_data: the sources that yielded no usable record

    @property
    def active_findings(self) -> tuple[Finding, ...]:
        """Findings that count toward status and --fail-on: the unsuppressed ones."""
        return tuple(f for f in self.findings if not f.suppressed)


@dataclass(frozen=True)
class RunRecord:
    """Everything one run produced, before rendering. ``findings.json`` is its serialisation."""

    id: str
    window: TimeWindow
    engine: str
    started_at: datetime
    finished_at: datetime
    tool_version: str
    checks: tuple[CheckResult, ...]
    data_quality: DataQuality
    warnings: tuple[str, ...] = ()
    inventory_captured_at: datetime | None = None
    schema_version: int = SCHEMA_VERSION
    previous_run_id: str | None = None  # the run "what changed" compares with
    previous_window: TimeWindow | None = None  # that run's window, to name it by its dates
    backfilled: bool = False  # run by `auditor backfill` over a past window, to give the history its trends
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    sources_key: str = ""  # a hash of the configured sources: runs over the same sources are comparable

    @property
    def errored(self) -> bool:
        return any(c.status is Status.ERROR for c in self.checks)

    @property
    def no_data(self) -> tuple[CheckResult, ...]:
        """The checks that read no usable record: the run cannot vouch for what they cover."""
        return tuple(c for c in self.checks if c.status is Status.NO_DATA)

    def worst_severity(self) -> Severity | None:
        sev = [f.severity for c in self.checks for f in c.active_findings]
        return max(sev, key=lambda s: s.rank) if sev else None
