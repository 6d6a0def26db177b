"""The local engine: DuckDB over files in the layout AWS writes to S3. No AWS account needed.

It reads each raw input file once per run, however many checks there are:

* Flow logs: ``prepare`` prunes the files by their delivery folder, then turns each folder into Parquet once
  (:mod:`auditor.engines.cache`): into the persistent cache when ``cache.enabled`` (later runs reuse it), else
  into a scratch folder removed when the run ends. ``flow_logs`` is a view over those Parquet files, so
  every check's query scans compact, typed columns instead of the raw text, and the run's memory stays
  bounded by DuckDB's ``memory_limit`` whatever the input size.
* CloudTrail: loaded into a table of the run's embedded database.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb

from auditor import logformat
from auditor.config import FlowLogSourceSpec, SourceSpec
from auditor.engines.cache import FlowLogCache, Prepared
from auditor.engines.embedded import Workspace
from auditor.engines.local_summary import LocalSummaries
from auditor.engines.sources import cloudtrail, files, flowlogs
from auditor.engines.sql import parse, window_params
from auditor.engines.summary import reads_summary
from auditor.models import DataQuality, FileQuality, InputFile, Query, QueryResult, TimeWindow
from auditor.staging import StagingLock, remove_stale

FLOW_LOGS_VIEW = "flow_logs"

# Two anti-joins on equalities rather than one on "address IN (srcaddr, dstaddr)": DuckDB turns each into a hash
# join, where the IN form became a nested loop (29 s instead of under one at 10M records).
_UNDETERMINED_DIRECTION = """
SELECT count(*) FROM flow_logs AS f
WHERE f.log_status = 'OK' AND f.start >= $since_s AND f.start < $until_s
  AND f.flow_direction IS NULL
  AND NOT EXISTS (SELECT 1 FROM eni_addresses AS a WHERE a.interface_id = f.interface_id AND a.address = f.srcaddr)
  AND NOT EXISTS (SELECT 1 FROM eni_addresses AS a WHERE a.interface_id = f.interface_id AND a.address = f.dstaddr)
