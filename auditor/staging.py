"""Staging folders: hidden work folders that a run fills and then renames into place or removes.

A run that is killed (SIGKILL, a power cut, the out-of-memory killer) leaves its staging folder behind. The
next run removes such leftovers, but only when they are older than :data:`STALE_AFTER` and no process holds
them: each run holds an advisory lock (``flock(2)``) on its staging folder for as long as it uses it, and
the kernel drops that lock when the process dies, however it dies.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from datetime import timedelta
from pathlib import Path

STALE_AFTER = timedelta(hours=1)


class StagingLock:
    """An exclusive advisory lock on a folder, held until :meth:`release` (or the process ends)."""

    def __init__(self, folder: Path) -> None:
        self._fd: int | None = os.open(folder, os.O_RDONLY)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the lock
            self._fd = None


def remove_stale(parent: Path, prefix: str, *, older_than: timedelta = STALE_AFTER,
                 now: float | None = None) -> list[Path]:
    """Remove the folders in ``parent`` whose names start with ``prefix``, that were last changed more than
    ``older_than`` ago and that no process holds locked. Returns those removed; a folder that cannot be
    removed is left alone (the next run tries again)."""
    removed: list[Path] = []
    now = time.time() if now is None else now
    try:
        candidates = [p for p in parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    for folder in candidates:
        try:
            if not folder.is_dir() or folder.is_symlink() or now - folder.stat().st_mtime < older_than.total_seconds():
                continue
            fd = os.open(folder, os.O_RDONLY)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a running process holds it
            shutil.rmtree(folder, ignore_errors=True)
            if not folder.exists():
                removed.append(folder)
        finally:
            os.close(fd)
    return removed
