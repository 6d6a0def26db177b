"""The Parquet cache of raw flow logs (auditor.engines.cache) and the local engine's view over it: parsed once,
reused while unchanged, invalidated per delivery folder, and the same rows and line counts as a run without it."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.config import FlowLogSourceSpec
from auditor.engines.embedded import Workspace
from auditor.engines.local import LocalEngine
from auditor.logformat import TABLE_COLUMNS
from auditor.models import TimeWindow
from tests.support.flowdata import (
    ACCOUNT,
    REGION,
    record,
    ts,
    write_config,
    write_flow_log,
)
from tests.support.opens import count_opens
from tests.support.runner import results

UTC = timezone.utc
DAYS = ("2026/11/10", "2026/11/11", "2026/11/12", "2026/11/13")
CUSTOM = ("version", "vpc-id", "interface-id", "flow-direction", "srcaddr", "dstaddr", "srcport", "dstport",
          "protocol", "packets", "bytes", "start", "end", "action", "log-status")


def _window(first: int, last: int) -> TimeWindow:
    """Days 10..13 of November 2026: [first, last)."""
    return TimeWindow(datetime(2026, 11, first, tzinfo=UTC), datetime(2026, 11, last, tzinfo=UTC))


def _tree(root: Path) -> dict[str, Path]:
    """Four delivery days; each folder holds a default-format file and a custom-format file (one dirty line)."""
    paths = {}
    for n, day in enumerate(DAYS):
        start = f"2026-11-{10 + n}T06:00:00Z"
        recs = [record(srcaddr=f"203.0.113.{n}", action="REJECT", dstport=22 + k, start=start) for k in range(3)]
        paths[f"{day}/default"] = write_flow_log(root, recs, day=day, name="fl-default")
        custom = [record(srcaddr=f"198.51.100.{n}", flow_direction="ingress", vpc_id="vpc-1", start=start)]
        path = write_flow_log(root, custom, fields=CUSTOM, day=day, name="fl-custom")
        _append_line(path, "2 vpc-1 eni-web ingress 198.51.100.9 10.0.1.10 40000 http 6 1 60 1 2 ACCEPT OK")
        paths[f"{day}/custom"] = path
    return paths


def _append_line(path: Path, line: str) -> None:
    import gzip
    text = gzip.decompress(path.read_bytes()).decode() + line + "\n"
    path.write_bytes(gzip.compress(text.encode()))


def _engine(root: Path, cache: Path | None, scratch: Path | None = None, fmt: str | None = None) -> LocalEngine:
    spec = FlowLogSourceSpec(path=root, format=fmt)
    return LocalEngine(Workspace(), flow_logs=spec, cloudtrail_source=None, delivery_lag=timedelta(days=1),
                       cache_dir=cache, scratch_dir=scratch)


def _prepare(root: Path, cache: Path | None, window: TimeWindow, **kw):
    engine = _engine(root, cache, **kw)
    dq = engine.prepare({"flow_logs": window})
    rows = engine.workspace.con.execute("SELECT * FROM flow_logs ORDER BY ALL").fetchall()
    engine.close()
    engine.workspace.close()
    return dq, rows


def test_a_warm_cache_reads_no_raw_file_and_serves_the_same_rows_and_counts(tmp_path: Path) -> None:
    root, cache = tmp_path / "logs", tmp_path / "cache"
    _tree(root)
    window = _window(10, 14)
    plain_dq, plain_rows = _prepare(root, None, window, scratch=tmp_path / "scratch")
    cold_dq, cold_rows = _prepare(root, cache, window)
    with count_opens(root) as opens:
        warm_dq, warm_rows = _prepare(root, cache, window)
    assert dict(opens) == {}
    assert plain_rows == cold_rows == warm_rows
    assert len(plain_rows) == 4 * (3 + 1)
    assert plain_dq.files == cold_dq.files == warm_dq.files
    assert sum(f.malformed for f in warm_dq.files) == 4  # the dirty line of each custom file
    assert cold_dq.counters["cache_partitions_built"] == 4 and cold_dq.counters["cache_partitions_reused"] == 0
    assert warm_dq.counters["cache_partitions_built"] == 0 and warm_dq.counters["cache_partitions_reused"] == 4
    assert "0 raw files were read" in warm_dq.notes[0]
    assert "cache_partitions_built" not in plain_dq.counters


def test_the_view_has_every_table_column_with_its_type(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    _tree(root)
    engine = _engine(root, tmp_path / "cache")
    engine.prepare({"flow_logs": _window(10, 14)})
    described = engine.workspace.con.execute("DESCRIBE flow_logs").fetchall()
    assert [(name, type_) for name, type_, *_ in described] == list(TABLE_COLUMNS)
    # Columns no file holds are NULL; a custom format's own columns are there.
    (vpcs, tgw), = engine.workspace.con.execute("SELECT count(vpc_id), count(tgw_id) FROM flow_logs").fetchall()
    assert (vpcs, tgw) == (4, 0)
    engine.close()


def test_an_overlapping_window_reads_only_the_new_days_raw(tmp_path: Path) -> None:
    root, cache = tmp_path / "logs", tmp_path / "cache"
    paths = _tree(root)
    _prepare(root, cache, _window(10, 12))  # folders 10, 11 and 12 (the delivery lag reaches into the 12th)
    with count_opens(root) as opens:
        dq, rows = _prepare(root, cache, _window(11, 14))
    assert set(opens) == {str(paths["2026/11/13/default"]), str(paths["2026/11/13/custom"])}
    assert (dq.counters["cache_partitions_reused"], dq.counters["cache_partitions_built"]) == (2, 1)
    assert sorted({r[3] for r in rows if r[3].startswith("203.")}) == ["203.0.113.1", "203.0.113.2", "203.0.113.3"]


def test_a_changed_added_or_removed_file_invalidates_its_folder_only(tmp_path: Path) -> None:
    root, cache = tmp_path / "logs", tmp_path / "cache"
    paths = _tree(root)
    window = _window(10, 14)
    _prepare(root, cache, window)

    start = ts("2026-11-12T07:00:00Z")
    _append_line(paths["2026/11/12/default"],
                 f"2 111122223333 eni-web 192.0.2.99 10.0.1.10 1 22 6 1 60 {start} {start + 60} REJECT OK")
    os.utime(paths["2026/11/12/default"], ns=(1, 1))  # a different mtime even on a coarse clock
    with count_opens(root) as opens:
        dq, rows = _prepare(root, cache, window)
    assert set(opens) == {str(paths["2026/11/12/default"]), str(paths["2026/11/12/custom"])}
    assert (dq.counters["cache_partitions_reused"], dq.counters["cache_partitions_built"]) == (3, 1)
    assert any(r[3] == "192.0.2.99" for r in rows)

    added = write_flow_log(root, [record(srcaddr="192.0.2.77", start="2026-11-13T01:00:00Z")], day=DAYS[3], name="fl-late")
    paths["2026/11/11/custom"].unlink()
    dq, rows = _prepare(root, cache, window)
    assert (dq.counters["cache_partitions_reused"], dq.counters["cache_partitions_built"]) == (2, 2)
    assert any(r[3] == "192.0.2.77" for r in rows)
    assert not any(r[3] == "198.51.100.1" for r in rows)
    assert str(added) in {f.path for f in dq.files}
    # Old versions of rebuilt folders are removed: one version per folder.
    versions = [p for p in cache.rglob("manifest.json")]
    assert len(versions) == 4


def test_the_default_format_is_part_of_the_signature(tmp_path: Path) -> None:
    root, cache = tmp_path / "logs", tmp_path / "cache"
    export = root / "export"
    export.mkdir(parents=True)
    (export / "a.log").write_text(f"{ts('2026-11-12T07:00:00Z')} 203.0.113.5 REJECT\n")
    window = _window(10, 14)
    dq1, rows1 = _prepare(root, cache, window, fmt="${start} ${srcaddr} ${action}")
    dq2, rows2 = _prepare(root, cache, window, fmt="${start} ${dstaddr} ${action}")
    assert dq2.counters["cache_partitions_built"] == 1
    columns = [c for c, _ in TABLE_COLUMNS]
    assert rows1[0][columns.index("srcaddr")] == "203.0.113.5" and rows1[0][columns.index("dstaddr")] is None
    assert rows2[0][columns.index("dstaddr")] == "203.0.113.5" and rows2[0][columns.index("srcaddr")] is None


def test_parquet_inputs_go_through_the_cache_too(tmp_path: Path) -> None:
    root, cache = tmp_path / "logs", tmp_path / "cache"
    folder = root / "AWSLogs" / ACCOUNT / "vpcflowlogs" / REGION / "2026" / "11" / "10"
    folder.mkdir(parents=True)
    start = int(datetime(2026, 11, 10, 5, tzinfo=UTC).timestamp())
    pq.write_table(pa.table({"version": pa.array([2], pa.int32()), "srcaddr": ["203.0.113.8"], "start": [start],
                             "log_status": ["OK"]}), folder / "a.parquet")
    _, cold = _prepare(root, cache, _window(10, 11))
    with count_opens(root) as opens:
        dq, warm = _prepare(root, cache, _window(10, 11))
    assert dict(opens) == {} and cold == warm
    row = dict(zip([c for c, _ in TABLE_COLUMNS], warm[0]))
    assert (row["srcaddr"], row["account_id"], row["region"], row["start"]) == ("203.0.113.8", ACCOUNT, REGION, start)
    assert dq.files[0].records == 1


def test_a_run_without_the_cache_leaves_no_scratch_behind(tmp_path: Path) -> None:
    root, scratch = tmp_path / "logs", tmp_path / "tmp"
    _tree(root)
    engine = _engine(root, None, scratch=scratch)
    engine.prepare({"flow_logs": _window(10, 14)})
    assert list(scratch.iterdir()), "the scratch Parquet lives while the run does"
    engine.close()
    assert list(scratch.iterdir()) == []
    forgotten = _engine(root, None, scratch=scratch)
    forgotten.prepare({"flow_logs": _window(10, 14)})
    del forgotten  # never closed: the finalizer still cleans up
    assert list(scratch.iterdir()) == []


def test_ingest_then_run_reads_the_cache(tmp_path: Path) -> None:
    _tree(tmp_path / "logs")
    config = write_config(tmp_path, """
        sources:
          flow_logs: logs
        cache: {enabled: true, dir: parquet-cache}
        """)
    result = CliRunner().invoke(main, ["ingest", "--config", str(config), "--since", "2026-11-10",
                                       "--until", "2026-11-13"])
    assert result.exit_code == 0, result.output
    assert "4 delivery folders (0 already cached, 4 parsed)" in result.output
    assert len(list((tmp_path / "parquet-cache").rglob("manifest.json"))) == 4
    with count_opens(tmp_path / "logs") as opens:
        checks = results(config, _window(10, 13))
    assert dict(opens) == {}
    top = checks["top_rejected_sources"]
    assert [r["srcaddr"] for r in top.rows] == ["203.0.113.0", "203.0.113.1", "203.0.113.2"]
    assert [r["rejected_flows"] for r in top.rows] == [3, 3, 3]


def test_ingest_says_when_runs_will_not_read_the_cache(tmp_path: Path) -> None:
    _tree(tmp_path / "logs")
    config = write_config(tmp_path, "sources:\n  flow_logs: logs\n")
    result = CliRunner().invoke(main, ["ingest", "--config", str(config), "--since", "2026-11-10",
                                       "--until", "2026-11-11"])
    assert result.exit_code == 0, result.output
    assert "cache.enabled is false" in result.output
    assert (tmp_path / ".auditor" / "cache" / "flow_logs").is_dir()
    no_source = write_config(tmp_path, "sources: {}\n")
    assert CliRunner().invoke(main, ["ingest", "--config", str(no_source), "--since", "1d"]).exit_code == 2


@pytest.mark.parametrize("enabled", [True, False])
def test_a_run_reports_the_same_findings_with_and_without_the_cache(tmp_path: Path, enabled: bool) -> None:
    _tree(tmp_path / "logs")
    config = write_config(tmp_path, f"""
        sources:
          flow_logs: logs
        cache: {{enabled: {str(enabled).lower()}}}
        """)
    first = results(config, _window(10, 14))
    second = results(config, _window(10, 14))
    for check_id in first:
        assert first[check_id].rows == second[check_id].rows
    assert [r["srcaddr"] for r in first["top_rejected_sources"].rows][:4] == [f"203.0.113.{n}" for n in range(4)]
    assert (tmp_path / ".auditor" / "cache").is_dir() == enabled


def test_a_partition_with_an_unreadable_file_is_named_and_parsed_again_next_time(tmp_path: Path) -> None:
    paths = _tree(tmp_path / "logs")
    broken = paths[f"{DAYS[0]}/default"].with_name("broken.log.gz")
    broken.write_bytes(b"")  # an upload cut off at zero bytes
    config = write_config(tmp_path, """
        sources:
          flow_logs: logs
        cache: {enabled: true, dir: parquet-cache}
        """)
    args = ["ingest", "--config", str(config), "--since", "2026-11-10", "--until", "2026-11-13"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert f"{broken}: empty file (0 bytes): not a gzip stream" in " ".join(first.output.split())
    # The three clean folders come from the cache; the one with the broken file is read again, unchanged as it
    # is: a file that could not be read may be readable now (permissions fixed), and says so again if not.
    second = CliRunner().invoke(main, args)
    assert "4 delivery folders (3 already cached, 1 parsed)" in second.output, second.output
    assert "broken.log.gz: empty file" in " ".join(second.output.split())
