"""Writing a run's artifacts: findings.json, results/<check>.csv, report.html, report.pdf.

Outputs appear atomically: everything is written into a hidden staging folder first and moved into
place with renames, so a crash never leaves a half-written file under a final name.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from auditor.errors import UsageError
from auditor.models import CheckResult, QueryRun, RunRecord, iso_z
from auditor.staging import StagingLock, remove_stale

FINDINGS_FILE = "findings.json"
QUERIES_FILE = "queries.sql"  # every query as run; the report's appendix lists each one's SHA-256
RESULTS_DIR = "results"
STAGING_PREFIX = ".auditor-staging-"  # a run's work folder beside its output, renamed into place when done


def query_text(run: QueryRun) -> str:
    """A query's text as the engine ran it (after transpiling), the planned text as the fallback."""
    return (run.stats.text_as_run or run.text).strip("\n")


def query_digest(run: QueryRun) -> str:
    return hashlib.sha256(query_text(run).encode("utf-8")).hexdigest()


def queries_text(record: RunRecord) -> str:
    """queries.sql: every query of the run as run, each headed by a comment naming its check, its engine and the
    SHA-256 of its text (the digest the report's appendix prints)."""
    parts = []
    for check in record.checks:
        for run in check.queries:
            parts.append(f"-- check {check.check_id}, query {run.name}, engine {run.engine or run.stats.engine}, "
                         f"sha256 {query_digest(run)}\n{query_text(run)}\n")
    return "\n".join(parts)


def findings_document(record: RunRecord) -> dict[str, Any]:
    """``findings.json``: the contract other tooling reads (schema in auditor/schemas/findings.schema.json)."""
    dq = record.data_quality
    return {
        "schema_version": record.schema_version,
        "run": {
            "id": record.id,
            "since": iso_z(record.window.since),
            "until": iso_z(record.window.until),
            "engine": record.engine,
            "started_at": iso_z(record.started_at),
            "finished_at": iso_z(record.finished_at),
            "tool_version": record.tool_version,
            "warnings": list(record.warnings),
            "inventory_captured_at": iso_z(record.inventory_captured_at) if record.inventory_captured_at else None,
            "previous_run_id": record.previous_run_id,
            "previous_since": iso_z(record.previous_window.since) if record.previous_window else None,
            "previous_until": iso_z(record.previous_window.until) if record.previous_window else None,
            "backfilled": record.backfilled,
            "accounts": list(record.accounts),
            "regions": list(record.regions),
        },
        "checks": [_check_json(c) for c in record.checks],
        "data_quality": {
            "files": [f.to_json() for f in dq.files],
            "files_read": dq.files_read,
            "files_present": dq.files_present,
            "notes": list(dq.notes),
            "counters": dict(dq.counters),
        },
    }


def _check_json(c: CheckResult) -> dict[str, Any]:
    return {
        "id": c.check_id,
        "title": c.title,
        "status": c.status.value,
        "severity": c.severity.value,
        "columns": list(c.columns),
        "rows": [dict(r) for r in c.rows],
        "findings": [f.to_json() for f in c.findings],
        "stats": dict(c.stats),
        "error": c.error,
        "no_data_sources": list(c.no_data_sources),
        "notes": list(c.notes),
        "resolved": [r.to_json() for r in c.resolved],
        "metric": c.metric,
        "trend": [t.to_json() for t in c.trend],
        "queries": [{"name": q.name, "engine": q.engine, "text": q.text, "rows": q.rows,
                     "duration_s": round(q.stats.duration_s, 3), "query_id": q.stats.query_id,
                     "bytes_scanned": q.stats.bytes_scanned, "params": dict(q.stats.params)} for q in c.queries],
    }


def csv_text(check: CheckResult) -> str:
    """All rows of a check as CSV; lists and mappings as JSON text. Every text cell is quoted and neutralised
    against formula injection; numbers are written bare, so a numeric column stays numeric."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(check.columns)
    for row in check.rows:
        writer.writerow([_csv_cell(row.get(c)) for c in check.columns])
    return buf.getvalue()


# OWASP "CSV Injection" (https://owasp.org/www-community/attacks/CSV_Injection): a spreadsheet reads a cell that
# starts with = + - @ tab or carriage return as a formula. Such a text cell (a user agent, an ARN, a group name,
# an address from a log) gets a single quote in front, and every text cell is wrapped in double quotes with its
# own double quotes doubled. A text that is a plain number ("-1") is no formula and is left as it is.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def _csv_cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralise_formula(value)
    return value


def neutralise_formula(text: str) -> str:
    """``text`` with a single quote in front when a spreadsheet would take it for a formula."""
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def default_out_dir(output_dir: Path, started_at: datetime, run_id: str) -> Path:
    return output_dir / f"{started_at.strftime('%Y-%m-%d')}-{run_id}"


def check_out_dir(path: Path, *, force: bool) -> None:
    """``--out DIR`` must be missing or empty unless ``--force``."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path}: exists and is not a directory")
    if path.is_dir() and any(p for p in path.iterdir() if not p.name.startswith(STAGING_PREFIX)) and not force:
        raise UsageError(f"--out {path}: the directory is not empty; pass --force to write into it anyway")


@dataclass(frozen=True)
class Artifact:
    name: str  # relative path inside the output folder
    produce: Callable[[], bytes]


def write_atomically(final: Path, artifacts: Sequence[Artifact], *, run_id: str, into_existing: bool) -> tuple[list[Path], list[str]]:
    """Produce every artifact into staging, then move them into ``final``.

    Artifacts are produced and written in the order given, which the caller makes smallest and most important
    first (findings.json, the CSVs, HTML, PDF). An artifact that cannot be produced, or written (a full disk),
    is left out, its partial file removed, and the others are still written: a PDF that does not fit must not
    lose findings.json. Returns the paths written and, for each artifact left out, why.
    """
    parent = final if into_existing else final.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f"{STAGING_PREFIX}{run_id}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    lock = StagingLock(staging)  # a later run leaves a staging folder alone while this process holds it
    errors: list[str] = []
    written: list[str] = []
    try:
        for art in artifacts:
            try:
                data = art.produce()
            except Exception as exc:  # noqa: BLE001 - one broken artifact must not lose the others
                errors.append(f"{art.name}: {type(exc).__name__}: {exc}")
                continue
            target = staging / art.name
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                write_file(target, data)
            except OSError as exc:
                target.unlink(missing_ok=True)
                errors.append(f"{art.name}: not written: {exc.strerror or exc}")
                continue
            written.append(art.name)
        if into_existing:
            final.mkdir(parents=True, exist_ok=True)
            for name in written:
                dest = final / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / name, dest)
            shutil.rmtree(staging)
        else:
            os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        lock.release()
    return [final / n for n in written], errors


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and fsync it, so that a rename after it never exposes a short file."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def remove_stale_staging(folder: Path) -> list[Path]:
    """Remove staging folders left in ``folder`` by killed runs (see :mod:`auditor.staging`)."""
    return remove_stale(folder, STAGING_PREFIX)


def json_bytes(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
