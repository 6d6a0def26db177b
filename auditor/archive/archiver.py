"""archive_run(): one run's bundle into the configured targets, the suite's chain moved on, old local runs
pruned behind a checkpoint. ``auditor run --archive`` and the scheduler both call it.

Order, so that a crash never leaves the chain claiming more than exists:
1. the bundle is written to every target (the manifest last in S3);
2. a retention checkpoint is written for the local runs about to be pruned;
3. the heads move (state directory, then S3);
4. only then are the pruned bundle folders deleted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from auditor.archive.bundle import (
    MANIFEST,
    Bundle,
    assemble,
    json_doc,
    sequence_of,
    sha256_hex,
)
from auditor.archive.chain import (
    HEAD,
    Head,
    StateHeads,
    checkpoint_document,
    checkpoint_name,
    head_document,
    parse_head,
    ref,
    signed_files,
)
from auditor.archive.local import LocalTarget
from auditor.archive.s3 import S3Target
from auditor.archive.signing import (
    SIG_SUFFIX,
    Ed25519Signer,
    Signer,
    make_signer,
    public_pem,
    public_raw,
)
from auditor.aws import AwsSessions, is_client_error
from auditor.clock import utcnow
from auditor.config import SUITE_NAME, ArchiveSettings
from auditor.errors import DeliveryError, EngineError, UsageError

DEFAULT_SUITE = "manual"  # hand runs (`auditor run --archive` without a suite) chain here
KEYS = "keys"
README = "README.md"


@dataclass(frozen=True)
class ArchiveResult:
    """Where a run was archived, and what went wrong. ``errors`` non-empty means delivery failed (exit 4)."""

    suite: str
    sequence: int | None
    run_id: str
    bundle: str | None = None
    manifest_sha256: str | None = None
    local_path: Path | None = None
    s3_url: str | None = None
    s3_versions: Mapping[str, str | None] = field(default_factory=dict)  # key -> VersionId
    pruned: tuple[int, ...] = ()
    checkpoint: str | None = None
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


def require_archive(loaded: Any) -> None:
    """Fail before the run, not after it, when archiving cannot work: no ``archive:`` in the config, or a
    signing key missing from the environment."""
    settings = loaded.config.archive
    if settings is None:
        raise UsageError("--archive needs an `archive:` section in the config (archive.dir and/or archive.s3)")
    if settings.signing.method in ("ed25519", "hmac"):
        make_signer(settings.signing, os.environ)


def archive_run(outcome: Any, loaded: Any, *, suite: str = DEFAULT_SUITE, inputs: Sequence[Any] | None = None,
                clock: Callable[[], datetime] = utcnow, s3_client: Any = None, kms_client: Any = None,
                env: Mapping[str, str] | None = None) -> ArchiveResult:
    """Archive one run (a pipeline ``RunOutcome``) as the next link of ``suite``'s chain.

    ``inputs`` defaults to ``outcome.inputs`` (every file the engines read). Clients are created from the
    config's AWS profile when not given. Target failures are returned in ``errors``; a missing archive
    config, a bad suite name or an unusable signing key raise before anything is written.
    """
    settings: ArchiveSettings | None = loaded.config.archive
    if settings is None:
        raise UsageError("archiving needs an `archive:` section in the config (archive.dir and/or archive.s3)")
    if not SUITE_NAME.match(suite):
        raise UsageError(f"suite name {suite!r}: use letters, digits, '.', '_' and '-' (it names folders and keys)")
    env = os.environ if env is None else env
    sessions = AwsSessions(loaded.config.aws)
    if settings.signing.method == "kms" and kms_client is None:
        kms_client = sessions.client("kms", arn_region(settings.signing.kms_key_id))
    signer = make_signer(settings.signing, env, kms_client)
    now = clock()
    run_id = outcome.record.id
    warnings: list[str] = []
    errors: list[str] = []

    local = LocalTarget(loaded.resolve(Path(settings.dir))) if settings.dir else None
    s3: S3Target | None = None
    if settings.s3 is not None:
        try:
            s3, lock_warnings = S3Target.configure(s3_client or sessions.client("s3"), settings.s3, now)
            warnings.extend(lock_warnings)
        except Exception as exc:
            if not (is_client_error(exc) or isinstance(exc, EngineError)):  # EngineError: no client could be made
                raise
            errors.append(f"s3://{settings.s3.bucket}/{settings.s3.prefix}: {exc}")

    heads = StateHeads(loaded.resolve(loaded.config.state_dir))
    with heads.lock(suite):
        head, checkpoint, s3 = _current_head(heads, suite, s3, warnings, errors)
        sequence = (head.sequence if head else 0) + 1
        newest_local = max((sequence_of(n) or 0 for n in local.bundles(suite)), default=0) if local else 0
        if newest_local >= sequence:
            raise DeliveryError(f"the chain head of suite {suite} ({heads.path(suite)}) is at run {sequence - 1}, but "
                                f"{local.describe(suite)} holds run {newest_local}: restore the state directory's "
                                "head (or move that archive away) rather than fork the chain")
        bundle = assemble(outcome, loaded, suite=suite, sequence=sequence, previous=head.link() if head else None,
                          inputs=outcome.inputs if inputs is None else inputs, archived_at=now, signer=signer)
        warnings.extend(bundle.warnings)

        local_path = None
        if local is not None:
            try:
                local_path = local.write_bundle(suite, bundle.name, bundle.files)
                _write_root_docs(local, signer, settings)
            except OSError as exc:
                errors.append(f"{local.root}: could not write the bundle: {exc}")
        s3_url, versions = None, {}
        if s3 is not None:
            try:
                versions = _upload_bundle(s3, suite, bundle)
                _write_root_docs(s3, signer, settings)
                s3_url = s3.describe(f"{suite}/runs/{bundle.name}/")
            except Exception as exc:
                if not is_client_error(exc):
                    raise
                errors.append(f"{s3.describe()}: could not upload the bundle: {exc}")
        if local_path is None and s3_url is None:
            # Nothing holds the run, so the chain does not move: the next run takes this sequence number.
            return ArchiveResult(suite, None, run_id, warnings=tuple(warnings), errors=tuple(errors) or
                                 ("no archive target was written",))

        pruned: list[dict[str, Any]] = []
        checkpoint_rel = None
        if local_path is not None and settings.keep_runs:
            pruned, new_ref = _checkpoint_before_pruning(local, suite, settings.keep_runs, checkpoint, signer, now,
                                                         warnings)
            if new_ref is not None:
                checkpoint = new_ref
                checkpoint_rel = f"{suite}/{checkpoint_name(new_ref['through'])}"

        head_args = dict(suite=suite, sequence=sequence, run_id=run_id, bundle=bundle.name,
                         manifest_sha256=bundle.manifest_sha256, updated_at=now, signer=signer)
        heads.write(suite, signed_files(HEAD, head_document(checkpoint=checkpoint, **head_args), signer))
        if s3_url is not None and s3 is not None:
            # S3 is never pruned, so its head names no checkpoint.
            files = signed_files(HEAD, head_document(checkpoint=None, **head_args), signer)
            try:
                for rel in sorted(files, key=lambda n: n == HEAD):  # the signature first, the head last
                    versions[f"{suite}/{rel}"] = s3.put(f"{suite}/{rel}", files[rel])
            except Exception as exc:
                if not is_client_error(exc):
                    raise
                errors.append(f"{s3.describe(suite + '/' + HEAD)}: could not move the S3 head: {exc}")
        for entry in pruned:
            local.remove_bundle(suite, entry["bundle"])  # type: ignore[union-attr]

    return ArchiveResult(suite=suite, sequence=sequence, run_id=run_id, bundle=bundle.name,
                         manifest_sha256=bundle.manifest_sha256, local_path=local_path, s3_url=s3_url,
                         s3_versions=versions, pruned=tuple(int(p["sequence"]) for p in pruned),
                         checkpoint=checkpoint_rel, warnings=tuple(warnings), errors=tuple(errors))


def _current_head(heads: StateHeads, suite: str, s3: S3Target | None, warnings: list[str], errors: list[str]
                  ) -> tuple[Head | None, Mapping[str, Any] | None, S3Target | None]:
    """The chain position to continue from: the state directory's head, or S3's when it is further on
    (a fresh container whose state directory was lost). Also the state head's checkpoint reference."""
    state = None
    stored = heads.read(suite)
    if stored is not None:
        try:
            state = parse_head(stored[0])
        except ValueError as exc:
            raise DeliveryError(f"{heads.path(suite)}: unreadable chain head ({exc}); refusing to guess where the "
                                f"chain of suite {suite} stands. Run `auditor verify` and restore it.") from None
    remote = None
    if s3 is not None:
        try:
            data = s3.read(f"{suite}/{HEAD}")
            remote = parse_head(data) if data is not None else None
        except ValueError as exc:
            raise DeliveryError(f"{s3.describe(suite + '/' + HEAD)}: unreadable chain head ({exc})") from None
        except Exception as exc:
            if not is_client_error(exc):
                raise
            errors.append(f"{s3.describe(suite + '/' + HEAD)}: could not read the S3 head: {exc}")
            s3 = None
    if remote is not None and (state is None or remote.sequence > state.sequence):
        if state is not None:
            warnings.append(f"the state directory's head of suite {suite} is at run {state.sequence}, S3's at "
                            f"{remote.sequence}: continuing from S3's")
        return remote, None, s3
    return state, (state.checkpoint if state else None), s3