"""


# The tables are what prepare() served: flow_logs holds records and NODATA/SKIPDATA lines of the scanned window
# (never malformed or invalid ones), cloudtrail the events of its window, with eventtime in the reader's
# canonical UTC form.
_FLOW_EVIDENCE = """
SELECT count(*) FROM flow_logs
WHERE coalesce(log_status, 'OK') <> 'SKIPDATA' AND (start IS NULL OR (start >= $since_s AND start < $until_s))
"""
_CLOUDTRAIL_EVIDENCE = """
SELECT count(*) FROM cloudtrail
WHERE CAST(eventtime AS TIMESTAMPTZ) >= $since AND CAST(eventtime AS TIMESTAMPTZ) < $until
"""


class LocalEngine:
    name = "local"
    dialect = "trino"
    # Its tables live in the run's workspace, so a check's engine query runs inside its report query
    # (Workspace.execute's phase1) instead of as a table of its own.
    shares_workspace = True

    def __init__(self, workspace: Workspace, *, flow_logs: FlowLogSourceSpec | None, cloudtrail_source: SourceSpec | None,
                 delivery_lag: timedelta, cache_dir: Path | None = None, scratch_dir: Path | None = None) -> None:
        """``cache_dir``: the Parquet cache to use and fill (None: no cache). ``scratch_dir``: where a run without
        the cache writes its Parquet (default: the system's temporary folder)."""
        self.workspace = workspace
        self.flow_logs = flow_logs
        self.cloudtrail = cloudtrail_source
        self.delivery_lag = delivery_lag
        self.cache_dir = cache_dir
        self.scratch_dir = scratch_dir
        self.inputs: list[InputFile] = []  # every file read, for the evidence list
        self.problems: list[FileQuality] = []  # folders that could not be listed, broken links, loops
        self._evidence: dict[tuple[str, TimeWindow], int] = {}
        self._scratch: Path | None = None
        self._cleanup: weakref.finalize | None = None
        self.summaries = LocalSummaries(workspace)

    def prepare(self, scans: Mapping[str, TimeWindow]) -> DataQuality:
        con = self.workspace.con
        cloudtrail.create_table(con)
        dq = DataQuality()
        if "flow_logs" in scans and self.flow_logs is not None:
            window = scans["flow_logs"]
            found = len(self.problems)
            present, kept, prepared = self.ingest(window)
            serve_flow_logs(con, prepared, window)
            self.inputs.extend(kept)
            dq = dq.merge(DataQuality(files=tuple(self.problems[found:]) + prepared.quality, files_read=len(kept),
                                      files_present=len(present), notes=self._cache_notes(prepared),
                                      counters=self._cache_counters(prepared)))
            dq = dq.merge(self._direction_quality(window))
        else:
            flowlogs.create_table(con)
        if "cloudtrail" in scans and self.cloudtrail is not None:
            problems: list[FileQuality] = []
            present = files.discover(self.cloudtrail.path, ("json", "text"), skip_dirs=("CloudTrail-Digest",),
                                     problems=problems)
            kept = files.prune(present, scans["cloudtrail"], self.delivery_lag)
            quality = cloudtrail.load_cloudtrail(con, kept, window=scans["cloudtrail"])
            self.inputs.extend(kept)
            self.problems.extend(problems)
            dq = dq.merge(DataQuality(files=tuple(problems) + tuple(quality), files_read=len(kept),
                                      files_present=len(present)))
        return dq

    def ingest(self, window: TimeWindow) -> tuple[list[InputFile], list[InputFile], Prepared]:
        """Turn the flow-log files that may hold ``window`` into Parquet (or find them in the cache). Returns
        the files present, the files kept after pruning, and the Parquet that holds them."""
        assert self.flow_logs is not None
        present = files.discover(self.flow_logs.path, ("text", "parquet"), problems=self.problems)
        kept = files.prune(present, window, self.delivery_lag)
        return present, kept, self.flow_log_store().prepare(self.workspace.con, kept)

    def flow_log_store(self) -> FlowLogCache:
        """Where the flow logs' Parquet goes: the persistent cache, or this run's scratch folder."""
        assert self.flow_logs is not None
        default_fields = logformat.parse_log_format(self.flow_logs.format) if self.flow_logs.format else None
        if self.cache_dir is not None:
            return FlowLogCache(self.cache_dir, self.flow_logs.path, default_fields=default_fields)
        if self._scratch is None:
            if self.scratch_dir is not None:
                Path(self.scratch_dir).mkdir(parents=True, exist_ok=True)
            # A killed run leaves its scratch behind: older ones that no run holds locked go first.
            remove_stale(Path(self.scratch_dir or tempfile.gettempdir()), _SCRATCH_PREFIX)
            self._scratch = Path(tempfile.mkdtemp(prefix=_SCRATCH_PREFIX, dir=self.scratch_dir))
            lock = StagingLock(self._scratch)
            # A caller that never reaches close() still leaves no scratch behind.
            self._cleanup = weakref.finalize(self, _remove_scratch, self._scratch, lock)
        return FlowLogCache(self._scratch, self.flow_logs.path, default_fields=default_fields, reuse=False)

    def _cache_notes(self, prepared: Prepared) -> tuple[str, ...]:
        if self.cache_dir is None or not (prepared.reused or prepared.built):
            return ()
        return (f"flow logs: {prepared.reused} of {prepared.reused + prepared.built} delivery folders came from the "
                f"Parquet cache; {prepared.raw_files_read} raw files were read",)

    def _cache_counters(self, prepared: Prepared) -> dict[str, int]:
        if self.cache_dir is None:
            return {}
        return {"cache_partitions_reused": prepared.reused, "cache_partitions_built": prepared.built}

    def _direction_quality(self, window: TimeWindow) -> DataQuality:
        """Count traffic records whose direction nothing tells: no flow-direction field, and neither address
        is one of the interface's own addresses in the inventory. Exposure checks cannot call them inbound."""
        undetermined, = self.workspace.con.execute(
            _UNDETERMINED_DIRECTION, {"since_s": window.since_s, "until_s": window.until_s}).fetchone()
        notes = ()
        if undetermined:
            notes = (f"{undetermined} traffic records had no flow-direction field and no address of their interface "
                     "in the inventory, so no check counted them as inbound",)
        return DataQuality(notes=notes, counters={"direction_undetermined": int(undetermined)})

    def evidence(self, table: str, window: TimeWindow) -> int | None:
        """How many usable records ``table`` holds in ``window``: the test of a check's ``no_data`` status.

        Flow logs: traffic and NODATA records (NODATA says the interface was logged and carried nothing, which
        is evidence too); SKIPDATA records, which say records were lost, are not. A record without a start
        counts: its file was chosen by its delivery folder. CloudTrail: events. None for a table this engine
        does not serve."""
        key = (table, window)
        if key not in self._evidence:
            if table == "flow_logs":
                sql, params = _FLOW_EVIDENCE, {"since_s": window.since_s, "until_s": window.until_s}
            elif table == "cloudtrail":
                sql, params = _CLOUDTRAIL_EVIDENCE, {"since": window.since, "until": window.until}
            else:
                return None
            ((count,),) = self.workspace.con.execute(sql, params).fetchall()
            self._evidence[key] = int(count)
        return self._evidence[key]

    def prepare_query(self, query: Query, *, name: str | None = None) -> None:
        """Make the tables ``query`` reads ready in the workspace: the flow summary of its window, which
        ``flow_summary`` then names (:mod:`auditor.engines.local_summary`). Called before a query runs here, also
        when it runs fused inside its check's report. ``name`` names the query in errors (default check/query)."""
        if reads_summary(parse(query.text, name=name or f"{query.check_id}/{query.name}")):
            self.summaries.use(query.window)

    def run(self, query: Query, window: TimeWindow, params: Mapping[str, Any]) -> QueryResult:
        self.prepare_query(query if query.window == window else replace(query, window=window))
        return self.workspace.execute(query.text, {**window_params(window), **params},
                                      name=f"{query.check_id}/{query.name}", engine=self.name)

    def close(self) -> None:
        """Remove this run's scratch Parquet and summaries (the workspace owns the connection)."""
        self.summaries.drop()
        if self._cleanup is not None:
            self._cleanup()
            self._scratch = self._cleanup = None


_SCRATCH_PREFIX = "auditor-flowlogs-"


def _remove_scratch(folder: Path, lock: StagingLock) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    lock.release()


def serve_flow_logs(con: duckdb.DuckDBPyConnection, prepared: Prepared, window: TimeWindow,
                    name: str = FLOW_LOGS_VIEW) -> None:
    """Make ``name`` a view of the window's records in ``prepared``'s Parquet files, with every column of
    :data:`~auditor.engines.sources.logformat.TABLE_COLUMNS` (NULL where no file holds it).

    Malformed lines are left out. A record without a start (a format that omits ``${start}``) stays: its file
    was chosen by its delivery folder. The file list and the window go through DuckDB's relation API, never
    into SQL text.
    """
    if not prepared.parquet:
        flowlogs.create_table(con, name)
        return
    rel = con.read_parquet([str(p) for p in prepared.parquet], union_by_name=True)
    keep = duckdb.ColumnExpression(flowlogs.CLASS_COLUMN) < duckdb.ConstantExpression(2)
    if "start" in prepared.columns:
        start = duckdb.ColumnExpression("start")
        keep = keep & (start.isnull() | ((start >= duckdb.ConstantExpression(window.since_s))
                                         & (start < duckdb.ConstantExpression(window.until_s))))
    columns = [(duckdb.ColumnExpression(column) if column in prepared.columns
                else duckdb.ConstantExpression(None).cast(duckdb.sqltype(type_))).alias(column)
               for column, type_ in logformat.TABLE_COLUMNS]
    rel.filter(keep).project(*columns).create_view(name, replace=True)


def create(workspace: Workspace, sources: Any, delivery_lag: timedelta, resolve: Any, *, cache_dir: Path | None = None,
           scratch_dir: Path | None = None) -> LocalEngine:
    """Build the local engine from the config's sources (paths resolved against the config's folder).
    ``cache_dir`` turns the Parquet cache on; ``scratch_dir`` is where a run without it writes its Parquet."""
    def resolved(spec: Any) -> Any:
        if spec is None or spec.engine != "local":
            return None
        return spec.model_copy(update={"path": Path(resolve(spec.path))})
    return LocalEngine(workspace, flow_logs=resolved(sources.flow_logs), cloudtrail_source=resolved(sources.cloudtrail),
                       delivery_lag=delivery_lag, cache_dir=cache_dir, scratch_dir=scratch_dir)


def cache_settings(config: Any, resolve: Any) -> dict[str, Path | None]:
    """The ``cache_dir`` and ``scratch_dir`` arguments of :func:`create` for a config: the cache (``cache.dir``,
    default ``<state_dir>/cache``) when ``cache.enabled``, and DuckDB's ``temp_directory`` for scratch."""
    cache = config.cache
    cache_dir = Path(resolve(cache.dir if cache.dir is not None else config.state_dir / "cache")) if cache.enabled else None
    temp = config.duckdb.temp_directory
    return {"cache_dir": cache_dir, "scratch_dir": Path(resolve(temp)) if temp is not None else None}
