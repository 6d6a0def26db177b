"""`auditor verify`: every kind of tampering is detected and exits non-zero; an intact archive exits 0.

One pristine archive (three runs of suite `weekly`) is built once; each test tampers with its own copy.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.archive.bundle import json_doc
from auditor.archive.local import LocalStore, make_writable
from auditor.archive.signing import Keyring, load_ed25519_public
from auditor.archive.verify import verify_bundle
from auditor.cli import main
from tests.archive.test_archive import (
    ED25519_PUBLIC,
    ED25519_SEED,
    kinds,
    make_project,
    run_and_archive,
    verify_local,
)

PUBLIC_B64 = base64.b64encode(bytes.fromhex(ED25519_PUBLIC)).decode()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("pristine")
    config = make_project(root)
    results = run_and_archive(config, 3)
    return root, results


@pytest.fixture
def copy(pristine, tmp_path):
    """A writable copy of the pristine project (config, inputs, archive, state); its runs by sequence."""
    root, results = pristine
    dest = tmp_path / "project"
    shutil.copytree(root, dest, symlinks=True)
    make_writable(dest)
    runs = {r.sequence: dest / "archive" / "weekly" / "runs" / r.bundle for r in results}
    return dest, runs


def cli_verify(root: Path, *args: str):
    return CliRunner().invoke(main, ["verify", str(root / "archive"), "--config", str(root / "config.yaml"), *args])


def test_an_intact_archive_verifies_and_exits_0(copy):
    root, _ = copy
    report = verify_local(root)
    assert report.ok, report.to_json()
    assert report.suites[0].runs == [1, 2, 3] and report.suites[0].head_sequence == 3
    result = cli_verify(root)
    assert result.exit_code == 0, result.output
    assert "OK:" in result.output


def test_one_altered_byte_is_detected(copy):
    root, runs = copy
    target = runs[2] / "findings.json"
    data = bytearray(target.read_bytes())
    data[100] ^= 0x01
    target.write_bytes(bytes(data))
    report = verify_local(root)
    assert kinds(report) == ["altered"]
    assert report.all_problems[0].where == str(target)
    result = cli_verify(root)
    assert result.exit_code == 1 and "ALTERED" in result.output and "FAILED: 1 problem(s)" in result.output


def test_a_deleted_file_is_missing(copy):
    root, runs = copy
    (runs[1] / "results" / "top_rejected_sources.csv").unlink()
    report = verify_local(root)
    assert kinds(report) == ["missing"] and report.all_problems[0].where.endswith("results/top_rejected_sources.csv")
    assert cli_verify(root).exit_code == 1


def test_an_added_file_is_extra(copy):
    root, runs = copy
    (runs[3] / "results" / "planted.csv").write_text("a,b\n")
    (root / "archive" / "weekly" / "notes.txt").write_text("hello")
    report = verify_local(root)
    assert kinds(report) == ["extra", "extra"]
    assert {Path(p.where).name for p in report.all_problems} == {"planted.csv", "notes.txt"}


def test_removing_a_middle_run_breaks_the_chain(copy):
    root, runs = copy
    shutil.rmtree(runs[2])
    report = verify_local(root)
    assert kinds(report) == ["broken_link"]
    assert "run 2 missing" in report.all_problems[0].detail
    result = cli_verify(root)
    assert result.exit_code == 1 and "BROKEN_LINK" in result.output


def test_removing_the_newest_run_truncates_the_head(copy):
    root, runs = copy
    shutil.rmtree(runs[3])
    report = verify_local(root)
    assert kinds(report) == ["truncated"]
    assert "the head names run 3, but the archive ends at run 2" in report.all_problems[0].detail
    assert cli_verify(root).exit_code == 1


def test_without_a_head_the_newest_run_cannot_be_vouched_for(copy):
    root, runs = copy
    shutil.rmtree(runs[3])
    result = CliRunner().invoke(main, ["verify", str(root / "archive")])  # no config: no state directory
    assert result.exit_code == 1 and "NO_HEAD" in result.output


def test_a_removed_suite_is_detected_from_its_head(copy):
    root, _ = copy
    shutil.rmtree(root / "archive" / "weekly")
    report = verify_local(root)
    assert kinds(report) == ["truncated"] and "runs 1..3 missing" in report.all_problems[0].detail


def test_rewriting_a_file_and_its_manifest_breaks_the_next_link(copy):
    root, runs = copy
    target = runs[2] / "findings.json"
    target.write_bytes(target.read_bytes().replace(b'"pass"', b'"PASS"'))
    manifest = json.loads((runs[2] / "manifest.json").read_text())
    for f in manifest["files"]:
        if f["path"] == "findings.json":
            f["sha256"], f["size"] = hashlib.sha256(target.read_bytes()).hexdigest(), target.stat().st_size
    (runs[2] / "manifest.json").write_bytes(json_doc(manifest))
    report = verify_local(root)
    assert kinds(report) == ["broken_link"]
    assert "run 3 links to a manifest hashing to" in report.all_problems[0].detail


def test_rewriting_the_newest_manifest_disagrees_with_the_head(copy):
    root, runs = copy
    manifest = json.loads((runs[3] / "manifest.json").read_text())
    manifest["archived_at"] = "2030-01-01T00:00:00Z"
    (runs[3] / "manifest.json").write_bytes(json_doc(manifest))
    assert kinds(verify_local(root)) == ["head_mismatch"]


def test_a_head_moved_back_is_detected(copy):
    root, runs = copy
    head_path = root / "state" / "archive" / "weekly" / "HEAD.json"
    head = json.loads(head_path.read_text())
    second = json.loads((runs[3] / "manifest.json").read_text())["previous"]
    head.update(sequence=2, manifest_sha256=second["manifest_sha256"], run_id=second["run_id"])
    head_path.write_bytes(json_doc(head))
    report = verify_local(root)
    assert kinds(report) == ["head_mismatch"] and "newer than the head's 2" in report.all_problems[0].detail


def test_a_single_bundle_can_be_verified_alone(copy):
    root, runs = copy
    assert verify_bundle(LocalStore(runs[1]), keyring=Keyring()).ok
    result = CliRunner().invoke(main, ["verify", str(runs[1])])
    assert result.exit_code == 0 and "not checked" in result.output
    (runs[1] / "findings.json").write_text("{}")
    report = verify_bundle(LocalStore(runs[1]), keyring=Keyring())
    assert kinds(report) == ["altered"]


def test_a_suite_folder_verifies_that_suite(copy):
    root, runs = copy
    result = CliRunner().invoke(main, ["verify", str(root / "archive" / "weekly"), "--config", str(root / "config.yaml")])
    assert result.exit_code == 0, result.output
    assert "suite weekly: 3 run(s) (1..3), head at run 3" in result.output


def test_json_report(copy):
    root, runs = copy
    shutil.rmtree(runs[2])
    result = cli_verify(root, "--json")
    doc = json.loads(result.output)
    assert result.exit_code == 1 and doc["ok"] is False
    assert [p["kind"] for p in doc["problems"]] == ["broken_link"] and doc["suites"][0]["runs"] == [1, 3]


def test_an_unreadable_archive_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["verify", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "no such archive folder" in result.output


# --- signatures ---------------------------------------------------------------------------------------

@pytest.fixture
def signed(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDITOR_SIGNING_KEY", ED25519_SEED)
    config = make_project(tmp_path, "  dir: archive\n      keep_runs: 2\n"
                                    "      signing: {method: ed25519, key_env: AUDITOR_SIGNING_KEY}")
    results = run_and_archive(config, 3)
    monkeypatch.delenv("AUDITOR_SIGNING_KEY")
    return tmp_path, {r.sequence: r.local_path for r in results}


def pinned() -> Keyring:
    keyring = Keyring(expect_signed=True)
    keyring.add_ed25519(load_ed25519_public(PUBLIC_B64))
    return keyring


def test_a_bad_signature_is_detected(signed):
    root, runs = signed
    make_writable(runs[3])
    sig_path = runs[3] / "manifest.json.sig"
    sig = json.loads(sig_path.read_text())
    sig["signature"] = sig["signature"][:10] + ("A" if sig["signature"][10] != "A" else "B") + sig["signature"][11:]
    sig_path.write_text(json.dumps(sig))
    report = verify_local(root, pinned())
    assert kinds(report) == ["bad_signature"]
    result = CliRunner().invoke(main, ["verify", str(root / "archive"), "--config", str(root / "config.yaml"),
                                       "--public-key", PUBLIC_B64])
    assert result.exit_code == 1 and "BAD_SIGNATURE" in result.output


def test_a_re_signed_forgery_fails_against_a_pinned_key(signed):
    """Whoever rewrites a manifest and signs it with their own key, publishing that key in keys/, still
    fails against the key the verifier trusts."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from auditor.archive.archiver import key_document
    from auditor.archive.signing import Ed25519Signer, sig_bytes

    root, runs = signed
    make_writable(runs[3])
    forger = Ed25519Signer(Ed25519PrivateKey.generate())
    manifest = json.loads((runs[3] / "manifest.json").read_text())
    manifest["signing"] = {"method": "ed25519", "key_id": forger.key_id}
    data = json_doc(manifest)
    (runs[3] / "manifest.json").write_bytes(data)
    (runs[3] / "manifest.json.sig").write_bytes(sig_bytes(forger.sign(data)))
    rel, doc = key_document(forger, None)  # type: ignore[arg-type]
    (root / "archive" / rel).write_bytes(json_doc(doc))
    report = verify_local(root, pinned())
    assert "unverifiable" in kinds(report)  # the forger's key is not trusted
    assert "head_mismatch" in kinds(report)  # and the head still names the original manifest


