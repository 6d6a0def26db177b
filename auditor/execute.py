"""The execute stage: the planned checks run on their engines, once over the configured inputs, or once per AWS
account and region (a *target*) and merged, with the Athena scan totals and their estimated cost.

- Each part gets its own embedded database (:class:`~auditor.engines.embedded.Workspace`) holding its own
  inventory; the engines are built from an explicit :class:`~auditor.engines.base.EngineContext`.
- Targets run in parallel up to ``aws.max_parallel``. The results are merged into one: every row carries
  ``account_id`` and ``region``, findings are recomputed over the merged rows, and a target that fails (a role
  that cannot be assumed, an API that refuses) becomes an error of each check for that target while the other
  targets go on.
- A check that raises becomes an error result; the run goes on.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Union

from auditor import formatting as fmt
from auditor.aws import AwsSessions, Budget, Target, plan_targets, uses_aws
from auditor.builtins import Registries
from auditor.checks import CheckSpec, HookContext
from auditor.config import LoadedConfig, PricingSettings
from auditor.engines.athena.cost import cost_usd
from auditor.engines.base import Engine, EngineContext
from auditor.engines.embedded import Workspace
from auditor.engines.sources import aws_inventory, snapshots
from auditor.engines.sources.inventory import InventorySnapshot
from auditor.engines.sql import window_params
from auditor.errors import AuditorError, CheckSkipped, EngineError
from auditor.evaluate import check_result, errored, skipped
from auditor.models import (
    CheckResult,
    DataQuality,
    InputFile,
    Names,
    Query,
    QueryRun,
    Status,
    TimeWindow,
    iso_z,
)
from auditor.plan import ENGINE_TABLES, Plan, PlannedCheck
from auditor.timeline.run import TimelineRun, build_for_run, events_window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Execution:
    """What the execute stage produced over one set of inputs (everything, or one AWS account and region)."""

    results: tuple[CheckResult, ...]
    data_quality: DataQuality
    captured_at: datetime | None
    warnings: tuple[str, ...]
    places: frozenset[tuple[str | None, str | None]]
    inputs: tuple[InputFile, ...] = ()  # the engines' input files, for the evidence archive
    inventory: InventorySnapshot | None = None  # the workspace's inventory snapshot
    window_bytes: int = 0  # the bytes of the S3 objects that hold the window's logs, on Athena (0: none read there)
    log_bytes: int = 0  # what the Athena queries that read those logs scanned (the rest read the flow summary)
    names: Names = Names()  # the inventory's names of interfaces and groups, for finding titles


Outcome = Union[Execution, BaseException]  # one target's execution, or why it could not run


def execute(loaded: LoadedConfig, plan: Plan, reg: Registries, *, sessions: AwsSessions | None = None) -> Execution:
    """Run every planned check: once over the configured inputs, or once per target and merged.

    ``sessions`` replaces the boto3 sessions the AWS sources use (default: the config's profile or the
    standard credential chain). A config with no AWS source runs as it is; one target without an account runs
    unmerged.
    """
    config = loaded.config
    sessions = sessions or AwsSessions(config.aws)
    budget = Budget(config.athena.max_bytes_scanned)
    if not uses_aws(loaded):
        return run_part(loaded, plan, reg, sessions, budget, None)
    targets = plan_targets(loaded, sessions)
    if len(targets) == 1 and targets[0].account is None:
        return with_cost(run_part(loaded, plan, reg, sessions, budget, targets[0]), config.pricing, ())
    workers = max(1, min(config.aws.max_parallel, len(targets)))

    def one(target: Target) -> tuple[Target, Outcome]:
        try:
            return target, run_part(loaded, plan, reg, sessions, budget, target)
        except AuditorError as exc:
            return target, exc
        except Exception as exc:  # noqa: BLE001 - one target's failure must not sink the others
            log.exception("%s failed", target.label)
            return target, EngineError(f"internal error: {type(exc).__name__}: {exc}", engine="aws")

    if workers == 1:
        outcomes = [one(t) for t in targets]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="auditor-target") as pool:
            outcomes = list(pool.map(one, targets))
    return with_cost(merge_targets(outcomes, plan), config.pricing, outcomes)


def run_part(loaded: LoadedConfig, plan: Plan, reg: Registries, sessions: AwsSessions, budget: Budget,
             target: Target | None) -> Execution:
    """Load the inventory, prepare the engines and run every planned check over one set of inputs."""
    config = loaded.config
    window = plan.window
    warnings: list[str] = []
    data_quality = DataQuality()
    workspace = Workspace(config.duckdb)
    context = EngineContext(workspace=workspace, loaded=loaded, sessions=sessions, budget=budget, target=target)
    engines: dict[str, Engine] = {}
    try:
        captured_at = None
        inventory = config.sources.inventory
        if inventory is not None:
            state_dir = loaded.resolve(config.state_dir)
            if inventory.engine == "aws_api":
                # Every live inventory is kept in the state directory: an anchor for later runs' timelines.
                snapshot, coverage = aws_inventory.load(workspace.con, loaded, sessions, context.aws_target(),
                                                        keep_in=_writable(state_dir, warnings))
                workspace.inventory = snapshot
                data_quality = data_quality.merge(coverage)
            else:
                snapshot = _file_inventory(workspace, loaded.resolve(inventory.path), state_dir, window, warnings)
            captured_at = snapshot.captured_at
            warnings.extend(snapshot.warnings)
            if captured_at is not None and not window.since <= captured_at <= window.until + config.delivery_lag_td:
                warnings.append(f"the inventory was captured at {iso_z(captured_at)}, outside the window {window}: "
                                "groups, rules and addresses may have changed since the traffic was logged")
        wants_timeline = any(pc.spec.meta.timeline for pc in plan.runnable)
        # The timeline reads the SG events from the window's start to the inventory's capture, and the flows of
        # the interfaces that changed inside the window: their engines serve those too.
        timeline_scans = {"cloudtrail": events_window(window, captured_at), "flow_logs": window} if wants_timeline else {}
        timeline_engines = {plan.table_engines[t] for t in timeline_scans if t in plan.table_engines}
        for name in sorted({*plan.engines, *(e for e in timeline_engines if e in reg.engines)}):
            engines[name] = reg.engines.get(name).create(context)
            scans = plan.scans_for(name)
            for table, span in timeline_scans.items():
                if plan.table_engines.get(table) == name:
                    scans[table] = scans[table].union(span) if table in scans else span
            data_quality = data_quality.merge(engines[name].prepare(scans))
        if workspace.inventory is not None:
            data_quality = data_quality.merge(DataQuality(files=workspace.inventory.files))
        timeline = _timeline(loaded, plan, reg, engines, workspace) if wants_timeline else TimelineRun(None)
        if timeline.covers_capture:
            # The timeline walks the inventory back (or forward) to the window: the warning that the inventory lies
            # outside it stays only where the timeline cannot cover the gap.
            warnings = [w for w in warnings if not w.startswith("the inventory was captured at")]
        names = workspace.names()
        results = tuple(run_check(pc, plan, engines.get(pc.engine or ""), workspace, names, timeline)
                        for pc in plan.checks)
        places = _accounts_regions(workspace, engines.values())
        inputs = tuple(f for engine in engines.values() for f in getattr(engine, "inputs", ()))
        window_bytes = sum(getattr(engine, "window_bytes", 0) for engine in engines.values())
        log_bytes = sum(getattr(engine, "log_bytes", 0) for engine in engines.values())
    finally:
        # Also when a check or the run fails halfway: an engine removes what it created (Athena's flow summary).
        for engine in engines.values():
            engine.close()
            warnings.extend(getattr(engine, "warnings", ()))
        workspace.close()
    return Execution(results=results, data_quality=data_quality, captured_at=captured_at, warnings=tuple(warnings),
                     places=frozenset(places), inputs=inputs, inventory=workspace.inventory, names=names,
                     window_bytes=window_bytes, log_bytes=log_bytes)


def _writable(state_dir: Path, warnings: list[str]) -> Path | None:
    try:
        (state_dir / snapshots.FOLDER).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        warnings.append(f"the inventory snapshot cannot be kept in {state_dir}: {exc.strerror or exc}")
        return None
    return state_dir


def _file_inventory(workspace: Workspace, root: Path, state_dir: Path, window: TimeWindow,
                    warnings: list[str]) -> InventorySnapshot:
    """Load the configured inventory, or a snapshot an earlier run kept that lies nearer the window (a run over a
    past window then starts from the state as it was then), and keep the configured one in the state directory."""
    snapshot = workspace.load_inventory(root)
    if snapshot.captured_at is None:
        return snapshot
    try:
        snapshots.keep_files(state_dir, root, [f.path for f in snapshot.files], snapshot.captured_at)
    except OSError as exc:
        warnings.append(f"the inventory snapshot cannot be kept in {state_dir}: {exc.strerror or exc}")
    anchor = snapshots.nearest(state_dir, window)
    if anchor is None or snapshots.distance(anchor[0], window) >= snapshots.distance(snapshot.captured_at, window):
        return snapshot
    workspace.clear_inventory()
    kept = workspace.load_inventory(anchor[1])
    warnings.append(f"the inventory snapshot captured at {iso_z(anchor[0])}, kept by an earlier run, lies nearer the "
                    f"window than {root} (captured at {iso_z(snapshot.captured_at)}): it is the one used")
    return kept


def _timeline(loaded: LoadedConfig, plan: Plan, reg: Registries, engines: Mapping[str, Engine],
              workspace: Workspace) -> TimelineRun:
    """The run's security-group timeline in the workspace (see :mod:`auditor.timeline`)."""
    trail = engines.get(plan.table_engines.get("cloudtrail", ""))
    flows = engines.get(plan.table_engines.get("flow_logs", ""))
    sg_events = reg.checks.get("sg_changes")  # the timeline reads the very events sg_changes reads
    queries = {d: sg_events.query_for(d) for d in sg_events.dialects}
    try:
        return build_for_run(workspace, plan.window, trail_engine=trail, flow_engine=flows, sg_events_query=queries,
                             params={"sensitive_ports": tuple(loaded.config.sensitive_ports)},
                             delivery_lag=loaded.config.delivery_lag_td)
    except AuditorError as exc:
        # The checks that read it error with the reason; the others run. No half-built timeline is judged from.
        log.warning("the security-group timeline could not be built: %s", exc)
        return TimelineRun(None, error=str(exc))


