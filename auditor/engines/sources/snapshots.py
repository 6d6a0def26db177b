"""The inventory snapshots a run keeps in the state directory, so that later runs have several anchors for the
security-group timeline (docs/timeline.md): ``<state_dir>/inventory/<captured_at>/`` holding the snapshot's
``describe-*.json`` files as they were read (a live inventory's in ``<account>/<region>/`` folders), each with its
``captured_at``. The folder's name is the capture time, ``20261116T000000Z``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from auditor.models import TimeWindow

FOLDER = "inventory"
_STAMP = "%Y%m%dT%H%M%SZ"


def folder(state_dir: Path, captured_at: datetime) -> Path:
    return state_dir / FOLDER / captured_at.astimezone(timezone.utc).strftime(_STAMP)


def keep_files(state_dir: Path, root: Path, files: Iterable[str], captured_at: datetime) -> Path | None:
    """Copy a file inventory's files (paths under ``root``) into the state directory, unless a snapshot of that
    capture time is kept already. Returns the folder, or None when nothing was copied."""
    target = folder(state_dir, captured_at)
    if target.exists():
        return None
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    root = Path(root)
    for name in files:
        path = Path(name)
        if not path.is_file():
            continue
        relative = path.relative_to(root) if root.is_dir() and path.is_relative_to(root) else Path(path.name)
        (staging / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, staging / relative)
    if not staging.exists():
        return None
    staging.rename(target)  # a run killed half-way leaves a .partial folder, never a half snapshot
    return target


def stored(state_dir: Path) -> list[tuple[datetime, Path]]:
    """The snapshots kept, oldest first."""
    out = []
    base = state_dir / FOLDER
    if not base.is_dir():
        return out
    for path in base.iterdir():
        try:
            when = datetime.strptime(path.name, _STAMP).replace(tzinfo=timezone.utc)
        except ValueError:
            continue  # a .partial folder, or something else
        if path.is_dir():
            out.append((when, path))
    return sorted(out)


def nearest(state_dir: Path, window: TimeWindow) -> tuple[datetime, Path] | None:
    """The kept snapshot nearest the window: one inside it (the latest), else the first after it, else the last
    before it. Walking from a nearer anchor needs less CloudTrail and crosses fewer unknowns."""
    kept = stored(state_dir)
    inside = [s for s in kept if window.since <= s[0] <= window.until]
    if inside:
        return inside[-1]
    after = [s for s in kept if s[0] > window.until]
    if after:
        return after[0]
    return kept[-1] if kept else None


def distance(when: datetime, window: TimeWindow) -> float:
    """How far a capture time lies outside the window, in seconds (0 inside it)."""
    if when < window.since:
        return (window.since - when).total_seconds()
    if when > window.until:
        return (when - window.until).total_seconds()
    return 0.0
