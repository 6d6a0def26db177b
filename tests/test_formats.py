"""Output formats wired end to end: the PDF carries findings.json and the CSVs byte for byte; OCSF/ASFF files."""

from __future__ import annotations

import json

from click.testing import CliRunner
from pypdf import PdfReader

from auditor.cli import main
from tests.support.flowdata import record, write_config, write_flow_log


def test_pdf_attachments_equal_the_written_files_and_exports_are_written(tmp_path):
    write_flow_log(tmp_path / "flows", [record(srcaddr="198.51.100.23", action="REJECT", dstport=p) for p in range(20, 40)])
    config = write_config(tmp_path, "sources: {flow_logs: flows}\nchecks:\n  top_rejected_sources: {min_flows: 5}\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--since", "2026-11-09", "--until", "2026-11-16",
                                       "--out", str(out), "--format", "pdf,csv,ocsf,asff"])
    assert result.exit_code == 0, result.output
    attachments = PdfReader(out / "report.pdf").attachments
    assert attachments["findings.json"][0] == (out / "findings.json").read_bytes()
    assert attachments["results/top_rejected_sources.csv"][0] == (out / "results" / "top_rejected_sources.csv").read_bytes()
    ocsf = json.loads((out / "findings.ocsf.json").read_text())["findings"]
    asff = json.loads((out / "findings.asff.json").read_text())["Findings"]
    assert len(ocsf) == len(asff) == 1
    assert not (out / "report.html").exists()


def test_unknown_format_is_a_usage_error_with_a_suggestion(tmp_path):
    config = write_config(tmp_path, "sources: {}\n")
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--format", "pdff"])
    assert result.exit_code == 2 and "did you mean 'pdf'" in result.output
