"""The benchmark: `auditor run` against bare DuckDB and plain Python over N generated flow records.

Measured in one process, one after the other:

* (a0) ``auditor run`` with every check over an empty dataset (same inventory, no logs): the fixed cost of a
  run (planning, the inventory, rendering HTML and PDF). An untimed run before it pays the imports, which are
  reported apart, so that a0, a and d all run warm.
* (a) ``auditor run`` over the N records, with the Parquet cache enabled and empty: every raw file is parsed.
* (b) bare DuckDB over the same files: one scan of each format's files with DuckDB's native CSV reader
  (told each file's format up front, as only a benchmark can be), giving the count and one group-by
  (REJECT records per source).
* (c) plain Python: top_rejected_sources with gzip, str.split and a Counter.
* (d) ``auditor run`` again, the cache warm.

Each step reports wall time, CPU time and peak RSS (the kernel's high-water mark, reset before each step
through /proc/self/clear_refs), and the marginal ratios (a-a0)/b, (a-a0)/c and (d-a0)/b. Output: a table
on stdout and JSON (``--json``).

Usage: ``python benchmarks/run.py --records 1000000`` (``make bench N=10000000``).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate  # noqa: E402 - the generator sits beside this script

DEFAULT_DATA = Path(os.environ.get("AUDITOR_BENCH_DATA", Path.home() / ".cache" / "auditor-bench"))
ALL_FORMATS = "html,pdf,json,csv"
TARGETS = {"(a-a0)/b": 1.3, "(a-a0)/c": 0.35, "(d-a0)/b": 0.15}
RSS_TARGET_MB = 1024


@dataclass
class Step:
    name: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    detail: dict[str, Any]


class _Meter:
    """Wall time, CPU time and peak RSS of a block. The peak is the kernel's VmHWM, reset by writing 5 to
    /proc/self/clear_refs (Linux 4.0+); where that is refused, a 20 ms sampler stands in."""

    def __init__(self) -> None:
        self.can_reset = self._reset()

    @staticmethod
    def _reset() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    @staticmethod
    def _status(key: str) -> float:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
        return 0.0

    def measure(self, name: str, fn: Callable[[], dict[str, Any]]) -> Step:
        import threading

        peak = [0.0]
        done = threading.Event()
        if not self._reset():
            def sample() -> None:
                while not done.wait(0.02):
                    peak[0] = max(peak[0], self._status("VmRSS:"))
            threading.Thread(target=sample, daemon=True).start()
        cpu0 = _cpu()
        t0 = time.perf_counter()
        detail = fn()
        wall = time.perf_counter() - t0
        cpu = _cpu() - cpu0
        done.set()
        high = self._status("VmHWM:") if self.can_reset else max(peak[0], self._status("VmRSS:"))
        return Step(name, round(wall, 3), round(cpu, 3), round(high, 1), detail)


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _config(path: Path, data: Path, *, cache: Path | None, memory_limit: str, temp: Path, threads: int | None) -> Path:
    lines = ["engine: local", "sources:", f"  flow_logs: {data / 'flowlogs'}", f"  cloudtrail: {data / 'cloudtrail'}",
             f"  inventory: {data / 'inventory'}", f"state_dir: {path.parent / 'state'}",
             f"duckdb: {{memory_limit: {memory_limit}, temp_directory: {temp}"
             + (f", threads: {threads}" if threads else "") + "}"]
    if cache is not None:
        lines.append(f"cache: {{enabled: true, dir: {cache}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _auditor_run(config: Path, out: Path, since: str, until: str, formats: str) -> dict[str, Any]:
    """`auditor run` through its CLI, in this process. Its console output is kept out of the table."""
    from auditor.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            main.main(["run", "--config", str(config), "--since", since, "--until", until, "--out", str(out),
                       "--force", "--format", formats], prog_name="auditor", standalone_mode=False)
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    # 3 is "a check errored": the report was still written, so the step is measured and the error reported
    # (at 100M records a check can run out of memory) instead of losing the whole benchmark.
    if code not in (0, 1, 3):
        raise RuntimeError(f"auditor run exited {code}:\n{buffer.getvalue()}")
    findings = json.loads((out / "findings.json").read_text())
    dq = findings["data_quality"]
    return {"exit_code": code, "records": sum(f["records"] + f["nodata"] for f in dq["files"] if "flowlogs" in f["path"]),
            "malformed": sum(f["malformed"] for f in dq["files"]), "counters": dq.get("counters", {}),
            "checks": {c["id"]: {"status": c["status"], "rows": len(c["rows"])} for c in findings["checks"]},
            "errors": {c["id"]: c["error"] for c in findings["checks"] if c["status"] == "error"},
            "report_bytes": sum(p.stat().st_size for p in out.rglob("*") if p.is_file())}


def _flow_files(data: Path) -> dict[str, list[str]]:
    """The generated flow-log files by format (the generator names each file after its flow log)."""
    by_format: dict[str, list[str]] = {}
    for path in sorted((data / "flowlogs").rglob("*.log.gz")):
        for flow_log_id, fields in generate.FLOW_LOGS:
            if flow_log_id in path.name:
                by_format.setdefault(" ".join(fields), []).append(str(path))
    return by_format


def _bare_duckdb(data: Path, memory_limit: str, temp: Path, threads: int | None) -> dict[str, Any]:
    """One scan per format with DuckDB's native CSV reader: the count, and REJECT records per source."""
    import duckdb

    con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": str(temp),
                                 **({"threads": threads} if threads else {})})
    try:
        formats = list(_flow_files(data).values())
        # The file lists are bound parameters; only their number shapes the SQL.
        scans = " UNION ALL ".join(f"SELECT srcaddr, action FROM read_csv($f{i}, delim = ' ', header = true, "
                                   f"ignore_errors = true)" for i in range(len(formats)))
        ((total, sources),) = con.execute(
            f"SELECT sum(n), count(*) FILTER (WHERE rejected > 0) FROM (SELECT srcaddr, count(*) AS n, "
            f"count(*) FILTER (WHERE action = 'REJECT') AS rejected FROM ({scans}) GROUP BY srcaddr)",
            {f"f{i}": paths for i, paths in enumerate(formats)}).fetchall()
    except duckdb.OutOfMemoryException as exc:
        # The baseline itself can fail at the run's memory limit (its group-by over every source, at 100M
        # records and 600MB): recorded, and the ratios against it are left out, rather than ending the run.
        return {"records": None, "errors": {"bare duckdb": str(exc)}}
    finally:
        con.close()
    return {"records": int(total), "rejecting_sources": int(sources)}


