"""run_audit(): the stages in order, nothing else.

config -> plan -> execute -> evaluate -> render -> write. The CLI (and later the scheduler) call this.
"""

from __future__ import annotations

import logging
import secrets
import traceback
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from auditor import __version__
from auditor.builtins import Registries, builtins
from auditor.checks import CheckSpec, HookContext
from auditor.config import LoadedConfig, check_folders
from auditor.engines.base import Engine
from auditor.engines.aws import AwsSessions, run_targets
from auditor.engines.embedded import Workspace
from auditor.engines.sql import window_params
from auditor import suppress
from auditor.errors import AuditorError, CheckSkipped
from auditor.history import History, compare, sources_key
from auditor.evaluate import check_result, errored, input_counters, input_warnings, skipped
from auditor.models import CheckResult, DataQuality, Query, QueryRun, RunRecord, TimeWindow, iso_z
from auditor.formats import DEFAULT_FORMATS, WRITE_ORDER, RenderContext
from auditor.output import (Artifact, check_out_dir, default_out_dir, findings_document, remove_stale_staging,
                            write_atomically)
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
    inputs: tuple[Any, ...] = ()  # every input file the engines read, for the evidence archive
    inventory: Any = None  # the InventorySnapshot loaded (captured_at, files), for the evidence archive


def run_audit(loaded: LoadedConfig, window: TimeWindow, *, out_dir: Path | None = None, force: bool = False,
              clock: Callable[[], datetime] = utcnow, registries: Registries | None = None,
              run_id: str | None = None, formats: Sequence[str] = DEFAULT_FORMATS,
              aws_sessions: AwsSessions | None = None) -> RunOutcome:
    """Run every planned check over ``window`` and write the report. Check failures never stop the run.

    ``aws_sessions`` replaces the boto3 sessions the AWS sources use (default: the config's profile or the
    standard credential chain)."""
    reg = registries or builtins()
    for name in formats:
        reg.formats.get(name)  # an unknown format fails before any work, with a did-you-mean
    config = loaded.config
    check_folders(loaded)  # a folder the run cannot write fails now, not after the checks ran
    started = clock()
    run_id = run_id or secrets.token_hex(4)
    plan = plan_run(loaded, reg.checks, window, started, {e.name: e.dialect for e in reg.engines})
    final_dir = out_dir if out_dir is not None else default_out_dir(loaded.resolve(config.output_dir), started, run_id)
    if out_dir is not None:
        check_out_dir(out_dir, force=force)
    # A killed run's staging folder would stay forever: leftovers older than an hour that no run holds go now.
    remove_stale_staging(final_dir if out_dir is not None else final_dir.parent)

    warnings = list(plan.warnings)
    # Once over the configured inputs, or once per AWS account and region, merged (auditor.engines.aws).
    executed = run_targets(loaded, plan, lambda part: _execute(part, plan, reg), sessions=aws_sessions)
    warnings.extend(executed.warnings)
    results, data_quality, captured_at, places = (executed.results, executed.data_quality, executed.captured_at,
                                                   executed.places)
    data_quality = data_quality.merge(DataQuality(counters=input_counters(data_quality)))

    results, exception_warnings = suppress.apply(results, config.exceptions, started.date())
    history = History(loaded.resolve(config.state_dir))
    record = RunRecord(id=run_id, window=window, engine="+".join(plan.engines) or config.engine, started_at=started,
                       finished_at=clock(), tool_version=__version__, checks=results, data_quality=data_quality,
                       inventory_captured_at=captured_at, sources_key=sources_key(config.sources),
                       accounts=tuple(sorted({a for a, _ in places if a})), regions=tuple(sorted({r for _, r in places if r})))
    record = compare(record, history.load(), {c.id: c.meta.event_like for c in reg.checks})
    record = replace(record, warnings=(tuple(warnings) + input_warnings(data_quality) + exception_warnings
                                       + tuple(history.warnings)))
    artifacts = _artifacts(record, reg, loaded, formats)
    written, errors = write_atomically(final_dir, artifacts, run_id=run_id, into_existing=out_dir is not None)
    try:
        history.save(record, findings_document(record))
    except OSError as exc:  # a full disk: the report is written, and the run says what it could not keep
        errors.append(f"the run record in {history.dir}: not written: {exc.strerror or exc}; the next run will not "
                      "compare with this one")
    return RunOutcome(record=record, out_dir=final_dir, artifacts=tuple(written), artifact_errors=tuple(errors),
                      inputs=executed.inputs, inventory=executed.inventory)


