"""Verifying an archive: recompute every hash, check the signatures, walk each suite's chain, compare the head.

Works on any store with ``list()`` (relative paths) and ``read(rel)`` (bytes, or None when absent): the local
folder and S3 alike. What it reports (each is a :class:`Problem`; any problem fails verification):

- ``altered``: a file whose SHA-256 is not the manifest's, or a manifest that contradicts its folder;
- ``missing``: a file, manifest, signature or checkpoint that should be there and is not;
- ``extra``: a file that no manifest lists;
- ``broken_link``: a run missing from the middle of a chain (and not pruned by a checkpoint), or a manifest
  whose ``previous`` hash is not its predecessor's;
- ``truncated``: the head (or a checkpoint) names runs newer than the last one in the archive;
- ``head_mismatch``: a head that disagrees with the archive (hash, newer runs, checkpoint), or an S3 head
  that went backwards;
- ``bad_signature``: a signature that does not match; ``unverifiable``: one that cannot be checked (no key);
- ``no_head``: no chain head to compare with, so removing the newest runs could not be detected;
- ``unreadable``: a manifest, head or checkpoint that is not valid JSON of a known version.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from auditor.archive.bundle import MANIFEST, MANIFEST_VERSION, sequence_of, sha256_hex
from auditor.archive.chain import (
    CHECKPOINT_VERSION,
    CHECKPOINTS,
    HEAD,
    RUNS,
    parse_head,
)
from auditor.archive.signing import SIG_SUFFIX, Keyring, load_ed25519_public
from auditor.models import iso_z

ROOT_DOCS = ("README.md",)
KEYS_DIR = "keys/"


def _loads(data: str | bytes) -> Any:
    """json.loads, with JSON nested deeper than the parser goes ([[[[...) taken as what it is: not readable
    JSON (a ValueError, which every caller reports as such), instead of a RecursionError."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None


@dataclass(frozen=True)
class Problem:
    kind: str
    where: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "where": self.where, "detail": self.detail}


@dataclass
class SuiteReport:
    suite: str
    runs: list[int] = field(default_factory=list)  # sequences present and checked
    pruned: list[int] = field(default_factory=list)  # sequences vouched for by checkpoints, no longer present
    head_sequence: int | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"suite": self.suite, "runs": self.runs, "pruned": self.pruned, "head_sequence": self.head_sequence,
                "problems": [p.to_json() for p in self.problems], "notes": self.notes}


@dataclass
class VerifyReport:
    location: str
    suites: list[SuiteReport] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # outside any suite
    notes: list[str] = field(default_factory=list)

    @property
    def all_problems(self) -> list[Problem]:
        return self.problems + [p for s in self.suites for p in s.problems]

    @property
    def ok(self) -> bool:
        return not self.all_problems

    def to_json(self) -> dict[str, Any]:
        return {"location": self.location, "ok": self.ok, "suites": [s.to_json() for s in self.suites],
                "problems": [p.to_json() for p in self.all_problems], "notes": self.notes}


@dataclass(frozen=True)
class HeadFile:
    """A chain head to compare with: its bytes, its signature's bytes, and where it came from."""

    data: bytes | None
    sig: bytes | None
    where: str
    checks_checkpoint: bool = True  # False for the state head compared with S3, which is never pruned


@dataclass(frozen=True)
class _Run:
    sequence: int
    manifest_sha256: str
    previous: Mapping[str, Any] | None
    where: str


def verify_archive(store: Any, *, keyring: Keyring, heads: Mapping[str, Sequence[HeadFile]] | None = None,
                   suites: Iterable[str] | None = None, require_head: bool = True) -> VerifyReport:
    """Verify every suite of the archive in ``store`` (or only ``suites``).

    ``heads`` are chain heads kept outside the archive (the state directory's), by suite; a ``HEAD.json``
    inside the store (S3's) is compared too. Without any head for a suite, ``require_head`` makes that a
    ``no_head`` problem.
    """
    report = VerifyReport(location=store.describe())
    paths = store.list()
    _load_archive_keys(store, paths, keyring, report)
    by_suite: dict[str, list[str]] = {}
    for rel in paths:
        top, _, rest = rel.partition("/")
        if rel in ROOT_DOCS or rel.startswith(KEYS_DIR):
            continue
        if rest and (rest.startswith(f"{RUNS}/") or rest.startswith(f"{CHECKPOINTS}/") or rest.startswith(HEAD)):
            by_suite.setdefault(top, []).append(rest)
        else:
            report.problems.append(Problem("extra", store.describe(rel), "not part of any suite's bundles"))
    heads = heads or {}
    wanted = set(suites) if suites is not None else set(by_suite) | set(heads)
    if suites is not None:
        report.problems = [p for p in report.problems if p.kind != "extra"]
    for suite in sorted(wanted):
        report.suites.append(_verify_suite(store, suite, by_suite.get(suite, []), list(heads.get(suite, ())),
                                           keyring, require_head))
    if not report.suites:
        report.notes.append("no suites found: the archive is empty")
    _lock_notes(store, paths, report)
    if keyring.used_untrusted:
        report.notes.append("signatures were checked with public keys read from the archive itself "
                            f"({', '.join(sorted(keyring.used_untrusted))}); pin a key you trust with --public-key")
    return report


def verify_bundle(store: Any, *, keyring: Keyring) -> VerifyReport:
    """Verify a single bundle folder (hashes and signature only: its chain and head are not checked)."""
    report = VerifyReport(location=store.describe())
    data = store.read(MANIFEST)
    suite = "?"
    if data is not None:
        try:
            suite = str(_loads(data).get("suite", "?"))
        except (ValueError, AttributeError):
            pass
    sr = SuiteReport(suite)
    run = _verify_bundle(store, "", store.list(), keyring, sr, suite=None)
    if run is not None:
        sr.runs.append(run.sequence)
    sr.notes.append("a single bundle: its place in the chain and the head were not checked")
    report.suites.append(sr)
    return report


# --- one suite ----------------------------------------------------------------------------------------

def _verify_suite(store: Any, suite: str, rels: list[str], heads: list[HeadFile], keyring: Keyring,
                  require_head: bool) -> SuiteReport:
    sr = SuiteReport(suite)
    bundles: dict[str, list[str]] = {}
    checkpoint_files: list[str] = []
    for rest in rels:
        if rest.startswith(f"{RUNS}/"):
            name, _, inner = rest[len(RUNS) + 1:].partition("/")
            if inner:
                bundles.setdefault(name, []).append(inner)
                continue
        elif rest.startswith(f"{CHECKPOINTS}/"):
            checkpoint_files.append(rest)
            continue
        elif rest in (HEAD, HEAD + SIG_SUFFIX):
            continue
        sr.problems.append(Problem("extra", store.describe(f"{suite}/{rest}"), "not part of any bundle"))
    if HEAD in rels:
        heads = heads + [HeadFile(store.read(f"{suite}/{HEAD}"), store.read(f"{suite}/{HEAD}{SIG_SUFFIX}"),
                                  store.describe(f"{suite}/{HEAD}"))]

    runs: dict[int, _Run] = {}
    for name in sorted(bundles):
        run = _verify_bundle(store, f"{suite}/{RUNS}/{name}/", bundles[name], keyring, sr, suite=suite)
        if run is None:
            continue
        if run.sequence in runs:
            sr.problems.append(Problem("extra", run.where, f"a second bundle with sequence {run.sequence} "
                                                           f"(also {runs[run.sequence].where})"))
            continue
        runs[run.sequence] = run
    pruned, latest_checkpoint = _checkpoints(store, suite, checkpoint_files, keyring, sr)

    head_seqs = []
    for head in heads:
        seq = _check_head(head, suite, runs, latest_checkpoint, keyring, sr)
        if seq is not None:
            head_seqs.append(seq)
    _head_history(store, suite, sr)
    if not head_seqs:
        if require_head and not heads:  # a head that failed its own checks is reported already
            sr.problems.append(Problem("no_head", suite, "no chain head to compare with (pass --config to use the "
                                                         "state directory's, or --head FILE): removing the newest runs "
                                                         "would go unnoticed"))
    else:
        sr.head_sequence = max(head_seqs)

    for seq, run in sorted(runs.items()):
        if seq in pruned and pruned[seq]["manifest_sha256"] != run.manifest_sha256:
            sr.problems.append(Problem("altered", run.where, f"run {seq}'s manifest hashes to {run.manifest_sha256}, "
                                                             f"the checkpoint recorded {pruned[seq]['manifest_sha256']}"))
        _check_link(run, runs, pruned, sr)
    _missing_runs(suite, store, runs, pruned, head_seqs, sr)
    sr.runs = sorted(runs)
    sr.pruned = sorted(s for s in pruned if s not in runs)
    return sr


def _check_link(run: _Run, runs: Mapping[int, _Run], pruned: Mapping[int, Mapping[str, Any]], sr: SuiteReport) -> None:
    seq, prev = run.sequence, run.previous
    if seq == 1:
        if prev is not None:
            sr.problems.append(Problem("broken_link", run.where, "run 1 links to a previous manifest"))
        return
    if prev is None:
        sr.problems.append(Problem("broken_link", run.where, f"run {seq} has no link to run {seq - 1}"))
        return
    if prev.get("sequence") != seq - 1:
        sr.problems.append(Problem("broken_link", run.where, f"run {seq} links to run {prev.get('sequence')}, "
                                                             f"not {seq - 1}"))
        return
    known = runs[seq - 1].manifest_sha256 if seq - 1 in runs else pruned.get(seq - 1, {}).get("manifest_sha256")
    if known is not None and prev.get("manifest_sha256") != known:
        sr.problems.append(Problem("broken_link", run.where,
                                   f"run {seq} links to a manifest hashing to {prev.get('manifest_sha256')}, but run "
                                   f"{seq - 1}'s hashes to {known}"))


def _missing_runs(suite: str, store: Any, runs: Mapping[int, _Run], pruned: Mapping[int, Any], head_seqs: list[int],
                  sr: SuiteReport) -> None:
    """Sequences 1..newest that are neither present nor pruned, grouped into ranges."""
    accounted = set(runs) | set(pruned)
    newest = max([*accounted, *head_seqs], default=0)
    last_present = max(accounted, default=0)
    missing = [s for s in range(1, newest + 1) if s not in accounted]
    for first, last in _ranges(missing):
        what = f"run {first}" if first == last else f"runs {first}..{last}"
        where = store.describe(f"{suite}/{RUNS}/")
        if last > last_present:
            sr.problems.append(Problem("truncated", where, f"the head names run {newest}, but the archive ends at run "
                                                           f"{last_present}: {what} missing"))
        else:
            sr.problems.append(Problem("broken_link", where, f"{what} missing (neither present nor pruned by a "
                                                             f"checkpoint): run {last + 1} links to a run that is gone"))


def _ranges(values: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for v in values:
        if out and out[-1][1] == v - 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


# --- bundles ------------------------------------------------------------------------------------------

def _verify_bundle(store: Any, prefix: str, inner: list[str], keyring: Keyring, sr: SuiteReport,
                   suite: str | None) -> _Run | None:
    where = store.describe(prefix)
    data = store.read(prefix + MANIFEST)
    if data is None:
        sr.problems.append(Problem("missing", store.describe(prefix + MANIFEST),
                                   f"no manifest: the {len(inner)} file(s) of this bundle cannot be checked"))
        return None
    try:
        manifest = _loads(data)
        if manifest.get("manifest_version") != MANIFEST_VERSION:
            raise ValueError(f"manifest_version {manifest.get('manifest_version')!r} is not {MANIFEST_VERSION}")
        seq = manifest["sequence"]
        listed = {f["path"]: f for f in manifest["files"]}
        if not isinstance(seq, int):
            raise ValueError("no sequence number")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        sr.problems.append(Problem("unreadable", store.describe(prefix + MANIFEST), f"not a manifest: {exc}"))
        return None
    name = prefix.rstrip("/").rsplit("/", 1)[-1]
    if suite is not None:
        if manifest.get("suite") != suite:
            sr.problems.append(Problem("altered", where, f"the manifest belongs to suite {manifest.get('suite')!r}"))
        if sequence_of(name) != seq:
            sr.problems.append(Problem("altered", where, f"the folder says run {sequence_of(name)}, the manifest {seq}"))
    for path, entry in sorted(listed.items()):
        content = store.read(prefix + path)
        if content is None:
            sr.problems.append(Problem("missing", store.describe(prefix + path), "listed in the manifest"))
        elif sha256_hex(content) != entry.get("sha256"):
            sr.problems.append(Problem("altered", store.describe(prefix + path),
                                       f"sha256 {sha256_hex(content)} ({len(content)} bytes), the manifest says "
                                       f"{entry.get('sha256')} ({entry.get('size')} bytes)"))
    signing = manifest.get("signing") or {}
    own = {MANIFEST} | ({MANIFEST + SIG_SUFFIX} if signing.get("method", "none") != "none" else set())
    for extra in sorted(set(inner) - set(listed) - own):
        sr.problems.append(Problem("extra", store.describe(prefix + extra), "not listed in the manifest"))
    _check_signature(data, signing, keyring, sr, where=store.describe(prefix + MANIFEST),
                     sig=store.read(prefix + MANIFEST + SIG_SUFFIX) if signing.get("method", "none") != "none" else None)
    return _Run(seq, sha256_hex(data), manifest.get("previous"), where)


def _check_signature(data: bytes, signing: Mapping[str, Any], keyring: Keyring, sr: SuiteReport, *, where: str,
                     sig: bytes | None) -> None:
    """Check the signature (``sig``, the bytes of ``<where>.sig``) of a document that says it is signed."""
    method = signing.get("method", "none")
    if method == "none":
        return
    if sig is None:
        sr.problems.append(Problem("missing", where + SIG_SUFFIX, f"the document says it is signed ({method})"))
        return
    try:
        sig_doc = _loads(sig)
        if not isinstance(sig_doc, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        sr.problems.append(Problem("bad_signature", where + SIG_SUFFIX, f"not a signature document: {exc}"))
        return
    if sig_doc.get("method") != method or sig_doc.get("key_id") != signing.get("key_id"):
        sr.problems.append(Problem("bad_signature", where + SIG_SUFFIX,
                                   f"signed with {sig_doc.get('method')} key {sig_doc.get('key_id')}, the document "
                                   f"names {method} key {signing.get('key_id')}"))
        return
    status, reason = keyring.check(data, sig_doc)
    if status == "bad":
        sr.problems.append(Problem("bad_signature", where, reason))
    elif status == "unverifiable":
        sr.problems.append(Problem("unverifiable", where, reason))


# --- checkpoints and heads ----------------------------------------------------------------------------

def _checkpoints(store: Any, suite: str, files: list[str], keyring: Keyring, sr: SuiteReport
                 ) -> tuple[dict[int, Mapping[str, Any]], dict[str, Any] | None]:
    """Runs vouched for as pruned (by sequence), and the latest checkpoint's reference."""
    docs = sorted(f for f in files if f.endswith(".json"))
    for f in files:
        if not f.endswith(".json") and not (f.endswith(SIG_SUFFIX) and f[:-len(SIG_SUFFIX)] in docs):
            sr.problems.append(Problem("extra", store.describe(f"{suite}/{f}"), "not a checkpoint"))
    trusted: list[tuple[int, str, Mapping[str, Any]]] = []
    for rel in docs:
        full = f"{suite}/{rel}"
        data = store.read(full) or b""
        try:
            doc = _loads(data)
            if doc.get("checkpoint_version") != CHECKPOINT_VERSION or doc.get("suite") != suite:
                raise ValueError(f"not a version {CHECKPOINT_VERSION} checkpoint of suite {suite}")
            through = int(doc["through"])
            list(doc["pruned"])  # raises when the checkpoint does not list the runs it pruned
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            sr.problems.append(Problem("unreadable", store.describe(full), str(exc)))
            continue
        before = len(sr.problems)
        signing = doc.get("signing") or {}
        _check_signature(data, signing, keyring, sr, where=store.describe(full),
                         sig=store.read(full + SIG_SUFFIX) if signing.get("method", "none") != "none" else None)
        if len(sr.problems) > before:
            continue  # a checkpoint whose signature fails vouches for nothing
        trusted.append((through, sha256_hex(data), doc))
    pruned: dict[int, Mapping[str, Any]] = {}
    previous: dict[str, Any] | None = None
    for through, digest, doc in sorted(trusted, key=lambda t: t[0]):
        link = doc.get("previous_checkpoint")
        where = store.describe(f"{suite}/{CHECKPOINTS}/{through:06d}.json")
        if previous is None and link is not None:
            sr.problems.append(Problem("missing", where, f"it follows checkpoint {link.get('through')}, "
                                                         "which is not in the archive"))
        elif previous is not None and link != previous:
            sr.problems.append(Problem("broken_link", where, f"it links to {link}, the previous checkpoint is {previous}"))
        for entry in doc["pruned"]:
            pruned[int(entry["sequence"])] = entry
        previous = {"through": through, "sha256": digest}
    return pruned, previous


def _check_head(head: HeadFile, suite: str, runs: Mapping[int, _Run], latest_checkpoint: Mapping[str, Any] | None,
                keyring: Keyring, sr: SuiteReport) -> int | None:
    """Compare one head with the archive; its sequence when it can be trusted that far."""
    if head.data is None:
        sr.problems.append(Problem("missing", head.where, "the chain head"))
        return None
    try:
        parsed = parse_head(head.data)
        signing = _loads(head.data).get("signing") or {}
    except ValueError as exc:
        sr.problems.append(Problem("unreadable", head.where, str(exc)))
        return None
    before = len(sr.problems)
    _check_signature(head.data, signing, keyring, sr, where=head.where, sig=head.sig)
    if signing.get("method", "none") == "none" and keyring.expect_signed:
        sr.problems.append(Problem("bad_signature", head.where, "the head is not signed, but signing is configured"))
    if len(sr.problems) > before:
        return None
    if parsed.suite != suite:
        sr.problems.append(Problem("head_mismatch", head.where, f"it is the head of suite {parsed.suite}"))
        return None
    newest = max(runs, default=0)
    if parsed.sequence in runs and runs[parsed.sequence].manifest_sha256 != parsed.manifest_sha256:
        sr.problems.append(Problem("head_mismatch", head.where,
                                   f"run {parsed.sequence}'s manifest hashes to {runs[parsed.sequence].manifest_sha256}, "
                                   f"the head says {parsed.manifest_sha256}"))
    if newest > parsed.sequence:
        sr.problems.append(Problem("head_mismatch", head.where, f"the archive holds runs up to {newest}, "
                                                                f"newer than the head's {parsed.sequence}"))
    if head.checks_checkpoint:
        named = parsed.checkpoint
        if named is None and latest_checkpoint is not None:
            sr.problems.append(Problem("head_mismatch", head.where, f"checkpoint {latest_checkpoint['through']} "
                                                                    "is not recorded by the head"))
        elif named is not None and dict(named) != latest_checkpoint:
            sr.problems.append(Problem("head_mismatch", head.where, f"the head records checkpoint {dict(named)}, "
                                                                    f"the archive's latest is {latest_checkpoint}"))
    return parsed.sequence


def _head_history(store: Any, suite: str, sr: SuiteReport) -> None:
    """On a versioned store (S3), every version of HEAD.json must move forward: a later version with a lower
    sequence is a rollback that hides the newest runs."""
    if not hasattr(store, "versions"):
        return
    highest, when = 0, None
    for version in store.versions(f"{suite}/{HEAD}"):
        if version.delete_marker or version.version_id is None:
            continue
        try:
            seq = parse_head(store.read_version(f"{suite}/{HEAD}", version.version_id)).sequence
        except ValueError:
            continue
        if seq < highest:
            sr.problems.append(Problem("head_mismatch", store.describe(f"{suite}/{HEAD}"),
                                       f"version {version.version_id} ({_stamp(version.last_modified)}) moved the head "
                                       f"back from run {highest} (at {_stamp(when)}) to run {seq}"))
        if seq >= highest:
            highest, when = seq, version.last_modified


def _stamp(value: datetime | None) -> str:
    return iso_z(value) if value is not None else "?"


# --- archive-wide -------------------------------------------------------------------------------------

def _load_archive_keys(store: Any, paths: list[str], keyring: Keyring, report: VerifyReport) -> None:
    """Ed25519 public keys published in the archive's keys/ folder, kept as untrusted fallbacks. Not when the
    verifier trusts a key of its own: whoever re-signed a forged archive would publish their key there too."""
    if any(key_id not in keyring.untrusted_ids for key_id in keyring.ed25519):
        return
    for rel in paths:
        if not (rel.startswith(KEYS_DIR) and rel.endswith(".json")):
            continue
        try:
            doc = _loads(store.read(rel) or b"{}")
            if doc.get("method") == "ed25519":
                keyring.add_ed25519(load_ed25519_public(str(doc["public_key"])), trusted=False)
        except (ValueError, KeyError, TypeError) as exc:
            report.notes.append(f"{store.describe(rel)}: not a usable key ({exc})")


def _lock_notes(store: Any, paths: list[str], report: VerifyReport) -> None:
    """Object Lock retention of every object verify read, on stores that have it (S3)."""
    locks = getattr(store, "locks", None)
    if locks is None:
        return
    modes: dict[str, int] = {}
    earliest: datetime | None = None
    for rel in paths:
        if rel not in locks:
            continue
        mode, until = locks[rel]
        modes[mode or "none"] = modes.get(mode or "none", 0) + 1
        if until is not None and (earliest is None or until < earliest):
            earliest = until
    if modes:
        counts = ", ".join(f"{n} {m}" for m, n in sorted(modes.items()))
        report.notes.append(f"Object Lock: {counts}" + (f"; the earliest retain-until is {_stamp(earliest)}"
                                                        if earliest else ""))
