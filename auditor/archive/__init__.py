"""The evidence archive: a verifiable, tamper-evident bundle per run, locally and in S3 with Object Lock.

Public API: :func:`archive_run` (auditor.archive.archiver) and :func:`verify_archive`
(auditor.archive.verify). They load lazily, because ``auditor.config`` imports this package's settings.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {"archive_run": "archiver", "ArchiveResult": "archiver", "verify_archive": "verify",
            "verify_bundle": "verify", "VerifyReport": "verify"}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(f"auditor.archive.{_EXPORTS[name]}"), name)
    raise AttributeError(name)
