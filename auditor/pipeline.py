"""run_audit(): the stages in order, nothing else.

config -> plan -> execute -> evaluate -> render -> write. The CLI (and later the scheduler) call this.
"""

from __future__ import annotations

import logging
import secrets
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from auditor import __version__
from auditor.builtins import Registries, builtins
from auditor.checks import CheckSpec, HookContext
from auditor.config import LoadedConfig
from auditor.engines.base import Engine
from auditor.engines.embedded import Workspace
from auditor.engines.sql import window_params
from auditor.errors import AuditorError
from auditor.evaluate import check_result, errored, skipped
from auditor.models import CheckResult, DataQuality, Query, QueryRun, RunRecord, TimeWindow, iso_z
from auditor.output import (FINDINGS_FILE, RESULTS_DIR, Artifact, check_out_dir, csv_text, default_out_dir,
                            findings_document, json_bytes, write_atomically)
from auditor.plan import ENGINE_TABLES, Plan, PlannedCheck, plan_run

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class RunOutcome:
    record: RunRecord
    out_dir: Path
    artifacts: tuple[Path, ...]
    artifact_errors: tuple[str, ...]


def run_audit(loaded: LoadedConfig, window: TimeWindow, *, out_dir: Path | None = None, force: bool = False,
              clock: Callable[[], datetime] = utcnow, registries: Registries | None = None,
              run_id: str | None = None, formats: Sequence[str] = ("json", "csv", "html", "pdf")) -> RunOutcome:
    """Run every planned check over ``window`` and write the report. Check failures never stop the run."""
    reg = registries or builtins()
    config = loaded.config
    started = clock()
    run_id = run_id or secrets.token_hex(4)
    plan = plan_run(loaded, reg.checks, window, started, {e.name: e.dialect for e in reg.engines})
    final_dir = out_dir if out_dir is not None else default_out_dir(loaded.resolve(config.output_dir), started, run_id)
    if out_dir is not None:
        check_out_dir(out_dir, force=force)

    warnings = list(plan.warnings)
    workspace = Workspace(config.duckdb)
    try:
        captured_at = None
        if config.sources.inventory is not None:
            snapshot = workspace.load_inventory(loaded.resolve(config.sources.inventory.path))
            captured_at = snapshot.captured_at
            warnings.extend(snapshot.warnings)
            if captured_at is not None and not window.since <= captured_at <= window.until + config.delivery_lag_td:
                warnings.append(f"the inventory was captured at {iso_z(captured_at)}, outside the window {window}: "
                                "groups, rules and addresses may have changed since the traffic was logged")
        engines: dict[str, Engine] = {}
        data_quality = DataQuality()
        for name in plan.engines:
            engines[name] = reg.engines.get(name).create(workspace, loaded)
            data_quality = data_quality.merge(engines[name].prepare(plan.scans_for(name)))
        if workspace.inventory is not None:
            data_quality = data_quality.merge(DataQuality(files=workspace.inventory.files))
        results = tuple(_run_check(pc, plan, engines.get(pc.engine or ""), workspace) for pc in plan.checks)
        for engine in engines.values():
            engine.close()
    finally:
        workspace.close()

    record = RunRecord(id=run_id, window=window, engine="+".join(plan.engines) or config.engine, started_at=started, finished_at=clock(),
                       tool_version=__version__, checks=results, data_quality=data_quality, warnings=tuple(warnings),
                       inventory_captured_at=captured_at)
    artifacts = _artifacts(record, reg, loaded, formats)
    written, errors = write_atomically(final_dir, artifacts, run_id=run_id, into_existing=out_dir is not None)
    return RunOutcome(record=record, out_dir=final_dir, artifacts=tuple(written), artifact_errors=tuple(errors))


def _run_check(pc: PlannedCheck, plan: Plan, engine: Engine | None, workspace: Workspace) -> CheckResult:
    spec = pc.spec
    if pc.skip_reason is not None:
        return skipped(spec, pc.skip_reason)
    runs: list[QueryRun] = []
    try:
        result = None
        if engine is not None:
            query = Query(check_id=spec.id, name="query", text=spec.query_for(engine.dialect), dialect=engine.dialect,
                          tables=frozenset(t for t in spec.meta.needs if t in ENGINE_TABLES), window=pc.window,
                          params=pc.params)
            result = engine.run(query, pc.window, pc.params)
            runs.append(QueryRun("query", engine.name, result.stats.text_as_run, result.stats, len(result.rows)))
        if "report.sql" in spec.queries:
            if result is not None:
                workspace.register_result(result)
            result = workspace.execute(spec.queries["report.sql"], {**window_params(plan.window), **pc.params},
                                       name=f"{spec.id}/report")
            runs.append(QueryRun("report", "embedded", result.stats.text_as_run, result.stats, len(result.rows)))
        assert result is not None  # the check library guarantees a query or a report
        columns, rows = result.columns, result.records()
        notes: tuple[str, ...] = ()
        if pc.window != plan.window:
            notes = (f"lookback: {pc.window} ({pc.params.get('lookback')})",)
        if spec.hook is not None:
            columns, rows = spec.hook.transform(columns, rows, HookContext(params=pc.params, rule_egress=workspace.rule_egress()))
        return check_result(spec, columns, rows, tuple(runs), stats={"window": str(pc.window)}, notes=notes)
    except AuditorError as exc:
        return errored(spec, str(exc), tuple(runs))
    except Exception as exc:  # noqa: BLE001 - a broken check becomes an error result; the run goes on
        log.error("check %s failed:\n%s", spec.id, traceback.format_exc())
        return errored(spec, f"internal error: {type(exc).__name__}: {exc}", tuple(runs))


class _ReportSpec:
    """A check's metadata as the report shows it: the spec plus the engines that can run it."""

    def __init__(self, spec: CheckSpec, reg: Registries) -> None:
        self._spec = spec
        self.engines = tuple(e.name for e in reg.engines if spec.runs_on(e.dialect))

    def __getattr__(self, name: str) -> object:
        return getattr(self._spec, name)


def _artifacts(record: RunRecord, reg: Registries, loaded: LoadedConfig, formats: Sequence[str]) -> list[Artifact]:
    from auditor.render import template_dirs
    from auditor.render.html import render_html
    from auditor.render.pdf import render_pdf
    from auditor.render.view import build_view

    specs = {c.check_id: _ReportSpec(reg.checks.get(c.check_id), reg) for c in record.checks}
    arts = [Artifact(FINDINGS_FILE, lambda: json_bytes(findings_document(record)))]
    if "csv" in formats:
        for c in record.checks:
            if c.columns:
                arts.append(Artifact(f"{RESULTS_DIR}/{c.check_id}.csv", lambda c=c: csv_text(c).encode("utf-8")))
    dirs = template_dirs()
    html_cache: dict[str, str] = {}

    def html() -> str:
        if "html" not in html_cache:
            view = build_view(record, specs, table_limit=loaded.config.table_limit)
            html_cache["html"] = render_html(view, dirs=dirs)
        return html_cache["html"]

    if "html" in formats:
        arts.append(Artifact("report.html", lambda: html().encode("utf-8")))
    if "pdf" in formats:
        arts.append(Artifact("report.pdf", lambda: render_pdf(html(), dirs=dirs)))
    return arts
