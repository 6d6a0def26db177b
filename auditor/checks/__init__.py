"""The built-in checks, one folder each (``check.yaml``, queries, an optional ``hook.py``), and the library that
loads them (:mod:`auditor.checks.library`)."""

from __future__ import annotations

from auditor.checks.library import (
    CheckMeta,
    CheckSpec,
    HookContext,
    load_builtin_checks,
    load_check_dir,
)

__all__ = ["CheckMeta", "CheckSpec", "HookContext", "load_builtin_checks", "load_check_dir"]