@dataclass(frozen=True)
class Execution:
    """What the execute stage produced over one set of inputs (everything, or one AWS account and region)."""

    results: tuple[CheckResult, ...]
    data_quality: DataQuality
    captured_at: datetime | None
    warnings: tuple[str, ...]
    places: frozenset[tuple[str | None, str | None]]
    inputs: tuple[Any, ...] = ()  # the engines' input files (InputFile), for the evidence archive
    inventory: Any = None  # the workspace's InventorySnapshot


def _execute(loaded: LoadedConfig, plan: Plan, reg: Registries) -> Execution:
    """Load the inventory, prepare the engines and run every planned check."""
    config = loaded.config
    window = plan.window
    warnings: list[str] = []
    data_quality = DataQuality()
    workspace = Workspace(config.duckdb)
    try:
        captured_at = None
        inventory = config.sources.inventory
        if inventory is not None:
            if inventory.engine == "aws_api":
                from auditor.engines.sources import aws_inventory
                snapshot, coverage = aws_inventory.load(workspace, loaded)
                data_quality = data_quality.merge(coverage)
            else:
                snapshot = workspace.load_inventory(loaded.resolve(inventory.path))
            captured_at = snapshot.captured_at
            warnings.extend(snapshot.warnings)
            if captured_at is not None and not window.since <= captured_at <= window.until + config.delivery_lag_td:
                warnings.append(f"the inventory was captured at {iso_z(captured_at)}, outside the window {window}: "
                                "groups, rules and addresses may have changed since the traffic was logged")
        engines: dict[str, Engine] = {}
        for name in plan.engines:
            engines[name] = reg.engines.get(name).create(workspace, loaded)
            data_quality = data_quality.merge(engines[name].prepare(plan.scans_for(name)))
        if workspace.inventory is not None:
            data_quality = data_quality.merge(DataQuality(files=workspace.inventory.files))
        results = tuple(_run_check(pc, plan, engines.get(pc.engine or ""), workspace) for pc in plan.checks)
        places = _accounts_regions(workspace, engines.values())
        inputs = tuple(f for engine in engines.values() for f in getattr(engine, "inputs", ()))
        for engine in engines.values():
            engine.close()
    finally:
        workspace.close()
    return Execution(results=results, data_quality=data_quality, captured_at=captured_at, warnings=tuple(warnings),
                     places=frozenset(places), inputs=inputs, inventory=workspace.inventory)


def _accounts_regions(workspace: Workspace, engines: Iterable[Engine]) -> set[tuple[str | None, str | None]]:
    """The accounts and regions the inputs came from, for the report's cover."""
    places: set[tuple[str | None, str | None]] = set()
    if workspace.inventory is not None:
        places |= {(a, None) for a in workspace.inventory.accounts} | {(None, r) for r in workspace.inventory.regions}
    for engine in engines:
        places |= {(f.account_id, f.region) for f in getattr(engine, "inputs", ())}
    return places


def _run_check(pc: PlannedCheck, plan: Plan, engine: Engine | None, workspace: Workspace) -> CheckResult:
    spec = pc.spec
    if pc.skip_reason is not None:
        return skipped(spec, pc.skip_reason)
    runs: list[QueryRun] = []
    try:
        result, phase1 = None, None
        report_params = {**window_params(plan.window), **pc.params}
        if engine is not None:
            query = Query(check_id=spec.id, name="query", text=spec.query_for(engine.dialect), dialect=engine.dialect,
                          tables=frozenset(t for t in spec.meta.needs if t in ENGINE_TABLES), window=pc.window,
                          params=pc.params)
            if "report.sql" in spec.queries and getattr(engine, "shares_workspace", False):
                # The engine's tables are in the workspace (local): its query runs inside report.sql as the
                # query_result CTE, streamed rather than stored (millions of rows at scale). One run, listed once.
                # A report that re-aggregates gets the records ungrouped: one aggregate instead of two chained.
                phase1 = (query.text, {**window_params(pc.window), **pc.params})
            else:
                result = engine.run(query, pc.window, pc.params)
                runs.append(QueryRun("query", engine.name, result.stats.text_as_run, result.stats, len(result.rows)))
        if "report.sql" in spec.queries:
            if result is not None:
                workspace.register_result(result)
            result = workspace.execute(spec.queries["report.sql"], report_params, name=f"{spec.id}/report",
                                       phase1=phase1, ungrouped=phase1 is not None and spec.meta.reaggregates,
                                       engine=engine.name if phase1 else "embedded")
            runs.append(QueryRun("report", result.stats.engine, result.stats.text_as_run, result.stats,
                                 len(result.rows)))
        assert result is not None  # the check library guarantees a query or a report
        columns, rows = result.columns, result.records()
        chart, chart_run = _chart(spec, pc, plan, engine)
        if chart_run is not None:
            runs.append(chart_run)
        notes: tuple[str, ...] = tuple(n for r in runs for n in r.stats.notes)  # e.g. a truncated engine result
        if pc.window != plan.window:
            notes += (f"lookback: {pc.window} ({pc.params.get('lookback')})",)
        if spec.hook is not None:
            columns, rows = spec.hook.transform(columns, rows, HookContext(params=pc.params, rule_egress=workspace.rule_egress()))
        return check_result(spec, columns, rows, tuple(runs), stats={"window": str(pc.window)}, notes=notes,
                            chart=chart, no_data=_without_evidence(spec, pc, engine, workspace))
    except CheckSkipped as exc:
        return skipped(spec, str(exc))
    except AuditorError as exc:
        return errored(spec, str(exc), tuple(runs))
    except Exception as exc:  # noqa: BLE001 - a broken check becomes an error result; the run goes on
        log.error("check %s failed:\n%s", spec.id, traceback.format_exc())
        return errored(spec, f"internal error: {type(exc).__name__}: {exc}", tuple(runs))
    finally:
        # An engine's rows registered for report.sql must not stay in memory while the next check runs.
        workspace.drop_result()


