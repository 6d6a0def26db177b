"""``auditor verify PATH|s3://bucket/prefix``.

Exit codes of verify: 0 the archive is intact; 1 it failed verification (altered, missing or extra files,
broken links, a truncated chain, a head that disagrees or is absent, bad or uncheckable signatures);
2 usage: the archive cannot be read at all (no such path or bucket, access denied) or an option is
wrong; 5 internal error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from auditor.archive.archiver import arn_region
from auditor.archive.chain import StateHeads, parse_head
from auditor.archive.local import LocalStore
from auditor.archive.s3 import S3Store, parse_s3_url
from auditor.archive.signing import (
    SIG_SUFFIX,
    Keyring,
    load_ed25519_private,
    load_ed25519_public,
)
from auditor.archive.verify import HeadFile, VerifyReport, verify_archive, verify_bundle
from auditor.aws import AwsSessions, is_client_error
from auditor.cli.app import err, guard, out
from auditor.config import AwsSettings, LoadedConfig, load_config
from auditor.errors import InputError, UsageError

EXIT_INTACT, EXIT_FAILED = 0, 1


@click.command("verify")
@click.argument("target")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="The config: its state directory holds the chain heads, its archive.signing the keys. "
                   "Default: ./config.yaml when it exists.")
@click.option("--head", "head_files", multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="A chain head (HEAD.json, its .sig beside it) to compare with, instead of the state directory's.")
@click.option("--public-key", help="The Ed25519 public key to trust: base64 of its 32 bytes, or a PEM file.")
@click.option("--key-env", help="An environment variable holding the HMAC secret or the Ed25519 private key.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@guard
def verify(target: str, config_path: str | None, head_files: tuple[str, ...], public_key: str | None,
           key_env: str | None, as_json: bool) -> int:
    """Verify an evidence archive: every hash, signature, chain link and head. Exit 1 when anything is off."""
    if config_path is None and Path("config.yaml").is_file():
        config_path = "config.yaml"
    loaded = load_config(config_path) if config_path else None
    keyring = _keyring(loaded, public_key, key_env)
    report = run_verify(target, loaded=loaded, keyring=keyring, head_files=head_files)
    _print(report, as_json)
    return EXIT_INTACT if report.ok else EXIT_FAILED


def run_verify(target: str, *, loaded: LoadedConfig | None, keyring: Keyring, head_files: tuple[str, ...] = (),
               s3_client: Any = None) -> VerifyReport:
    """Open ``target`` (a local archive, suite or bundle folder, or an s3:// URL) and verify it."""

    is_s3 = target.startswith("s3://")
    heads = _heads(head_files, StateHeads(loaded.resolve(loaded.config.state_dir)) if loaded else None,
                   checks_checkpoint=not is_s3)
    if is_s3:
        bucket, prefix = parse_s3_url(target)
        client = s3_client or AwsSessions(loaded.config.aws if loaded else AwsSettings()).client("s3")
        try:
            store = S3Store(client, bucket, prefix)
            suites = None
            top = {rel.split("/", 1)[0] for rel in store.list()}
            if top & {"runs", "checkpoints", "HEAD.json"}:  # the URL names one suite's folder
                parent, _, suite = prefix.rstrip("/").rpartition("/")
                store, suites = S3Store(client, bucket, parent + "/" if parent else ""), [suite]
            return verify_archive(store, keyring=keyring, heads=heads, suites=suites)
        except Exception as exc:
            if is_client_error(exc):
                raise InputError(f"{target}: cannot read the archive: {exc}") from None
            raise
    path = Path(target)
    if not path.is_dir():
        raise InputError(f"{target}: no such archive folder")
    if (path / "manifest.json").is_file():
        return verify_bundle(LocalStore(path), keyring=keyring)
    if (path / "runs").is_dir():
        return verify_archive(LocalStore(path.parent), keyring=keyring, heads=heads, suites=[path.name])
    return verify_archive(LocalStore(path), keyring=keyring, heads=heads)


def _heads(head_files: tuple[str, ...], state: StateHeads | None, *, checks_checkpoint: bool) -> Mapping[str, list[HeadFile]]:

    heads: dict[str, list[HeadFile]] = {}
    if head_files:
        for name in head_files:
            path = Path(name)
            data = path.read_bytes()
            try:
                suite = parse_head(data).suite
            except ValueError as exc:
                raise UsageError(f"--head {name}: {exc}") from None
            sig = path.with_name(path.name + SIG_SUFFIX)
            heads.setdefault(suite, []).append(HeadFile(data, sig.read_bytes() if sig.is_file() else None, str(path),
                                                        checks_checkpoint))
        return heads
    if state is not None:
        for suite in state.suites():
            stored = state.read(suite)
            if stored is not None:
                heads[suite] = [HeadFile(stored[0], stored[1], str(state.path(suite)), checks_checkpoint)]
    return heads


def _keyring(loaded: LoadedConfig | None, public_key: str | None, key_env: str | None) -> Keyring:

    sessions = AwsSessions(loaded.config.aws if loaded else AwsSettings())
    keyring = Keyring(kms_factory=lambda key_id: sessions.client("kms", arn_region(key_id)))
    secrets: list[str] = []
    if loaded is not None and loaded.config.archive is not None:
        signing = loaded.config.archive.signing
        keyring.expect_signed = signing.method != "none"
        if signing.key_env and os.environ.get(signing.key_env):
            secrets.append(os.environ[signing.key_env])
    if key_env:
        if not os.environ.get(key_env):
            raise UsageError(f"--key-env {key_env}: the variable is not set")
        secrets.append(os.environ[key_env])
    for secret in secrets:
        keyring.add_hmac(secret.encode())
        try:
            keyring.add_ed25519(load_ed25519_private(secret).public_key())
        except ValueError:
            pass  # an HMAC secret, not an Ed25519 key
    if public_key:
        text = Path(public_key).read_text() if Path(public_key).is_file() else public_key
        try:
            keyring.add_ed25519(load_ed25519_public(text))
        except ValueError as exc:
            raise UsageError(f"--public-key: {exc}") from None
    return keyring


def _print(report: VerifyReport, as_json: bool) -> None:

    if as_json:
        out.print_json(json.dumps(report.to_json()))
        return
    out.print(f"verify {report.location}", markup=False, soft_wrap=True)
    for p in report.problems:
        out.print(f"  {p.kind.upper():<14} {p.where}: {p.detail}", markup=False, soft_wrap=True)
    for s in report.suites:
        runs = f"{len(s.runs)} run(s)" + (f" ({s.runs[0]}..{s.runs[-1]})" if s.runs else "")
        pruned = f", {len(s.pruned)} pruned behind checkpoints" if s.pruned else ""
        head = f", head at run {s.head_sequence}" if s.head_sequence is not None else ""
        out.print(f"suite {s.suite}: {runs}{pruned}{head}", markup=False, soft_wrap=True)
        for p in s.problems:
            out.print(f"  {p.kind.upper():<14} {p.where}: {p.detail}", markup=False, soft_wrap=True)
        for n in s.notes:
            err.print(f"  note: {n}", markup=False, soft_wrap=True)
    for n in report.notes:
        err.print(f"note: {n}", markup=False, soft_wrap=True)
    problems = report.all_problems
    if problems:
        out.print(f"FAILED: {len(problems)} problem(s)", markup=False)
    else:
        out.print("OK: every hash, signature, link and head checks out", markup=False)
