"""The check library: the schema of ``check.yaml``, the loaded check (:class:`CheckSpec`, the one shape its
metadata has everywhere: planner, engines, report, exports), and the loader. A check is data: a folder named by its ID holding ``check.yaml`` (metadata and
parameters), ``query.sql`` (the engine query, in Athena/Trino SQL), optionally ``report.sql`` (the
second phase, run in the embedded DuckDB over the engine query's rows and the inventory) and, only
when SQL cannot express it, ``hook.py``: loaded by path (never imported as a module of the package) and checked
to define ``transform(columns, rows, context)``.

Findings are rows whose ``severity`` column is not NULL; their title comes from ``finding_title``.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, Literal, Optional

from jinja2 import TemplateSyntaxError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model

from auditor import formatting as fmt
from auditor.config import Strict, validation_error
from auditor.engines.sql import parse, ungroup, validate, window_params
from auditor.errors import CheckDefinitionError
from auditor.models import Names, Severity, TimeWindow
from auditor.registry import Registry
from auditor.timeparse import parse_duration
from auditor.yamlpos import load_yaml

CHECKS_DIR = Path(__file__).parent
# ASFF finding types (https://docs.aws.amazon.com/securityhub/latest/userguide/asff-type-taxonomy.html).
DEFAULT_ASFF_TYPE = "Software and Configuration Checks/AWS Security Best Practices"


class ParamMeta(Strict):
    type: Literal["integer", "string", "boolean", "duration", "integer_list"]
    default: Any = None
    help: str
    minimum: Optional[int] = None
    maximum: Optional[int] = None


class ControlMeta(Strict):
    framework: str
    version: str
    control: str
    title: str = ""


class CheckMeta(Strict):
    """The schema of ``check.yaml``; user checks declared in config.yaml will use the same one."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    severity: Severity = Field(description="The severity the check's findings reach at most by default.")
    description: str
    risk: str
    remediation: str
    needs: tuple[Literal["flow_logs", "cloudtrail", "inventory"], ...]
    key: tuple[str, ...] = Field(description="The row columns that identify a finding.")
    finding_title: str = Field(description="The finding's title: a Jinja2 template over the row's columns with the "
                               "word filters of auditor.formatting (docs/report.md, 'Words'); {column} placeholders "
                               "still work.")
    finding_remediation: Optional[str] = Field(
        None, description="What to do about one finding, as a template like finding_title; shown under the finding "
        "in place of the check's remediation, which stays the general advice.")
    window: Literal["report", "lookback"] = "report"
    event_like: bool = Field(False, description="Findings are events: ones the previous run had are 'aged out', not resolved.")
    metric: str = Field("findings", description="The trend metric: 'findings' (active findings) or a numeric row column to sum.")
    reaggregates: bool = Field(
        False, description="report.sql gives the same rows whether the engine query's rows are grouped or not (it "
        "sums the counts or takes distinct keys), so where the engine query runs inside the report (local) it runs "
        "without its GROUP BY and the data is aggregated once. tests/engines/test_reaggregates.py proves it per check.")
    findings_from_absence: bool = Field(
        False, description="The findings say that something was not seen (a rule no traffic matched). When a source "
        "the check reads yields no usable record in its window (status no_data), such a check gives no rows and no "
        "findings: an absence of evidence is no finding. Other checks keep the rows the other sources give.")
    params: dict[str, ParamMeta] = Field(default_factory=dict)
    compliance: tuple[ControlMeta, ...] = ()
    chart: Optional[Literal["rejected_flows", "exposed_ports"]] = Field(
        None, description="The report's chart of the check: rejected_flows (its chart query's rows per hour or day, "
        "top sources stacked) or exposed_ports (its rows: public sources per port, shaded by severity).")
    asff_type: str = Field(DEFAULT_ASFF_TYPE, description="The ASFF finding type of its findings in findings.asff.json.")
    unsupported: dict[Literal["trino", "insights"], str] = Field(
        default_factory=dict, description="Query dialects the check cannot be written in, each with the reason the "
        "report gives when the check is skipped on an engine of that dialect (Logs Insights cannot join two log groups).")


