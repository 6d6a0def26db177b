"""The one config schema: pydantic models of ``config.yaml``, frozen, unknown keys forbidden.

Every setting, its default and its help text are declared here and nowhere else. ``load_config`` turns
validation errors into ``config.yaml:12:5: unknown key 'severty' (did you mean 'severity'?)``.
"""

from __future__ import annotations

import os
import re
import tempfile
import types
import typing
from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from auditor.configbase import LogFormat, Strict
from auditor.archive.settings import ArchiveSettings
from auditor.deliver.settings import EmailSettings, ScheduleSettings, SuiteSpec
from auditor.engines.athena.settings import (AccountSpec, AthenaSettings, AthenaSourceSpec, AwsApiInventorySpec, AwsSettings,
                                             PricingSettings)
from auditor.engines.insights.settings import InsightsSettings, InsightsSourceSpec
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


_Strict = Strict


class SourceSpec(_Strict):
    """One input read by the local engine. In YAML a bare string is shorthand for ``{path: ...}``."""

    engine: Literal["local"] = Field("local", description="Read this source with the local engine (DuckDB over files).")
    path: Path = Field(description="A file or a directory of any depth. Relative paths resolve against the config "
                                   "file's folder.")


class FlowLogSourceSpec(SourceSpec):
    format: LogFormat = Field(None, description="The AWS LogFormat (`${version} ${account-id} ...`) of header-less "
                                                "files such as CloudWatch exports. Default: the v2 default format.")


def _source_engine(data: Any) -> str:
    if isinstance(data, dict):
        return str(data.get("engine", "local"))
    return str(getattr(data, "engine", "local"))


# A source is a path (the local engine) or a mapping whose `engine:` picks its model; a source without
# `engine:` takes the top-level engine (see Config._default_source_engine).
FlowLogSource = Annotated[Union[Annotated[FlowLogSourceSpec, Tag("local")], Annotated[AthenaSourceSpec, Tag("athena")],
                                Annotated[InsightsSourceSpec, Tag("insights")]], Discriminator(_source_engine)]
CloudTrailSource = Annotated[Union[Annotated[SourceSpec, Tag("local")], Annotated[AthenaSourceSpec, Tag("athena")],
                                   Annotated[InsightsSourceSpec, Tag("insights")]], Discriminator(_source_engine)]
InventorySource = Annotated[Union[Annotated[SourceSpec, Tag("local")], Annotated[AwsApiInventorySpec, Tag("aws_api")]],
                            Discriminator(_source_engine)]


class Sources(_Strict):
    flow_logs: Optional[FlowLogSource] = Field(None, description="VPC Flow Logs in the layout AWS writes to S3: "
                                                                 "text (.log, .log.gz) or Parquet.")
    cloudtrail: Optional[CloudTrailSource] = Field(None, description="CloudTrail: S3 log files (AWSLogs/<account>/CloudTrail/...), "
                                                                     "JSON arrays, JSON Lines or CloudWatch exports.")
    inventory: Optional[InventorySource] = Field(None, description="EC2 inventory: AWS CLI JSON of describe-security-groups, "
                                                                   "describe-security-group-rules and describe-network-interfaces, "
                                                                   "or {engine: aws_api} to read it live through the EC2 API.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: ({"path": v} if isinstance(v, (str, Path)) else v) for k, v in data.items()}
        return data


class ExceptionSpec(_Strict):
    """A suppression: findings of one check whose key columns match are listed as suppressed."""

    check: str = Field(description="The check ID.")
    match: dict[str, Any] = Field(description="Key columns and the values they must equal, e.g. {dstport: 22, interface_id: eni-1}.")
    owner: str = Field(min_length=1, description="Who answers for the exception.")
    reason: str = Field(min_length=1, description="Why the finding is accepted.")
    expires: date = Field(description="The last day the exception applies (YYYY-MM-DD).")


class CacheSettings(_Strict):
    enabled: bool = Field(False, description="Keep a day-partitioned Parquet copy of the raw flow logs and reuse it.")
    dir: Optional[Path] = Field(None, description="Where the cache lives. Default: <state_dir>/cache.")


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


# DuckDB's memory sizes: a number and a unit, 1000-based (KB..TB) or 1024-based (KiB..TiB), or a share of RAM.
_MEMORY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|%)\s*$", re.I)


