"""Findings in words (issue 19): the formatting layer's words, and a demo backfilled over four weeks and reported on
the fifth, whose every title, HTML page, PDF page and mail speaks in sentences, with trends and what changed."""

from __future__ import annotations

import io
import json
import re
from datetime import date, datetime, timedelta, timezone

import pytest
from pypdf import PdfReader

from auditor import formatting as fmt
from auditor.backfill import backfill, past_windows
from auditor.config import EmailSettings, load_config
from auditor.deliver.email import build_message
from auditor.demo import generate
from auditor.models import Change, InterfaceName, Names, TimeWindow
from auditor.pipeline import run_audit
from auditor.render import template_dirs
from auditor.render.view import build_view
from tests.support.flowdata import write_config

UTC = timezone.utc


@pytest.mark.parametrize("n, text", [(999, "999 B"), (1000, "1.00 KB"), (115_000, "115 KB"), (1_030_000, "1.03 MB"),
                                     (12_345_678, "12.3 MB"), (999_999, "1.00 MB"), (10**10, "10.0 GB")])
def test_sizes_keep_three_significant_digits(n, text):
    assert fmt.size(n) == text


@pytest.mark.parametrize("since, until, text", [
    (datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC), "9\u201315 Nov 2026, 7 days"),
    (datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC), "9 Nov\u20131 Dec 2026, 23 days"),
    (datetime(2026, 12, 29, tzinfo=UTC), datetime(2027, 1, 5, tzinfo=UTC), "29 Dec 2026\u20134 Jan 2027, 7 days"),
    (datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC), "9 Nov 2026, 1 day"),
    (datetime(2026, 11, 9, 6, tzinfo=UTC), datetime(2026, 11, 9, 18, tzinfo=UTC),
     "2026-11-09 06:00 to 2026-11-09 18:00 UTC (12 hours)"),
])
def test_a_half_open_window_is_named_by_its_last_included_day(since, until, text):
    assert fmt.window(since, until) == text


@pytest.mark.parametrize("args, text", [
    ((6, 22, 22), "SSH (tcp/22)"), ((6, 3306, 3306), "MySQL (tcp/3306)"), ((17, 53, 53), "DNS (udp/53)"),
    ((6, 8443, 8443), "tcp/8443"), ((6, 20, 21), "FTP (tcp/20-21)"), ((6, 1000, 2000), "tcp/1000-2000"),
    ((-1, -1, -1), "all traffic"), ((6, -1, -1), "all tcp ports"), ((1, -1, -1), "icmp"), ((6, 0, 65535), "all tcp ports"),
])
def test_ports_read_as_services_and_protocol_names(args, text):
    assert fmt.ports(*args) == text


def test_rules_actors_agents_and_names():
    assert fmt.rule({"direction": "ingress", "protocol": -1, "source": "sg-1"}, "sg-1") == "all traffic from its own group"
    assert fmt.rule({"direction": "egress", "protocol": 6, "from_port": 443, "to_port": 443, "source": "0.0.0.0/0"}) \
        == "HTTPS (tcp/443) to 0.0.0.0/0"
    assert fmt.rules([]) == "no rules"
    assert fmt.actor("arn:aws:sts::111122223333:assumed-role/AdminRole/alice@example.com") == "alice@example.com (AdminRole)"
    assert fmt.actor("arn:aws:iam::111122223333:user/bob") == "bob"
    assert fmt.actor("arn:aws:iam::111122223333:root") == "the root user of 111122223333"
    assert fmt.actor("cloudformation.amazonaws.com") == "cloudformation.amazonaws.com"
    assert fmt.agent("console.amazonaws.com") == "console"
    assert fmt.agent("aws-cli/2.17.60 md/awscrt#0.21.2 ua/2.0 os/linux") == "AWS CLI"
    assert fmt.agent("APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.70.0 "
                     "aws-sdk-go-v2/1.30.5") == "Terraform"
    assert fmt.agent("cloudformation.amazonaws.com") == "CloudFormation"
    assert fmt.agent("Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux") == "SDK (boto3)"
    names = Names({"eni-1": InterfaceName("web-1", "i-0abc"), "eni-2": InterfaceName("", "", "ELB app/www")},
                  {"sg-1": "web"})
    assert fmt.interface("eni-1", names) == "web-1 (i-0abc, eni-1)"
    assert fmt.interface("eni-2", names) == "ELB app/www (eni-2)"
    assert fmt.interface("eni-9", names) == "eni-9"
    assert fmt.group("sg-1", names) == "sg-1 (web)" and fmt.group("sg-9", names) == "sg-9"
    assert fmt.words(True) == "yes" and fmt.words([1, 2]) == "1, 2" and fmt.count(1, "flow") == "1 flow"


def test_old_placeholders_still_work_and_speak_words():
    assert fmt.sentence("{a} open: {b}; {c}", {"a": "x", "b": True, "c": ["p", "q"]}) == "x open: yes; p, q"
    assert fmt.template_variables("{{ a | service(b) }} {c}") == {"a", "b"}
    assert fmt.template_variables("{a} {c}") == {"a", "c"}


# --- the demo, backfilled and reported ----------------------------------------------------------------------