@dataclass(frozen=True)
class CheckSpec:
    """A loaded check: its metadata, query texts and hook."""

    meta: CheckMeta
    folder: Path
    queries: Mapping[str, str]  # file name -> text: query.sql, report.sql, query.insights, chart.sql, chart.insights
    hook: ModuleType | None = None
    params_model: type[BaseModel] = field(default=BaseModel, repr=False)

    # The attributes the renderer and the CLI read.
    @property
    def id(self) -> str:
        return self.meta.id

    @property
    def title(self) -> str:
        return self.meta.title

    @property
    def severity(self) -> Severity:
        return self.meta.severity

    @property
    def description(self) -> str:
        return self.meta.description

    @property
    def risk(self) -> str:
        return self.meta.risk

    @property
    def remediation(self) -> str:
        return self.meta.remediation

    @property
    def key(self) -> tuple[str, ...]:
        return self.meta.key

    @property
    def dialects(self) -> tuple[str, ...]:
        return tuple(d for name, d in (("query.sql", "trino"), ("query.insights", "insights")) if name in self.queries)

    @property
    def engine_free(self) -> bool:
        """A check with only ``report.sql`` reads the inventory alone and runs the same on every engine."""
        return not self.dialects

    def runs_on(self, dialect: str) -> bool:
        return self.engine_free or dialect in self.dialects

    def query_for(self, dialect: str) -> str:
        """The engine query text in an engine's dialect."""
        return self.queries[{"trino": "query.sql", "insights": "query.insights"}[dialect]]

    def chart_for(self, dialect: str) -> str | None:
        """The chart query text in an engine's dialect (chart.sql, chart.insights), None when it has none."""
        return self.queries.get({"trino": "chart.sql", "insights": "chart.insights"}.get(dialect, ""))

    def finding_title(self, row: Mapping[str, Any], names: Names | None = None) -> str:
        """The finding title for a row, in words (:func:`auditor.formatting.sentence`): the template in a sandbox,
        with the inventory's ``names`` for interfaces and groups."""
        titled = getattr(self.hook, "finding_title", None)
        if callable(titled):
            return str(titled(row))
        return fmt.sentence(self.meta.finding_title, row, names)

    def finding_remediation(self, row: Mapping[str, Any], names: Names | None = None) -> str:
        """What to do about the finding of this row, or "" when the check gives only its general remediation."""
        text = self.meta.finding_remediation
        return fmt.sentence(text, row, names) if text else ""

    def validate_params(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters from config merged over the defaults. Raises pydantic ValidationError."""
        return self.params_model.model_validate(dict(raw)).model_dump()

    def lookback(self, params: Mapping[str, Any]) -> timedelta | None:
        value = params.get("lookback")
        return parse_duration(value) if value else None


def _duration(value: str) -> str:
    parse_duration(value)  # ValueError: "'banana' is not a duration like 90d, 24h, 30m or 2w"
    return value


_TYPES: dict[str, Any] = {"integer": int, "string": str, "boolean": bool,
                          "duration": Annotated[str, AfterValidator(_duration)], "integer_list": tuple[int, ...]}


def _params_model(meta: CheckMeta) -> type[BaseModel]:
    fields: dict[str, Any] = {"enabled": (bool, Field(True, description="Run this check."))}
    for name, p in meta.params.items():
        tp = _TYPES[p.type]
        kwargs: dict[str, Any] = {"description": p.help}
        if p.minimum is not None:
            kwargs["ge"] = p.minimum
        if p.maximum is not None:
            kwargs["le"] = p.maximum
        if p.default is None:
            tp = Optional[tp]
        default = tuple(p.default) if isinstance(p.default, list) else p.default
        fields[name] = (tp, Field(default, **kwargs))
    model = create_model(f"{meta.id}_params", __config__=ConfigDict(frozen=True, extra="forbid", strict=False), **fields)
    return model


def load_check_dir(folder: Path) -> CheckSpec:
    """Load one check folder. The folder name must equal the check's ID."""
    meta_path = folder / "check.yaml"
    try:
        data, positions = load_yaml(meta_path.read_text(encoding="utf-8"), str(meta_path))
        meta = CheckMeta.model_validate(data)
    except FileNotFoundError:
        raise CheckDefinitionError(f"{folder}: no check.yaml") from None
    except ValidationError as exc:
        raise CheckDefinitionError(str(validation_error(exc, CheckMeta, str(meta_path), positions, data=data))) from None
    if meta.id != folder.name:
        raise CheckDefinitionError(f"{meta_path}: id '{meta.id}' does not match its folder name '{folder.name}'")
    queries = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())
               if p.name in ("query.sql", "report.sql", "query.insights", "chart.sql", "chart.insights")}
    if not queries:
        raise CheckDefinitionError(f"{folder}: a check needs query.sql, query.insights or report.sql")
    if any(n in meta.needs for n in ("flow_logs", "cloudtrail")) and "query.sql" not in queries and "query.insights" not in queries:
        raise CheckDefinitionError(f"{folder}: a check that reads {', '.join(meta.needs)} needs an engine query (query.sql)")
    _refuse_what_the_local_engine_cannot_answer(folder, meta, queries)
    if meta.reaggregates:
        if "query.sql" not in queries or "report.sql" not in queries:
            raise CheckDefinitionError(f"{meta_path}: reaggregates needs both query.sql and report.sql")
        ungroup(parse(queries["query.sql"], name=f"{meta.id}/query"), name=f"{meta_path} (query.sql)")
    hook = load_hook(folder / "hook.py", meta.id) if (folder / "hook.py").exists() else None
    known = " ".join(queries.values()) + " " + " ".join(getattr(hook, "COLUMNS", ()))
    for field_name in ("finding_title", "finding_remediation"):
        text = getattr(meta, field_name)
        if not text:
            continue
        try:
            used = fmt.template_variables(text)
        except TemplateSyntaxError as exc:
            raise CheckDefinitionError(f"{meta_path}: {field_name}: line {exc.lineno}: {exc.message}") from None
        for name in sorted(used):
            if name not in meta.key and not re.search(rf"\b{re.escape(name)}\b", known):
                raise CheckDefinitionError(f"{meta_path}: {field_name} uses '{name}', which no query or hook produces")
    return CheckSpec(meta=meta, folder=folder, queries=queries, hook=hook, params_model=_params_model(meta))