class DuckDBSettings(_Strict):
    memory_limit: Optional[str] = Field(None, description="DuckDB memory limit, e.g. '4GB'. Default: DuckDB's (80% of RAM).")
    temp_directory: Optional[Path] = Field(None, description="Where DuckDB spills when over the memory limit.")
    threads: Optional[int] = Field(None, ge=1, description="DuckDB worker threads. Default: one per core.")

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        m = _MEMORY.match(str(v))
        if m is None:
            raise ValueError(f"'{v}' is not a memory size: write a number and a unit, like 4GB, 600MB or 8GiB")
        number, unit = float(m.group(1)), m.group(2)
        if number <= 0 or (unit == "%" and number > 100):
            raise ValueError(f"'{v}' is no memory DuckDB can run in: give a positive size, or a share up to 100%")
        return v


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
    state_dir: Path = Field(Path(".auditor"), description="Run records, history and other state, beside the config. "
                                                         "Never inside the reports folder.")
    templates_dir: Optional[Path] = Field(None, description="A folder of templates that override the built-in ones "
                                                            "(check-<id>.html, check.html, report.html, print.css).")
    exceptions: tuple[ExceptionSpec, ...] = Field((), description="Suppressions, each with an owner, a reason and an expiry.")
    cache: CacheSettings = Field(default_factory=CacheSettings, description="The optional Parquet cache of raw flow logs.")
    aws: AwsSettings = Field(default_factory=AwsSettings, description="AWS profile and regions for the AWS engines.")
    accounts: tuple[AccountSpec, ...] = Field((), description="Accounts to audit through assumed roles.")
    pricing: PricingSettings = Field(default_factory=PricingSettings, description="Prices used to estimate query costs.")
    insights: InsightsSettings = Field(default_factory=InsightsSettings, description="Limits of the Logs Insights engine.")
    athena: AthenaSettings = Field(default_factory=AthenaSettings, description="The Athena engine's scan budget and timeout.")
    suites: dict[str, SuiteSpec] = Field(default_factory=dict, description="Scheduled report suites by name.")
    email: Optional[EmailSettings] = Field(None, description="How reports are mailed.")
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings, description="The scheduler daemon's settings.")
    archive: Optional[ArchiveSettings] = Field(None, description="Where run evidence is archived.")

    @model_validator(mode="before")
    @classmethod
    def _default_source_engine(cls, data: Any) -> Any:
        return _with_source_engines(data)


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


def _with_source_engines(data: Any) -> Any:
    """A source mapping without ``engine:`` (and without ``path:``) takes the top-level engine."""
    if not (isinstance(data, dict) and isinstance(data.get("sources"), dict) and data.get("engine", "local") != "local"):
        return data
    sources = {}
    for name, value in data["sources"].items():
        if isinstance(value, dict) and "engine" not in value and "path" not in value and name != "inventory":
            value = {**value, "engine": data["engine"]}
        sources[name] = value
    return {**data, "sources": sources}


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


# The config holds no secrets: credentials come from the environment and the boto3 chain. A key named like a
# secret (a `*_env` key names an environment variable instead, and is fine) or a value shaped like one is refused.
_SECRET_KEY = re.compile(r"(?:^|_)(?:password|passwd|pwd|secret|secret_key|secret_access_key|access_key|access_key_id|"
                         r"session_token|token|api_key|apikey|private_key|credentials?)$")
