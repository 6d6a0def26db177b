"""Golden files of a fixed run (tests/support/fixed_run.py): the report HTML, and the mail's HTML and text. They
catch unintended changes to the layout and the words. Regenerate after a deliberate change with UPDATE_GOLDEN=1 and
review the diff."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from auditor.builtins import builtins
from auditor.config import EmailSettings
from auditor.deliver.email import build_message
from auditor.render import template_dirs
from auditor.render.html import render_html
from auditor.render.view import build_view
from tests.support.fixed_run import fixed_record

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
NOW = datetime(2026, 11, 17, 6, 5, tzinfo=timezone.utc)


def _view():
    record = fixed_record()
    specs = {c.check_id: builtins().checks.get(c.check_id) for c in record.checks}
    return record, build_view(record, specs, charts=False, generated_at=NOW)


def _mail() -> tuple[str, str]:
    record, view = _view()
    settings = EmailSettings(sender="auditor@example.com", smtp={"host": "localhost"})
    msg = build_message(record, view, settings=settings, suite="weekly", title="Weekly network audit",
                        recipients=["secops@example.com"], template_dirs=template_dirs(None), pdf=None,
                        location="s3://audit-archive/weekly/2026-11-17/", now=NOW).message
    return msg.get_body(("html",)).get_content(), msg.get_body(("plain",)).get_content()


def _outputs() -> dict[str, str]:
    html_mail, text_mail = _mail()
    return {"html/fixed_run.html": render_html(_view()[1], dirs=template_dirs(None)),
            "email/fixed_run.html": html_mail, "email/fixed_run.txt": text_mail}


@pytest.mark.parametrize("name", ["html/fixed_run.html", "email/fixed_run.html", "email/fixed_run.txt"])
def test_matches_golden(name):
    got = _outputs()[name]
    golden = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(got, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}; run with UPDATE_GOLDEN=1 and review it"
    assert got == golden.read_text(encoding="utf-8"), f"{name} changed; review the difference, then UPDATE_GOLDEN=1"
