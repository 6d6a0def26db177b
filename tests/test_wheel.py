"""The installed package carries its templates, checks and schema: run from a wheel, not the source tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.flowdata import record, write_config, write_flow_log

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp / "dist"), str(REPO)],
                           capture_output=True, text=True)
    if build.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{build.stderr[-3000:]}")
    (wheel,) = (tmp / "dist").glob("auditor-*.whl")
    site = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    return site


def _run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "auditor", *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_wheel_ships_templates_checks_and_schema(installed):
    pkg = installed / "auditor"
    assert (pkg / "templates" / "report.html").exists()
    assert (pkg / "templates" / "print.css").exists()
    assert (pkg / "schemas" / "findings.schema.json").exists()
    assert {p.parent.name for p in (pkg / "checks").glob("*/check.yaml")} >= {"top_rejected_sources", "sg_changes"}
    assert (pkg / "checks" / "sg_changes" / "hook.py").exists()


def test_a_run_from_the_installed_wheel_renders_the_report(installed, tmp_path):
    work = tmp_path / "elsewhere"
    work.mkdir()
    write_flow_log(work / "flows", [record(srcaddr="198.51.100.23", action="REJECT", dstport=p) for p in range(20, 30)])
    write_config(work, "sources: {flow_logs: flows}\nchecks:\n  top_rejected_sources: {min_flows: 5}\n")
    probe = "import auditor, auditor.render as r; print(auditor.__file__); print(r.template_dirs()[0])"
    where = subprocess.run([sys.executable, "-c", probe], cwd=work, env={**os.environ, "PYTHONPATH": str(installed)},
                           capture_output=True, text=True)
    module_file, templates = where.stdout.split()
    assert module_file.startswith(str(installed)), "the test must exercise the installed copy"
    assert templates.startswith(str(installed))
    result = _run(installed, work, "run", "--since", "2026-11-09", "--until", "2026-11-16", "--out", "out")
    assert result.returncode == 0, result.stdout + result.stderr
    html = (work / "out" / "report.html").read_text()
    assert "Top rejected sources" in html and "198.51.100.23" in html
    assert (work / "out" / "report.pdf").read_bytes().startswith(b"%PDF")
    doc = json.loads((work / "out" / "findings.json").read_text())
    assert doc["checks"][0]["findings"][0]["srcaddr"] == "198.51.100.23"
