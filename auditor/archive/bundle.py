"""Assembling one run's evidence bundle: the report, the queries as run, the inputs read, the inventory
snapshot, the config and the tool version, and ``manifest.json`` holding the SHA-256 of every file.

Layout of a bundle folder (``<suite>/runs/<sequence>-<started>-<run id>/``)::

    manifest.json            SHA-256 and size of every other file, the run, the chain link
    manifest.json.sig        its signature, when signing is configured
    findings.json, report.html, report.pdf, results/<check>.csv    the report as written
    queries.json             every query as run: text, engine, query ID, window, bytes scanned, parameters
    inputs.json              every input read: local path, size, SHA-256; or S3 bucket, key, ETag, VersionId
    inventory.json           the inventory snapshot's capture time and files (copied under inventory/)
    config/config.yaml       the config file as used (it holds no secrets), config/effective.json with defaults
    version.json             the tool and library versions

Pure apart from reading the run's files: the caller writes the bundle to its targets.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from auditor import __version__
from auditor.archive.signing import SIG_SUFFIX, Signer, sig_bytes
from auditor.models import InputFile, RunRecord, iso_z

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
BUNDLE_FORMAT_VERSION = 1
_CHUNK = 1 << 20
_LIBRARIES = ("duckdb", "sqlglot", "pydantic", "pyarrow", "Jinja2", "weasyprint", "boto3", "cryptography")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file, read in 1 MiB chunks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def json_doc(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False, default=str) + "\n").encode("utf-8")


def bundle_name(sequence: int, record: RunRecord) -> str:
    return f"{sequence:06d}-{record.started_at.strftime('%Y%m%dT%H%M%SZ')}-{record.id}"


def sequence_of(name: str) -> int | None:
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() and len(head) == 6 else None


@dataclass(frozen=True)
class Bundle:
    name: str
    files: Mapping[str, bytes]  # relative path -> bytes, manifest.json (and its signature) included
    manifest: Mapping[str, Any]
    manifest_sha256: str
    warnings: tuple[str, ...] = ()


def assemble(outcome: Any, loaded: Any, *, suite: str, sequence: int, previous: Mapping[str, Any] | None,
             inputs: Sequence[Any], archived_at: datetime, signer: Signer | None) -> Bundle:
    """The bundle of one run: every evidence file plus its manifest, signed when ``signer`` is given.

    ``outcome`` is the pipeline's RunOutcome, ``loaded`` the LoadedConfig of the run, ``previous`` the chain
    link (``{"sequence", "run_id", "manifest_sha256"}``), None for a suite's first run.
    """
    record: RunRecord = outcome.record
    files: dict[str, bytes] = {}
    warnings: list[str] = []
    for path in outcome.artifacts:
        files[Path(path).relative_to(outcome.out_dir).as_posix()] = Path(path).read_bytes()
    files["queries.json"] = json_doc(queries_document(record))
    inventory_files, inventory_doc, inventory_inputs = _inventory(outcome, loaded, warnings)
    files.update(inventory_files)
    if inventory_doc is not None:
        files["inventory.json"] = json_doc(inventory_doc)
    files["inputs.json"] = json_doc({"inputs_version": 1, "hashed_at": iso_z(archived_at),
                                     "inputs": [*describe_inputs(inputs, warnings), *inventory_inputs]})
    files["config/config.yaml"] = Path(loaded.path).read_bytes()
    files["config/effective.json"] = json_doc(loaded.config.model_dump(mode="json"))
    files["version.json"] = json_doc(version_document())

    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "suite": suite,
        "sequence": sequence,
        "previous": dict(previous) if previous else None,
        "run": {"id": record.id, "since": iso_z(record.window.since), "until": iso_z(record.window.until),
                "engine": record.engine, "started_at": iso_z(record.started_at),
                "finished_at": iso_z(record.finished_at), "tool_version": record.tool_version},
        "archived_at": iso_z(archived_at),
        "tool_version": __version__,
        "signing": {"method": signer.method, "key_id": signer.key_id} if signer else {"method": "none"},
        "artifact_errors": list(outcome.artifact_errors),
        "files": [{"path": name, "size": len(data), "sha256": sha256_hex(data)} for name, data in sorted(files.items())],
    }
    manifest_bytes = json_doc(manifest)
    files[MANIFEST] = manifest_bytes
    if signer is not None:
        files[MANIFEST + SIG_SUFFIX] = sig_bytes(signer.sign(manifest_bytes))
    return Bundle(name=bundle_name(sequence, record), files=files, manifest=manifest,
                  manifest_sha256=sha256_hex(manifest_bytes), warnings=tuple(warnings))


def queries_document(record: RunRecord) -> dict[str, Any]:
    """Every query as it was run, with what an auditor needs to re-run it."""
    queries = []
    for check in record.checks:
        since, _, until = str(check.stats.get("window", record.window)).partition("..")
        for q in check.queries:
            queries.append({
                "check_id": check.check_id, "name": q.name, "engine": q.engine, "query_id": q.stats.query_id,
                "window": {"since": since, "until": until or None},
                "bytes_scanned": q.stats.bytes_scanned, "records_scanned": q.stats.records_scanned,
                "duration_s": round(q.stats.duration_s, 3), "truncated": q.stats.truncated, "rows": q.rows,
                "params": dict(q.stats.params), "text": q.text,
            })
    return {"queries_version": 1, "run_id": record.id,
            "window": {"since": iso_z(record.window.since), "until": iso_z(record.window.until)},
            "queries": queries}


def describe_inputs(inputs: Iterable[Any], warnings: list[str]) -> list[dict[str, Any]]:
    """One entry per input read: local files with their SHA-256, S3 objects with ETag and VersionId.

    Local files are hashed now, after the run (hashing while reading would open each file a second time
    during the run). A file whose size differs from the size the run saw is flagged ``changed_since_read``.
    """
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in inputs:
        entry = _s3_input(item)
        if entry is None:
            path = str(getattr(item, "path", item))
            if path in seen:
                continue
            seen.add(path)
            entry = {"location": "local", "path": path, "kind": getattr(item, "kind", None)}
            for attr in ("account_id", "region"):
                if getattr(item, attr, None):
                    entry[attr] = getattr(item, attr)
            if isinstance(item, InputFile) and item.folder_time is not None:
                entry["folder_time"] = iso_z(item.folder_time)
            try:
                entry["sha256"], entry["size"] = file_sha256(Path(path))
            except OSError as exc:
                entry.update(sha256=None, size=getattr(item, "size", None), error=str(exc))
                warnings.append(f"input {path} could not be hashed: {exc}")
            else:
                read_size = getattr(item, "size", None)
                if read_size is not None and read_size != entry["size"]:
                    entry["changed_since_read"] = True
                    warnings.append(f"input {path} changed after the run read it ({read_size} -> {entry['size']} bytes)")
        else:
            ident = f"s3://{entry['bucket']}/{entry['key']}#{entry.get('version_id')}"
            if ident in seen:
                continue
            seen.add(ident)
        out.append(entry)
    return out


def _s3_input(item: Any) -> dict[str, Any] | None:
    """An S3 object input (an object with bucket/key, a mapping, or an ``s3://`` path), else None."""
    get = item.get if isinstance(item, Mapping) else (lambda name, default=None: getattr(item, name, default))
    bucket, key = get("bucket"), get("key")
    path = get("path")
    if bucket is None and isinstance(path, str) and path.startswith("s3://"):
        bucket, _, key = path[5:].partition("/")
    if bucket is None or key is None:
        return None
    return {"location": "s3", "bucket": bucket, "key": key, "etag": get("etag"), "version_id": get("version_id"),
            "size": get("size")}


def _inventory(outcome: Any, loaded: Any, warnings: list[str]
               ) -> tuple[dict[str, bytes], dict[str, Any] | None, list[dict[str, Any]]]:
    """The snapshot's files copied under ``inventory/`` (paths relative to the inventory root), its
    description, and its files as inputs."""
    snapshot = getattr(outcome, "inventory", None)
    if snapshot is None:
        return {}, None, []
    spec = loaded.config.sources.inventory
    root = Path(loaded.resolve(Path(spec.path))) if spec is not None and getattr(spec, "path", None) else None
    files: dict[str, bytes] = {}
    described, as_inputs = [], []
    for quality in snapshot.files:
        if quality.path.startswith("aws:"):
            # The live inventory (auditor.engines.sources.aws_inventory) reads the EC2 API into a temporary
            # snapshot that is gone by now: record what was read, and say that its documents are not kept.
            described.append({"source": quality.path, "records": quality.records,
                              "note": "read live through the EC2 API; the documents were not kept"})
            continue
        source = Path(quality.path)
        try:
            data = source.read_bytes()
        except OSError as exc:
            warnings.append(f"inventory file {source} could not be copied: {exc}")
            described.append({"source": str(source), "error": str(exc)})
            continue
        rel = _relative(source, root)
        files[f"inventory/{rel}"] = data
        digest = sha256_hex(data)
        described.append({"path": f"inventory/{rel}", "source": str(source), "size": len(data), "sha256": digest,
                          "records": quality.records, "malformed": quality.malformed})
        as_inputs.append({"location": "local", "path": str(source), "kind": "inventory", "sha256": digest,
                          "size": len(data)})
    if any(d.get("note") for d in described):
        warnings.append("the live inventory's documents are not kept after the run, so the bundle records only "
                        "their names, counts and capture time (use `auditor inventory snapshot` for file evidence)")
    doc = {"captured_at": iso_z(snapshot.captured_at) if snapshot.captured_at else None,
           "root": str(root) if root else None, "files": described, "accounts": list(snapshot.accounts),
           "regions": list(snapshot.regions), "warnings": list(snapshot.warnings)}
    return files, doc, as_inputs


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.name


def version_document() -> dict[str, Any]:
    packages = {}
    for name in _LIBRARIES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {"tool": "auditor", "version": __version__, "bundle_format": BUNDLE_FORMAT_VERSION,
            "python": platform.python_version(), "platform": platform.platform(), "packages": packages}