@pytest.mark.parametrize("claims_signed, expected", [
    (True, ["broken_link", "missing"]),  # no signature beside it: it vouches for nothing, run 2 is simply gone
    # unsigned: it does not link to checkpoint 1, the head does not record it, and run 3 links elsewhere
    (False, ["broken_link", "broken_link", "head_mismatch"]),
])
def test_a_forged_checkpoint_does_not_pass_for_pruning(signed, claims_signed, expected):
    root, runs = signed
    assert verify_local(root, pinned()).ok  # run 1 pruned behind a signed checkpoint
    manifest2 = (runs[2] / "manifest.json").read_bytes()
    make_writable(runs[2])
    shutil.rmtree(runs[2])
    forged = json.loads((root / "archive" / "weekly" / "checkpoints" / "000001.json").read_text())
    forged.update(through=2, pruned=[{"sequence": 2, "run_id": "x", "bundle": runs[2].name,
                                      "manifest_sha256": hashlib.sha256(manifest2 + b" ").hexdigest()}])
    if not claims_signed:
        forged["signing"] = {"method": "none"}
    (root / "archive" / "weekly" / "checkpoints" / "000002.json").write_bytes(json_doc(forged))
    assert kinds(verify_local(root, pinned())) == expected


def test_deleting_the_checkpoint_turns_pruning_into_deletion(signed):
    root, runs = signed
    (root / "archive" / "weekly" / "checkpoints" / "000001.json").unlink()
    (root / "archive" / "weekly" / "checkpoints" / "000001.json.sig").unlink()
    report = verify_local(root, pinned())
    assert set(kinds(report)) == {"broken_link", "head_mismatch"}


def test_a_deeply_nested_manifest_is_a_problem_not_a_crash(copy):
    root, runs = copy
    (runs[2] / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)  # RecursionError in json.loads
    report = verify_local(root)
    assert not report.ok and "unreadable" in kinds(report)
    result = cli_verify(root)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
