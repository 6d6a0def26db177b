"""Writing a run's artifacts: findings.json, results/<check>.csv, report.html, report.pdf.

Outputs appear atomically: everything is written into a hidden staging folder first and moved into
place with renames, so a crash never leaves a half-written file under a final name.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from auditor.errors import UsageError
from auditor.models import CheckResult, RunRecord, iso_z

FINDINGS_FILE = "findings.json"
RESULTS_DIR = "results"


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
        "notes": list(c.notes),
        "resolved": [r.to_json() for r in c.resolved],
        "metric": c.metric,
        "trend": [t.to_json() for t in c.trend],
        "queries": [{"name": q.name, "engine": q.engine, "text": q.text, "rows": q.rows,
                     "duration_s": round(q.stats.duration_s, 3), "query_id": q.stats.query_id,
                     "bytes_scanned": q.stats.bytes_scanned, "params": dict(q.stats.params)} for q in c.queries],
    }


def csv_text(check: CheckResult) -> str:
    """All rows of a check as CSV; lists and mappings as JSON text."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(check.columns)
    for row in check.rows:
        writer.writerow([_csv_cell(row.get(c)) for c in check.columns])
    return buf.getvalue()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def default_out_dir(output_dir: Path, started_at: datetime, run_id: str) -> Path:
    return output_dir / f"{started_at.strftime('%Y-%m-%d')}-{run_id}"


def check_out_dir(path: Path, *, force: bool) -> None:
    """``--out DIR`` must be missing or empty unless ``--force``."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path}: exists and is not a directory")
    if path.is_dir() and any(p for p in path.iterdir() if not p.name.startswith(".auditor-staging-")) and not force:
        raise UsageError(f"--out {path}: the directory is not empty; pass --force to write into it anyway")


@dataclass(frozen=True)
class Artifact:
    name: str  # relative path inside the output folder
    produce: Callable[[], bytes]


def write_atomically(final: Path, artifacts: Sequence[Artifact], *, run_id: str, into_existing: bool) -> tuple[list[Path], list[str]]:
    """Produce every artifact into staging, then move them into ``final``.

    Returns the paths written and the errors of artifacts that could not be produced (the others are
    still written: a PDF failure must not lose findings.json).
    """
    parent = final if into_existing else final.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f".auditor-staging-{run_id}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
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
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
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
    return [final / n for n in written], errors


def json_bytes(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