def _upload_bundle(s3: S3Target, suite: str, bundle: Bundle) -> dict[str, str | None]:
    """Every file of the bundle, the manifest and its signature last: a bundle is complete once its
    manifest is there."""
    last = (MANIFEST, MANIFEST + SIG_SUFFIX)
    order = sorted(bundle.files, key=lambda rel: (rel in last, rel))
    under = f"{suite}/runs/{bundle.name}/"
    return {under + rel: s3.put(under + rel, bundle.files[rel]) for rel in order}


def _checkpoint_before_pruning(local: LocalTarget, suite: str, keep: int, previous: Mapping[str, Any] | None,
                               signer: Signer | None, now: datetime, warnings: list[str]
                               ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Write the checkpoint that vouches for the local runs beyond ``keep``; return them and its reference.

    Only runs whose manifest is still there are listed, so pruning never papers over a run that had
    already gone missing: verify still reports that one."""
    names = sorted((n for n in local.bundles(suite) if sequence_of(n) is not None), key=lambda n: sequence_of(n) or 0)
    pruned: list[dict[str, Any]] = []
    for name in names[:-keep] if len(names) > keep else []:
        data = local.read(f"{suite}/runs/{name}/{MANIFEST}")
        try:
            manifest = json.loads(data) if data is not None else None
        except ValueError:
            manifest = None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("sequence"), int):
            warnings.append(f"{local.describe(f'{suite}/runs/{name}')}: no readable manifest; kept, not pruned")
            continue
        pruned.append({"sequence": manifest["sequence"], "run_id": manifest.get("run", {}).get("id"), "bundle": name,
                       "manifest_sha256": sha256_hex(data or b"")})
    if not pruned:
        return [], None
    doc = checkpoint_document(suite=suite, pruned=pruned, previous=previous, keep_runs=keep, created_at=now,
                              signer=signer)
    name = checkpoint_name(doc["through"])
    files = signed_files(name, doc, signer)
    for rel in sorted(files, key=lambda n: n == name):
        local.write_file(f"{suite}/{rel}", files[rel])
    return pruned, ref(files[name], doc["through"])


# --- README.md and keys/ at the archive's root -------------------------------------------------------

def key_document(signer: Signer, settings: ArchiveSettings) -> tuple[str, dict[str, Any]]:
    """The public description of a signing key: its file name under keys/ and its content."""
    doc: dict[str, Any] = {"method": signer.method, "key_id": signer.key_id}
    if isinstance(signer, Ed25519Signer):
        doc.update(algorithm="Ed25519", public_key=base64.b64encode(public_raw(signer.public_key)).decode(),
                   public_key_pem=public_pem(signer.public_key))
        return f"{KEYS}/ed25519-{signer.key_id}.json", doc
    if signer.method == "hmac":
        doc.update(algorithm="HMAC-SHA256", key_env=settings.signing.key_env)
        return f"{KEYS}/hmac-{signer.key_id}.json", doc
    doc.update(algorithm=getattr(signer, "algorithm", None))
    return f"{KEYS}/kms-{hashlib.sha256(signer.key_id.encode()).hexdigest()[:16]}.json", doc


def _write_root_docs(target: Any, signer: Signer | None, settings: ArchiveSettings) -> None:
    """keys/<key>.json for the signing key (never rewritten), and README.md listing every key used so far."""
    write = target.write_file if isinstance(target, LocalTarget) else target.put
    if signer is not None:
        rel, doc = key_document(signer, settings)
        if target.read(rel) is None:
            write(rel, json_doc(doc))
    keys = []
    for rel in target.list():
        if rel.startswith(f"{KEYS}/") and rel.endswith(".json"):
            try:
                keys.append(json.loads(target.read(rel) or b"{}"))
            except ValueError:
                continue
    text = readme_text(keys, target.describe()).encode()
    if target.read(README) != text:
        write(README, text)


def readme_text(keys: Sequence[Mapping[str, Any]], location: str) -> str:
    lines = [
        "# auditor evidence archive",
        "",
        "Each folder `<suite>/runs/<sequence>-<started>-<run id>/` is the evidence of one `auditor` run: the report",
        "(HTML, PDF, findings.json, results/*.csv), every query as run (queries.json), every input read with its",
        "SHA-256 or S3 ETag and VersionId (inputs.json), the inventory snapshot (inventory/, inventory.json), the",
        "config as used (config/) and the tool version (version.json).",
        "",
        "`manifest.json` lists the SHA-256 of every file of its bundle, and the SHA-256 of the suite's previous",
        "manifest with its sequence number: the manifests of a suite form a hash chain. The chain's head is kept",
        "outside the bundles (in the state directory, and in S3 as `<suite>/HEAD.json` under Object Lock).",
        "`<suite>/checkpoints/` records the runs removed by retention (`archive.keep_runs`).",
        "",
        "Check everything (hashes, signatures, chain, head):",
        "",
        "```sh",
        f"auditor verify {location} --config config.yaml",
        "```",
        "",
        "Exit code 0 means intact; 1 lists altered, missing or extra files, broken links, a truncated chain or bad",
        "signatures.",
        "",
        "## Signing keys",
        "",
    ]
    if not keys:
        lines.append("None: the manifests are not signed; the hash chain and the head protect them.")
    for key in sorted(keys, key=lambda k: (str(k.get("method")), str(k.get("key_id")))):
        method = key.get("method")
        if method == "ed25519":
            lines += [f"- Ed25519, key id `{key.get('key_id')}`. Public key (raw 32 bytes, base64):",
                      f"  `{key.get('public_key')}`", "", "  ```", *("  " + ln for ln in
                                                                     str(key.get("public_key_pem", "")).strip().splitlines()),
                      "  ```", "",
                      f"  Pin it when verifying: `auditor verify ... --public-key {key.get('public_key')}`."]
        elif method == "hmac":
            lines.append(f"- HMAC-SHA256, key id `{key.get('key_id')}`: the secret is in the environment variable "
                         f"`{key.get('key_env')}` of the archiving host (it is not stored here).")
        else:
            lines.append(f"- AWS KMS key `{key.get('key_id')}` ({key.get('algorithm')}): `kms:Verify` checks it.")
    return "\n".join(lines) + "\n"


def arn_region(key_id: str | None) -> str | None:
    """The region of a KMS key ARN, or None for a bare key ID or alias."""
    parts = (key_id or "").split(":")
    return parts[3] if len(parts) > 3 and parts[0] == "arn" and parts[3] else None
