"""The one config schema: pydantic models of ``config.yaml``, frozen, unknown keys forbidden.

Every setting, its default and its help text are declared here and nowhere else. ``load_config`` turns
validation errors into ``config.yaml:12:5: unknown key 'severty' (did you mean 'severity'?)``.
"""

from __future__ import annotations

import types
import typing
from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from auditor.errors import ConfigError
from auditor.models import Severity
from auditor.registry import did_you_mean
from auditor.timeparse import parse_duration
from auditor.yamlpos import PositionMap, load_yaml

# AWS Security Hub control EC2.19 "Security groups should not allow unrestricted access to ports with high risk"
# (https://docs.aws.amazon.com/securityhub/latest/userguide/ec2-controls.html#ec2-19).
SECURITY_HUB_EC2_19_PORTS = (20, 21, 22, 23, 25, 110, 135, 143, 445, 1433, 1434, 3000, 3306, 3389, 4333, 5000,
                             5432, 5500, 5601, 8080, 8088, 8888, 9200, 9300)
# Ours, on top of EC2.19: NetBIOS 137-139 (in AWS Config's restricted-common-ports family), Oracle 1521,
# the unauthenticated Docker API 2375, VNC 5900, Redis 6379, memcached 11211 and MongoDB 27017: services that
# are routinely found open and abused on the internet. See README "Sensitive ports".
EXTRA_SENSITIVE_PORTS = (137, 138, 139, 1521, 2375, 5900, 6379, 11211, 27017)
DEFAULT_SENSITIVE_PORTS = tuple(sorted(set(SECURITY_HUB_EC2_19_PORTS + EXTRA_SENSITIVE_PORTS)))


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceSpec(_Strict):
    """One input. In YAML a bare string is shorthand for ``{path: ...}``."""

    path: Path = Field(description="A file or a directory of any depth. Relative paths resolve against the config "
                                   "file's folder.")


class FlowLogSourceSpec(SourceSpec):
    format: Optional[str] = Field(None, description="The AWS LogFormat (`${version} ${account-id} ...`) of header-less "
                                                    "files such as CloudWatch exports. Default: the v2 default format.")

    @field_validator("format")
    @classmethod
    def _known_fields(cls, v: str | None) -> str | None:
        if v is not None:
            from auditor.engines.sources.flowlogs import parse_log_format
            parse_log_format(v)  # raises ValueError with a did-you-mean
        return v


class Sources(_Strict):
    flow_logs: Optional[FlowLogSourceSpec] = Field(None, description="VPC Flow Logs in the layout AWS writes to S3: "
                                                                     "text (.log, .log.gz) or Parquet.")
    cloudtrail: Optional[SourceSpec] = Field(None, description="CloudTrail: S3 log files (AWSLogs/<account>/CloudTrail/...), "
                                                               "JSON arrays, JSON Lines or CloudWatch exports.")
    inventory: Optional[SourceSpec] = Field(None, description="EC2 inventory: AWS CLI JSON of describe-security-groups, "
                                                              "describe-security-group-rules and describe-network-interfaces.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: ({"path": v} if isinstance(v, (str, Path)) else v) for k, v in data.items()}
        return data


class WindowSpec(_Strict):
    since: Optional[str] = Field(None, description="Default start: ISO 8601, a date, or relative (7d).")
    until: Optional[str] = Field(None, description="Default end: ISO 8601, a date, or relative (24h).")

    @model_validator(mode="before")
    @classmethod
    def _stringify(cls, data: Any) -> Any:
        # YAML turns 2026-11-09 into a date; keep the user's meaning by formatting it back.
        if isinstance(data, dict):
            return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items()}
        return data


class DuckDBSettings(_Strict):
    memory_limit: Optional[str] = Field(None, description="DuckDB memory limit, e.g. '4GB'. Default: DuckDB's (80% of RAM).")
    temp_directory: Optional[Path] = Field(None, description="Where DuckDB spills when over the memory limit.")
    threads: Optional[int] = Field(None, ge=1, description="DuckDB worker threads. Default: one per core.")