def _accounts_regions(workspace: Workspace, engines: Iterable[Engine]) -> set[tuple[str | None, str | None]]:
    """The accounts and regions the inputs came from, for the report's cover."""
    places: set[tuple[str | None, str | None]] = set()
    if workspace.inventory is not None:
        places |= {(a, None) for a in workspace.inventory.accounts} | {(None, r) for r in workspace.inventory.regions}
    for engine in engines:
        places |= {(f.account_id, f.region) for f in getattr(engine, "inputs", ())}
    return places


def run_check(pc: PlannedCheck, plan: Plan, engine: Engine | None, workspace: Workspace,
              names: Names | None = None, timeline: TimelineRun | None = None) -> CheckResult:
    """One planned check: its engine query, its report query in the workspace, its chart and its hook. A check
    that reads the security-group timeline lists the timeline's queries and notes too (the first one that runs
    carries the queries, so that their cost is counted once)."""
    spec = pc.spec
    if pc.skip_reason is not None:
        return skipped(spec, pc.skip_reason)
    runs: list[QueryRun] = []
    timeline_notes: tuple[str, ...] = ()
    if timeline is not None and spec.meta.timeline:
        first = next((c for c in plan.runnable if c.spec.meta.timeline), None)
        if first is not None and first.spec.id == spec.id:
            runs.extend(timeline.runs)
        timeline_notes = timeline.notes
    if timeline is not None and spec.meta.timeline and timeline.error is not None:
        return errored(spec, f"the security-group timeline could not be built: {timeline.error}")
    try:
        result, phase1 = None, None
        report_params = {**window_params(plan.window), **pc.params}
        if engine is not None and spec.dialects:
            query = Query(check_id=spec.id, name="query", text=spec.query_for(engine.dialect), dialect=engine.dialect,
                          tables=frozenset(t for t in spec.meta.needs if t in ENGINE_TABLES), window=pc.window,
                          params=pc.params)
            if "report.sql" in spec.queries and getattr(engine, "shares_workspace", False):
                # The engine's tables are in the workspace (local): its query runs inside report.sql as the
                # query_result CTE, streamed rather than stored (millions of rows at scale). One run, listed once.
                # A report that re-aggregates gets the records ungrouped: one aggregate instead of two chained.
                engine.prepare_query(query)  # e.g. the flow summary of the check's window
                phase1 = (query.text, {**window_params(pc.window), **pc.params})
            else:
                result = engine.run(query, pc.window, pc.params)
                runs.extend(_taken(engine))  # e.g. the flow summary this query made Athena create
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
        if engine is not None:
            runs.extend(_taken(engine))
        if chart_run is not None:
            runs.append(chart_run)
        notes: tuple[str, ...] = tuple(n for r in runs for n in r.stats.notes)  # e.g. a truncated engine result
        notes += timeline_notes
        if pc.window != plan.window:
            notes += (f"lookback: {pc.window} ({pc.params.get('lookback')})",)
        if spec.hook is not None:
            # A hook returns (columns, rows), or (columns, rows, notes) to tell the report what it left out and why.
            inventory = workspace.inventory
            context = HookContext(params=pc.params, rule_egress=workspace.rule_egress(),
                                  nacl_entries=workspace.nacl_entries() if inventory is not None else {},
                                  inventory_captured_at=inventory.captured_at if inventory is not None else None)
            transformed = spec.hook.transform(columns, rows, context)
            columns, rows = transformed[0], transformed[1]
            notes += tuple(transformed[2]) if len(transformed) > 2 else ()
        return check_result(spec, columns, rows, tuple(runs), stats={"window": str(pc.window)}, notes=notes,
                            chart=chart, no_data=_without_evidence(spec, pc, engine, workspace), names=names)
    except CheckSkipped as exc:
        # The queries that did run (the flow summary, before a query over budget) are billed: they stay listed.
        ran = tuple(runs) + (_taken(engine) if engine is not None else ())
        return replace(skipped(spec, str(exc)), queries=ran)
    except AuditorError as exc:
        return errored(spec, str(exc), tuple(runs) + (_taken(engine) if engine is not None else ()))
    except Exception as exc:  # noqa: BLE001 - a broken check becomes an error result; the run goes on
        log.error("check %s failed:\n%s", spec.id, traceback.format_exc())
        return errored(spec, f"internal error: {type(exc).__name__}: {exc}",
                       tuple(runs) + (_taken(engine) if engine is not None else ()))
    finally:
        # An engine's rows registered for report.sql must not stay in memory while the next check runs.
        workspace.drop_result()


