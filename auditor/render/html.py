"""The report as HTML: one Jinja2 pass over the view model. The PDF is printed from this same HTML."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jinja2

from auditor.errors import RenderError
from auditor.render.view import ReportView

REPORT_TEMPLATE = "report.html"


def make_environment(dirs: Sequence[Path]) -> jinja2.Environment:
    """A Jinja2 environment over ``dirs`` (most specific first) with autoescape always on.

    Autoescape is not a per-template choice: every value in the report comes from logs an attacker
    can write to (user agents, ARNs, request parameters), and user override templates get the same
    protection as ours.
    """
    if not dirs:
        raise RenderError("no template folder was given")
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def check_template_names(check_id: str) -> list[str]:
    """Templates for one check's section, most specific first."""
    return [f"check-{check_id}.html", "check.html"]


def render_html(view: ReportView, *, dirs: Sequence[Path]) -> str:
    """Render the whole report. Each check section comes from ``check-<id>.html`` when a folder has it."""
    env = make_environment(dirs)
    try:
        # select_template walks the names in order through every folder, so a user's check-<id>.html
        # beats our check.html, and a user's check.html beats ours too.
        sections = {c.id: env.select_template(check_template_names(c.id)) for c in view.checks}
        return env.get_template(REPORT_TEMPLATE).render(report=view, check_templates=sections)
    except jinja2.TemplateError as exc:
        where = f"{exc.filename}:{exc.lineno}: " if isinstance(exc, jinja2.TemplateSyntaxError) else ""
        raise RenderError(f"could not render the report: {where}{exc}") from exc
