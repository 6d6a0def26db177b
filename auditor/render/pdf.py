"""The report as PDF: WeasyPrint prints the report's HTML with its print CSS.

WeasyPrint fetches every URL the HTML names (stylesheets, images, fonts). A report is rendered on a
machine that may sit in a VPC with access to the instance metadata service, from templates a user
may have overridden, so the fetcher loads only files inside the template folders and nothing else.
"""

from __future__ import annotations

import logging
import mimetypes
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import NoReturn

from weasyprint import HTML, Attachment
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from auditor.clock import utcnow
from auditor.errors import RenderError
from auditor.models import utc

log = logging.getLogger(__name__)


class RefusedURL(ValueError):
    """WeasyPrint asked for a URL the report may not load. WeasyPrint logs it and skips the resource."""


class LocalFetcher(URLFetcher):
    """A WeasyPrint URL fetcher that reads only regular files inside ``dirs``.

    ``data:`` URLs are allowed because they load nothing: their content is already in the document.
    Everything else (http, https, ftp, file:// outside the folders, other hosts, other schemes) is
    refused, logged, and kept in ``refused`` as ``(url, reason)``.
    """

    def __init__(self, dirs: Sequence[Path]) -> None:
        super().__init__(allowed_protocols=("file", "data"), allow_redirects=False)
        self.roots = tuple(Path(d).resolve() for d in dirs)
        self.refused: list[tuple[str, str]] = []
        self.fetched: list[str] = []

    def fetch(self, url: str, headers: object = None) -> URLFetcherResponse:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme != "file":
            self._refuse(url, f"scheme {scheme or '(none)'!r} is not allowed; only files beside the templates load")
        if parts.netloc not in ("", "localhost"):
            self._refuse(url, f"file URL names host {parts.netloc!r}")
        path = self._resolve(Path(urllib.request.url2pathname(parts.path)))  # url2pathname also unquotes
        if path is None:
            self._refuse(url, "the file is not inside a template folder")
        self.fetched.append(url)
        mime, _ = mimetypes.guess_type(path.name)
        content_type = mime or "application/octet-stream"
        if content_type.startswith("text/") or content_type == "image/svg+xml":
            content_type += "; charset=utf-8"
        return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": content_type})

    def _resolve(self, asked: Path) -> Path | None:
        """The real file ``asked`` names, if it lies in a template folder.

        A relative URL resolves against the first folder (the base URL); like templates, an asset
        missing there is looked up in the next folders under the same relative name.
        """
        target = asked.resolve()  # follows symlinks and removes ".." before the containment test
        inside = [root for root in self.roots if target.is_relative_to(root)]
        if not inside:
            return None
        relative = target.relative_to(inside[0])
        for root in self.roots[self.roots.index(inside[0]):]:
            candidate = (root / relative).resolve()
            if candidate.is_relative_to(root) and candidate.is_file():
                return candidate
        return None

    def _refuse(self, url: str, reason: str) -> NoReturn:
        shown = url if len(url) <= 200 else url[:200] + "..."
        self.refused.append((url, reason))
        log.warning("report renderer refused to load %s: %s", shown, reason)
        raise RefusedURL(f"refused {shown}: {reason}")


def make_url_fetcher(dirs: Sequence[Path]) -> LocalFetcher:
    """A fetcher for WeasyPrint that loads nothing remote and nothing outside ``dirs``."""
    return LocalFetcher(dirs)


_FONTS: list[FontConfiguration] = []  # one per process, made on first use


def shared_font_config() -> FontConfiguration:
    """The process's font configuration, reused by every render.

    WeasyPrint otherwise builds a new one per document and looks up and loads the same three faces
    again: reusing it saves about 0.35 s of the demo report's 3 s in a warm process (the scheduler,
    the benchmark). It caches font lookups only; what a document loads still goes through its URL
    fetcher.
    """
    if not _FONTS:
        _FONTS.append(FontConfiguration())
    return _FONTS[0]


PDF_VARIANT = "pdf/a-3b"  # PDF/A-3 allows embedded files of any type: the evidence travels inside the report

def render_pdf(html: str, *, dirs: Sequence[Path], url_fetcher: LocalFetcher | None = None,
               attachments: Mapping[str, bytes] | None = None, attached_at: datetime | None = None,
               variant: str | None = PDF_VARIANT, font_config: FontConfiguration | None = None) -> bytes:
    """Print ``html`` to a PDF/A-3b document. Relative URLs resolve against the first template folder.

    ``attachments`` maps names (``findings.json``, ``results/<check>.csv``) to bytes; each is embedded
    as an associated file (``/AF``, relationship ``Data``, MIME type from its name) and comes back byte
    for byte.
    ``attached_at`` is their creation date in the PDF (default: now); pass the run's end time to make
    the same run give the same attachment dictionaries. ``font_config`` defaults to
    ``shared_font_config()``.
    """
    if not dirs:
        raise RenderError("no template folder was given")
    fetcher = url_fetcher if url_fetcher is not None else make_url_fetcher(dirs)
    base_url = Path(dirs[0]).resolve().as_uri() + "/"
    # WeasyPrint writes these dates with a "Z": hand it UTC wall-clock time, not local time.
    when = utc(attached_at or utcnow()).replace(tzinfo=None)
    files = [Attachment(string=bytes(data), name=name, description=_describe(name), created=when, modified=when,
                        relationship="Data", url_fetcher=fetcher)
             for name, data in (attachments or {}).items()]
    options: dict[str, object] = {"attachments": files, "finisher": _one_af_entry_per_file,
                                  "font_config": font_config or shared_font_config()}
    if variant:
        options["pdf_variant"] = variant
    try:
        pdf = HTML(string=html, base_url=base_url, url_fetcher=fetcher).write_pdf(**options)
    except Exception as exc:  # WeasyPrint raises many kinds; the CLI needs one
        raise RenderError(f"could not print the report to PDF: {exc}") from exc
    if pdf is None:
        raise RenderError("WeasyPrint returned no PDF")
    return pdf


def _one_af_entry_per_file(document: object, pdf: object) -> None:
    """WeasyPrint 70 lists each embedded file twice in the catalog's /AF array (once from the name
    tree, once from the file specification); PDF/A-3 wants each associated file once."""
    catalog = getattr(pdf, "catalog", None)
    if catalog is None or "AF" not in catalog:
        return
    unique = list(dict.fromkeys(catalog["AF"]))
    catalog["AF"].clear()
    catalog["AF"].extend(unique)


def _describe(name: str) -> str:
    if name.endswith(".json"):
        return "The run's findings, as findings.json (schema in auditor/schemas/findings.schema.json)"
    if name.endswith(".csv"):
        return f"Every result row of check {Path(name).stem}, as CSV"
    return name
