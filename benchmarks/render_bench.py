"""Render benchmark: the demo report's HTML printed to PDF bytes, in a warm process.

    .venv/bin/python benchmarks/render_bench.py [--runs 7] [--anchor 2026-11-16]

Steps (the PDF print is the measured budget, issues 4 and 19: <= 3 s; issue 19 reads it as a ratio against the HTML
render of the same run, build_view + render_html, since the wall clock of a shared machine varies):
1. generate the demo data (auditor.demo.generate) and run the checks with formats=("json",) to get a
   RunRecord, as ``auditor run`` does;
2. build the view model (charts included) and render the HTML once;
3. print that HTML to PDF/A-3b with findings.json and every results/*.csv attached, ``--runs`` times,
   after one warm-up print (fonts, Pango and the CSS parser caches are warm, as in a long-lived
   scheduler process). Reported: wall time and the process's CPU time, min and median, and the load
   average, because other work on the machine slows the wall clock.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from pypdf import PdfReader

from auditor.builtins import builtins
from auditor.config import load_config
from auditor.demo import generate
from auditor.demo.generate import DEMO_DAYS
from auditor.models import TimeWindow
from auditor.output import csv_text, findings_document, json_bytes
from auditor.pipeline import run_audit
from auditor.render import template_dirs
from auditor.render.html import render_html
from auditor.render.pdf import render_pdf
from auditor.render.view import build_view

CONFIG = """\
engine: local
sources:
  flow_logs: demo/flowlogs
  cloudtrail: demo/cloudtrail
  inventory: demo/inventory
"""


def demo_record(root: Path, anchor: date):
    generate(root / "demo", anchor, days=DEMO_DAYS)
    (root / "config.yaml").write_text(CONFIG)
    until = datetime(anchor.year, anchor.month, anchor.day, tzinfo=timezone.utc)
    window = TimeWindow(until - timedelta(days=7), until)
    outcome = run_audit(load_config(root / "config.yaml"), window, out_dir=root / "out", formats=("json",),
                        clock=lambda: until + timedelta(hours=6))
    return outcome.record


def timed(fn, runs: int) -> tuple[list[float], list[float], object]:
    fn()  # warm-up
    walls, cpus, result = [], [], None
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return walls, cpus, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--anchor", type=date.fromisoformat, default=date(2026, 11, 16))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        record = demo_record(Path(tmp), args.anchor)
    reg = builtins()
    specs = {c.check_id: reg.checks.get(c.check_id) for c in record.checks}
    engines = {e.name: e.dialect for e in reg.engines}
    attachments = {"findings.json": json_bytes(findings_document(record))}
    for check in record.checks:
        if check.columns:
            attachments[f"results/{check.check_id}.csv"] = csv_text(check).encode("utf-8")
    dirs = template_dirs()

    view_walls, _, view = timed(lambda: build_view(record, specs, attachments=attachments, engines=engines), 3)
    html_walls, _, html = timed(lambda: render_html(view, dirs=dirs), 3)
    both_walls, both_cpus, _ = timed(lambda: render_html(build_view(record, specs, attachments=attachments,
                                                                   engines=engines), dirs=dirs), 3)
    load_before = os.getloadavg()
    pdf_walls, pdf_cpus, pdf = timed(
        lambda: render_pdf(html, dirs=dirs, attachments=attachments, attached_at=record.finished_at), args.runs)
    load_after = os.getloadavg()
    plain_walls, plain_cpus, _ = timed(lambda: render_pdf(html, dirs=dirs, variant=None), max(3, args.runs // 2))

    reader = PdfReader(io.BytesIO(pdf))
    rows = sum(len(c.rows) for c in record.checks)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"demo: window {record.window}, {len(record.checks)} checks, {rows} result rows, "
          f"{sum(len(c.findings) for c in record.checks)} findings, {len(view.queries)} queries")
    print(f"report: {len(reader.pages)} pages, {len(pdf):,} bytes, {len(html):,} bytes of HTML, "
          f"{len(attachments)} attachments ({sum(map(len, attachments.values())):,} bytes)")
    print(f"load average before/after the PDF runs: {load_before[0]:.2f} / {load_after[0]:.2f}")
    print()
    print("| step | runs | wall min | wall median | CPU min | CPU median |")
    print("|---|---|---|---|---|---|")
    print(f"| build_view (charts included) | 3 | {min(view_walls):.3f} s | {statistics.median(view_walls):.3f} s | | |")
    print(f"| render_html | 3 | {min(html_walls):.3f} s | {statistics.median(html_walls):.3f} s | | |")
    print(f"| **HTML -> PDF/A-3b bytes, with attachments** | {args.runs} | **{min(pdf_walls):.2f} s** | "
          f"{statistics.median(pdf_walls):.2f} s | {min(pdf_cpus):.2f} s | {statistics.median(pdf_cpus):.2f} s |")
    print(f"| HTML -> plain PDF, no attachments | {len(plain_walls)} | {min(plain_walls):.2f} s | "
          f"{statistics.median(plain_walls):.2f} s | {min(plain_cpus):.2f} s | {statistics.median(plain_cpus):.2f} s |")
    print()
    ratio = statistics.median(pdf_cpus) / statistics.median(both_cpus)
    print(f"PDF print / HTML render (view + HTML), median CPU: {statistics.median(pdf_cpus):.2f} s / "
          f"{statistics.median(both_cpus):.2f} s = {ratio:.1f}x")


if __name__ == "__main__":
    main()
