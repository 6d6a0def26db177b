"""The flow summary on Athena: one CREATE TABLE AS SELECT per run and window, dropped with its objects at the end.

Every flow-log check reads ``flow_summary`` (:mod:`auditor.engines.summary`). On Athena that table is created the
first time a query over a window needs it: the summary's SELECT, mapped onto the flow-log tables like any check
query (partition predicates, execution parameters), written as Parquet under a folder of this run
(``<scratch_location><run>/<n>/``) and registered as ``<scratch_database>.auditor_flow_summary_<run>_<n>``
(https://docs.aws.amazon.com/athena/latest/ug/create-table-as.html). The flow-log objects of the window are read
once, by that query; the checks then read the summary, which is small. At the end of the run, and when the run
fails, the table is deleted from the Glue catalog and its objects from S3: DROP TABLE on a CTAS table leaves its
data in place (https://docs.aws.amazon.com/athena/latest/ug/drop-table.html). A lifecycle rule that expires the
scratch prefix after a day is the safety net for a run that is killed (docs/athena-cost.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from auditor.config import AthenaSettings, AthenaSourceSpec
from auditor.engines.athena.querymap import AthenaQuery
from auditor.errors import ConfigError, EngineError
from auditor.models import TimeWindow

TABLE_PREFIX = "auditor_flow_summary_"
FOLDER = "auditor-flow-summary/"
_TOKEN = re.compile(r"^[a-z0-9]{1,32}$")
DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys a request


@dataclass(frozen=True)
class Scratch:
    """Where one run's summaries go: a Glue database and an S3 folder of its own."""

    database: str
    location: str  # s3://bucket/prefix/<run>/

    @classmethod
    def of(cls, settings: AthenaSettings, flow_logs: AthenaSourceSpec, run: str) -> Scratch:
        """The run's scratch place from ``athena.scratch_*``, else the flow-log source's database and output
        location. ``run`` is a short lower-case token that names the run's folder and tables."""
        if not _TOKEN.match(run):
            raise ValueError(f"not a run token: {run!r}")
        base = settings.scratch_location or (flow_logs.output_location + FOLDER if flow_logs.output_location else None)
        if base is None:
            raise ConfigError("sources.flow_logs: the flow summary needs an S3 folder to write to: set "
                              "sources.flow_logs.output_location or athena.scratch_location")
        return cls(database=settings.scratch_database or flow_logs.database, location=f"{base}{run}/")


@dataclass
class Summary:
    """One window's summary table: where it is, and why it could not be created if it could not."""

    window: TimeWindow
    database: str
    table: str
    location: str  # s3://bucket/prefix/<run>/<n>/
    error: str | None = None  # why it could not be created; every query over it fails with this
    skipped: str | None = None  # why it was not created (over the budget); every check over it is skipped


def summary_for(scratch: Scratch, window: TimeWindow, run: str, number: int) -> Summary:
    return Summary(window=window, database=scratch.database, table=f"{TABLE_PREFIX}{run}_{number}",
                   location=f"{scratch.location}{number}/")


def _ident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="trino")


def ctas(select: AthenaQuery, summary: Summary) -> AthenaQuery:
    """The summary's SELECT (already mapped and parameterised) as a CREATE TABLE AS SELECT into ``summary``.

    The table name and location are ours (a run token and a number); the location goes in as a quoted literal.
    The parameters keep their order: the CREATE clause holds no ``?``."""
    head, _, body = select.text.partition("\n")
    location = exp.Literal.string(summary.location).sql(dialect="trino")
    create = (f"CREATE TABLE {_ident(summary.database)}.{_ident(summary.table)}\n"
              f"WITH (format = 'PARQUET', write_compression = 'SNAPPY', external_location = {location})\nAS\n")
    return AthenaQuery(text=f"{head}\n{create}{body}", parameters=select.parameters, shown=select.shown,
                       scans=select.scans)


def _bucket_key(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def _objects(s3: Any, uri: str) -> Iterator[dict[str, Any]]:
    bucket, prefix = _bucket_key(uri)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def size_of(s3: Any, uri: str) -> int:
    """The bytes of the objects under ``uri``: what a query over the summary scans at most (Parquet: Athena reads
    only the columns a query uses)."""
    try:
        return sum(int(o.get("Size", 0)) for o in _objects(s3, uri))
    except Exception as exc:  # botocore errors; the message names the bucket
        raise EngineError(f"could not list {uri} to estimate the scan: {exc}", engine="athena") from exc


def delete_objects(s3: Any, uri: str) -> int:
    """Delete every object under ``uri`` (the summary's folder); returns how many there were."""
    bucket, _ = _bucket_key(uri)
    keys = [o["Key"] for o in _objects(s3, uri)]
    for i in range(0, len(keys), DELETE_BATCH):
        batch = keys[i:i + DELETE_BATCH]
        answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
        failed = answer.get("Errors") or []
        if failed:
            first = failed[0]
            raise EngineError(f"could not delete {len(failed)} objects under {uri}: {first.get('Code')}: "
                              f"{first.get('Message')} (s3://{bucket}/{first.get('Key')})", engine="athena")
    return len(keys)


def drop_table(glue: Any, summary: Summary) -> None:
    """Delete the summary's table from the Glue catalog; one that does not exist (the CTAS failed) is fine."""
    try:
        glue.delete_table(DatabaseName=summary.database, Name=summary.table)
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code != "EntityNotFoundException":
            raise EngineError(f"could not drop the flow summary table {summary.database}.{summary.table}: {exc}",
                              engine="athena") from exc
