"""The render stage: view model, HTML (escaping, sections, template overrides), PDF and its URL fetcher.

The helpers at the top (``spec``, ``failing``, ``record``, ``changed_record``) build run records by
hand; test_pdfa.py and test_exports.py reuse them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from markupsafe import escape
from pypdf import PdfReader

from auditor.checks import CheckSpec
from auditor.checks.library import CheckMeta, ControlMeta
from auditor.errors import RenderError
from auditor.models import (
    Change,
    CheckResult,
    DataQuality,
    FileQuality,
    Finding,
    QueryRun,
    QueryStats,
    ResolvedFinding,
    RunRecord,
    Severity,
    Status,
    Suppression,
    TimeWindow,
    TrendPoint,
)
from auditor.render import template_dirs
from auditor.render.html import render_html
from auditor.render.pdf import LocalFetcher, RefusedURL, make_url_fetcher, render_pdf
from auditor.render.view import build_view

SCRIPT = "<script>alert(1)</script>"
WINDOW = TimeWindow(datetime(2024, 5, 6, tzinfo=timezone.utc), datetime(2024, 5, 13, tzinfo=timezone.utc))
METADATA = "http://169.254.169.254/latest/meta-data/"


CONTROLS = (ControlMeta(framework="NIST SP 800-53", version="r5", control="SC-7", title="Boundary Protection"),
            ControlMeta(framework="PCI DSS", version="4.0", control="1.3.1",
                        title="Inbound traffic to the CDE is restricted"))


def spec(check_id: str, title: str) -> CheckSpec:
    """The metadata of a test check, in the one shape the library gives every check."""
    meta = CheckMeta(id=check_id, title=title, severity=Severity.HIGH, description=f"Description of {title}.",
                     risk=f"Risk of {title}.", remediation=f"Remediation for {title}. Then more detail.",
                     needs=("flow_logs",), key=("srcaddr", "dstport"), finding_title="{srcaddr}", compliance=CONTROLS,
                     chart="rejected_flows")
    return CheckSpec(meta=meta, folder=Path("."), queries={"query.sql": "SELECT 1"})


def flow_rows(n: int, *, tag: str = "r") -> tuple[dict, ...]:
    # row_tag is a marker the PDF text can be searched for: exactly one per row shown.
    return tuple({"row_tag": f"{tag}{i:03d}x", "srcaddr": f"198.51.100.{i % 250}", "dstport": 22,
                  "flows": i * 3, "accounts": ["111122223333", "444455556666"]} for i in range(n))


def failing(check_id: str, title: str, rows: tuple[dict, ...], *, findings: int = 2,
            severity: Severity = Severity.HIGH) -> CheckResult:
    found = tuple(Finding(check_id, severity, f"SSH accepted from {r['srcaddr']}",
                          {"srcaddr": r["srcaddr"], "dstport": r["dstport"]}, fingerprint=f"{check_id}-fp{i:02d}")
                  for i, r in enumerate(rows[:findings]))
    stats = QueryStats("local", f"SELECT * FROM flows -- {check_id}", duration_s=1.25, query_id="q-7",
                       bytes_scanned=2_500_000, params={"since": WINDOW.since})
    return CheckResult(check_id, title, Status.FAIL, severity, ("row_tag", "srcaddr", "dstport", "flows", "accounts"),
                       rows, found, queries=(QueryRun("query", "local", "SELECT 1", stats, len(rows)),))


def record(*checks: CheckResult, quality: DataQuality = DataQuality(), warnings: tuple[str, ...] = (),
           **extra) -> RunRecord:
    return RunRecord("run-42", WINDOW, "local", datetime(2024, 5, 13, 6, tzinfo=timezone.utc),
                     datetime(2024, 5, 13, 6, 2, tzinfo=timezone.utc), "0.1.0", checks, quality, warnings, **extra)


def specs_for(rec: RunRecord) -> dict[str, CheckSpec]:
    return {c.check_id: spec(c.check_id, c.title) for c in rec.checks}


def section(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return html[start: html.index("</section>", start)]


BASTION = Suppression("platform-team", "bastion host, reviewed quarterly", date(2024, 5, 20))


def changed_record() -> RunRecord:
    """A second-week run: new, persisting and suppressed findings, resolved and aged-out ones, a trend."""
    exposed = failing("exposed", "Exposed ports", flow_rows(4), findings=4)
    f0, f1, f2, f3 = exposed.findings
    findings = (replace(f0, change=Change.PERSISTING, account_id="111122223333", region="eu-west-1"),
                replace(f1, change=Change.NEW, severity=Severity.MEDIUM, title="Port 3389 newly open"),
                replace(f2, change=Change.PERSISTING, suppression=BASTION, title="Bastion on 22"),
                replace(f3, change=Change.NEW, title="Newest high finding"))
    exposed = replace(exposed, findings=findings,
                      resolved=(ResolvedFinding("dead" * 8, "Port 23 was open", Severity.HIGH, "resolved"),),
                      trend=tuple(TrendPoint(f"r{i}", WINDOW.until - timedelta(days=7 * (13 - i)), float(v))
                                  for i, v in enumerate([9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 3])))
    scans = failing("scans", "Top rejected sources", flow_rows(2, tag="s"), findings=1, severity=Severity.LOW)
    scans = replace(scans, findings=(replace(scans.findings[0], change=Change.NEW),),
                    resolved=(ResolvedFinding("beef" * 8, "203.0.113.7 was rejected 180 times", Severity.LOW,
                                              "aged out"),))
    return record(exposed, scans, previous_run_id="prev-7", accounts=("111122223333",),
                  regions=("eu-west-1", "us-east-1"))


# --- template folders ----------------------------------------------------------------------------

def test_template_dirs_put_the_user_folder_first(tmp_path):
    builtin = template_dirs()
    assert len(builtin) == 1 and (builtin[0] / "report.html").is_file() and (builtin[0] / "check.html").is_file()
    assert template_dirs(tmp_path) == (tmp_path.resolve(), builtin[0])
    with pytest.raises(RenderError, match="does not exist"):
        template_dirs(tmp_path / "missing")


def test_template_dirs_prefer_the_templates_inside_an_installed_package(tmp_path, monkeypatch):
    import auditor

    package = tmp_path / "site-packages" / "auditor"
    (package / "templates").mkdir(parents=True)
    monkeypatch.setattr(auditor, "__file__", str(package / "__init__.py"))
    assert template_dirs() == ((package / "templates").resolve(),)


# --- view model ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value, text, kind", [
    (None, "\u2014", "null"),
    (True, "yes", "text"),
    (False, "no", "text"),
    (3389, "3389", "num"),
    (2.0, "2", "num"),
    (3061730.5, "3061730.5", "num"),
    (1234567.891, "1234567.89", "num"),
    (0.000123456, "0.0001235", "num"),
    (datetime(2024, 5, 7, 3, 4, 5, tzinfo=timezone.utc), "2024-05-07 03:04:05Z", "text"),
    # Lists and objects read as text, never as JSON.
    (["22", "3389"], "22, 3389", "text"),
    ([], "none", "text"),
    ({"Effect": "Allow"}, "Effect Allow", "text"),
    ('[1,2,  3]', "1, 2, 3", "text"),
    ([{"direction": "ingress", "protocol": 6, "from_port": 22, "to_port": 22, "source": "0.0.0.0/0"}],
     "SSH (tcp/22) from 0.0.0.0/0", "text"),
    ("[not json", "[not json", "text"),
    ("", "", "text"),
    ("x" * 500, "x" * 239 + "\u2026", "text"),
])
def test_cells_are_formatted_once_in_the_view(value, text, kind):
    rec = record(CheckResult("c", "C", Status.FAIL, Severity.LOW, ("v",), ({"v": value},)))
    cell = build_view(rec, {}).checks[0].table.rows[0][0]
    assert (cell.text, cell.kind) == (text, kind)


def test_view_bounds_tables_names_the_attachment_and_keeps_column_order():
    rec = record(failing("many_rows", "Many rows", flow_rows(120)), failing("few_rows", "Few rows", flow_rows(3)))
    view = build_view(rec, specs_for(rec), table_limit=50, charts=False)
    many = next(c for c in view.checks if c.id == "many_rows")
    assert [c.name for c in many.table.columns] == ["row tag", "srcaddr", "dstport", "flows", "accounts"]
    assert [c.is_key for c in many.table.columns] == [False, True, True, False, False]
    assert len(many.table.rows) == 50 and many.table.total == 120 and many.table.truncated
    assert many.table.note == "showing 50 of 120 rows; all 120 are in results/many_rows.csv"
    assert many.table.rows[49][0].text == "r049x"
    assert many.table.rows[0][4].text == "111122223333, 444455556666"
    assert many.table.rows[0][4].kind == "text" and many.table.rows[1][3].kind == "num"
    few = next(c for c in view.checks if c.id == "few_rows")
    assert few.table.note == "" and len(few.table.rows) == 3
    assert sum(float(c.width.rstrip("%")) for c in few.table.columns) == pytest.approx(100, abs=0.1)
    # When the PDF embeds the CSV, the note names it as an attachment, and the appendix lists its digest.
    attached = build_view(rec, specs_for(rec), table_limit=50, charts=False,
                          attachments={"results/many_rows.csv": b"row_tag\nr000x\n"})
    assert next(c for c in attached.checks if c.id == "many_rows").table.note == (
        "showing 50 of 120 rows; all 120 are in the attachment results/many_rows.csv")
    assert [(a.name, a.size, a.sha256) for a in attached.attachments] == [
        ("results/many_rows.csv", "14 B", hashlib.sha256(b"row_tag\nr000x\n").hexdigest())]


def test_column_widths_keep_ids_and_times_whole_and_let_long_text_wrap():
    # A CloudTrail-like table: too wide even on its side, so it is dense, and its short atomic values
    # (times, account IDs, group IDs) get their whole width while ARNs, user agents and JSON share the rest.
    rows = tuple({"event_time": "2026-11-12T04:25:28Z", "actor": "arn:aws:sts::111122223333:assumed-role/" + "x" * 40,
                  "user_agent": "aws-cli/2.17.60 md/awscrt#0.21.2 ua/2.0 os/linux#6.8.0-1016-aws " * 3,
                  "rules": [{"direction": "ingress", "from_port": 22}], "account_id": "111122223333",
                  "group_id": "sg-0c44172a126845ea3", "note": "n " * 100, "more": "m " * 100, "extra": "e " * 100,
                  "why": "w " * 100, "who": "arn:aws:iam::111122223333:role/" + "y" * 40,
                  "interface_id": "eni-05e533b585d4529e5"}
                 for _ in range(3))
    table = build_view(record(CheckResult("wide", "Wide", Status.PASS, Severity.LOW, tuple(rows[0]), rows)), {},
                       charts=False).checks[0].table
    assert table.wide and table.dense
    width = {c.name.replace(" ", "_"): float(c.width.rstrip("%")) for c in table.columns}
    chars = int(165 * 7.5 / 6.5)  # the characters a dense landscape table holds
    assert width["event_time"] * chars / 100 >= len("2026-11-12T04:25:28Z") + 0.15 * 14 + 2 - 0.01
    assert width["account_id"] * chars / 100 >= 12 * 1.15 + 2 - 0.01
    assert width["group_id"] * chars / 100 >= len("sg-0c44172a126845ea3") + 0.15 * 12 + 2 - 0.01
    assert width["rules"] < width["event_time"] and width["user_agent"] > width["rules"]
    assert sum(width.values()) == pytest.approx(100, abs=0.1)
    narrow = build_view(record(failing("n", "N", flow_rows(2))), {}, charts=False).checks[0].table
    assert not narrow.wide and not narrow.dense


def test_view_orders_worst_first_and_totals_active_findings_by_severity():
    medium = failing("medium_one", "Medium one", flow_rows(4), findings=3, severity=Severity.MEDIUM)
    medium = replace(medium, findings=medium.findings[:2] + (replace(medium.findings[2], suppression=BASTION),))
    rec = record(
        CheckResult("quiet", "Quiet", Status.PASS, Severity.LOW),
        medium,
        CheckResult("broken", "Broken", Status.ERROR, Severity.HIGH, error="boom"),
        failing("critical_one", "Critical one", flow_rows(2), findings=1, severity=Severity.CRITICAL),
        CheckResult("absent", "Absent", Status.SKIPPED, Severity.INFO, notes=("no CloudTrail source",)),
    )
    view = build_view(rec, specs_for(rec), charts=False)
    assert [r.id for r in view.summary] == ["critical_one", "medium_one", "broken", "quiet", "absent"]
    totals = {t.severity.value: (t.findings, t.checks) for t in view.severity_totals}
    # The suppressed medium finding is listed but not counted.
    assert totals == {"critical": (1, 1), "high": (0, 0), "medium": (2, 1), "low": (0, 0), "info": (0, 0)}
    assert view.findings_text == "3 active findings (1 more suppressed)"
    assert view.status_text == "5 checks: 2 failed, 1 errored, 1 passed, 1 skipped"
    assert view.incomplete and view.worst_severity.value == "critical"
    assert view.window_text == "2024-05-06 00:00:00 UTC \u2264 t < 2024-05-13 00:00:00 UTC"
    assert view.window_length == "7 days"
    assert [(p.id, p.message) for p in view.skipped] == [("absent", "no CloudTrail source")]
    assert view.previous_run_text.startswith("none")


def test_view_shows_what_changed_suppressions_and_the_top_actions():
    view = build_view(changed_record(), specs_for(changed_record()), charts=False)
    assert view.change.text == ("Compared with run prev-7: 3 new, 1 persisting, 1 resolved, 1 aged out. "
                                "1 finding is suppressed by exceptions.")
    assert (view.change.new, view.change.persisting, view.change.resolved, view.change.aged_out,
            view.change.suppressed) == (3, 1, 1, 1, 1)
    assert view.accounts_text == "111122223333" and view.regions_text == "eu-west-1, us-east-1"
    assert {t.severity.value: t.new for t in view.severity_totals} == {
        "critical": 0, "high": 1, "medium": 1, "low": 1, "info": 0}
    exposed = next(c for c in view.checks if c.id == "exposed")
    # Worst first, and new before persisting within a severity; the suppressed one is apart.
    assert [(f.title, f.change.value) for f in exposed.findings] == [
        ("Newest high finding", "new"), ("SSH accepted from 198.51.100.0", "persisting"),
        ("Port 3389 newly open", "new")]
    assert exposed.change_text == "2 new, 1 persisting" and exposed.findings_total == 3
    [bastion] = exposed.suppressed
    assert (bastion.title, bastion.owner, bastion.reason, bastion.expires, bastion.expiry_note) == (
        "Bastion on 22", "platform-team", "bastion host, reviewed quarterly", "2024-05-20", "expires in 7 days")
    assert [(r.title, r.label.text) for r in exposed.resolved] == [("Port 23 was open", "Resolved")]
    assert exposed.resolved_heading == "Resolved since the previous run"
    scans = next(c for c in view.checks if c.id == "scans")
    assert scans.resolved_heading == "Aged out since the previous run"
    assert [(c.framework, c.version, c.control) for c in exposed.controls] == [
        ("NIST SP 800-53", "r5", "SC-7"), ("PCI DSS", "4.0", "1.3.1")]
    # The trend keeps the last 12 runs of 14, oldest first.
    assert exposed.trend.text == "3 this run, 12 the run before; 2 to 12 over the last 12 runs"
    assert [(a.title, a.change.value if a.change else None) for a in view.top_actions] == [
        ("Newest high finding", "new"), ("SSH accepted from 198.51.100.0", "persisting"),
        ("Port 3389 newly open", "new"), ("SSH accepted from 198.51.100.0", "new")]
    assert view.top_actions[0].step == "Remediation for Exposed ports."
    assert view.top_actions[0].where == "" and view.top_actions[1].where == "111122223333 / eu-west-1"


def test_view_data_quality_puts_malformed_files_first_and_totals_every_file():
    files = tuple(FileQuality(f"s3://b/AWSLogs/1/vpcflowlogs/f{i:02d}.log.gz", records=100 + i, headers=1,
                              malformed=(7 if i == 30 else 0), duplicates=i % 2) for i in range(40))
    quality = DataQuality(files, files_read=40, files_present=41, notes=("12 records had no direction",))
    view = build_view(record(quality=quality), {}, table_limit=10)
    q = view.quality
    assert q.path_prefix == "s3://b/AWSLogs/1/vpcflowlogs/"
    assert q.files[0].path == "f30.log.gz" and q.files[0].has_malformed
    # Only files with something skipped are listed (21 of 40: 20 with duplicates, 1 malformed), worst first.
    assert len(q.files) == 10 and q.files_total == 40
    assert q.note == ("showing 10 of the 21 files with skipped lines, worst first; 19 files with nothing skipped "
                      "are not listed; every file is in findings.json")
    assert all(sum(int(c.text) for c in f.counts[3:]) for f in q.files)
    assert [c.text for c in q.totals] == [f"{sum(100 + i for i in range(40)):,}", "0", "40", "0", "7", "0", "20"]
    assert q.files_text == "Read 40 of 41 files present."
    assert any("7 malformed lines in 1 file" in w for w in view.warnings)
    assert dict(view.coverage)["Files"] == "40 read of 41 present"


# --- HTML ----------------------------------------------------------------------------------------

def test_html_escapes_attacker_controlled_values():
    rows = ({"row_tag": "r000x", "srcaddr": SCRIPT, "dstport": 22, "flows": 1,
             "accounts": [SCRIPT]},) + flow_rows(2)
    check = failing("evil", "Evil rows", rows)
    finding = Finding("evil", Severity.HIGH, f"User agent {SCRIPT}", {"userAgent": SCRIPT})
    check = CheckResult(check.check_id, check.title, check.status, check.severity, check.columns, check.rows,
                        (finding,), error=None, notes=(f"note {SCRIPT}",))
    rec = record(check, warnings=(f"warning {SCRIPT}",))
    html = render_html(build_view(rec, specs_for(rec), charts=False), dirs=template_dirs())
    assert _without_our_script(html).lower().count("<script") == 0
    escaped = str(escape(SCRIPT))
    assert html.count(escaped) >= 5  # row cell, list cell, finding title, finding key, note, warning
    assert f"User agent {escaped}" in html


def _without_our_script(html: str) -> str:
    """The report less its own inline script (templates/_script.html), which must be there exactly once."""
    ours = re.findall(r"<script>\n\(function \(\) \{.*?</script>", html, re.S)
    assert len(ours) == 1
    return html.replace(ours[0], "")


def test_charts_are_embedded_as_data_uris_and_a_script_in_a_source_address_stays_text():
    rows = ({"srcaddr": SCRIPT, "dstport": 22, "flows": 9, "row_tag": "e", "accounts": []},) + flow_rows(3)
    chart = tuple({"bucket": f"2024-05-0{6 + d}T00:00:00Z", "srcaddr": src, "flows": 10 + d}
                  for d in range(3) for src in (SCRIPT, "198.51.100.7"))
    check = replace(failing("scans", "Scans", rows), chart=chart,
                    trend=(TrendPoint("a", WINDOW.since, 1.0), TrendPoint("b", WINDOW.until, 4.0)))
    rec = record(check)
    html = render_html(build_view(rec, specs_for(rec)), dirs=template_dirs())
    # images only, never inline markup; the one script is the report's own (sorting, filtering, folding)
    assert "<script" not in _without_our_script(html).lower() and "<svg" not in html
    uris = re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(uris) == 3  # the stacked chart, and the sparkline in the summary and in the section
    stacked = base64.b64decode(max(uris, key=len))
    root = ET.fromstring(stacked)
    assert not [el for el in root.iter() if el.tag.endswith("script")]
    texts = ["".join(el.itertext()) for el in root.iter() if el.tag.endswith("text")]
    assert SCRIPT in texts  # the address is drawn, as text
    assert b"&lt;script&gt;" in stacked and b"<script" not in stacked
    assert "Rejected flows per day, top 5 sources stacked" in section(html, "check-scans")


def test_errors_section_lists_errored_and_skipped_checks():
    rec = record(
        failing("fine", "Fine check", flow_rows(1)),
        CheckResult("broken", "Broken check", Status.ERROR, Severity.HIGH,
                    error="EngineError: column dstprt not found (query q-99)"),
        CheckResult("no_trail", "Needs CloudTrail", Status.SKIPPED, Severity.MEDIUM,
                    notes=("no CloudTrail source is configured",)),
    )
    html = render_html(build_view(rec, specs_for(rec), charts=False), dirs=template_dirs())
    errors = section(html, "errors")
    assert "Broken check" in errors and "EngineError: column dstprt not found (query q-99)" in errors
    assert "Needs CloudTrail" in errors and "no CloudTrail source is configured" in errors
    assert "Fine check" not in errors
    assert "This run is incomplete" in section(html, "summary")
    # The errored check still has its own section, with its message.
    assert "column dstprt not found" in section(html, "check-broken")


def test_check_section_shows_change_badges_suppressions_resolved_and_controls():
    rec = changed_record()
    html = render_html(build_view(rec, specs_for(rec), charts=False), dirs=template_dirs())
    exposed = section(html, "check-exposed")
    assert exposed.count('<span class="chg chg-new">New</span>') == 2
    assert exposed.count('<span class="chg chg-persisting">Persisting</span>') == 1
    assert "<h3>What it checks</h3>" in exposed and "<h3>Why it matters</h3>" in exposed
    suppressed = exposed[exposed.index("Suppressed (1)"): exposed.index("Resolved since")]
    assert "Bastion on 22" in suppressed and "platform-team" in suppressed and "expires in 7 days" in suppressed
    assert "Port 23 was open" in exposed and "deaddeaddead" in exposed
    assert "<strong>SC-7</strong>" in exposed and "Boundary Protection" in exposed
    assert "Aged out since the previous run (1)" in section(html, "check-scans")
    summary = section(html, "summary")
    assert "Compared with run prev-7: 3 new, 1 persisting, 1 resolved, 1 aged out." in summary
    assert summary.index("Newest high finding") < summary.index("Port 3389 newly open")
    cover = html[html.index('id="cover"'): html.index("</header>")]
    assert "111122223333" in cover and "eu-west-1, us-east-1" in cover and "run prev-7" in cover


def test_appendix_shows_each_query_as_run():
    rec = record(failing("q_check", "Query check", flow_rows(2)))
    appendix = section(render_html(build_view(rec, specs_for(rec), charts=False), dirs=template_dirs()), "queries")
    # One table row per query (check, query and engine, parameters, duration, bytes, rows, SHA-256), and the text
    # as run folded under it (printed only with report.appendix: full).
    text = "SELECT * FROM flows -- q_check"
    assert f'<pre class="sql">{text}</pre>' in appendix
    assert "since = 2024-05-06T00:00:00Z" in appendix
    table = appendix[appendix.index('class="data queries-table"'): appendix.index("</table>")]
    first_row = table[table.index("<tbody>"): table.index('class="sql-row')]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", first_row, re.S)
    plain = [" ".join(re.sub(r"<[^>]+>", " ", c.replace("<wbr>", "")).split()) for c in cells]
    assert plain[0] == "q_check" and plain[1] == "query, local q-7" and "since = 2024-05-06T00:00:00Z" in plain[2]
    assert plain[3:] == ["1.25 s", "2.50 MB", "2", hashlib.sha256(text.encode()).hexdigest()]
    assert 'class="sql-row"' in table and "sql-printed" not in table
    full = section(render_html(build_view(rec, specs_for(rec), charts=False, appendix="full"), dirs=template_dirs()),
                   "queries")
    assert "sql-printed" in full


def test_user_check_template_beats_the_builtin_one(tmp_path):
    (tmp_path / "check-custom.html").write_text(
        '<section id="{{ check.anchor }}"><p class="mine">CUSTOM {{ check.title }}</p></section>\n')
    rec = record(failing("custom", f"Custom {SCRIPT}", flow_rows(1)), failing("plain", "Plain", flow_rows(1)))
    html = render_html(build_view(rec, specs_for(rec), charts=False), dirs=template_dirs(tmp_path))
    assert html.count('<p class="mine">') == 1
    assert f'<p class="mine">CUSTOM Custom {escape(SCRIPT)}</p>' in html  # autoescape covers user templates too
    assert "Result rows" in section(html, "check-plain") and "Result rows" not in section(html, "check-custom")
    # A user's check.html beats ours when there is no check-<id>.html.
    (tmp_path / "check.html").write_text('<section id="{{ check.anchor }}">GENERIC {{ check.id }}</section>\n')
    html = render_html(build_view(rec, specs_for(rec), charts=False), dirs=template_dirs(tmp_path))
    assert "GENERIC plain" in html and "GENERIC custom" not in html and "CUSTOM Custom" in html


def test_undefined_names_in_a_template_are_an_error(tmp_path):
    (tmp_path / "check.html").write_text("{{ check.no_such_field }}")
    rec = record(failing("a", "A", flow_rows(1)))
    with pytest.raises(RenderError, match="no_such_field"):
        render_html(build_view(rec, specs_for(rec), charts=False), dirs=template_dirs(tmp_path))


# --- URL fetcher ---------------------------------------------------------------------------------

def test_url_fetcher_loads_only_files_inside_the_template_folders(tmp_path, caplog):
    builtin = template_dirs()[0]
    user = tmp_path / "templates"
    user.mkdir()
    (user / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>')
    (user / "passwd-link.css").symlink_to("/etc/passwd")
    fetcher = make_url_fetcher((user, builtin))

    css = fetcher((builtin / "print.css").as_uri())
    assert css.read() == (builtin / "print.css").read_bytes()
    assert css.content_type == "text/css"
    assert fetcher(user.as_uri() + "/logo.svg").content_type == "image/svg+xml"
    assert fetcher("data:text/css,p%7Bcolor:red%7D").read() == b"p{color:red}"  # inline: loads nothing
    # A relative asset missing from the user's folder is found in the built-in one, like a template.
    assert fetcher(user.as_uri() + "/print.css").read() == (builtin / "print.css").read_bytes()

    refused = [
        "file:///etc/passwd",
        METADATA,
        "https://example.com/x.css",
        "ftp://example.com/x.css",
        user.as_uri() + "/../../../../../../etc/passwd",
        user.as_uri() + "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        user.as_uri() + "/passwd-link.css",  # a symlink out of the folder
        "file://attacker.example/share/x.css",
        "gopher://example.com/",
    ]
    with caplog.at_level(logging.WARNING, logger="auditor.render.pdf"):
        for url in refused:
            with pytest.raises(RefusedURL):
                fetcher(url)
    assert [url for url, _ in fetcher.refused] == refused
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "file:///etc/passwd" in logged and METADATA in logged


@pytest.fixture(scope="module")
def report_pdf() -> tuple[bytes, LocalFetcher]:
    big = failing("big_check", "Admin ports open to the internet", flow_rows(120))
    big = replace(big, trend=(TrendPoint("a", WINDOW.since, 5.0), TrendPoint("b", WINDOW.until, 2.0)))
    rec = record(
        big,
        failing("small_check", "Small check", flow_rows(3, tag="s")),
        CheckResult("broken", "Broken check", Status.ERROR, Severity.HIGH, error="EngineError: boom"),
        accounts=("111122223333",), regions=("eu-west-1",),
    )
    dirs = template_dirs()
    fetcher = make_url_fetcher(dirs)
    html = render_html(build_view(rec, specs_for(rec), table_limit=50), dirs=dirs)
    return render_pdf(html, dirs=dirs, url_fetcher=fetcher), fetcher


def test_pdf_has_a_cover_the_summary_and_bounded_tables(report_pdf):
    pdf, fetcher = report_pdf
    # The built-in templates load nothing; the sparklines are data: URIs, which the fetcher serves itself.
    assert fetcher.fetched == [] and fetcher.refused == []
    reader = PdfReader(io.BytesIO(pdf))
    cover = " ".join(reader.pages[0].extract_text().split())
    assert "Network security audit" in cover and "111122223333" in cover and "eu-west-1" in cover
    assert "Engine local" in cover and re.search(r"Page 1 of \d+", cover)
    summary = " ".join(reader.pages[1].extract_text().split())
    assert "Executive summary" in summary and "Admin ports open to the internet" in summary
    text = "\n".join(page.extract_text() for page in reader.pages)
    # On paper a check keeps to its findings: its result rows are in the attached CSV and the HTML report.
    assert "All 120 result rows are in the attached results/big_check.csv" in " ".join(text.split())
    assert not re.findall(r"\br(\d{3})x\b", text)
    assert "EngineError: boom" in text


def test_pdf_render_refuses_remote_and_outside_resources(tmp_path, caplog):
    (tmp_path / "dot.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4">'
                                      '<rect width="4" height="4"/></svg>')
    (tmp_path / "check-probe.html").write_text(
        '<section id="{{ check.anchor }}"><h2>{{ check.title }}</h2>\n'
        '<img src="file:///etc/passwd" alt="passwd">\n'
        f'<img src="{METADATA}iam/" alt="metadata">\n'
        f'<div style="background-image: url({METADATA}bg)">styled</div>\n'
        '<img src="dot.svg" alt="local">\n</section>\n')
    rec = record(failing("probe", "Probe check", flow_rows(2)))
    dirs = template_dirs(tmp_path)
    html = render_html(build_view(rec, specs_for(rec), charts=False), dirs=dirs)
    # render_pdf's own fetcher: its refusals show in the log.
    with caplog.at_level(logging.WARNING, logger="auditor.render.pdf"):
        pdf = render_pdf(html, dirs=dirs)
    assert "refused to load file:///etc/passwd" in caplog.text and f"refused to load {METADATA}iam/" in caplog.text
    assert "Probe check" in "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    # An injected fetcher shows exactly what was asked for, refused and loaded.
    fetcher = make_url_fetcher(dirs)
    PdfReader(io.BytesIO(render_pdf(html, dirs=dirs, url_fetcher=fetcher)))
    refused = {url for url, _ in fetcher.refused}
    assert {"file:///etc/passwd", METADATA + "iam/", METADATA + "bg"} <= refused
    assert fetcher.fetched == [(tmp_path.resolve() / "dot.svg").as_uri()]


def test_a_chart_that_cannot_be_drawn_is_left_out_and_logged(monkeypatch, caplog):
    from auditor.render import charts

    def refuse(*args, **kwargs):
        raise RenderError("a chart contains a <script> element")

    monkeypatch.setattr(charts, "sparkline", refuse)
    check = replace(failing("c", "C", flow_rows(2)),
                    trend=(TrendPoint("a", WINDOW.since, 1.0), TrendPoint("b", WINDOW.until, 2.0)))
    with caplog.at_level(logging.WARNING, logger="auditor.render.view"):
        view = build_view(record(check), {})
    assert view.checks[0].trend.chart is None and view.checks[0].trend.text.startswith("2 this run")
    assert "could not draw a chart for findings" in caplog.text


def test_checks_without_data_lead_the_report_and_never_read_as_passed():
    blind = replace(failing("exposed", "Exposed ports", flow_rows(1), findings=1), status=Status.NO_DATA,
                    no_data_sources=("flow_logs",),
                    notes=("No data: the flow logs yielded no usable record in the window, so it cannot say pass; "
                           "the rows shown come from the other sources it reads.",))
    clean = CheckResult("quiet", "Quiet check", Status.PASS, Severity.LOW)
    rec = record(clean, blind)
    view = build_view(rec, specs_for(rec))
    assert [c.id for c in view.checks] == ["exposed", "quiet"]  # no data comes before what passed
    assert view.checks[0].status.text == "No data" and view.checks[0].actionable
    assert view.status_text == "2 checks: 1 had no data, 1 passed"
    assert dict(view.coverage)["Checks"] == "1 of 2 ran to completion; 1 had no data"
    assert view.no_data_text.startswith("1 check read no usable record in its window")
    assert [p.message for p in view.no_data] == [blind.notes[0]]
    html = render_html(view, dirs=template_dirs())
    cover, summary = section(html, "cover"), section(html, "summary")
    assert "No data:" in cover
    assert summary.index('id="no-data"') < summary.index("Checks")