ANCHOR = date(2026, 12, 6)
CURRENT = TimeWindow(datetime(2026, 11, 29, tzinfo=UTC), datetime(2026, 12, 6, tzinfo=UTC))
NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
CONFIG = """
engine: local
sources:
  flow_logs: demo/flowlogs
  cloudtrail: demo/cloudtrail
  inventory: demo/inventory
checks:
  top_rejected_sources: {top_n: 20, min_flows: 100, scan_ports: 10}
  exposed_well_known_ports: {allowed_public_ports: [80, 443]}
  sg_changes: {}
  unused_security_groups: {}
  unused_sg_rules: {lookback: 14d}
"""
# What a person must never read: Python's booleans, protocol numbers before a port, a raw "-1 -1--1" rule, JSON.
VALUES = re.compile(r"\bTrue\b|\bFalse\b|(?<![\w./-])(?:6|17|-1)/-?\d+\b|-1 -1--1|\[\{|\{\"")


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    root = tmp_path_factory.mktemp("words")
    generate(root / "demo", ANCHOR, days=35)
    loaded = load_config(write_config(root, CONFIG))
    filled = backfill(loaded, CURRENT, 4, clock=lambda: NOW)
    outcome = run_audit(loaded, CURRENT, out_dir=root / "report", clock=lambda: NOW,
                        formats=("json", "csv", "html", "pdf"))
    return loaded, filled, outcome


def test_backfill_runs_the_past_windows_oldest_first_and_marks_them(reported, tmp_path):
    loaded, filled, outcome = reported
    assert [b.window for b in filled] == past_windows(CURRENT, 4)
    assert [b.window.until for b in filled] == [CURRENT.since - timedelta(days=7 * n) for n in (3, 2, 1, 0)]
    assert all(b.record is not None and b.record.backfilled for b in filled)
    assert not outcome.record.backfilled
    # Run again, it finds the windows in the history and leaves them alone.
    again = backfill(loaded, CURRENT, 4, clock=lambda: NOW)
    assert [b.record for b in again] == [None] * 4


def test_the_first_report_has_trends_and_what_changed(reported):
    _, filled, outcome = reported
    record = outcome.record
    assert record.previous_run_id == filled[-1].record.id
    assert record.previous_window == filled[-1].window
    findings = [f for c in record.checks for f in c.findings]
    escalated = [f for f in findings if f.change is Change.ESCALATED]
    assert escalated and all(f.previous_severity is not None and f.severity.rank > f.previous_severity.rank
                             for f in escalated)
    assert any(r.label == "resolved" for c in record.checks for r in c.resolved)
    assert any(r.label == "aged out" for c in record.checks for r in c.resolved)
    assert all(len(c.trend) == 5 for c in record.checks)
    doc = json.loads((outcome.out_dir / "findings.json").read_text())
    assert doc["run"]["previous_since"] == "2026-11-22T00:00:00Z" and doc["run"]["backfilled"] is False
    assert any(f["change"] == "escalated" and f["previous_severity"] for c in doc["checks"] for f in c["findings"])


def test_every_title_html_pdf_page_and_mail_speaks_in_words(reported):
    loaded, _, outcome = reported
    record = outcome.record
    titles = [f.title for c in record.checks for f in c.findings] + [r.title for c in record.checks for r in c.resolved]
    assert len({f.check_id for c in record.checks for f in c.findings}) == len(record.checks)  # every check fired
    for title in titles:
        assert not VALUES.search(title), title
        assert title[0].isupper() or title[0].isdigit() or "(" in title, title
    html = (outcome.out_dir / "report.html").read_text()
    text = re.sub(r"<(style|script)\b.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"<pre class=\"sql\">.*?</pre>", " ", text, flags=re.S)  # the SQL as run is evidence, not prose
    text = re.sub(r"<[^>]+>", " ", text)
    assert not VALUES.search(text), VALUES.search(text).group(0)
    reader = PdfReader(io.BytesIO((outcome.out_dir / "report.pdf").read_bytes()))
    # 10 pages for five checks (issue 19); 12 with the four checks of issues 20 and 21 and the timeline's queries
    assert len(reader.pages) <= 12
    pdf_text = "\n".join(p.extract_text() for p in reader.pages)
    assert not VALUES.search(pdf_text), VALUES.search(pdf_text).group(0)
    assert "Compared with the week of 2026-11-22 (22\u201328 Nov 2026)" in " ".join(pdf_text.split())
    assert "queries.sql" in reader.attachments
    view = build_view(record, {}, charts=False)
    settings = EmailSettings(sender="auditor@example.com", smtp={"host": "localhost"},
                             subject="{title}: {high} high, {new} new, {escalated} escalated ({window})")
    mail = build_message(record, view, settings=settings, suite="weekly", title="Weekly audit", recipients=["a@b.c"],
                         template_dirs=template_dirs(None), pdf=None).message
    assert mail["Subject"].startswith("Weekly audit: ") and "1 escalated (29 Nov\u20135 Dec 2026, 7 days)" in mail["Subject"]
    body = mail.get_body(("plain",)).get_content()
    assert "Compared with the week of 2026-11-22 (22\u201328 Nov 2026)" in body and "(run " in body
    assert "29 Nov\u20135 Dec 2026, 7 days" in body
    assert not VALUES.search(body), VALUES.search(body).group(0)