def _without_evidence(spec: CheckSpec, pc: PlannedCheck, engine: Engine | None,
                      workspace: Workspace) -> tuple[str, ...]:
    """The sources a check reads that yielded no usable record in its window (see the README's data-quality
    section for the threshold): flow logs without a traffic or NODATA record, CloudTrail without an event, an
    inventory without a security group. An engine that cannot count its records cheaply (Athena, Logs Insights)
    has no ``evidence`` method, and its sources are taken to hold some."""
    missing = []
    for source in spec.meta.needs:
        if source in ENGINE_TABLES:
            count = getattr(engine, "evidence", None)
            found = count(source, pc.window) if count is not None else None
        else:
            found = workspace.security_groups() if workspace.inventory is not None else None
        if found == 0:
            missing.append(source)
    return tuple(missing)


def _chart(spec: CheckSpec, pc: PlannedCheck, plan: Plan,
           engine: Engine | None) -> tuple[list[dict[str, Any]], QueryRun | None]:
    """The rows of a check's chart query (per hour, or per day for windows over 3 days), when it has one, and
    the query as run: it is listed in the appendix and counted in the bytes scanned like the check's own."""
    if "chart.sql" not in spec.queries or engine is None or engine.dialect != "trino":
        return [], None
    bucket = "hour" if plan.window.duration <= timedelta(days=3) else "day"
    query = Query(check_id=spec.id, name="chart", text=spec.queries["chart.sql"], dialect=engine.dialect,
                  tables=frozenset(t for t in spec.meta.needs if t in ENGINE_TABLES), window=plan.window,
                  params={**pc.params, "bucket": bucket})
    result = engine.run(query, plan.window, query.params)
    return result.records(), QueryRun("chart", engine.name, result.stats.text_as_run, result.stats, len(result.rows))


class _ReportSpec:
    """A check's metadata as the report shows it: the spec plus the engines that can run it."""

    def __init__(self, spec: CheckSpec, reg: Registries) -> None:
        self._spec = spec
        self.engines = tuple(e.name for e in reg.engines if spec.runs_on(e.dialect))

    def __getattr__(self, name: str) -> object:
        return getattr(self._spec, name)


def _artifacts(record: RunRecord, reg: Registries, loaded: LoadedConfig, formats: Sequence[str]) -> list[Artifact]:
    from auditor.render import template_dirs

    config = loaded.config
    specs = {c.check_id: _ReportSpec(reg.checks.get(c.check_id), reg) for c in record.checks}
    user_templates = loaded.resolve(config.templates_dir) if config.templates_dir else None
    ctx = RenderContext(record=record, specs=specs, template_dirs=template_dirs(user_templates),
                        table_limit=config.table_limit)
    # findings.json is always written, and first: smallest and most important first, so that a full disk
    # costs the PDF before it costs the evidence.
    names = sorted(dict.fromkeys(["json", *formats]), key=lambda n: WRITE_ORDER.index(n) if n in WRITE_ORDER
                   else len(WRITE_ORDER))
    return [art for name in names for art in reg.formats.get(name).artifacts(ctx)]