_SECRET_VALUES = (
    (re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"), "an AWS access key ID"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"://[^/\s:@]+:[^/\s@]+@"), "a URL with a password in it"),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|xox[abposr]-[A-Za-z0-9-]{10,})"), "an access token"),
)


def refuse_secrets(data: Any, positions: PositionMap, path: str, loc: tuple[str | int, ...] = ()) -> None:
    """Raise ConfigError at the first key or value that looks like a secret."""
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        here = loc + (key,)
        name = str(key).lower().replace("-", "_")
        if isinstance(key, str) and _SECRET_KEY.search(name) and value not in (None, ""):
            where = positions.locate(here, key=True)
            raise ConfigError(f"'{'.'.join(map(str, here))}' looks like a secret, and the config holds none: put it in "
                              "the environment (name the variable in a *_env key) or the AWS credential chain",
                              path=path, line=where.line if where else None, column=where.column if where else None)
        if isinstance(value, str):
            for pattern, what in _SECRET_VALUES:
                if pattern.search(value):
                    where = positions.locate(here)
                    raise ConfigError(f"'{'.'.join(map(str, here))}' holds what looks like {what}; the config holds no "
                                      "secrets: use the environment or the AWS credential chain",
                                      path=path, line=where.line if where else None,
                                      column=where.column if where else None)
        else:
            refuse_secrets(value, positions, path, here)


# A config is a page or two; a long one with hundreds of exceptions is tens of kilobytes.
MAX_CONFIG_BYTES = 1_000_000


def load_config(path: str | Path) -> LoadedConfig:
    """Read and validate ``config.yaml``. Every error names the file, line and column, and the fix."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file (pass --config PATH, or run from the folder that holds config.yaml)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror or exc}", path=str(p)) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"the config file is {len(raw):,} bytes; a config is at most {MAX_CONFIG_BYTES:,} bytes. "
                          "Is this the right file?", path=str(p))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} cannot be decoded; save the file as UTF-8",
                          path=str(p), line=line, column=column) from None
    data, positions = load_yaml(text, str(p))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of settings (engine:, sources:, checks: ...)", path=str(p), line=1, column=1)
    try:
        refuse_secrets(data, positions, str(p))
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, Config, str(p), positions, data=_with_source_engines(data)) from None
    return LoadedConfig(config=config, path=p.resolve(), positions=positions)


def check_folders(loaded: LoadedConfig) -> None:
    """Refuse, before anything runs, a folder the run would fail on after its checks: a state, spill, cache or
    output folder it cannot write, a templates folder that is not there. Raises ConfigError at the key's line.
    Creates nothing: a missing folder is fine when it can be created."""
    config = loaded.config
    writable: list[tuple[tuple[str, ...], Path]] = [(("state_dir",), config.state_dir),
                                                     (("output_dir",), config.output_dir)]
    if config.duckdb.temp_directory is not None:
        writable.append((("duckdb", "temp_directory"), config.duckdb.temp_directory))
    if config.cache.enabled:
        writable.append((("cache", "dir"), config.cache.dir) if config.cache.dir is not None
                        else (("state_dir",), config.state_dir / "cache"))
    for loc, folder in writable:
        problem = _unwritable(loaded.resolve(folder))
        if problem:
            raise loaded.error(f"{'.'.join(loc)}: {problem}; point it at a folder this user can write", loc)
    if config.templates_dir is not None and not loaded.resolve(config.templates_dir).is_dir():
        raise loaded.error(f"templates_dir: {loaded.resolve(config.templates_dir)} is not a folder; create it or "
                           "remove the key (the built-in templates are used then)", ("templates_dir",))


def _unwritable(folder: Path) -> str | None:
    """Why files cannot be written in ``folder`` (existing or to be created), or None."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder, so {folder} cannot be one"
    if existing != folder:
        return None if os.access(existing, os.W_OK | os.X_OK) else f"{folder} cannot be created in {existing}"
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".auditor-probe-"):
            pass
    except OSError as exc:
        return f"{folder} cannot be written ({exc.strerror or exc})"
    return None


def validation_error(exc: ValidationError, model: type[BaseModel], path: str, positions: PositionMap,
                     prefix: tuple[str | int, ...] = (), data: Any = None) -> ConfigError:
    """The first pydantic error as a ConfigError at its file position, with a did-you-mean for unknown keys."""
    messages = []
    first_pos = None
    # An unknown key is usually a typo that also explains a "missing" one, so it is reported first.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    for err in errors:
        loc = prefix + _data_loc(err["loc"], data, err.get("input"))
        if err["type"] == "extra_forbidden":
            name = str(loc[-1])
            allowed = _fields_at(model, loc[len(prefix):-1], data)
            msg = f"unknown key '{name}'{did_you_mean(name, allowed)}"
            if allowed:
                msg += f"; allowed here: {', '.join(sorted(allowed))}"
            pos = positions.locate(loc, key=True)
        elif err["type"] == "missing":
            parent = ".".join(str(x) for x in loc[:-1]) or "the top level"
            msg = f"missing key '{loc[-1]}' under {parent}"
            pos = positions.locate(loc[:-1])
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


def _fields_at(model: Any, loc: tuple[str | int, ...], data: Any = None) -> list[str]:
    """The field names allowed at ``loc`` inside ``model`` (walking nested models, unions and dicts)."""
    current: Any = model
    node = data
    for part in loc:
        current = _unwrap(current, node)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return []
        node = node.get(part) if isinstance(node, dict) else None
    current = _unwrap(current, node)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(tp: Any, node: Any = None) -> Any:
    """The model inside Optional/Annotated/Union; for a discriminated source union, the member ``node`` selects."""
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        wanted = _source_engine(node) if isinstance(node, dict) else None
        for arg in members:
            tags = [m.tag for m in getattr(arg, "__metadata__", ()) if isinstance(m, Tag)]
            if wanted is not None and tags and tags[0] != wanted:
                continue
            inner = _unwrap(arg, node)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
        return _unwrap(members[0], node) if members else tp
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
