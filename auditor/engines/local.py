"""The local engine: DuckDB over files in the layout AWS writes to S3. No AWS account needed.

It reads each input file once per run: ``prepare`` loads the window's records (after pruning files by their
delivery folder) into tables of the run's embedded database, and every check's query runs on those tables.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping

from auditor.config import FlowLogSourceSpec, SourceSpec
from auditor.engines.embedded import Workspace
from auditor.engines.sources import cloudtrail, files, flowlogs
from auditor.engines.sql import window_params
from auditor.models import DataQuality, InputFile, Query, QueryResult, TimeWindow


_UNDETERMINED_DIRECTION = """
SELECT count(*) FROM flow_logs AS f
WHERE f.log_status = 'OK' AND f.start >= $since_s AND f.start < $until_s
  AND f.flow_direction IS NULL
  AND NOT EXISTS (SELECT 1 FROM eni_addresses AS a
                  WHERE a.interface_id = f.interface_id AND a.address IN (f.srcaddr, f.dstaddr))
"""


class LocalEngine:
    name = "local"
    dialect = "trino"

    def __init__(self, workspace: Workspace, *, flow_logs: FlowLogSourceSpec | None, cloudtrail_source: SourceSpec | None,
                 delivery_lag: timedelta) -> None:
        self.workspace = workspace
        self.flow_logs = flow_logs
        self.cloudtrail = cloudtrail_source
        self.delivery_lag = delivery_lag
        self.inputs: list[InputFile] = []  # every file read, for the evidence list

    def prepare(self, scans: Mapping[str, TimeWindow]) -> DataQuality:
        con = self.workspace.con
        flowlogs.create_table(con)
        cloudtrail.create_table(con)
        dq = DataQuality()
        if "flow_logs" in scans and self.flow_logs is not None:
            present = files.discover(self.flow_logs.path, ("text", "parquet"))
            kept = files.prune(present, scans["flow_logs"], self.delivery_lag)
            default_fields = flowlogs.parse_log_format(self.flow_logs.format) if self.flow_logs.format else None
            quality = flowlogs.load_flow_logs(con, kept, window=scans["flow_logs"], default_fields=default_fields)
            self.inputs.extend(kept)
            dq = dq.merge(DataQuality(files=tuple(quality), files_read=len(kept), files_present=len(present)))
            dq = dq.merge(self._direction_quality(scans["flow_logs"]))
        if "cloudtrail" in scans and self.cloudtrail is not None:
            present = files.discover(self.cloudtrail.path, ("json", "text"), skip_dirs=("CloudTrail-Digest",))
            kept = files.prune(present, scans["cloudtrail"], self.delivery_lag)
            quality = cloudtrail.load_cloudtrail(con, kept, window=scans["cloudtrail"])
            self.inputs.extend(kept)
            dq = dq.merge(DataQuality(files=tuple(quality), files_read=len(kept), files_present=len(present)))
        return dq

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

    def run(self, query: Query, window: TimeWindow, params: Mapping[str, Any]) -> QueryResult:
        return self.workspace.execute(query.text, {**window_params(window), **params},
                                      name=f"{query.check_id}/{query.name}", engine=self.name)

    def close(self) -> None:
        """The workspace owns the connection; nothing of the engine's own to release."""


def create(workspace: Workspace, sources: Any, delivery_lag: timedelta, resolve: Any) -> LocalEngine:
    """Build the local engine from the config's sources (paths resolved against the config's folder)."""
    def resolved(spec: Any) -> Any:
        if spec is None or spec.engine != "local":
            return None
        return spec.model_copy(update={"path": Path(resolve(spec.path))})
    return LocalEngine(workspace, flow_logs=resolved(sources.flow_logs), cloudtrail_source=resolved(sources.cloudtrail),
                       delivery_lag=delivery_lag)