def _plain_python(data: Path, since_s: int, until_s: int, top_n: int = 20) -> dict[str, Any]:
    """top_rejected_sources the way a script would do it: gzip, split, Counter."""
    counts: Counter[str] = Counter()
    lines = 0
    for path in sorted((data / "flowlogs").rglob("*.log.gz")):
        with gzip.open(path, "rt") as f:
            header = f.readline().split()
            src, action, status, start = (header.index(n) for n in ("srcaddr", "action", "log-status", "start"))
            width = len(header)
            for line in f:
                lines += 1
                fields = line.split()
                if (len(fields) == width and fields[action] == "REJECT" and fields[status] == "OK"
                        and fields[start].isdigit() and since_s <= int(fields[start]) < until_s):
                    counts[fields[src]] += 1
    return {"lines": lines, "top": counts.most_common(top_n)[:3]}


def bench(records: int, *, data_root: Path, work: Path, memory_limit: str, threads: int | None,
          formats: str = ALL_FORMATS) -> dict[str, Any]:
    """Generate (or reuse) the dataset of ``records`` and measure every step; returns the JSON document.
    ``formats`` are the report's outputs (``--format`` of ``auditor run``): all of them by default."""
    t0 = time.perf_counter()
    manifest = generate.generate(data_root / str(records), records)
    gen_s = time.perf_counter() - t0
    data = data_root / str(records)
    empty = work / "empty"
    for sub in ("flowlogs", "cloudtrail"):
        (empty / sub).mkdir(parents=True, exist_ok=True)
    if not (empty / "inventory").exists():
        shutil.copytree(data / "inventory", empty / "inventory")
    temp = work / "duckdb-tmp"
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    cfg = dict(memory_limit=memory_limit, temp=temp, threads=threads)
    cold_config = _config(work / "a0.yaml", empty, cache=None, **cfg)
    full_config = _config(work / "a.yaml", data, cache=cache, **cfg)
    since, until = manifest.since, manifest.until
    window = [int(datetime.fromisoformat(t).replace(tzinfo=timezone.utc).timestamp()) for t in (since, until)]

    meter = _Meter()
    load_before = os.getloadavg()
    steps = [meter.measure("imports + first empty run",
                           lambda: _auditor_run(cold_config, work / "r0", since, until, formats))]
    steps.append(meter.measure("a0", lambda: _auditor_run(cold_config, work / "r0", since, until, formats)))
    steps.append(meter.measure("a", lambda: _auditor_run(full_config, work / "ra", since, until, formats)))
    steps.append(meter.measure("b", lambda: _bare_duckdb(data, memory_limit, temp, threads)))
    steps.append(meter.measure("c", lambda: _plain_python(data, *window)))
    steps.append(meter.measure("d", lambda: _auditor_run(full_config, work / "rd", since, until, formats)))
    load_after = os.getloadavg()

    by = {s.name: s for s in steps}
    a0, a, b, c, d = (by[k].wall_s for k in ("a0", "a", "b", "c", "d"))
    b_ok = by["b"].detail["records"] is not None
    ratios = {"(a-a0)/b": round((a - a0) / b, 3) if b_ok else None, "(a-a0)/c": round((a - a0) / c, 3),
              "(d-a0)/b": round((d - a0) / b, 3) if b_ok else None}
    # Every step must have read the same data: auditor exactly the generated records; DuckDB's native reader,
    # which skips the double-spaced lines and keeps some malformed ones, the same to within the 0.1% of dirt.
    expected = manifest.lines["records"] + manifest.lines["nodata"]
    for step in ("a", "d"):
        if by[step].detail["records"] != expected:
            raise RuntimeError(f"({step}) read {by[step].detail['records']} records; the generator wrote {expected}")
    if b_ok and abs(expected - by["b"].detail["records"]) > max(10, expected // 1000):
        raise RuntimeError(f"(b) read {by['b'].detail['records']} records; the generator wrote {expected}")
    return {
        "records": records, "dataset": asdict(manifest), "generate_s": round(gen_s, 2),
        "steps": [asdict(s) for s in steps], "ratios": ratios, "targets": TARGETS,
        "met": {k: None if ratios[k] is None else ratios[k] <= v for k, v in TARGETS.items()} | {"peak_rss_a_mb": by["a"].peak_rss_mb <= RSS_TARGET_MB},
        "load_average": {"before": load_before, "after": load_after}, "machine": machine(),
        "settings": {"memory_limit": memory_limit, "threads": threads, "formats": formats,
                     "rss_reset": meter.can_reset},
    }


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import duckdb

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError, ValueError):
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_mb": mem, "python": platform.python_version(),
            "duckdb": duckdb.__version__, "kernel": platform.release()}


