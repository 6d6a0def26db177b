"""The render stage: view model, HTML (escaping, sections, template overrides), PDF and its URL fetcher."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from markupsafe import escape
from pypdf import PdfReader

from auditor.errors import RenderError
from auditor.models import (
    CheckResult,
    DataQuality,
    FileQuality,
    Finding,
    QueryRun,
    QueryStats,
    RunRecord,
    Severity,
    Status,
    TimeWindow,
)
from auditor.render import template_dirs
from auditor.render.html import render_html
from auditor.render.pdf import LocalFetcher, RefusedURL, make_url_fetcher, render_pdf
from auditor.render.view import build_view

SCRIPT = "<script>alert(1)</script>"
WINDOW = TimeWindow(datetime(2024, 5, 6, tzinfo=timezone.utc), datetime(2024, 5, 13, tzinfo=timezone.utc))
METADATA = "http://169.254.169.254/latest/meta-data/"


@dataclass(frozen=True)
class Spec:
    id: str
    title: str
    description: str
    risk: str
    remediation: str
    severity: Severity
    engines: tuple[str, ...] = ("local", "athena")
    key: tuple[str, ...] = ("srcaddr", "dstport")


def spec(check_id: str, title: str) -> Spec:
    return Spec(check_id, title, f"Description of {title}.", f"Risk of {title}.",
                f"Remediation for {title}.", Severity.HIGH)


def flow_rows(n: int, *, tag: str = "r") -> tuple[dict, ...]:
    # row_tag is a marker the PDF text can be searched for: exactly one per row shown.
    return tuple({"row_tag": f"{tag}{i:03d}x", "srcaddr": f"198.51.100.{i % 250}", "dstport": 22,
                  "flows": i * 3, "accounts": ["111122223333", "444455556666"]} for i in range(n))


def failing(check_id: str, title: str, rows: tuple[dict, ...], *, findings: int = 2,
            severity: Severity = Severity.HIGH) -> CheckResult:
    found = tuple(Finding(check_id, severity, f"SSH accepted from {r['srcaddr']}",
                          {"srcaddr": r["srcaddr"], "dstport": r["dstport"]}) for r in rows[:findings])
    stats = QueryStats("local", f"SELECT * FROM flows -- {check_id}", duration_s=1.25, query_id="q-7",
                       bytes_scanned=2_500_000, params={"since": WINDOW.since})
    return CheckResult(check_id, title, Status.FAIL, severity, ("row_tag", "srcaddr", "dstport", "flows", "accounts"),
                       rows, found, queries=(QueryRun("query", "local", "SELECT 1", stats, len(rows)),))


def record(*checks: CheckResult, quality: DataQuality = DataQuality(), warnings: tuple[str, ...] = ()) -> RunRecord:
    return RunRecord("run-42", WINDOW, "local", datetime(2024, 5, 13, 6, tzinfo=timezone.utc),
                     datetime(2024, 5, 13, 6, 2, tzinfo=timezone.utc), "0.1.0", checks, quality, warnings)


def specs_for(rec: RunRecord) -> dict[str, Spec]:
    return {c.check_id: spec(c.check_id, c.title) for c in rec.checks}


def section(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return html[start: html.index("</section>", start)]


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
    (True, "true", "text"),
    (3389, "3389", "num"),
    (2.0, "2", "num"),
    (3061730.5, "3061730.5", "num"),
    (1234567.891, "1234567.89", "num"),
    (0.000123456, "0.0001235", "num"),
    (datetime(2024, 5, 7, 3, 4, 5, tzinfo=timezone.utc), "2024-05-07 03:04:05Z", "text"),
    (["22", "3389"], '["22", "3389"]', "json"),
    ({"Effect": "Allow"}, '{"Effect": "Allow"}', "json"),
    ('[1,2,  3]', "[1, 2, 3]", "json"),
    ("[not json", "[not json", "text"),
    ("", "", "text"),
    ("x" * 500, "x" * 239 + "\u2026", "text"),
])
def test_cells_are_formatted_once_in_the_view(value, text, kind):
    rec = record(CheckResult("c", "C", Status.FAIL, Severity.LOW, ("v",), ({"v": value},)))
    cell = build_view(rec, {}).checks[0].table.rows[0][0]
    assert (cell.text, cell.kind) == (text, kind)



def test_view_bounds_tables_and_keeps_column_order():
    rec = record(failing("many_rows", "Many rows", flow_rows(120)), failing("few_rows", "Few rows", flow_rows(3)))
    view = build_view(rec, specs_for(rec), table_limit=50)
    many = next(c for c in view.checks if c.id == "many_rows")
    assert [c.name for c in many.table.columns] == ["row_tag", "srcaddr", "dstport", "flows", "accounts"]
    assert [c.is_key for c in many.table.columns] == [False, True, True, False, False]
    assert len(many.table.rows) == 50 and many.table.total == 120 and many.table.truncated
    assert many.table.note == "showing 50 of 120 rows; the full table is in results/many_rows.csv"
    assert many.table.rows[49][0].text == "r049x"
    assert many.table.rows[0][4].text == '["111122223333", "444455556666"]'
    assert many.table.rows[0][4].kind == "json" and many.table.rows[1][3].kind == "num"
    few = next(c for c in view.checks if c.id == "few_rows")
    assert few.table.note == "" and len(few.table.rows) == 3
    assert sum(float(c.width.rstrip("%")) for c in few.table.columns) == pytest.approx(100, abs=0.1)


def test_view_orders_worst_first_and_totals_by_severity():
    rec = record(
        CheckResult("quiet", "Quiet", Status.PASS, Severity.LOW),
        failing("medium_one", "Medium one", flow_rows(4), findings=3, severity=Severity.MEDIUM),
        CheckResult("broken", "Broken", Status.ERROR, Severity.HIGH, error="boom"),
        failing("critical_one", "Critical one", flow_rows(2), findings=1, severity=Severity.CRITICAL),
        CheckResult("absent", "Absent", Status.SKIPPED, Severity.INFO, notes=("no CloudTrail source",)),
    )
    view = build_view(rec, specs_for(rec))
    assert [r.id for r in view.summary] == ["critical_one", "medium_one", "broken", "quiet", "absent"]
    totals = {t.severity.value: (t.findings, t.checks) for t in view.severity_totals}
    assert totals == {"critical": (1, 1), "high": (0, 0), "medium": (3, 1), "low": (0, 0), "info": (0, 0)}
    assert view.findings_text == "4 findings"
    assert view.status_text == "5 checks: 2 failed, 1 errored, 1 passed, 1 skipped"
    assert view.incomplete and view.worst_severity.value == "critical"
    assert view.window_text == "2024-05-06 00:00:00 UTC \u2264 t < 2024-05-13 00:00:00 UTC"
    assert view.window_length == "7 days"
    assert [(p.id, p.message) for p in view.skipped] == [("absent", "no CloudTrail source")]


def test_view_data_quality_puts_malformed_files_first_and_totals_every_file():
    files = tuple(FileQuality(f"s3://b/AWSLogs/1/vpcflowlogs/f{i:02d}.log.gz", records=100 + i, headers=1,
                              malformed=(7 if i == 30 else 0), duplicates=i % 2) for i in range(40))
    quality = DataQuality(files, files_read=40, files_present=41, notes=("12 records had no direction",))
    view = build_view(record(quality=quality), {}, table_limit=10)
    q = view.quality
    assert q.path_prefix == "s3://b/AWSLogs/1/vpcflowlogs/"
    assert q.files[0].path == "f30.log.gz" and q.files[0].has_malformed
    assert len(q.files) == 10 and q.files_total == 40
    assert q.note.startswith("showing 10 of 40 files")
    assert [c.text for c in q.totals] == [f"{sum(100 + i for i in range(40)):,}", "0", "40", "0", "7", "20"]
    assert q.files_text == "Read 40 of 41 files present."
    assert any("7 malformed lines in 1 file" in w for w in view.warnings)


# --- HTML ----------------------------------------------------------------------------------------

def test_html_escapes_attacker_controlled_values():
    rows = ({"row_tag": "r000x", "srcaddr": SCRIPT, "dstport": 22, "flows": 1,
             "accounts": [SCRIPT]},) + flow_rows(2)
    check = failing("evil", "Evil rows", rows)
    finding = Finding("evil", Severity.HIGH, f"User agent {SCRIPT}", {"userAgent": SCRIPT})
    check = CheckResult(check.check_id, check.title, check.status, check.severity, check.columns, check.rows,
                        (finding,), error=None, notes=(f"note {SCRIPT}",))
    rec = record(check, warnings=(f"warning {SCRIPT}",))
    html = render_html(build_view(rec, specs_for(rec)), dirs=template_dirs())
    assert "<script" not in html.lower()
    escaped = str(escape(SCRIPT))
    assert html.count(escaped) >= 5  # row cell, list cell, finding title, finding key, note, warning
    assert f"User agent {escaped}" in html


def test_errors_section_lists_errored_and_skipped_checks():
    rec = record(
        failing("fine", "Fine check", flow_rows(1)),
        CheckResult("broken", "Broken check", Status.ERROR, Severity.HIGH,
                    error="EngineError: column dstprt not found (query q-99)"),
        CheckResult("no_trail", "Needs CloudTrail", Status.SKIPPED, Severity.MEDIUM,
                    notes=("no CloudTrail source is configured",)),
    )
    html = render_html(build_view(rec, specs_for(rec)), dirs=template_dirs())
    errors = section(html, "errors")
    assert "Broken check" in errors and "EngineError: column dstprt not found (query q-99)" in errors
    assert "Needs CloudTrail" in errors and "no CloudTrail source is configured" in errors
    assert "Fine check" not in errors
    assert "This run is incomplete" in section(html, "summary")
    # The errored check still has its own section, with its message.
    assert "column dstprt not found" in section(html, "check-broken")


def test_appendix_shows_each_query_as_run():
    rec = record(failing("q_check", "Query check", flow_rows(2)))
    appendix = section(render_html(build_view(rec, specs_for(rec)), dirs=template_dirs()), "queries")
    assert '<pre class="sql">SELECT * FROM flows -- q_check</pre>' in appendix
    assert "2.5 MB" in appendix and "q-7" in appendix and "1.25 s" in appendix
    assert "since = 2024-05-06T00:00:00Z" in appendix


def test_user_check_template_beats_the_builtin_one(tmp_path):
    (tmp_path / "check-custom.html").write_text(
        '<section id="{{ check.anchor }}"><p class="mine">CUSTOM {{ check.title }}</p></section>\n')
    rec = record(failing("custom", f"Custom {SCRIPT}", flow_rows(1)), failing("plain", "Plain", flow_rows(1)))
    html = render_html(build_view(rec, specs_for(rec)), dirs=template_dirs(tmp_path))
    assert html.count('<p class="mine">') == 1
    assert f'<p class="mine">CUSTOM Custom {escape(SCRIPT)}</p>' in html  # autoescape covers user templates too
    assert "Result rows" in section(html, "check-plain") and "Result rows" not in section(html, "check-custom")
    # A user's check.html beats ours when there is no check-<id>.html.
    (tmp_path / "check.html").write_text('<section id="{{ check.anchor }}">GENERIC {{ check.id }}</section>\n')
    html = render_html(build_view(rec, specs_for(rec)), dirs=template_dirs(tmp_path))
    assert "GENERIC plain" in html and "GENERIC custom" not in html and "CUSTOM Custom" in html


def test_undefined_names_in_a_template_are_an_error(tmp_path):
    (tmp_path / "check.html").write_text("{{ check.no_such_field }}")
    rec = record(failing("a", "A", flow_rows(1)))
    with pytest.raises(RenderError, match="no_such_field"):
        render_html(build_view(rec, specs_for(rec)), dirs=template_dirs(tmp_path))


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
    rec = record(
        failing("big_check", "Admin ports open to the internet", flow_rows(120)),
        failing("small_check", "Small check", flow_rows(3, tag="s")),
        CheckResult("broken", "Broken check", Status.ERROR, Severity.HIGH, error="EngineError: boom"),
    )
    dirs = template_dirs()
    fetcher = make_url_fetcher(dirs)
    html = render_html(build_view(rec, specs_for(rec), table_limit=50), dirs=dirs)
    return render_pdf(html, dirs=dirs, url_fetcher=fetcher), fetcher


def test_pdf_has_the_summary_first_and_bounded_tables(report_pdf):
    pdf, fetcher = report_pdf
    assert fetcher.fetched == [] and fetcher.refused == []  # the built-in templates need no resource at all
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 1
    first = reader.pages[0].extract_text()
    assert "Network security audit" in first and "Admin ports open to the internet" in first
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "showing 50 of 120 rows; the full table is in results/big_check.csv" in " ".join(text.split())
    tags = set(re.findall(r"\br(\d{3})x\b", text))
    assert tags == {f"{i:03d}" for i in range(50)}
    assert set(re.findall(r"\bs(\d{3})x\b", text)) == {"000", "001", "002"}
    assert "EngineError: boom" in text
    assert re.search(r"Page 1 of \d+", first)


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
    html = render_html(build_view(rec, specs_for(rec)), dirs=dirs)
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