def _refuse_what_the_local_engine_cannot_answer(folder: Path, meta: CheckMeta, queries: Mapping[str, str]) -> None:
    """A check's SQL goes through the same Trino conformance rules as ``auditor query`` (docs/trino.md): a
    construct the local engine cannot answer as Athena does is refused now, with the file and line."""
    sample = window_params(TimeWindow(datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2000, 1, 2, tzinfo=timezone.utc)))
    sample.update({name: p.default for name, p in meta.params.items() if p.default is not None})
    validate(queries, folder=str(folder), params=sample)


def load_hook(path: Path, check_id: str) -> ModuleType:
    """A check's ``hook.py``, loaded by its path as a module of its own, and checked: it must define a callable
    ``transform(columns, rows, context)``."""
    spec = importlib.util.spec_from_file_location(f"auditor_check_hook_{check_id}", path)
    if spec is None or spec.loader is None:
        raise CheckDefinitionError(f"{path}: cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any failure of a hook's own code is a broken check definition
        raise CheckDefinitionError(f"{path}: {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(module, "transform", None)):
        raise CheckDefinitionError(f"{path}: a hook defines transform(columns, rows, context) -> (columns, rows)")
    return module


def load_builtin_checks(registry: Registry[CheckSpec]) -> Registry[CheckSpec]:
    """Register every built-in check folder, in a stable order."""
    for folder in sorted(p for p in CHECKS_DIR.iterdir() if (p / "check.yaml").exists()):
        registry.register(folder.name, load_check_dir(folder))
    return registry


@dataclass(frozen=True)
class HookContext:
    """What a check's hook may know besides its rows: its parameters and facts from the inventory."""

    params: Mapping[str, Any]
    rule_egress: Mapping[str, bool] = field(default_factory=dict)  # security-group rule ID -> is it an egress rule
    # (network ACL ID, rule number, egress) -> the entry (rule_action, protocol, from_port, to_port, cidr), from the
    # inventory's describe-network-acls, and when that inventory was captured
    nacl_entries: Mapping[tuple[str, int, bool], Mapping[str, Any]] = field(default_factory=dict)
    inventory_captured_at: Optional[datetime] = None

