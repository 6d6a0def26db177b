"""Output formats: each turns a finished run into artifacts. Registered like engines and checks.

``json`` (findings.json) is always written; ``--format`` picks the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.checks import CheckSpec
from auditor.exports.asff import to_asff
from auditor.exports.ocsf import to_ocsf
from auditor.models import RunRecord
from auditor.output import (
    FINDINGS_FILE,
    QUERIES_FILE,
    RESULTS_DIR,
    Artifact,
    csv_text,
    findings_document,
    json_bytes,
    queries_text,
)
from auditor.render.html import render_html
from auditor.render.view import build_view

DEFAULT_FORMATS = ("html", "pdf", "json", "csv")
# The order artifacts are written in: smallest and most important first, so that on a full disk what fits is
# the evidence (findings.json, then the CSVs and the exports) and what is lost is the rendering. A format not
# named here is written last.
WRITE_ORDER = ("json", "csv", "ocsf", "asff", "html", "pdf")


@dataclass
class RenderContext:
    """What every format may use; the HTML is rendered once and shared by html and pdf."""

    record: RunRecord
    specs: Mapping[str, CheckSpec]
    template_dirs: tuple[Path, ...]
    table_limit: int
    engines: Mapping[str, str] = field(default_factory=dict)  # engine name -> query dialect
    appendix: str = "table"  # config.yaml's report.appendix: "full" prints every query's text
    _cache: dict[str, Any] = field(default_factory=dict)

    def queries_sql(self) -> bytes:
        """Every query as run, in one file: the evidence the printed appendix's SHA-256 digests point to."""
        if "sql" not in self._cache:
            self._cache["sql"] = queries_text(self.record).encode("utf-8")
        return self._cache["sql"]

    def attachments(self) -> dict[str, bytes]:
        """The evidence files the PDF embeds and the report lists with their digests."""
        return {FINDINGS_FILE: self.findings_json(), QUERIES_FILE: self.queries_sql(), **self.csvs()}

    def findings_json(self) -> bytes:
        if "json" not in self._cache:
            self._cache["json"] = json_bytes(findings_document(self.record))
        return self._cache["json"]

    def csvs(self) -> dict[str, bytes]:
        if "csv" not in self._cache:
            self._cache["csv"] = {f"{RESULTS_DIR}/{c.check_id}.csv": csv_text(c).encode("utf-8")
                                  for c in self.record.checks if c.columns}
        return self._cache["csv"]

    def html(self) -> str:
        if "html" not in self._cache:
            view = build_view(self.record, self.specs, table_limit=self.table_limit, engines=self.engines,
                              attachments=self.attachments(), appendix=self.appendix)
            self._cache["html"] = render_html(view, dirs=self.template_dirs)
        return self._cache["html"]


@dataclass(frozen=True)
class OutputFormat:
    name: str
    help: str
    artifacts: Callable[[RenderContext], list[Artifact]]


def _json(ctx: RenderContext) -> list[Artifact]:
    return [Artifact(FINDINGS_FILE, ctx.findings_json)]


def _csv(ctx: RenderContext) -> list[Artifact]:
    # queries.sql after the CSVs: on a full disk, the rows go before the query texts (the PDF also embeds them).
    return ([Artifact(name, lambda name=name: ctx.csvs()[name]) for name in ctx.csvs()]
            + [Artifact(QUERIES_FILE, ctx.queries_sql)])


def _html(ctx: RenderContext) -> list[Artifact]:
    return [Artifact("report.html", lambda: ctx.html().encode("utf-8"))]


def _pdf(ctx: RenderContext) -> list[Artifact]:
    def produce() -> bytes:
        # Imported here, not at the top: WeasyPrint costs start-up time that runs without a PDF avoid.
        from auditor.render.pdf import render_pdf
        # PDF/A-3b evidence: findings.json and every results CSV travel inside the PDF, byte for byte.
        return render_pdf(ctx.html(), dirs=ctx.template_dirs, attachments=ctx.attachments(),
                          attached_at=ctx.record.finished_at)
    return [Artifact("report.pdf", produce)]


def _ocsf(ctx: RenderContext) -> list[Artifact]:
    def produce() -> bytes:
        return json_bytes({"findings": to_ocsf(ctx.record, ctx.specs)})
    return [Artifact("findings.ocsf.json", produce)]


def _asff(ctx: RenderContext) -> list[Artifact]:
    def produce() -> bytes:
        account = ctx.record.accounts[0] if ctx.record.accounts else "000000000000"
        region = ctx.record.regions[0] if ctx.record.regions else "us-east-1"
        product = f"arn:aws:securityhub:{region}:{account}:product/{account}/default"
        return json_bytes({"Findings": to_asff(ctx.record, ctx.specs, product_arn=product,
                                               aws_account_id=account, region=region)})
    return [Artifact("findings.asff.json", produce)]


BUILTIN_FORMATS = (
    OutputFormat("json", "findings.json (always written)", _json),
    OutputFormat("csv", "results/<check>.csv, every row, and queries.sql, every query as run", _csv),
    OutputFormat("html", "report.html", _html),
    OutputFormat("pdf", "report.pdf (PDF/A-3b with findings.json and the CSVs attached)", _pdf),
    OutputFormat("ocsf", "findings.ocsf.json: OCSF 1.1 Detection Findings", _ocsf),
    OutputFormat("asff", "findings.asff.json: AWS Security Finding Format for BatchImportFindings", _asff),
)
