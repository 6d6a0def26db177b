"""The PDF as evidence: PDF/A-3b structure (XMP identification, sRGB OutputIntent, associated files)
with findings.json and the CSVs embedded byte for byte. No PDF/A validator runs offline, so this
checks the structure the standard requires, not full conformance."""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from pypdf import PdfReader

from auditor.output import csv_text, findings_document
from auditor.render import template_dirs
from auditor.render.html import render_html
from auditor.render.pdf import render_pdf
from auditor.render.view import build_view
from tests.render.test_render import SCRIPT, WINDOW, changed_record, specs_for

ATTACHED_AT = datetime(2024, 5, 13, 6, 2, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def evidence():
    rec = changed_record()
    chart = tuple({"bucket": (WINDOW.since + timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "srcaddr": src, "flows": 10 * (i + 1)}
                  for d in range(7) for i, src in enumerate(("203.0.113.45", "198.51.100.23", SCRIPT)))
    rec = replace(rec, checks=(rec.checks[0], replace(rec.checks[1], chart=chart)))
    # (The hand-made record keeps a datetime among its query parameters; the pipeline's are JSON values.)
    attachments = {"findings.json": json.dumps(findings_document(rec), default=str, indent=2).encode("utf-8")}
    for check in rec.checks:
        attachments[f"results/{check.check_id}.csv"] = csv_text(check).encode("utf-8")
    # Bytes no text pipeline should touch: a BOM, CRLF, NUL, invalid UTF-8 and non-ASCII.
    attachments["results/raw.csv"] = b"\xef\xbb\xbfa,b\r\n\x00\xff,caf\xc3\xa9\r\n"
    dirs = template_dirs()
    html = render_html(build_view(rec, specs_for(rec), attachments=attachments), dirs=dirs)
    pdf = render_pdf(html, dirs=dirs, attachments=attachments, attached_at=ATTACHED_AT)
    return pdf, attachments, rec


def test_attachments_come_back_byte_for_byte(evidence):
    pdf, attachments, rec = evidence
    reader = PdfReader(io.BytesIO(pdf))
    got = {name: data[0] for name, data in reader.attachments.items()}
    assert got == attachments
    assert json.loads(got["findings.json"])["run"]["id"] == rec.id


def test_the_catalog_has_xmp_output_intent_and_associated_files(evidence):
    pdf, attachments, _ = evidence
    assert pdf.startswith(b"%PDF-1.7")
    catalog = PdfReader(io.BytesIO(pdf)).trailer["/Root"]

    xmp = catalog["/Metadata"].get_object().get_data().decode("utf-8")
    assert re.search(r'pdfaid:part="3"|<pdfaid:part>3</pdfaid:part>', xmp)
    assert re.search(r'pdfaid:conformance="B"|<pdfaid:conformance>B</pdfaid:conformance>', xmp)
    assert "Network security audit" in xmp  # dc:title, from the HTML <title>

    [intent] = catalog["/OutputIntents"]
    intent = intent.get_object()
    assert intent["/S"] == "/GTS_PDFA1"
    profile = intent["/DestOutputProfile"].get_object()
    assert profile["/N"] == 3 and profile.get_data()[36:40] == b"acsp"  # an RGB ICC profile

    associated = [spec.get_object() for spec in catalog["/AF"]]
    assert sorted(str(s["/UF"]) for s in associated) == sorted(attachments)
    for spec in associated:
        assert spec["/AFRelationship"] == "/Data"
        stream = spec["/EF"]["/F"].get_object()
        data = attachments[str(spec["/UF"])]
        params = stream["/Params"]
        assert params["/Size"] == len(data)
        assert bytes.fromhex(str(params["/CheckSum"].original_bytes.hex())) == hashlib.md5(data).digest()
        assert params["/ModDate"] == "D:20240513060200Z"
        expected = "/application#2fjson" if str(spec["/UF"]).endswith(".json") else "/text#2fcsv"
        assert stream["/Subtype"] in (expected, expected.replace("#2f", "/"))


def test_the_pdf_lists_the_attachments_and_charts_are_searchable_text(evidence):
    pdf, attachments, _ = evidence
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    for name, data in attachments.items():
        assert name in text
        assert hashlib.sha256(data).hexdigest() in text.replace(" ", "")
    # The stacked chart's legend is drawn as text: a script tag in a source address is just words.
    assert "203.0.113.45" in text and "198.51.100.23" in text and "<script>alert(1)</script>" in text
