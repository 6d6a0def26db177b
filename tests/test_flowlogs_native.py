"""The native fast path of the flow-log reader must give exactly the rows and line counts of the tolerant path,
which is the reader's definition: on every corpus sample, on the benchmark generator's mix of clean and dirty
files, and on random clean files. A file the native read cannot prove clean falls back to the tolerant path."""

from __future__ import annotations

import gzip
import importlib.util
import sys
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.engines.sources import flowlogs
from auditor.engines.sources.files import discover

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
COLUMNS = [c for c, _ in flowlogs.TABLE_COLUMNS] + [flowlogs.CLASS_COLUMN]


def _parse(files, out: Path, native: bool):
    con = duckdb.connect()
    try:
        quality, written = flowlogs.write_parquet(con, files, out, native=native)
        if not written:
            return quality, []
        rel = con.read_parquet([str(p) for p in written], union_by_name=True)
        have = set(rel.columns)
        select = ", ".join(f'"{c}"' if c in have else f'NULL AS "{c}"' for c in COLUMNS)
        # Each row with its file's path, so that the comparison does not depend on batch positions.
        table = con.execute(f"SELECT {select}, \"{flowlogs.FILE_COLUMN}\" FROM rel").fetchall()
    finally:
        con.close()
    return quality, table


def _same(files, tmp_path: Path):
    """Both paths over ``files``: the same line counts per file, and the same rows (as a multiset; each row
    carries its file's account and region)."""
    q_native, native = _parse(files, tmp_path / "native", True)
    q_tolerant, tolerant = _parse(files, tmp_path / "tolerant", False)
    assert q_native == q_tolerant
    # __file indexes a batch, and the paths batch files differently: compare the rows without it.
    assert sorted(repr(row[:-1]) for row in native) == sorted(repr(row[:-1]) for row in tolerant)
    return q_native


def test_every_corpus_flow_log_sample_reads_the_same_on_both_paths(corpus: Path, tmp_path: Path) -> None:
    files = [f for f in discover(corpus, ["text"]) if "flow" in f.path.lower() or "vpc" in f.path.lower()]
    assert len(files) >= 10, "the corpus should hold the flow-log samples listed in SOURCES.md"
    for i, f in enumerate(files):
        _same([f], tmp_path / str(i))


def test_the_benchmark_mix_reads_the_same_and_dirty_files_fall_back(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_generate_native", BENCH / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = generate
    spec.loader.exec_module(generate)
    manifest = generate.generate(tmp_path / "data", 40_000, days=2)
    files = discover(tmp_path / "data" / "flowlogs", ["text"])
    quality = _same(files, tmp_path)
    assert sum(q.malformed for q in quality) == manifest.lines["malformed"] > 0
    assert sum(q.blank for q in quality) == manifest.lines["blank"] > 0
    # The clean files really took the native path: peeking finds their format.
    clean = [f for f, q in zip(files, quality) if not (q.malformed or q.blank or q.headers > 1)]
    assert clean and all(flowlogs._native_format(f) is not None for f in clean)


_V2 = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
_token = st.text(alphabet="abcdef0123456789-.:", min_size=1, max_size=6)
_number = st.one_of(st.integers(0, 2**40).map(str), st.just("-"), st.sampled_from(["1e3", "+5", "07", "99999999999999"]))
_line = st.tuples(st.sampled_from(["2", "x"]), _token, _token, _token, _token, _number, _number, _number, _number,
                  _number, _number, _number, st.sampled_from(["ACCEPT", "REJECT", "-"]),
                  st.sampled_from(["OK", "NODATA", "SKIPDATA", "-"])).map(" ".join)
_noise = st.sampled_from(["", "   ", _V2, "2 1 eni-1", _V2.replace(" ", "  ")])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(_line, _line, _line, _noise), max_size=12), gz=st.booleans(), crlf=st.booleans())
def test_random_files_read_the_same_on_both_paths(tmp_path_factory, lines, gz, crlf) -> None:
    tmp = tmp_path_factory.mktemp("rand")
    text = (("\r\n" if crlf else "\n").join([_V2, *lines]) + "\n").encode()
    path = tmp / ("x.log.gz" if gz else "x.log")
    path.write_bytes(gzip.compress(text) if gz else text)
    _same(discover(tmp, ["text"]), tmp)
