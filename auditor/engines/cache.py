"""The Parquet cache of raw flow logs: each delivery folder is parsed once into Parquet and reused while its
files are unchanged.

AWS writes flow logs to S3 in one folder per account, region and delivery day (or hour):
``AWSLogs/<account>/vpcflowlogs/<region>/YYYY/MM/DD/[HH/]``
(https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3-path.html). A folder is the cache's unit, its
*partition*: pruning keeps or drops whole folders (they share one delivery date), so a weekly run over a
window that overlaps the last one finds the old days in the cache and reads only the new days raw.

A partition lives in ``<dir>/flow_logs/<source id>/<folder>/<signature>/``: the Parquet files written by
:func:`auditor.engines.sources.flowlogs.write_parquet` and ``manifest.json`` (the files it was made from, with
their line classes). The signature hashes the reader's version, the default format of header-less files and
each file's path, size and mtime, so a changed, added or removed file makes a new signature and the folder
is parsed again. File contents are not hashed: that would read every file on every run, which is what the
cache exists to avoid. S3 objects are immutable, and copies (``aws s3 sync``) change size or mtime when an
object changes.

A partition is written into a temporary folder and renamed into place, and the manifest is written last, so
a crash or a concurrent run never leaves a partition that looks complete but is not.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from auditor import logformat
from auditor.engines.sources import flowlogs
from auditor.models import FileQuality, InputFile

# Bump when the rows a partition holds would change for the same input: reader fixes, new columns.
CACHE_VERSION = 2  # 2: invalid records (out-of-range values) are their own class
MANIFEST = "manifest.json"
_UNDATED = "_undated"


@dataclass(frozen=True)
class Prepared:
    """The Parquet files that hold a set of raw flow-log files, and what it cost to get them."""

    parquet: tuple[Path, ...]
    quality: tuple[FileQuality, ...]  # one per input file, in the order given
    columns: frozenset[str]  # the table columns the Parquet files hold
    reused: int = 0  # partitions served from the cache
    built: int = 0  # partitions parsed from the raw files by this call
    raw_files_read: int = 0


class FlowLogCache:
    """Day-partitioned Parquet copies of the flow-log files under one source folder.

    ``directory`` is the cache root (``cache.dir``); ``source`` is the configured flow-log path, which names
    the partitions (relative folders) and keeps two sources apart. ``reuse=False`` parses everything again
    and keeps nothing between runs' lookups (a run without the cache uses a scratch directory this way).
    """

    def __init__(self, directory: Path, source: Path, *, default_fields: tuple[str, ...] | None = None,
                 reuse: bool = True, batch_bytes: int = 32 * 2**20) -> None:
        self.source = Path(source).resolve()
        self.base = self.source if self.source.is_dir() else self.source.parent
        source_id = hashlib.sha256(str(self.source).encode()).hexdigest()[:16]
        self.root = Path(directory) / "flow_logs" / source_id
        self.default_fields = tuple(default_fields) if default_fields else None
        self.reuse = reuse
        self.batch_bytes = batch_bytes

    def prepare(self, con: duckdb.DuckDBPyConnection, files: Sequence[InputFile]) -> Prepared:
        """The Parquet files holding ``files``: reused when their partition is cached and unchanged, else parsed
        now (each raw file read once) and cached."""
        groups: dict[str, list[InputFile]] = {}
        for f in files:
            groups.setdefault(self.partition_key(f), []).append(f)
        parquet: list[Path] = []
        quality: dict[str, dict[str, int]] = {}  # relative path -> line classes
        columns: set[str] = set()
        reused = built = raw = 0
        for key, members in sorted(groups.items()):
            members = sorted({f.path: f for f in members}.values(), key=lambda f: f.path)
            signature = self._signature(members)
            folder = self.root / key / signature
            manifest = self._manifest(folder) if self.reuse else None
            if manifest is not None and any(entry["quality"].get("error") for entry in manifest["files"]):
                # A file that could not be read may be readable now (permissions fixed, upload finished): a
                # partition with such a file is never reused.
                shutil.rmtree(folder, ignore_errors=True)
                manifest = None
            if manifest is None:
                manifest = self._build(con, folder, members, signature)
                built += 1
                raw += len(members)
            else:
                reused += 1
            parquet.extend(folder / name for name in manifest["parquet"])
            columns.update(manifest["columns"])
            quality.update((entry["path"], entry["quality"]) for entry in manifest["files"])
        ordered = tuple(FileQuality(path=f.path, **quality.get(self._relative(f), {})) for f in files)
        return Prepared(parquet=tuple(parquet), quality=ordered, columns=frozenset(columns), reused=reused,
                        built=built, raw_files_read=raw)

    def partition_key(self, f: InputFile) -> str:
        """The partition of a file: its folder relative to the source (an S3 delivery day or hour)."""
        parent = Path(f.path).resolve().parent
        try:
            rel = parent.relative_to(self.base)
        except ValueError:
            rel = Path(_UNDATED) / hashlib.sha256(str(parent).encode()).hexdigest()[:16]
        return rel.as_posix() if rel.parts else _UNDATED

    def _relative(self, f: InputFile) -> str:
        path = Path(f.path).resolve()
        try:
            return path.relative_to(self.base).as_posix()
        except ValueError:
            return str(path)

    def _signature(self, members: Sequence[InputFile]) -> str:
        stats = []
        for f in members:
            try:
                st = os.stat(f.path)
            except OSError:
                stats.append((self._relative(f), None, None))  # the reader names the file and why it failed
                continue
            stats.append((self._relative(f), st.st_size, st.st_mtime_ns))
        blob = json.dumps({"version": CACHE_VERSION, "default_fields": self.default_fields, "files": stats})
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    @staticmethod
    def _manifest(folder: Path) -> dict | None:
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        if manifest.get("version") != CACHE_VERSION or not all((folder / n).is_file() for n in manifest["parquet"]):
            return None
        return manifest

    def _build(self, con: duckdb.DuckDBPyConnection, folder: Path, members: Sequence[InputFile],
               signature: str) -> dict:
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{signature}-", dir=folder.parent))
        try:
            quality, written = flowlogs.write_parquet(con, members, scratch, default_fields=self.default_fields,
                                                      batch_bytes=self.batch_bytes)
            columns = set()
            for path in written:
                columns.update(c for c in _parquet_columns(con, path) if c in _TABLE)
            manifest = {
                "version": CACHE_VERSION, "signature": signature, "parquet": [p.name for p in written],
                "columns": sorted(columns),
                "files": [{"path": self._relative(f), "size": f.size,
                           "quality": {k: v for k, v in q.to_json().items() if k != "path"}}
                          for f, q in zip(members, quality)],
            }
            (scratch / MANIFEST).write_text(json.dumps(manifest, indent=1))
            try:
                os.rename(scratch, folder)
            except OSError:
                if self._manifest(folder) is None:  # not a concurrent run that got there first
                    raise
            else:
                self._drop_stale(folder)
            return manifest
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    @staticmethod
    def _drop_stale(folder: Path) -> None:
        """Remove the partition's older versions: their files have changed since."""
        for other in folder.parent.iterdir():
            if other != folder and other.is_dir() and not other.name.startswith("."):
                shutil.rmtree(other, ignore_errors=True)


_TABLE = {c for c, _ in logformat.TABLE_COLUMNS}


def _parquet_columns(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    return [name for (name,) in con.execute(
        "SELECT name FROM parquet_schema($path) WHERE name <> 'duckdb_schema'", {"path": str(path)}).fetchall()]
