"""The evidence archive: what a bundle holds, the hash chain, signatures, retention checkpoints, and
`auditor run --archive`."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

import auditor
from auditor.archive.archiver import archive_run
from auditor.archive.bundle import describe_inputs
from auditor.archive.chain import StateHeads, parse_head
from auditor.archive.local import LocalStore
from auditor.archive.signing import Keyring, load_ed25519_public
from auditor.archive.verify import HeadFile, verify_archive
from auditor.cli import main
from auditor.config import load_config
from auditor.errors import ConfigError, UsageError
from auditor.models import InputFile, TimeWindow
from auditor.pipeline import run_audit
from tests.support.flowdata import record, write_config, write_flow_log, write_inventory

WINDOW = TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc))
NOW = datetime(2026, 11, 20, 6, 0, tzinfo=timezone.utc)
# RFC 8032 section 7.1, test 1: a published Ed25519 seed and its public key.
ED25519_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
ED25519_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"

BASE_CONFIG = """
    sources:
      flow_logs: flows
      inventory: inv
    state_dir: state
    archive:
    %s
    """


def make_project(root: Path, archive_yaml: str = "  dir: archive") -> Path:
    """Tiny inputs (two flow-log records, one interface) and a config that archives them."""
    write_flow_log(root / "flows", [record(), record(srcaddr="198.51.100.7", action="REJECT", dstport=22)])
    write_inventory(root / "inv", {"eni-web": ["10.0.1.10"]}, groups=[{"GroupId": "sg-1", "GroupName": "web"}])
    return write_config(root, BASE_CONFIG % archive_yaml)


def run_and_archive(config: Path, n: int = 1, suite: str = "weekly", formats=("json", "csv"), **kw):
    """One run, archived ``n`` times as consecutive links of ``suite`` (the pipeline is the slow part, and
    the chain does not care whether two runs found the same); returns the archive results."""
    loaded = load_config(config)
    out = config.parent / f"out-{len(list(config.parent.glob('out-*')))}"
    outcome = run_audit(loaded, WINDOW, out_dir=out, clock=lambda: NOW, formats=formats)
    return [archive_run(outcome, loaded, suite=suite, clock=lambda: NOW, **kw) for _ in range(n)]


def state_heads(state: Path, checks_checkpoint: bool = True) -> dict[str, list[HeadFile]]:
    heads = StateHeads(state)
    return {s: [HeadFile(*heads.read(s), str(heads.path(s)), checks_checkpoint)] for s in heads.suites()}


def verify_local(root: Path, keyring: Keyring | None = None):
    return verify_archive(LocalStore(root / "archive"), keyring=keyring or Keyring(), heads=state_heads(root / "state"))


def kinds(report) -> list[str]:
    return sorted(p.kind for p in report.all_problems)


@pytest.fixture(scope="module")
def archived(tmp_path_factory):
    """One run with html, archived: the bundle to inspect."""
    root = tmp_path_factory.mktemp("bundle")
    config = make_project(root)
    loaded = load_config(config)
    outcome = run_audit(loaded, WINDOW, out_dir=root / "out", clock=lambda: NOW, formats=("json", "csv", "html"))
    result = archive_run(outcome, loaded, suite="weekly", clock=lambda: NOW)
    return root, outcome, result


def test_a_bundle_holds_the_report_queries_inputs_inventory_config_and_version(archived):
    root, outcome, result = archived
    assert result.ok and result.sequence == 1 and result.local_path is not None
    bundle = result.local_path
    for artifact in outcome.artifacts:
        rel = artifact.relative_to(outcome.out_dir)
        assert (bundle / rel).read_bytes() == artifact.read_bytes(), rel
    assert {"report.html", "findings.json", "results/top_rejected_sources.csv"} <= {
        p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}

    queries = json.loads((bundle / "queries.json").read_text())["queries"]
    findings = json.loads((bundle / "findings.json").read_text())
    as_run = {(c["id"], q["name"]): q["text"] for c in findings["checks"] for q in c["queries"]}
    assert {(q["check_id"], q["name"]): q["text"] for q in queries} == as_run and as_run
    assert all(q["engine"] in ("local", "embedded") and q["window"] == {"since": "2026-11-09T00:00:00Z",
                                                                         "until": "2026-11-16T00:00:00Z"}
               for q in queries if q["check_id"] != "unused_sg_rules")
    assert all("query_id" in q and "bytes_scanned" in q for q in queries)

    inputs = json.loads((bundle / "inputs.json").read_text())["inputs"]
    flow_file = next((root / "flows").rglob("*.log.gz"))
    by_path = {i["path"]: i for i in inputs}
    assert by_path[str(flow_file)]["sha256"] == hashlib.sha256(flow_file.read_bytes()).hexdigest()
    assert by_path[str(flow_file)]["size"] == flow_file.stat().st_size
    inventory_files = sorted((root / "inv").rglob("*.json"))
    assert {str(p) for p in inventory_files} <= set(by_path)
    for p in inventory_files:
        copied = bundle / "inventory" / p.relative_to(root / "inv")
        assert copied.read_bytes() == p.read_bytes()
    inventory = json.loads((bundle / "inventory.json").read_text())
    assert inventory["captured_at"] == "2026-11-10T00:00:00Z" == findings["run"]["inventory_captured_at"]

    assert (bundle / "config" / "config.yaml").read_bytes() == (root / "config.yaml").read_bytes()
    assert json.loads((bundle / "config" / "effective.json").read_text())["archive"]["dir"] == "archive"
    assert json.loads((bundle / "version.json").read_text())["version"] == auditor.__version__


def test_the_manifest_lists_the_sha256_of_every_file_and_nothing_else(archived):
    _, _, result = archived
    bundle = result.local_path
    manifest = json.loads((bundle / "manifest.json").read_text())
    on_disk = {p.relative_to(bundle).as_posix(): p for p in bundle.rglob("*") if p.is_file()}
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == set(on_disk) - {"manifest.json"}
    for name, entry in listed.items():
        data = on_disk[name].read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["size"] == len(data), name
    assert manifest["sequence"] == 1 and manifest["previous"] is None and manifest["suite"] == "weekly"
    assert result.manifest_sha256 == hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()


def test_bundle_files_are_read_only(archived):
    _, _, result = archived
    assert all(not (p.stat().st_mode & 0o222) for p in result.local_path.rglob("*"))


def test_manifests_chain_per_suite_and_the_head_names_the_newest(tmp_path):
    config = make_project(tmp_path)
    weekly = run_and_archive(config, 3)
    daily = run_and_archive(config, 1, suite="daily")
    assert [r.sequence for r in weekly] == [1, 2, 3] and daily[0].sequence == 1
    manifests = [json.loads((r.local_path / "manifest.json").read_text()) for r in weekly]
    for before, after, r_before in zip(manifests, manifests[1:], weekly):
        assert after["previous"] == {"sequence": before["sequence"], "run_id": before["run"]["id"],
                                     "manifest_sha256": r_before.manifest_sha256}
    head = parse_head((tmp_path / "state" / "archive" / "weekly" / "HEAD.json").read_bytes())
    assert (head.sequence, head.manifest_sha256, head.run_id) == (3, weekly[-1].manifest_sha256, weekly[-1].run_id)
    report = verify_local(tmp_path)
    assert report.ok, report.to_json()
    assert {s.suite: s.runs for s in report.suites} == {"daily": [1], "weekly": [1, 2, 3]}


def test_ed25519_signatures_and_the_public_key_in_the_archive_readme(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDITOR_SIGNING_KEY", ED25519_SEED)
    config = make_project(tmp_path, "  dir: archive\n      signing: {method: ed25519, key_env: AUDITOR_SIGNING_KEY}")
    results = run_and_archive(config, 2)
    public_b64 = base64.b64encode(bytes.fromhex(ED25519_PUBLIC)).decode()
    assert public_b64 in (tmp_path / "archive" / "README.md").read_text()
    sig = json.loads((results[0].local_path / "manifest.json.sig").read_text())
    assert sig["method"] == "ed25519" and sig["key_id"] == hashlib.sha256(bytes.fromhex(ED25519_PUBLIC)).hexdigest()[:16]
    load_ed25519_public(public_b64).verify(base64.b64decode(sig["signature"]),
                                           (results[0].local_path / "manifest.json").read_bytes())
    assert (tmp_path / "state" / "archive" / "weekly" / "HEAD.json.sig").is_file()

    pinned = Keyring(expect_signed=True)
    pinned.add_ed25519(load_ed25519_public(public_b64))
    assert verify_local(tmp_path, pinned).ok
    fallback = verify_local(tmp_path)  # the key published in the archive, with a note saying so
    assert fallback.ok and any("read from the archive itself" in n for n in fallback.notes)


def test_hmac_signatures_need_the_secret_to_verify(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDITOR_HMAC", "correct horse battery staple")
    config = make_project(tmp_path, "  dir: archive\n      signing: {method: hmac, key_env: AUDITOR_HMAC}")
    run_and_archive(config, 2)
    with_secret = Keyring(expect_signed=True)
    with_secret.add_hmac(b"correct horse battery staple")
    assert verify_local(tmp_path, with_secret).ok
    wrong = Keyring()
    wrong.add_hmac(b"a guess")
    assert set(kinds(verify_local(tmp_path, wrong))) == {"unverifiable"}
    assert "correct horse" not in (tmp_path / "archive" / "README.md").read_text()


def test_signing_without_the_key_in_the_environment_is_a_config_error_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv("AUDITOR_NOPE", raising=False)
    config = make_project(tmp_path, "  dir: archive\n      signing: {method: ed25519, key_env: AUDITOR_NOPE}")
    loaded = load_config(config)
    outcome = run_audit(loaded, WINDOW, out_dir=tmp_path / "out", clock=lambda: NOW, formats=("json",))
    with pytest.raises(ConfigError, match="AUDITOR_NOPE is not set"):
        archive_run(outcome, loaded, suite="weekly", clock=lambda: NOW)
    assert not (tmp_path / "archive").exists()


def test_pruning_writes_a_checkpoint_and_is_not_reported_as_tampering(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDITOR_SIGNING_KEY", ED25519_SEED)
    config = make_project(tmp_path, "  dir: archive\n      keep_runs: 2\n"
                                    "      signing: {method: ed25519, key_env: AUDITOR_SIGNING_KEY}")
    results = run_and_archive(config, 5)
    assert [r.pruned for r in results] == [(), (), (1,), (2,), (3,)]
    assert sorted(p.name[:6] for p in (tmp_path / "archive" / "weekly" / "runs").iterdir()) == ["000004", "000005"]
    checkpoint = json.loads((tmp_path / "archive" / "weekly" / "checkpoints" / "000003.json").read_text())
    assert checkpoint["pruned"] == [{"sequence": 3, "run_id": results[2].run_id, "bundle": results[2].bundle,
                                     "manifest_sha256": results[2].manifest_sha256}]
    assert (tmp_path / "archive" / "weekly" / "checkpoints" / "000003.json.sig").is_file()
    report = verify_local(tmp_path)
    assert report.ok, report.to_json()
    assert report.suites[0].pruned == [1, 2, 3] and report.suites[0].runs == [4, 5]


def test_pruning_never_vouches_for_a_run_that_was_already_missing(tmp_path):
    import shutil

    from auditor.archive.local import make_writable

    config = make_project(tmp_path, "  dir: archive\n      keep_runs: 3")
    first = run_and_archive(config, 3)
    gone = first[1].local_path  # run 2 deleted by hand, then retention prunes past it
    make_writable(gone)
    shutil.rmtree(gone)
    config.write_text(config.read_text().replace("keep_runs: 3", "keep_runs: 1"))
    assert run_and_archive(config, 1)[0].pruned == (1, 3)
    report = verify_local(tmp_path)
    problems = [p for p in report.all_problems]
    assert [p.kind for p in problems] == ["broken_link"] and "run 2 missing" in problems[0].detail


def test_a_target_that_cannot_be_written_is_an_error_and_the_chain_does_not_move(tmp_path):
    config = make_project(tmp_path)
    (tmp_path / "archive").write_text("not a folder")
    result = run_and_archive(config, 1)[0]
    assert not result.ok and result.sequence is None and "could not write the bundle" in result.errors[0]
    assert not (tmp_path / "state" / "archive" / "weekly" / "HEAD.json").exists()


def test_a_lost_state_head_does_not_fork_a_local_chain(tmp_path):
    import shutil

    from auditor.errors import DeliveryError

    config = make_project(tmp_path)
    run_and_archive(config, 2)
    shutil.rmtree(tmp_path / "state" / "archive")
    with pytest.raises(DeliveryError, match="holds run 2"):
        run_and_archive(config, 1)


def test_a_live_inventory_is_recorded_by_name_not_copied():
    from types import SimpleNamespace

    from auditor.archive.bundle import _inventory
    from auditor.models import FileQuality

    snapshot = SimpleNamespace(captured_at=NOW, accounts=("111122223333",), regions=("us-east-1",), warnings=(),
                               files=(FileQuality(path="aws:111122223333/us-east-1/describe-security-groups.json",
                                                  records=4),))
    loaded = SimpleNamespace(config=SimpleNamespace(sources=SimpleNamespace(inventory=SimpleNamespace(engine="aws_api"))))
    warnings: list[str] = []
    files, doc, inputs = _inventory(SimpleNamespace(inventory=snapshot), loaded, warnings)
    assert files == {} and inputs == [] and doc["captured_at"] == "2026-11-20T06:00:00Z"
    assert doc["files"][0]["records"] == 4 and "EC2 API" in doc["files"][0]["note"]
    assert "not kept" in warnings[0]


def test_suite_names_become_folders_so_they_are_checked(tmp_path):
    config = make_project(tmp_path)
    loaded = load_config(config)
    outcome = run_audit(loaded, WINDOW, out_dir=tmp_path / "out", clock=lambda: NOW, formats=("json",))
    with pytest.raises(UsageError, match="suite name"):
        archive_run(outcome, loaded, suite="../escape", clock=lambda: NOW)


def test_inputs_list_local_files_by_hash_and_s3_objects_by_etag_and_version(tmp_path):
    local = tmp_path / "x.log"
    local.write_bytes(b"abc")
    warnings: list[str] = []
    entries = describe_inputs([
        InputFile(path=str(local), size=2, kind="text"),  # the run saw 2 bytes: the file changed since
        InputFile(path="s3://logs-bucket/AWSLogs/1/a.log.gz", size=10, kind="text"),
        {"bucket": "logs-bucket", "key": "b.log.gz", "etag": '"9b2"', "version_id": "v1", "size": 5},
    ], warnings)
    assert entries[0] == {"location": "local", "path": str(local), "kind": "text",
                          "sha256": hashlib.sha256(b"abc").hexdigest(), "size": 3, "changed_since_read": True}
    assert entries[1]["location"] == "s3" and entries[1]["key"] == "AWSLogs/1/a.log.gz"
    assert entries[2] == {"location": "s3", "bucket": "logs-bucket", "key": "b.log.gz", "etag": '"9b2"',
                          "version_id": "v1", "size": 5}
    assert "changed after the run read it" in warnings[0]


@pytest.mark.parametrize("archive_yaml, message", [
    ("  keep_runs: 3", "archive needs a target"),
    ("  dir: a\n      signing: {method: ed25519}", "needs key_env"),
    ("  dir: a\n      signing: {method: kms}", "needs kms_key_id"),
    ("  s3: {bucket: Not_A_Bucket}", "archive.s3.bucket"),
])
def test_archive_config_errors_name_the_line(tmp_path, archive_yaml, message):
    config = write_config(tmp_path, BASE_CONFIG % archive_yaml)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(config)
    assert info.value.line is not None


def test_s3_prefix_is_a_folder():
    from auditor.config import S3ArchiveSettings
    assert S3ArchiveSettings(bucket="evidence-bucket", prefix="/audit").prefix == "audit/"


def test_cli_run_archive_then_verify(tmp_path):
    config = make_project(tmp_path)
    runner = CliRunner()
    for i in range(2):
        result = runner.invoke(main, ["run", "--config", str(config), "--since", "2026-11-09", "--until", "2026-11-16",
                                      "--out", str(tmp_path / f"report{i}"), "--format", "json,csv", "--archive"])
        assert result.exit_code == 0, result.output
        assert f"archived: suite manual run {i + 1}" in result.output
    # A hand run with --out and no --archive joins no chain.
    result = runner.invoke(main, ["run", "--config", str(config), "--since", "2026-11-09", "--until", "2026-11-16",
                                  "--out", str(tmp_path / "report-plain"), "--format", "json"])
    assert result.exit_code == 0 and "archived" not in result.output
    assert parse_head((tmp_path / "state" / "archive" / "manual" / "HEAD.json").read_bytes()).sequence == 2
    verified = runner.invoke(main, ["verify", str(tmp_path / "archive"), "--config", str(config)])
    assert verified.exit_code == 0, verified.output
    assert "suite manual: 2 run(s) (1..2), head at run 2" in verified.output


def test_cli_run_archive_without_an_archive_config_is_a_usage_error_before_running(tmp_path):
    config = write_config(tmp_path, "sources:\n  flow_logs: flows\n")
    write_flow_log(tmp_path / "flows", [record()])
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--out", str(tmp_path / "r"), "--archive"])
    assert result.exit_code == 2 and "archive:" in result.output
    assert not (tmp_path / "r").exists()


def test_cli_run_archive_failure_exits_4_and_keeps_the_report(tmp_path):
    config = make_project(tmp_path)
    (tmp_path / "archive").write_text("not a folder")
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--since", "2026-11-09", "--until", "2026-11-16",
                                       "--out", str(tmp_path / "r"), "--format", "json", "--archive"])
    assert result.exit_code == 4, result.output
    assert (tmp_path / "r" / "findings.json").is_file()
