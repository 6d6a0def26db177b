"""Run the real pipeline over hand-made inputs and return the results by check ID."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from auditor.config import load_config
from auditor.models import CheckResult, TimeWindow
from auditor.pipeline import RunOutcome, run_audit

WINDOW = TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc))
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


def run(config_path: Path, window: TimeWindow = WINDOW, formats=("json", "csv"), **kw) -> RunOutcome:
    loaded = load_config(config_path)
    out = config_path.parent / "out"
    return run_audit(loaded, window, out_dir=out, force=True, clock=lambda: NOW, formats=formats, **kw)


def results(config_path: Path, window: TimeWindow = WINDOW, **kw) -> dict[str, CheckResult]:
    return {c.check_id: c for c in run(config_path, window, **kw).record.checks}