def _without_evidence(spec: CheckSpec, pc: PlannedCheck, engine: Engine | None,
                      workspace: Workspace) -> tuple[str, ...]:
    """The sources a check reads that yielded no usable record in its window (see docs/data-quality.md for the
    threshold): flow logs without a traffic or NODATA record, CloudTrail without an event, an inventory without a
    security group. An engine that cannot count its records cheaply (Athena, Logs Insights) has no ``evidence``
    method, and its sources are taken to hold some."""
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
    text = spec.chart_for(engine.dialect) if engine is not None else None
    if text is None or engine is None:
        return [], None
    bucket = "hour" if plan.window.duration <= timedelta(days=3) else "day"
    query = Query(check_id=spec.id, name="chart", text=text, dialect=engine.dialect,
                  tables=frozenset(t for t in spec.meta.needs if t in ENGINE_TABLES), window=plan.window,
                  params={**pc.params, "bucket": bucket})
    result = engine.run(query, plan.window, query.params)
    return result.records(), QueryRun("chart", engine.name, result.stats.text_as_run, result.stats, len(result.rows))


def _taken(engine: Engine) -> tuple[QueryRun, ...]:
    """The queries an engine ran on its own for the last query (Athena's flow summary), to list with the check."""
    take = getattr(engine, "take_runs", None)
    return take() if take is not None else ()


