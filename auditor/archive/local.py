"""The local archive folder: ``<dir>/<suite>/runs/<bundle>/``, ``<dir>/<suite>/checkpoints/``, ``README.md``
and ``keys/``.

A bundle appears atomically: it is written into a hidden staging folder, fsynced, then renamed into
place. Its files and folders are made read-only, which stops accidents (not an administrator: that is
what the chain, the head and S3 Object Lock are for).
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path

from auditor.archive.chain import RUNS, write_atomic

_READ_ONLY_FILE = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_READ_ONLY_DIR = _READ_ONLY_FILE | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH


class LocalStore:
    """Read access to a local archive folder, for verify (hidden files and folders are passed over)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def describe(self, rel: str = "") -> str:
        return str(self.root / rel) if rel else str(self.root)

    def list(self) -> list[str]:
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if not name.startswith("."):
                    out.append((Path(dirpath) / name).relative_to(self.root).as_posix())
        return out

    def read(self, rel: str) -> bytes | None:
        try:
            return (self.root / rel).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None


class LocalTarget(LocalStore):
    """Write access to a local archive folder."""

    def write_bundle(self, suite: str, name: str, files: Mapping[str, bytes]) -> Path:
        runs = self.root / suite / RUNS
        runs.mkdir(parents=True, exist_ok=True)
        final = runs / name
        if final.exists():
            raise FileExistsError(f"{final} already exists")
        staging = runs / f".staging-{name}"
        if staging.exists():
            make_writable(staging)
            shutil.rmtree(staging)
        try:
            for rel, data in files.items():
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            _read_only(staging)
            os.replace(staging, final)
            _fsync_dir(runs)
        except BaseException:
            if staging.exists():
                make_writable(staging)
                shutil.rmtree(staging, ignore_errors=True)
            raise
        return final

    def write_file(self, rel: str, data: bytes) -> None:
        write_atomic(self.root / rel, data)

    def bundles(self, suite: str) -> list[str]:
        runs = self.root / suite / RUNS
        return sorted(p.name for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")) if runs.is_dir() else []

    def remove_bundle(self, suite: str, name: str) -> None:
        path = self.root / suite / RUNS / name
        make_writable(path)
        shutil.rmtree(path)


def _read_only(folder: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(folder, topdown=False):
        for name in filenames:
            os.chmod(Path(dirpath) / name, _READ_ONLY_FILE)
        os.chmod(dirpath, _READ_ONLY_DIR)


def make_writable(folder: Path) -> None:
    """Undo the read-only bits (before pruning, and in tests that tamper on purpose)."""
    os.chmod(folder, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames:
            os.chmod(Path(dirpath) / name, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        for name in filenames:
            os.chmod(Path(dirpath) / name, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
