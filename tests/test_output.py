"""Writing a run's artifacts: CSV cells neutralised against formula injection (OWASP "CSV Injection")."""

from __future__ import annotations

import csv
import io

import pytest

from auditor.models import CheckResult, Severity, Status
from auditor.output import csv_text


@pytest.mark.parametrize("value, written", [
    ("=HYPERLINK(\"http://x/\",\"y\")", "'=HYPERLINK(\"http://x/\",\"y\")"),
    ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(1,1)", "'@SUM(1,1)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("-1", "-1"),  # a number written as text is no formula
    ("arn:aws:iam::1:user/=x", "arn:aws:iam::1:user/=x"),
    ("sg-0123 web", "sg-0123 web"),
])
def test_a_text_cell_that_a_spreadsheet_would_run_gets_a_quote(value, written):
    check = CheckResult(check_id="c", title="c", status=Status.PASS, severity=Severity.LOW, columns=("text", "count"),
                        rows=({"text": value, "count": -3},))
    out = csv_text(check)
    (row,) = list(csv.DictReader(io.StringIO(out, newline="")))
    assert row["text"] == written
    # Every text cell is quoted; numbers, negative ones too, are written bare and stay numbers.
    assert out.split("\n")[1].endswith(",-3")
    assert out.split("\n")[1].startswith('"')
