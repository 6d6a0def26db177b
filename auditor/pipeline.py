"""run_audit(): the stages in order, nothing else.

plan -> execute (which evaluates each check's rows) -> suppress -> history -> render -> write. ``auditor run`` calls
this; ``auditor run --suite`` and the scheduler call it through :func:`auditor.deliver.suite.run_suite`, which
then archives, mails and pings the heartbeat. docs/architecture.md draws the whole.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from auditor import __version__, suppress
from auditor.aws import AwsSessions
from auditor.builtins import Registries, builtins
from auditor.clock import utcnow
from auditor.config import LoadedConfig, check_folders
from auditor.engines.sources.inventory import InventorySnapshot
from auditor.evaluate import input_counters, input_warnings
from auditor.execute import execute
from auditor.formats import DEFAULT_FORMATS, WRITE_ORDER, RenderContext
from auditor.history import History, compare, sources_key
from auditor.models import DataQuality, InputFile, RunRecord, TimeWindow
from auditor.output import (
    Artifact,
    check_out_dir,
    default_out_dir,
    findings_document,
    remove_stale_staging,
    write_atomically,
)
from auditor.plan import plan_run
from auditor.render import template_dirs


@dataclass(frozen=True)
class RunOutcome:
    record: RunRecord
    out_dir: Path
    artifacts: tuple[Path, ...]
    artifact_errors: tuple[str, ...]
    inputs: tuple[InputFile, ...] = ()  # every input file the engines read, for the evidence archive
    inventory: InventorySnapshot | None = None  # the inventory loaded (captured_at, files), for the evidence archive


def run_audit(loaded: LoadedConfig, window: TimeWindow, *, out_dir: Path | None = None, force: bool = False,
              clock: Callable[[], datetime] = utcnow, registries: Registries | None = None,
              run_id: str | None = None, formats: Sequence[str] = DEFAULT_FORMATS,
              aws_sessions: AwsSessions | None = None, backfilled: bool = False) -> RunOutcome:
    """Run every planned check over ``window`` and write the report. Check failures never stop the run.

    ``registries`` defaults to the built-ins; ``clock`` is the one clock (:func:`auditor.clock.utcnow`).

    ``aws_sessions`` replaces the boto3 sessions the AWS sources use (default: the config's profile or the
    standard credential chain). ``backfilled`` marks a past window run by ``auditor backfill`` in its record."""
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
    # Once over the configured inputs, or once per AWS account and region, merged.
    executed = execute(loaded, plan, reg, sessions=aws_sessions)
    warnings.extend(executed.warnings)
    results, data_quality, captured_at, places = (executed.results, executed.data_quality, executed.captured_at,
                                                   executed.places)
    data_quality = data_quality.merge(DataQuality(counters=input_counters(data_quality)))

    results, exception_warnings = suppress.apply(results, config.exceptions, started.date())
    history = History(loaded.resolve(config.state_dir))
    record = RunRecord(id=run_id, window=window, engine="+".join(plan.engines) or config.engine, started_at=started,
                       finished_at=clock(), tool_version=__version__, checks=results, data_quality=data_quality,
                       inventory_captured_at=captured_at, sources_key=sources_key(config.sources),
                       accounts=tuple(sorted({a for a, _ in places if a})), regions=tuple(sorted({r for _, r in places if r})),
                       backfilled=backfilled)
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


def _artifacts(record: RunRecord, reg: Registries, loaded: LoadedConfig, formats: Sequence[str]) -> list[Artifact]:
    config = loaded.config
    specs = {c.check_id: reg.checks.get(c.check_id) for c in record.checks}
    user_templates = loaded.resolve(config.templates_dir) if config.templates_dir else None
    ctx = RenderContext(record=record, specs=specs, template_dirs=template_dirs(user_templates),
                        table_limit=config.table_limit, engines={e.name: e.dialect for e in reg.engines},
                        appendix=config.report.appendix)
    # findings.json is always written, and first: smallest and most important first, so that a full disk
    # costs the PDF before it costs the evidence.
    names = sorted(dict.fromkeys(["json", *formats]), key=lambda n: WRITE_ORDER.index(n) if n in WRITE_ORDER
                   else len(WRITE_ORDER))
    return [art for name in names for art in reg.formats.get(name).artifacts(ctx)]
