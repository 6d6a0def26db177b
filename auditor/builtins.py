"""Registers the built-in engines and checks, the way a plugin entry point would register its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from auditor.checks import CheckSpec, load_builtin_checks
from auditor.config import LoadedConfig
from auditor.engines.base import Engine
from auditor.formats import BUILTIN_FORMATS, OutputFormat
from auditor.registry import Registry

if TYPE_CHECKING:
    from auditor.engines.embedded import Workspace


@dataclass(frozen=True)
class EngineFactory:
    """How to build an engine for a run, and which query dialect it runs."""

    name: str
    dialect: str
    create: Callable[["Workspace", LoadedConfig], Engine]
    help: str = ""


@dataclass
class Registries:
    engines: Registry[EngineFactory] = field(default_factory=lambda: Registry("engine"))
    checks: Registry[CheckSpec] = field(default_factory=lambda: Registry("check"))
    formats: Registry[OutputFormat] = field(default_factory=lambda: Registry("output format"))


def _local(workspace: "Workspace", loaded: LoadedConfig) -> Engine:
    from auditor.engines import local
    cfg = loaded.config
    return local.create(workspace, cfg.sources, cfg.delivery_lag_td, loaded.resolve,
                        **local.cache_settings(cfg, loaded.resolve))


def _athena(workspace: "Workspace", loaded: LoadedConfig) -> Engine:
    from auditor.engines.athena import engine
    return engine.create(workspace, loaded)


def _insights(workspace: "Workspace", loaded: LoadedConfig) -> Engine:
    from auditor.engines.insights import cloud
    return cloud.create(workspace, loaded)


def register_builtins(reg: Registries) -> Registries:
    reg.engines.register("local", EngineFactory("local", "trino", _local, "DuckDB over files in the S3 layout"))
    reg.engines.register("athena", EngineFactory("athena", "trino", _athena, "Athena (Trino) over flow logs and CloudTrail in S3"))
    reg.engines.register("insights", EngineFactory("insights", "insights", _insights, "CloudWatch Logs Insights"))
    load_builtin_checks(reg.checks)
    for fmt in BUILTIN_FORMATS:
        reg.formats.register(fmt.name, fmt)
    return reg


def builtins() -> Registries:
    """Fresh registries holding the built-ins."""
    return register_builtins(Registries())
