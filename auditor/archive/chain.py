"""The per-suite hash chain: its head, kept outside the bundle folders, and retention checkpoints.

Each manifest carries ``previous``: the sequence, run ID and SHA-256 of the suite's previous manifest.
The head names the newest manifest (sequence and SHA-256). It lives outside the bundles, in
``<state_dir>/archive/<suite>/HEAD.json`` and, for S3, in ``<prefix><suite>/HEAD.json`` under Object Lock,
so deleting the newest runs shows as a head that points past the end of the archive.

Local retention pruning writes ``<suite>/checkpoints/<through>.json`` before it deletes anything: the
sequence, run ID and manifest SHA-256 of each pruned run, linked to the previous checkpoint. The state
head records the latest checkpoint's SHA-256, so a forged checkpoint cannot pass for pruning.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from auditor.archive.bundle import json_doc, sha256_hex
from auditor.archive.signing import SIG_SUFFIX, Signer, sig_bytes
from auditor.models import iso_z

HEAD = "HEAD.json"
HEAD_VERSION = 1
CHECKPOINT_VERSION = 1
CHECKPOINTS = "checkpoints"
RUNS = "runs"


@dataclass(frozen=True)
class Head:
    """A parsed chain head."""

    suite: str
    sequence: int
    run_id: str | None
    bundle: str | None
    manifest_sha256: str | None
    checkpoint: Mapping[str, Any] | None  # {"through": n, "sha256": ...} of the latest local checkpoint

    def link(self) -> dict[str, Any] | None:
        """The ``previous`` link a suite's next manifest carries."""
        if self.sequence < 1:
            return None
        return {"sequence": self.sequence, "run_id": self.run_id, "manifest_sha256": self.manifest_sha256}


def head_document(*, suite: str, sequence: int, run_id: str, bundle: str, manifest_sha256: str, updated_at: datetime,
                  checkpoint: Mapping[str, Any] | None, signer: Signer | None) -> dict[str, Any]:
    return {"head_version": HEAD_VERSION, "suite": suite, "sequence": sequence, "run_id": run_id,
            "bundle": f"{RUNS}/{bundle}", "manifest_sha256": manifest_sha256, "updated_at": iso_z(updated_at),
            "checkpoint": dict(checkpoint) if checkpoint else None,
            "signing": {"method": signer.method, "key_id": signer.key_id} if signer else {"method": "none"}}


def parse_head(data: bytes) -> Head:
    """Raises ValueError when ``data`` is not a head document."""
    try:
        doc = json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None
    if not isinstance(doc, dict) or doc.get("head_version") != HEAD_VERSION:
        raise ValueError(f"not a version {HEAD_VERSION} chain head")
    seq = doc.get("sequence")
    if not isinstance(seq, int) or seq < 0 or not isinstance(doc.get("suite"), str):
        raise ValueError("the head has no suite or sequence")
    bundle = doc.get("bundle")
    return Head(suite=doc["suite"], sequence=seq, run_id=doc.get("run_id"),
                bundle=bundle.split("/", 1)[-1] if isinstance(bundle, str) else None,
                manifest_sha256=doc.get("manifest_sha256"), checkpoint=doc.get("checkpoint"))


def checkpoint_document(*, suite: str, pruned: list[Mapping[str, Any]], previous: Mapping[str, Any] | None,
                        keep_runs: int, created_at: datetime, signer: Signer | None) -> dict[str, Any]:
    return {"checkpoint_version": CHECKPOINT_VERSION, "suite": suite,
            "through": max(int(p["sequence"]) for p in pruned), "pruned": [dict(p) for p in pruned],
            "previous_checkpoint": dict(previous) if previous else None, "keep_runs": keep_runs,
            "created_at": iso_z(created_at),
            "signing": {"method": signer.method, "key_id": signer.key_id} if signer else {"method": "none"}}


def checkpoint_name(through: int) -> str:
    return f"{CHECKPOINTS}/{through:06d}.json"


def signed_files(name: str, doc: Mapping[str, Any], signer: Signer | None) -> dict[str, bytes]:
    """``name`` and, when signing, ``name.sig``: the files of one signed document."""
    data = json_doc(doc)
    files = {name: data}
    if signer is not None:
        files[name + SIG_SUFFIX] = sig_bytes(signer.sign(data))
    return files


def ref(data: bytes, through: int) -> dict[str, Any]:
    return {"through": through, "sha256": sha256_hex(data)}


class StateHeads:
    """The chain heads in the state directory: ``<state_dir>/archive/<suite>/HEAD.json``."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir) / "archive"

    def path(self, suite: str) -> Path:
        return self.dir / suite / HEAD

    def read(self, suite: str) -> tuple[bytes, bytes | None] | None:
        path = self.path(suite)
        if not path.is_file():
            return None
        sig = path.with_name(HEAD + SIG_SUFFIX)
        return path.read_bytes(), (sig.read_bytes() if sig.is_file() else None)

    def suites(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(p.parent.name for p in self.dir.glob(f"*/{HEAD}"))

    def write(self, suite: str, files: Mapping[str, bytes]) -> Path:
        """Replace the head (and its signature) atomically, fsynced."""
        folder = self.dir / suite
        folder.mkdir(parents=True, exist_ok=True)
        for name in sorted(files, key=lambda n: n == HEAD):  # the signature first, the head last
            write_atomic(folder / name, files[name])
        if HEAD + SIG_SUFFIX not in files:
            (folder / (HEAD + SIG_SUFFIX)).unlink(missing_ok=True)
        return folder / HEAD

    @contextlib.contextmanager
    def lock(self, suite: str) -> Iterator[None]:
        """Serialise archiving per suite: two runs must not both take the next sequence number."""
        folder = self.dir / suite
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
