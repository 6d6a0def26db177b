"""auditor run end to end on the demo data: the CLI contract, findings.json, CSVs, the PDF, read-once,
errors that do not stop the run, and atomic outputs."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime, timezone
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from pypdf import PdfReader

import auditor
from auditor.builtins import builtins
from auditor.checks import load_check_dir
from auditor.cli import exit_code, main
from auditor.config import load_config
from auditor.demo import generate
from auditor.models import Status, TimeWindow
from auditor.pipeline import run_audit
from tests.support.flowdata import record, write_config, write_flow_log
from tests.support.opens import count_opens
from tests.support.trail import event, ingress, write_trail

ANCHOR = date(2026, 11, 16)
SINCE, UNTIL = "2026-11-09", "2026-11-16"
SCHEMA = json.loads((Path(auditor.__file__).parent / "schemas" / "findings.schema.json").read_text())

DEMO_CONFIG = """
    engine: local
    sources:
      flow_logs: demo/flowlogs
      cloudtrail: demo/cloudtrail
      inventory: demo/inventory
    """


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    manifest = generate(root / "demo", ANCHOR)
    config = write_config(root, DEMO_CONFIG)
    return root, config, manifest


@pytest.fixture(scope="module")
def demo_run(demo):
    root, config, manifest = demo
    out = root / "report"
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--since", SINCE, "--until", UNTIL,
                                       "--out", str(out)])
    return result, out, manifest


def test_cli_run_writes_every_artifact(demo_run):
    result, out, _ = demo_run
    assert result.exit_code == 0, result.output
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"findings.json", "report.html", "report.pdf"} <= names
    assert {f"results/{c}.csv" for c in builtins().checks.names()} <= names
    assert not [p for p in out.iterdir() if p.name.startswith(".auditor-staging")]


def test_findings_json_matches_its_schema_and_the_contract(demo_run):
    _, out, manifest = demo_run
    doc = json.loads((out / "findings.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    assert doc["run"]["since"] == "2026-11-09T00:00:00Z" and doc["run"]["until"] == "2026-11-16T00:00:00Z"
    checks = {c["id"]: c for c in doc["checks"]}
    assert set(checks) == set(builtins().checks.names())
    assert all(c["status"] in ("pass", "fail") for c in checks.values()), [c["error"] for c in checks.values()]
    top = checks["top_rejected_sources"]
    assert {r["srcaddr"] for r in top["rows"][:2]} == {manifest.scanner_ip, manifest.bruteforce_ip}
    assert isinstance(top["rows"][0]["rejected_flows"], int)
    sev = {f["srcaddr"]: f["severity"] for f in top["findings"]}
    assert sev[manifest.scanner_ip] == "medium" and sev[manifest.bruteforce_ip] == "low"
    exposed = checks["exposed_well_known_ports"]
    high = [f for f in exposed["findings"] if f["severity"] == "high"]
    assert {(f["interface_id"], f["dstport"]) for f in high} >= {(manifest.exposed_eni, manifest.exposed_port)}
    unused = checks["unused_security_groups"]
    assert manifest.unused_group in {r["group_id"] for r in unused["rows"]}
    assert not set(manifest.default_groups) & {r["group_id"] for r in unused["rows"]}
    changes = checks["sg_changes"]
    assert any(f["severity"] in ("high", "critical") for f in changes["findings"])
    # the chart's query is listed with the check's own, for the appendix (a window over 3 days: per day)
    (chart,) = [q for q in top["queries"] if q["name"] == "chart"]
    assert chart["engine"] == "local" and chart["rows"] > 0 and chart["params"]["bucket"] == "day"
    dq = doc["data_quality"]
    assert dq["files_read"] > 0 and dq["files_read"] <= dq["files_present"]
    assert sum(f["malformed"] for f in dq["files"]) > 0, "the demo data has dirty lines and they are counted"


def test_csv_holds_the_same_rows(demo_run):
    _, out, _ = demo_run
    doc = json.loads((out / "findings.json").read_text())
    for check in doc["checks"]:
        with open(out / "results" / f"{check['id']}.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == len(check["rows"])
        if rows:
            assert list(rows[0]) == check["columns"]
            first = check["rows"][0]
            for col, value in first.items():
                expected = "" if value is None else (json.dumps(value, separators=(",", ":"))
                                                     if isinstance(value, (list, dict)) else
                                                     ("true" if value is True else "false" if value is False else str(value)))
                assert rows[0][col] == expected, col


def test_pdf_parses_back_with_every_check(demo_run):
    _, out, _ = demo_run
    reader = PdfReader(out / "report.pdf")
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) >= 2
    for spec in builtins().checks:
        assert spec.title in text, spec.title


def test_each_input_file_is_read_once_whatever_the_number_of_checks(demo, tmp_path):
    root, config, manifest = demo
    loaded = load_config(config)
    window = TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc))
    reg = builtins()
    # A sixth check over the same tables must not add a read: register a copy of top_rejected_sources.
    with count_opens(root / "demo") as opens:
        outcome = run_audit(loaded, window, out_dir=tmp_path / "a", clock=lambda: datetime(2026, 11, 20, tzinfo=timezone.utc),
                            registries=reg, formats=("json",))
    inputs = {str(p) for p in manifest.flowlog_files + manifest.cloudtrail_files + manifest.inventory_files}
    opened = {p: n for p, n in opens.items() if p in inputs}
    assert opened, "the run read the demo inputs"
    assert max(opened.values()) == 1, {p: n for p, n in opened.items() if n > 1}
    assert outcome.record.data_quality.files_read < outcome.record.data_quality.files_present, "pruning skipped files"
    assert all(not str(p).count("CloudTrail-Digest") for p in opened)


def _with_check(tmp_path, check_id, needs, key, files):
    """The built-in registries plus one check written to tmp_path: its check.yaml and query files."""
    folder = tmp_path / "checks" / check_id
    folder.mkdir(parents=True)
    (folder / "check.yaml").write_text(
        f"id: {check_id}\ntitle: {check_id}\nseverity: low\ndescription: d\nrisk: r\nremediation: m\n"
        f"needs: [{needs}]\nkey: [{key}]\nfinding_title: '{{{key}}}'\n")
    for name, text in files.items():
        (folder / name).write_text(text)
    reg = builtins()
    reg.checks.register(check_id, load_check_dir(folder))
    return reg


def _demo_run(config, out, reg, formats):
    window = TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc))
    return run_audit(load_config(config), window, out_dir=out, registries=reg, formats=formats)


def test_a_failing_check_is_an_error_and_the_rest_still_run(demo, tmp_path):
    root, config, _ = demo
    reg = _with_check(tmp_path, "broken_check", "flow_logs", "srcaddr",
                      {"query.sql": "SELECT srcaddr, no_such_column FROM flow_logs WHERE start >= :since_s"})
    outcome = _demo_run(config, tmp_path / "out", reg, ("json", "html"))
    by_id = {c.check_id: c for c in outcome.record.checks}
    assert by_id["broken_check"].status is Status.ERROR
    assert "no_such_column" in by_id["broken_check"].error
    assert all(c.status in (Status.PASS, Status.FAIL) for k, c in by_id.items() if k != "broken_check")
    html = (tmp_path / "out" / "report.html").read_text()
    assert "broken_check" in html and "no_such_column" in html


def test_check_error_gives_exit_code_3(tmp_path):
    write_flow_log(tmp_path / "flows", [record(action="REJECT")])
    config = write_config(tmp_path, """
        sources: {flow_logs: flows, inventory: missing-inventory}
        checks:
          top_rejected_sources: {}
        """)
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--since", SINCE, "--until", UNTIL,
                                       "--out", str(tmp_path / "out")])
    # a missing inventory folder is an input error (exit 2), named clearly
    assert result.exit_code == 2 and "missing-inventory" in result.output


def test_fail_on_gives_exit_code_1(demo, tmp_path):
    _, config, _ = demo
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--since", SINCE, "--until", UNTIL,
                                       "--out", str(tmp_path / "o"), "--fail-on", "high"])
    assert result.exit_code == 1, result.output


def test_out_dir_not_empty_is_refused_without_force(tmp_path):
    write_flow_log(tmp_path / "flows", [record(action="REJECT")])
    config = write_config(tmp_path, "sources: {flow_logs: flows}\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    args = ["run", "--config", str(config), "--since", SINCE, "--until", UNTIL, "--out", str(out)]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and "--force" in refused.output
    assert not (out / "findings.json").exists()
    forced = CliRunner().invoke(main, args + ["--force"])
    assert forced.exit_code == 0, forced.output
    assert (out / "findings.json").exists() and (out / "keep.txt").exists()


def test_default_out_dir_is_reports_date_run_id(tmp_path):
    write_flow_log(tmp_path / "flows", [record(action="REJECT")])
    config = write_config(tmp_path, "sources: {flow_logs: flows}\noutput_dir: reports\n")
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--since", SINCE, "--until", UNTIL])
    assert result.exit_code == 0, result.output
    (folder,) = list((tmp_path / "reports").iterdir())
    assert folder.name.startswith(datetime.now(timezone.utc).strftime("%Y-%m-%d") + "-")
    assert (folder / "findings.json").exists()


@pytest.mark.parametrize("args", [["--since", "2026-11-10", "--until", "2026-11-10"], ["--since", "last tuesday"]])
def test_bad_windows_are_usage_errors(tmp_path, args):
    config = write_config(tmp_path, "sources: {}\n")
    result = CliRunner().invoke(main, ["run", "--config", str(config), *args])
    assert result.exit_code == 2


def test_config_error_exit_code_and_message(tmp_path):
    config = write_config(tmp_path, "sources: {}\nengnie: local\n")
    result = CliRunner().invoke(main, ["run", "--config", str(config)])
    assert result.exit_code == 2
    assert f"{config}:2:1: unknown key 'engnie' (did you mean 'engine'?)" in result.output.replace("\n", "")


def test_a_failed_artifact_keeps_the_others_and_leaves_no_partial_file(tmp_path, monkeypatch):
    import auditor.render.pdf as pdf

    def boom(*a, **k):
        raise RuntimeError("printer on fire")

    monkeypatch.setattr(pdf, "render_pdf", boom)
    write_flow_log(tmp_path / "flows", [record(action="REJECT")])
    config = write_config(tmp_path, "sources: {flow_logs: flows}\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--since", SINCE, "--until", UNTIL,
                                       "--out", str(out)])
    assert result.exit_code == 5 and "printer on fire" in result.output
    assert (out / "findings.json").exists() and (out / "report.html").exists()
    assert not (out / "report.pdf").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".auditor-staging")]


def test_script_in_flow_log_and_user_agent_comes_out_escaped(tmp_path):
    payload = "<script>alert(1)</script>"
    write_flow_log(tmp_path / "flows", [record(srcaddr=payload, action="REJECT") for _ in range(3)] + [record()])
    write_trail(tmp_path / "trail", [event("AuthorizeSecurityGroupIngress", ingress("sg-1", "tcp", 22, 22, "0.0.0.0/0"),
                                           user_agent=payload)])
    config = write_config(tmp_path, """
        sources: {flow_logs: flows, cloudtrail: trail}
        checks:
          top_rejected_sources: {min_flows: 1}
          sg_changes: {}
        """)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--since", SINCE, "--until", UNTIL,
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    assert payload not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    doc = json.loads((out / "findings.json").read_text())
    checks = {c["id"]: c for c in doc["checks"]}
    # A srcaddr that is no IP address never reaches a check: the records are counted invalid.
    assert checks["top_rejected_sources"]["rows"] == []
    assert sum(f["invalid"] for f in doc["data_quality"]["files"]) == 3
    assert checks["sg_changes"]["rows"][0]["user_agent"] == payload


def test_validate_plans_without_running(demo):
    _, config, _ = demo
    result = CliRunner().invoke(main, ["validate", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "unused_sg_rules" in result.output


def test_checks_lists_every_check_with_severity_and_engines():
    result = CliRunner().invoke(main, ["checks"])
    assert result.exit_code == 0
    for spec in builtins().checks:
        assert spec.id in result.output
    assert "local" in result.output


@pytest.mark.parametrize(("codes", "expected"), [
    (set(), 0), ({1}, 1), ({1, 3}, 3), ({4, 1}, 4), ({3, 4}, 3), ({5, 3}, 5), ({2, 5, 3, 4, 1}, 2)])
def test_exit_code_precedence(codes, expected):
    assert exit_code(codes) == expected


def test_a_checks_phase_one_rows_are_freed_before_the_next_check(demo, tmp_path):
    # Phase-1 tables can hold millions of rows: the next check must not run beside them, and a check can never
    # read another check's rows. A report-only check planned after the others finds no query_result at all.
    root, config, _ = demo
    reg = _with_check(tmp_path, "zz_leftover_probe", "inventory", "n",
                      {"report.sql": "SELECT count(*) AS n FROM query_result"})
    outcome = _demo_run(config, tmp_path / "out", reg, ("json",))
    order = [c.check_id for c in outcome.record.checks]
    assert order.index("zz_leftover_probe") > order.index("unused_sg_rules"), order
    by_id = {c.check_id: c for c in outcome.record.checks}
    assert by_id["unused_sg_rules"].status in (Status.PASS, Status.FAIL)
    assert by_id["zz_leftover_probe"].status is Status.ERROR
    assert "query_result" in by_id["zz_leftover_probe"].error
