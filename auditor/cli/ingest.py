"""``auditor ingest``: fill the Parquet cache of raw flow logs ahead of a run.

It parses each delivery folder that may hold records of the window (``--since``/``--until``, as for
``auditor run``) into ``cache.dir`` (default ``<state_dir>/cache``) once; folders already cached and unchanged
are left alone. Runs read the cache when ``cache: {enabled: true}``.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from auditor.cli.app import (
    EXIT_OK,
    config_option,
    err,
    guard,
    out,
    window,
    window_options,
)
from auditor.clock import utcnow
from auditor.config import load_config
from auditor.engines import local
from auditor.engines.embedded import Workspace
from auditor.errors import UsageError


@click.command("ingest")
@config_option
@window_options
@guard
def ingest(config_path: str, since: str | None, until: str | None) -> int:
    """Parse the window's raw flow logs into the Parquet cache, once; later runs read the cache."""
    loaded = load_config(config_path)
    config = loaded.config
    span = window(loaded, since, until, utcnow())
    spec = config.sources.flow_logs
    if spec is None:
        raise UsageError(f"{loaded.path.name} sets no sources.flow_logs: there is nothing to ingest")
    if spec.engine != "local":
        raise UsageError(f"auditor ingest caches local files, and sources.flow_logs uses the {spec.engine} engine")
    settings = local.cache_settings(config, loaded.resolve)
    cache_dir = settings["cache_dir"] or Path(loaded.resolve(config.cache.dir or config.state_dir / "cache"))
    started = time.perf_counter()
    workspace = Workspace(config.duckdb)
    try:
        engine = local.create(workspace, config.sources, config.delivery_lag_td, loaded.resolve, cache_dir=cache_dir,
                              scratch_dir=settings["scratch_dir"])
        present, kept, prepared = engine.ingest(span)
        engine.close()
    finally:
        workspace.close()
    records = sum(q.records + q.nodata for q in prepared.quality)
    malformed = sum(q.malformed for q in prepared.quality)
    out.print(f"cache {cache_dir}: window {span}: {prepared.reused + prepared.built} delivery folders "
              f"({prepared.reused} already cached, {prepared.built} parsed), {len(kept)} of {len(present)} files, "
              f"{prepared.raw_files_read} read raw; {records:,} records, {malformed:,} malformed lines; "
              f"{time.perf_counter() - started:.1f}s", soft_wrap=True)
    for problem in [*engine.problems, *(q for q in prepared.quality if q.error)]:
        err.print(f"[yellow]warning:[/] {problem.path}: {problem.error}", markup=True, soft_wrap=True)
    if not config.cache.enabled:
        err.print("[yellow]note:[/] cache.enabled is false, so `auditor run` does not read this cache; "
                  "set `cache: {enabled: true}` in the config", markup=True, soft_wrap=True)
    return EXIT_OK