def table(result: dict[str, Any]) -> str:
    """The short table printed after a run."""
    rows = [f"N = {result['records']:,} records ({result['dataset']['files']} files, "
            f"{result['dataset']['bytes_on_disk'] / 2**20:.0f} MB gzipped); load average "
            f"{result['load_average']['before'][0]:.2f} -> {result['load_average']['after'][0]:.2f}",
            f"{'step':28s} {'wall s':>8s} {'cpu s':>8s} {'peak RSS MB':>12s}"]
    for s in result["steps"]:
        rows.append(f"{s['name']:28s} {s['wall_s']:8.2f} {s['cpu_s']:8.2f} {s['peak_rss_mb']:12.0f}")
    for k, v in result["ratios"].items():
        if v is None:
            rows.append(f"{k:28s} {'n/a':>8s}   target <= {TARGETS[k]}  not measured: (b) failed")
            continue
        rows.append(f"{k:28s} {v:8.3f}   target <= {TARGETS[k]}  {'met' if result['met'][k] else 'MISSED'}")
    a = next(s for s in result["steps"] if s["name"] == "a")
    rows.append(f"{'peak RSS of (a)':28s} {a['peak_rss_mb']:8.0f}   target <= {RSS_TARGET_MB} MB  "
                f"{'met' if result['met']['peak_rss_a_mb'] else 'MISSED'}")
    for step in result["steps"]:
        for check, error in step["detail"].get("errors", {}).items():
            rows.append(f"ERROR in ({step['name']}) {check}: {error.splitlines()[0][:160]}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Benchmark auditor run against bare DuckDB and plain Python.")
    ap.add_argument("--records", default="1000000", help="N, or several as 1000000,10000000")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help=f"generated datasets (default {DEFAULT_DATA})")
    ap.add_argument("--work-dir", type=Path, help="reports, cache and DuckDB spill (default: a temporary folder)")
    ap.add_argument("--memory-limit", default="600MB", help="duckdb.memory_limit of the runs (default 600MB)")
    ap.add_argument("--threads", type=int, help="duckdb.threads (default: one per core)")
    ap.add_argument("--format", default=ALL_FORMATS, help=f"the report's outputs (default {ALL_FORMATS})")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    results = []
    for n in (int(x.replace("_", "")) for x in args.records.split(",")):
        with tempfile.TemporaryDirectory(prefix="auditor-bench-", dir=args.work_dir) as work:
            result = bench(n, data_root=args.data_dir, work=Path(work), memory_limit=args.memory_limit,
                           threads=args.threads, formats=args.format)
        print(table(result), flush=True)
        results.append(result)
    if len(results) > 1:
        marginal = [(r["records"], next(s["wall_s"] for s in r["steps"] if s["name"] == "a")
                     - next(s["wall_s"] for s in r["steps"] if s["name"] == "a0")) for r in results]
        slopes = [round((t2 - t1) / (n2 - n1) * 1e6, 3) for (n1, t1), (n2, t2) in zip(marginal, marginal[1:])]
        print(f"(a-a0) per million records between successive N: {slopes} s")
    if args.json:
        args.json.write_text(json.dumps(results if len(results) > 1 else results[0], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
