"""config + check library + clock -> what to run where. Pure: reads no data and runs nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from auditor.checks import CheckSpec
from auditor.config import LoadedConfig, validation_error
from auditor.models import ENGINE_TABLES, TimeWindow, iso_z
from auditor.registry import Registry, did_you_mean
from auditor.suppress import validate_exceptions


@dataclass(frozen=True)
class PlannedCheck:
    spec: CheckSpec
    params: Mapping[str, Any]  # validated check parameters merged over defaults, plus the global ones
    window: TimeWindow  # what the engine query reads: the report window, or the check's lookback ending with it
    skip_reason: str | None = None
    engine: str | None = None  # the engine that runs its engine query; None for inventory-only checks


@dataclass(frozen=True)
class Plan:
    window: TimeWindow
    engine: str
    checks: tuple[PlannedCheck, ...]
    scans: Mapping[str, TimeWindow] = field(default_factory=dict)  # engine table -> the union of the windows read
    warnings: tuple[str, ...] = ()
    table_engines: Mapping[str, str] = field(default_factory=dict)  # engine table -> the engine that serves it

    def scans_for(self, engine: str) -> dict[str, TimeWindow]:
        """The tables one engine must serve, with their windows."""
        return {t: w for t, w in self.scans.items() if self.table_engines.get(t) == engine}

    @property
    def engines(self) -> tuple[str, ...]:
        """The engines the runnable checks use, in a stable order."""
        return tuple(sorted({c.engine for c in self.runnable if c.engine is not None}))

    @property
    def runnable(self) -> tuple[PlannedCheck, ...]:
        return tuple(c for c in self.checks if c.skip_reason is None)


def table_engines(loaded: LoadedConfig) -> dict[str, str]:
    """Which engine serves each configured engine table: the source's own ``engine``."""
    out = {}
    for table in ENGINE_TABLES:
        source = getattr(loaded.config.sources, table)
        if source is not None:
            out[table] = source.engine
    return out


def plan_run(loaded: LoadedConfig, library: Registry[CheckSpec], window: TimeWindow, now: datetime,
             dialects: Mapping[str, str] | None = None) -> Plan:
    """Decide which checks run, on which engine, with which parameters and windows, and what each engine
    table must cover. ``dialects`` maps each registered engine to the query dialect it runs."""

    config = loaded.config
    dialects = dict(dialects or {"local": "trino"})
    validate_exceptions(loaded, {spec.id: spec.key for spec in library})
    engines_of = table_engines(loaded)
    selected = select_checks(loaded, library)
    global_params = {"sensitive_ports": tuple(config.sensitive_ports)}
    planned: list[PlannedCheck] = []
    for check_id, raw in selected:
        spec = library.get(check_id)
        try:
            params = spec.validate_params(raw)
        except ValidationError as exc:
            raise validation_error(exc, spec.params_model, str(loaded.path), loaded.positions, prefix=("checks", check_id),
                                   data=dict(raw)) from None
        lookback = spec.lookback(params) if spec.meta.window == "lookback" else None
        check_window = TimeWindow(window.until - lookback, window.until) if lookback else window
        engine, reason = _engine_for(spec, params, loaded, engines_of, dialects)
        planned.append(PlannedCheck(spec=spec, params={**global_params, **params}, window=check_window,
                                    skip_reason=reason, engine=engine))
    scans: dict[str, TimeWindow] = {}
    for pc in planned:
        if pc.skip_reason is None:
            for table in pc.spec.meta.needs:
                if table in ENGINE_TABLES:
                    scans[table] = scans[table].union(pc.window) if table in scans else pc.window
    warnings = []
    settled = now - config.delivery_lag_td
    if window.until > settled:
        warnings.append(f"the window ends at {iso_z(window.until)}, later than now minus the delivery lag "
                        f"({config.delivery_lag}): records may still be arriving, so counts can grow on a later run")
    return Plan(window=window, engine=config.engine, checks=tuple(planned), scans=scans, warnings=tuple(warnings),
                table_engines=engines_of)


def select_checks(loaded: LoadedConfig, library: Registry[CheckSpec], ids: Sequence[str] | None = None,
                  where: tuple[str | int, ...] = ()) -> list[tuple[str, Mapping[str, Any]]]:
    """The checks a run selects, in order, each with its raw parameters from ``checks:``.

    ``ids`` (a suite's list, found at ``where`` in the file) picks them; else the config's ``checks:``; else every
    check in the library. An unknown ID is a config error at its line, with a did-you-mean.
    """
    configured = loaded.config.checks
    if ids is None:
        if configured is None:
            return [(spec.id, {}) for spec in library]
        ids, locs, key = list(configured), [("checks", c) for c in configured], True
    else:
        locs, key = [(*where, i) for i in range(len(ids))], False
    out = []
    for check_id, loc in zip(ids, locs):
        if check_id not in library:
            raise loaded.error(f"{_prefix(where)}unknown check '{check_id}'{did_you_mean(check_id, library.names())}; "
                               "run `auditor checks` for the list", loc, key=key)
        out.append((check_id, (configured or {}).get(check_id) or {}))
    return list(dict(out).items())


def _prefix(where: tuple[str | int, ...]) -> str:
    return f"suite '{where[1]}': " if where[:1] == ("suites",) and len(where) > 1 else ""


def _engine_for(spec: CheckSpec, params: Mapping[str, Any], loaded: LoadedConfig, engines_of: Mapping[str, str],
                dialects: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The engine a check runs on, or the reason it is skipped."""
    if not params.get("enabled", True):
        return None, "disabled in config (enabled: false)"
    missing = [s for s in spec.meta.needs if getattr(loaded.config.sources, s) is None]
    if missing:
        return None, f"needs sources.{' and sources.'.join(missing)}, which {loaded.path.name} does not set"
    tables = [t for t in spec.meta.needs if t in ENGINE_TABLES]
    if not tables:
        return None, None
    names = sorted({engines_of[t] for t in tables})
    if len(names) > 1:
        return None, f"reads {' and '.join(tables)}, which come from different engines ({', '.join(names)})"
    engine = names[0]
    if engine not in dialects:
        known = ", ".join(sorted(dialects))
        return None, f"the {engine} engine is not available (known: {known})"
    if dialects[engine] in spec.meta.unsupported:
        return None, f"cannot run on the {engine} engine: {spec.meta.unsupported[dialects[engine]]}"
    if not spec.runs_on(dialects[engine]):
        return None, f"has no query for the {engine} engine ({dialects[engine]})"
    return engine, None
