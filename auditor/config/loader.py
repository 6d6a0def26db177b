"""Reading ``config.yaml`` into the schema (:mod:`auditor.config.schema`): every error names the file, the line
and the column, and the fix: ``config.yaml:12:5: unknown key 'severty' (did you mean 'severity'?)``.
"""

from __future__ import annotations

import os
import re
import tempfile
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Tag, ValidationError

from auditor.config.schema import Config, source_engine, with_source_engines
from auditor.errors import ConfigError
from auditor.registry import did_you_mean
from auditor.yamlpos import PositionMap, load_yaml


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
        raise validation_error(exc, Config, str(p), positions, data=with_source_engines(data)) from None
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
    smtp = config.email.smtp if config.email is not None else None
    if smtp is not None and smtp.ca_file is not None and not os.access(loaded.resolve(smtp.ca_file), os.R_OK):
        raise loaded.error(f"email.smtp.ca_file: {loaded.resolve(smtp.ca_file)} is not a readable file; point it at "
                           "the PEM file of your CA's certificates", ("email", "smtp", "ca_file"))
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
        wanted = source_engine(node) if isinstance(node, dict) else None
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
    """Every config key (dotted) with its help text, for docs/configuration.md and the meta test."""
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