# --- merging the targets ---------------------------------------------------------------------------------

def merge_targets(outcomes: Sequence[tuple[Target, Outcome]], plan: Plan) -> Execution:
    """One execution from one per target (in target order): rows tagged, findings recomputed, failures kept."""
    results: list[CheckResult] = []
    names = Names()
    for _, outcome in outcomes:
        if not isinstance(outcome, BaseException):
            names = names.merge(outcome.names)
    for pc in plan.checks:
        per_target: list[tuple[Target, CheckResult]] = []
        for target, outcome in outcomes:
            if isinstance(outcome, BaseException):
                per_target.append((target, _failed(pc, outcome)))
            else:
                per_target.append((target, next(r for r in outcome.results if r.check_id == pc.spec.id)))
        results.append(_merge_check(pc, per_target, names))

    data_quality = DataQuality()
    warnings: list[str] = []
    captured: list[datetime] = []
    places: set[tuple[str | None, str | None]] = set()
    for target, outcome in outcomes:
        places.add((target.account_id, target.region))
        if isinstance(outcome, BaseException):
            warnings.append(f"{target.label} could not be audited: {outcome}")
            continue
        data_quality = data_quality.merge(outcome.data_quality)
        warnings.extend(outcome.warnings)
        places |= set(outcome.places)
        if outcome.captured_at is not None:
            captured.append(outcome.captured_at)
    ran = [o for _, o in outcomes if not isinstance(o, BaseException)]
    return Execution(results=tuple(results), data_quality=data_quality, captured_at=min(captured) if captured else None,
                     warnings=tuple(dict.fromkeys(warnings)), places=frozenset(places),
                     window_bytes=sum(o.window_bytes for o in ran), log_bytes=sum(o.log_bytes for o in ran))


