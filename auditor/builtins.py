"""Registers the built-in engines and checks, the way a plugin entry point would register its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from auditor.checks import CheckSpec, load_builtin_checks
from auditor.engines import local
from auditor.engines.athena import engine as athena
from auditor.engines.base import Engine, EngineContext
from auditor.engines.insights import cloud as insights
from auditor.formats import BUILTIN_FORMATS, OutputFormat
from auditor.registry import Registry


@dataclass(frozen=True)
class EngineFactory:
    """How to build an engine for a run, and which query dialect it runs."""

    name: str
    dialect: str
    create: Callable[[EngineContext], Engine]
    help: str = ""


@dataclass
class Registries:
    engines: Registry[EngineFactory] = field(default_factory=lambda: Registry("engine"))
    checks: Registry[CheckSpec] = field(default_factory=lambda: Registry("check"))
    formats: Registry[OutputFormat] = field(default_factory=lambda: Registry("output format"))


def _local(context: EngineContext) -> Engine:
    loaded = context.loaded
    cfg = loaded.config
    return local.create(context.workspace, cfg.sources, cfg.delivery_lag_td, loaded.resolve,
                        **local.cache_settings(cfg, loaded.resolve))


def register_builtins(reg: Registries) -> Registries:
    reg.engines.register("local", EngineFactory("local", "trino", _local, "DuckDB over files in the S3 layout"))
    reg.engines.register("athena", EngineFactory("athena", "trino", athena.create, "Athena (Trino) over flow logs and CloudTrail in S3"))
    reg.engines.register("insights", EngineFactory("insights", "insights", insights.create, "CloudWatch Logs Insights"))
    load_builtin_checks(reg.checks)
    for fmt in BUILTIN_FORMATS:
        reg.formats.register(fmt.name, fmt)
    return reg


def builtins() -> Registries:
    """Fresh registries holding the built-ins."""
    return register_builtins(Registries())
