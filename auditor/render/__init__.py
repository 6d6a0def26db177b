"""The render stage: RunRecord -> view model -> HTML (Jinja2) -> PDF (WeasyPrint, same HTML, print CSS).

There is one template tree. A user folder can override any template in it (``check-<id>.html`` beats
``check.html``, and ``report.html``, ``print.css`` or a partial can be replaced wholesale).
"""

from __future__ import annotations

from pathlib import Path

import auditor
from auditor.errors import RenderError


def template_dirs(user_dir: Path | None = None) -> tuple[Path, ...]:
    """Template folders, most specific first: the user's override folder, then the packaged templates.

    An installed wheel carries the top-level ``templates/`` as ``auditor/templates`` (pyproject's
    force-include); a source checkout or editable install uses the repository's ``templates/``.
    """
    package_dir = Path(auditor.__file__).resolve().parent
    packaged = package_dir / "templates"
    builtin = packaged if packaged.is_dir() else package_dir.parent / "templates"
    if not builtin.is_dir():
        raise RenderError(f"the report templates are missing: neither {packaged} nor {builtin} is a folder")
    if user_dir is None:
        return (builtin,)
    user = Path(user_dir).expanduser()
    if not user.is_dir():
        raise RenderError(f"template folder {user} does not exist or is not a folder")
    return (user.resolve(), builtin)


__all__ = ["template_dirs"]