def _failed(pc: PlannedCheck, exc: BaseException) -> CheckResult:
    if pc.skip_reason is not None:
        return skipped(pc.spec, pc.skip_reason)
    return errored(pc.spec, str(exc))


def _tagged(target: Target, result: CheckResult) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    columns = tuple(c for c in ("account_id", "region") if c not in result.columns) + tuple(result.columns)
    rows = []
    for row in result.rows:
        tagged = dict(row)
        tagged["account_id"] = row.get("account_id") or target.account_id
        tagged["region"] = row.get("region") or target.region
        rows.append(tagged)
    return columns, rows


def _merge_check(pc: PlannedCheck, per_target: Sequence[tuple[Target, CheckResult]], names: Names) -> CheckResult:
    spec = pc.spec
    if pc.skip_reason is not None:
        return per_target[0][1]
    # A target without data still gives the rows its other sources gave; the merged check has no data only
    # when no target had any.
    ran = [(t, r) for t, r in per_target if r.status in (Status.PASS, Status.FAIL, Status.NO_DATA)]
    blind = [t for t, r in ran if r.status is Status.NO_DATA]
    failed = [(t, r) for t, r in per_target if r.status is Status.ERROR]
    skipped_here = [(t, r) for t, r in per_target if r.status is Status.SKIPPED]
    columns: list[str] = []
    rows: list[dict[str, Any]] = []
    queries: list[QueryRun] = []
    notes: list[str] = []
    for target, result in per_target:
        for q in result.queries:
            queries.append(replace(q, name=f"{q.name} ({target.label})"))
    for target, result in ran:
        cols, tagged = _tagged(target, result)
        columns.extend(c for c in cols if c not in columns)
        rows.extend(tagged)
        notes.extend(result.notes)
    for target, result in skipped_here:
        notes.append(f"skipped for {target.label}: {'; '.join(result.notes) or result.error or 'no reason given'}")
    stats = {"window": str(pc.window), "targets": f"{len(ran)} of {len(per_target)} ran"}
    no_data: tuple[str, ...] = ()
    if blind and len(blind) == len(ran):
        no_data = tuple(dict.fromkeys(s for _, r in ran for s in r.no_data_sources))
    elif blind:
        notes.append(f"no data for {', '.join(t.label for t in blind)}: its rows rest on the other sources only")
    merged = check_result(spec, columns, rows, tuple(queries), stats=stats, notes=tuple(dict.fromkeys(notes)),
                          chart=merge_chart_rows(r.chart for _, r in ran), no_data=no_data, names=names)
    if failed:
        error = "; ".join(f"{t.label}: {r.error}" for t, r in failed)
        return replace(merged, status=Status.ERROR, error=error)
    if not ran and skipped_here:
        return replace(merged, status=Status.SKIPPED, notes=tuple(dict.fromkeys(notes)))
    return merged


