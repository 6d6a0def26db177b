"""The benchmark harness at a tiny N, so that it never rots: the generator's line classes are what the reader
finds, and every step of benchmarks/run.py runs and reports. No timing is asserted."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    sys.path.insert(0, str(BENCH))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


@pytest.fixture(scope="module")
def generate():
    return _module("generate")


def test_the_generator_is_deterministic_and_mixes_formats_and_dirt(generate, tmp_path: Path) -> None:
    first = generate.generate(tmp_path / "a", 3000, days=2)
    second = generate.generate(tmp_path / "b", 3000, days=2)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        if rel.name != generate.MARKER:
            assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert first.lines == second.lines
    assert first.lines["records"] + first.lines["nodata"] + first.lines["malformed"] + first.lines["blank"] \
        + first.lines["headers"] - first.files == 3000
    assert first.dirty_files >= 1 and first.lines["malformed"] > 0
    headers = {gzip.decompress(p.read_bytes()).split(b"\n", 1)[0] for p in (tmp_path / "a" / "flowlogs").rglob("*.gz")}
    assert headers == {" ".join(fields).encode() for _, fields in generate.FLOW_LOGS}
    assert (tmp_path / "a" / "inventory" / generate.ACCOUNT / generate.REGION / "describe-network-interfaces.json").is_file()
    assert list((tmp_path / "a" / "cloudtrail").rglob("*.json.gz"))
    # A second call with the same arguments reuses the dataset.
    assert generate.generate(tmp_path / "a", 3000, days=2).seconds == first.seconds


def test_every_address_the_generator_writes_is_a_valid_ip_address(generate, tmp_path: Path) -> None:
    # Invalid "IPv6" sources (a five-digit group) once sent 0.5% of the records to the slow Python CIDR path.
    import ipaddress

    generate.generate(tmp_path / "a", 20000, days=1)
    seen = {4: 0, 6: 0}
    for path in (tmp_path / "a" / "flowlogs").rglob("*.gz"):
        lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        header = lines[0].split()
        columns = [header.index(name) for name in ("srcaddr", "dstaddr")]
        for line in lines[1:]:
            fields = line.split()
            if len(fields) != len(header) or fields == header:
                continue  # the generator's deliberate dirt and repeated headers
            for i in columns:
                if fields[i] != "-":
                    seen[ipaddress.ip_address(fields[i]).version] += 1
    assert seen[4] > 0 and seen[6] > 0, seen


def test_the_runner_measures_every_step_and_the_ratios(tmp_path: Path) -> None:
    run = _module("run")
    result = run.bench(2000, data_root=tmp_path / "data", work=tmp_path / "work", memory_limit="500MB", threads=None,
                       formats="json")
    steps = {s["name"]: s for s in result["steps"]}
    assert list(steps) == ["imports + first empty run", "a0", "a", "b", "c", "d"]
    assert all(s["wall_s"] > 0 and s["peak_rss_mb"] > 0 for s in steps.values())
    expected = result["dataset"]["lines"]["records"] + result["dataset"]["lines"]["nodata"]
    assert steps["a"]["detail"]["records"] == steps["d"]["detail"]["records"] == expected
    assert steps["a0"]["detail"]["records"] == 0
    assert steps["a"]["detail"]["counters"]["cache_partitions_reused"] == 0
    assert steps["d"]["detail"]["counters"]["cache_partitions_built"] == 0
    assert steps["d"]["detail"]["counters"]["cache_partitions_reused"] == steps["a"]["detail"]["counters"]["cache_partitions_built"] > 0
    assert steps["a"]["detail"]["checks"] == steps["d"]["detail"]["checks"]
    assert all(c["status"] in ("pass", "fail") for c in steps["a"]["detail"]["checks"].values())
    assert set(result["ratios"]) == set(run.TARGETS)
    json.dumps(result)  # the JSON report is serialisable
    text = run.table(result)
    assert "(a-a0)/b" in text and "peak RSS" in text


def test_a_baseline_that_runs_out_of_memory_is_recorded_and_the_run_goes_on(tmp_path: Path, monkeypatch) -> None:
    # At 100M records and 600MB, bare DuckDB's group-by over every source ran out of memory and used to end
    # the whole benchmark. Here the baseline gets a 1MB limit; the auditor steps keep theirs.
    run = _module("run")
    real = run._bare_duckdb
    monkeypatch.setattr(run, "_bare_duckdb", lambda data, memory_limit, temp, threads: real(data, "1MB", temp, threads))
    result = run.bench(2000, data_root=tmp_path / "data", work=tmp_path / "work", memory_limit="500MB", threads=None,
                       formats="json")
    steps = {s["name"]: s for s in result["steps"]}
    assert steps["b"]["detail"]["records"] is None and "Out of Memory" in steps["b"]["detail"]["errors"]["bare duckdb"]
    assert result["ratios"]["(a-a0)/b"] is None and result["ratios"]["(d-a0)/b"] is None
    # At 2,000 records a run costs about its fixed cost, so (a-a0) is noise and may be negative: only its presence
    # is asserted, never its value (timing belongs to benchmarks/, not to tests).
    assert isinstance(result["ratios"]["(a-a0)/c"], float)
    assert steps["d"]["detail"]["records"] == steps["a"]["detail"]["records"]
    assert result["met"]["(a-a0)/b"] is None
    text = run.table(result)
    assert "not measured: (b) failed" in text and "ERROR in (b) bare duckdb: Out of Memory" in text