class Config(_Strict):
    """The whole of ``config.yaml``."""

    engine: str = Field("local", description="The engine that runs the checks: local (DuckDB over files).")
    sources: Sources = Field(default_factory=Sources, description="Where the inputs are. A missing source skips the checks that need it.")
    checks: Optional[dict[str, dict[str, Any]]] = Field(
        None, description="Which checks run, with their parameters. Absent means every built-in check with its defaults.")
    window: Optional[WindowSpec] = Field(None, description="Default window when neither --since nor --until is given.")
    sensitive_ports: tuple[int, ...] = Field(DEFAULT_SENSITIVE_PORTS, description="Ports whose exposure is high severity. "
                                             "Default: Security Hub EC2.19's list plus 137-139, 1521, 2375, 5900, 6379, 11211, 27017.")
    delivery_lag: str = Field("1d", description="How long after a record starts it may still be delivered. Widens file pruning "
                                                "past the window's end, and warns when the window ends later than now minus this.")
    output_dir: Path = Field(Path("reports"), description="Where runs without --out write reports/<date>-<run id>/.")
    table_limit: int = Field(50, ge=1, le=1000, description="Rows per table in the HTML/PDF report; the CSV holds all rows.")
    duckdb: DuckDBSettings = Field(default_factory=DuckDBSettings, description="Resources of the embedded DuckDB.")

    @field_validator("sensitive_ports")
    @classmethod
    def _ports(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        bad = [p for p in v if not 0 <= p <= 65535]
        if bad:
            raise ValueError(f"ports must be 0..65535, got {bad}")
        return tuple(sorted(set(v)))

    @field_validator("delivery_lag")
    @classmethod
    def _lag(cls, v: str) -> str:
        parse_duration(v)
        return v

    @property
    def delivery_lag_td(self) -> timedelta:
        return parse_duration(self.delivery_lag)


class LoadedConfig(BaseModel):
    """A validated config and where it came from."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    config: Config
    path: Path
    positions: PositionMap

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, p: Path) -> Path:
        """A path from the config, resolved against the config file's folder."""
        return p if p.is_absolute() else (self.base_dir / p)

    def error(self, message: str, loc: tuple[str | int, ...] = (), *, key: bool = False) -> ConfigError:
        """A ConfigError pointing at ``loc`` in the file."""
        pos = self.positions.locate(loc, key=key)
        return ConfigError(message, path=str(self.path), line=pos.line if pos else None, column=pos.column if pos else None)


def load_config(path: str | Path) -> LoadedConfig:
    """Read and validate ``config.yaml``. Every error names the file, line and column, and the fix."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file (pass --config PATH, or run from the folder that holds config.yaml)") from None
    data, positions = load_yaml(text, str(p))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of settings (engine:, sources:, checks: ...)", path=str(p), line=1, column=1)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, Config, str(p), positions, data=data) from None
    return LoadedConfig(config=config, path=p.resolve(), positions=positions)


def validation_error(exc: ValidationError, model: type[BaseModel], path: str, positions: PositionMap,
                     prefix: tuple[str | int, ...] = (), data: Any = None) -> ConfigError:
    """The first pydantic error as a ConfigError at its file position, with a did-you-mean for unknown keys."""
    messages = []
    first_pos = None
    for err in exc.errors():
        loc = prefix + _data_loc(err["loc"], data, err.get("input"))
        if err["type"] == "extra_forbidden":
            name = str(loc[-1])
            allowed = _fields_at(model, loc[len(prefix):-1])
            msg = f"unknown key '{name}'{did_you_mean(name, allowed)}"
            if allowed:
                msg += f"; allowed here: {', '.join(sorted(allowed))}"
            pos = positions.locate(loc, key=True)
        else:
            where = ".".join(str(x) for x in loc) or "config"
            msg = f"{where}: {_clean(err['msg'])}"
            pos = positions.locate(loc)
        messages.append(msg if pos is None else (pos, msg))
        if first_pos is None and pos is not None:
            first_pos = pos
    head = messages[0]
    pos, msg = head if isinstance(head, tuple) else (first_pos, head)
    more = len(messages) - 1
    if more:
        msg += f" (and {more} more error{'s' if more > 1 else ''})"
    return ConfigError(msg, path=path, line=pos.line if pos else None, column=pos.column if pos else None)


def _clean(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def _data_loc(loc: tuple[str | int, ...], data: Any, bad_input: Any) -> tuple[str | int, ...]:
    """pydantic's ``loc`` without the union member names it inserts ("SourceSpec", "function-after[...]"):
    keep only the parts that exist in the input data, walking it as we go."""
    if data is None:
        return tuple(loc)
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and part == loc[-1]:
            out.append(part)  # a missing or extra key at the end of the path
    return tuple(out)


def _fields_at(model: Any, loc: tuple[str | int, ...]) -> list[str]:
    """The field names allowed at ``loc`` inside ``model`` (walking nested models, Optional and dicts)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
        return next((a for a in typing.get_args(tp) if a is not type(None)), tp)
    return tp


def documented_keys() -> dict[str, str]:
    """Every config key (dotted) with its help text, for the README meta test."""
    out: dict[str, str] = {}

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            key = f"{prefix}{name}"
            out[key] = field.description or ""
            inner = _unwrap(field.annotation)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                walk(inner, key + ".")

    walk(Config, "")
    return out


def settings_summary(config: Config) -> Mapping[str, Any]:
    """The settings a report shows (no secrets live in config; this is still only what a reader needs)."""
    return {"engine": config.engine, "sensitive_ports": list(config.sensitive_ports), "delivery_lag": config.delivery_lag}