def merge_chart_rows(charts: Iterable[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The chart rows of several targets as one chart: rows with the same labels (bucket, source) have their
    numbers added. Each target's query pooled all but its top sources as "other"; the chart ranks the merged
    sources again, so a bucket's total is exact and the named sources are the largest across the targets."""
    merged: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}
    for chart in charts:
        for row in chart:
            key = tuple(sorted((k, v) for k, v in row.items() if not _is_number(v)))
            into = merged.setdefault(key, dict(key))
            for k, v in row.items():
                if _is_number(v):
                    into[k] = into.get(k, 0) + v
    return list(merged.values())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --- cost and the per-target breakdown ------------------------------------------------------------------

def with_cost(execution: Execution, pricing: PricingSettings, outcomes: Sequence[tuple[Target, Outcome]]) -> Execution:
    """Add each check's Athena bytes and cost to its stats, and the run's totals and per-target breakdown to
    the data-quality notes and counters."""
    results = []
    total_bytes = total_cost = 0.0
    queries = 0
    for result in execution.results:
        athena = _athena_runs([result])
        if athena:
            scanned = sum(int(q.stats.bytes_scanned or 0) for q in athena)
            cost = sum(_query_cost(q, pricing) for q in athena)
            total_bytes += scanned
            total_cost += cost
            queries += len(athena)
            result = replace(result, stats={**result.stats, "athena_queries": len(athena),
                                            "bytes_scanned": fmt.size(scanned), "estimated_cost": fmt.usd(cost)})
        results.append(result)
    notes: list[str] = []
    counters: dict[str, int] = {}
    if queries:
        notes.append(f"Athena: {queries} quer{'y' if queries == 1 else 'ies'} scanned {fmt.size(int(total_bytes))}"
                     f"{_against_window(int(total_bytes), execution)}; "
                     f"estimated cost {fmt.usd(total_cost)} at ${pricing.athena_usd_per_tb:g}/TB with "
                     f"{fmt.size(pricing.athena_min_bytes)} minimum per query")
        counters = {"athena_queries": queries, "athena_bytes_scanned": int(total_bytes)}
        if execution.window_bytes:
            counters["athena_window_bytes"] = execution.window_bytes
            counters["athena_log_bytes"] = execution.log_bytes
    for target, outcome in outcomes:
        notes.append(_breakdown(target, outcome, pricing))
    quality = execution.data_quality.merge(DataQuality(notes=tuple(notes), counters=counters))
    return replace(execution, results=tuple(results), data_quality=quality)


def _against_window(scanned: int, execution: Execution) -> str:
    """", 1.1× the window's logs (4.7 MB), which were read 1.0× (the rest read the flow summary)": the run's scan
    against the size of the objects that hold its window, and what the queries over those objects scanned."""
    window = execution.window_bytes
    if window <= 0:
        return ""
    text = f", {fmt.ratio(scanned / window)} the window's logs ({fmt.size(window)})"
    if execution.log_bytes != scanned:
        text += f", which were read {fmt.ratio(execution.log_bytes / window)} (the rest read the flow summary)"
    return text


def _athena_runs(results: Iterable[CheckResult]) -> list[QueryRun]:
    return [q for r in results for q in r.queries if q.engine == "athena" and q.stats.bytes_scanned is not None]


def _query_cost(run: QueryRun, pricing: PricingSettings) -> float:
    """The cost the engine estimated, else one from the bytes it reports."""
    if run.stats.cost_usd is not None:
        return float(run.stats.cost_usd)
    return cost_usd(int(run.stats.bytes_scanned or 0), pricing)


def _breakdown(target: Target, outcome: Outcome, pricing: PricingSettings) -> str:
    if isinstance(outcome, BaseException):
        return f"{target.label}: failed, no check ran ({outcome})"
    ran = [r for r in outcome.results if r.status in (Status.PASS, Status.FAIL)]
    errors = sum(1 for r in outcome.results if r.status is Status.ERROR)
    findings = sum(len(r.findings) for r in outcome.results)
    athena = _athena_runs(outcome.results)
    scanned = sum(int(q.stats.bytes_scanned or 0) for q in athena)
    cost = sum(_query_cost(q, pricing) for q in athena)
    text = f"{target.label}: {len(ran)} checks ran, {findings} findings, {errors} errors"
    if athena:
        text += f", Athena scanned {fmt.size(scanned)} (estimated {fmt.usd(cost)})"
    return text
