"""The local engine: DuckDB over files in the layout AWS writes to S3. No AWS account needed.

It reads each input file once per run: ``prepare`` loads the window's records (after pruning files by their
delivery folder) into tables of the run's embedded database, and every check's query runs on those tables.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping

from auditor.config import SourceSpec
from auditor.engines.embedded import Workspace
from auditor.engines.sources import cloudtrail, files, flowlogs
from auditor.engines.sql import window_params
from auditor.models import DataQuality, InputFile, Query, QueryResult, TimeWindow


class LocalEngine:
    name = "local"
    dialect = "trino"

    def __init__(self, workspace: Workspace, *, flow_logs: SourceSpec | None, cloudtrail_source: SourceSpec | None,
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
        if "cloudtrail" in scans and self.cloudtrail is not None:
            present = files.discover(self.cloudtrail.path, ("json", "text"), skip_dirs=("CloudTrail-Digest",))
            kept = files.prune(present, scans["cloudtrail"], self.delivery_lag)
            quality = cloudtrail.load_cloudtrail(con, kept, window=scans["cloudtrail"])
            self.inputs.extend(kept)
            dq = dq.merge(DataQuality(files=tuple(quality), files_read=len(kept), files_present=len(present)))
        return dq

    def run(self, query: Query, window: TimeWindow, params: Mapping[str, Any]) -> QueryResult:
        return self.workspace.execute(query.text, {**window_params(window), **params},
                                      name=f"{query.check_id}/{query.name}", engine=self.name)

    def close(self) -> None:
        """The workspace owns the connection; nothing of the engine's own to release."""


def create(workspace: Workspace, sources: Any, delivery_lag: timedelta, resolve: Any) -> LocalEngine:
    """Build the local engine from the config's sources (paths resolved against the config's folder)."""
    def resolved(spec: SourceSpec | None) -> SourceSpec | None:
        return None if spec is None else spec.model_copy(update={"path": Path(resolve(spec.path))})
    return LocalEngine(workspace, flow_logs=resolved(sources.flow_logs), cloudtrail_source=resolved(sources.cloudtrail),
                       delivery_lag=delivery_lag)
