"""The S3 archive against moto (in process): SSE-KMS, Object Lock retention read back through HeadObject
(moto answers GetObjectRetention with a 500), locked versions that cannot be deleted, the S3 head and its
history, KMS signatures, and verify over s3://."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner
from moto import mock_aws

from auditor.archive.archiver import archive_run
from auditor.archive.bundle import json_doc
from auditor.archive.s3 import S3Store
from auditor.archive.signing import Keyring
from auditor.archive.verify import verify_archive
from auditor.cli import main
from auditor.cli.verify import run_verify
from auditor.config import load_config
from auditor.pipeline import run_audit
from tests.archive.test_archive import NOW, WINDOW, kinds, make_project, state_heads
from tests.support.flowdata import write_config

BUCKET = "evidence-bucket"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(tmp_path / "none"),
                        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    """One pipeline run over the tiny inputs; every test archives it under its own config."""
    root = tmp_path_factory.mktemp("s3-run")
    config = make_project(root)
    return root, run_audit(load_config(config), WINDOW, out_dir=root / "out", clock=lambda: NOW, formats=("json", "csv"))


def now() -> datetime:
    # Real time: moto refuses deletes until the real clock passes retain-until.
    return datetime.now(timezone.utc)


def s3_setup(tmp_path, outcome, *, lock: bool = True, extra: str = "", with_kms: bool = True):
    """A bucket (Object Lock enabled unless ``lock`` is False), a KMS key, and a config archiving to them."""
    root, _ = outcome
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=lock)
    key = client("kms").create_key()["KeyMetadata"]["KeyId"] if with_kms else None
    kms_line = f"kms_key_id: {key}, " if key else ""
    config = write_config(tmp_path, f"""
        sources:
          flow_logs: {root / 'flows'}
          inventory: {root / 'inv'}
        state_dir: state
        archive:
          s3: {{bucket: {BUCKET}, prefix: evidence/, {kms_line}object_lock_mode: COMPLIANCE, retain_days: 30}}
        {extra}
        """)
    return s3, key, load_config(config)


def client(service: str):
    return boto3.client(service, region_name="us-east-1")


def archive_times(loaded, outcome, n, **kw):
    # One injected client: creating a boto3 client costs more than archiving a run into moto.
    kw.setdefault("s3_client", client("s3"))
    return [archive_run(outcome[1], loaded, suite="weekly", clock=now, **kw) for _ in range(n)]


def verify_s3(loaded, keyring=None, url=f"s3://{BUCKET}/evidence/"):
    return run_verify(url, loaded=loaded, keyring=keyring or Keyring(), s3_client=client("s3"))


def test_objects_are_encrypted_with_kms_locked_in_compliance_mode_and_cannot_be_deleted(tmp_path, outcome):
    s3, key, loaded = s3_setup(tmp_path, outcome)
    started = now()
    results = archive_times(loaded, outcome, 2)
    assert all(r.ok for r in results), [r.errors for r in results]
    assert results[1].s3_url == f"s3://{BUCKET}/evidence/weekly/runs/{results[1].bundle}/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="evidence/")["Contents"]]
    bundle_keys = [k for k in keys if k.startswith(f"evidence/weekly/runs/{results[1].bundle}/")]
    manifest_key = f"evidence/weekly/runs/{results[1].bundle}/manifest.json"
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    assert sorted(k.rsplit(f"{results[1].bundle}/", 1)[1] for k in bundle_keys) == sorted(
        [f["path"] for f in manifest["files"]] + ["manifest.json"])
    for k in keys:  # retention read back through HeadObject
        head = s3.head_object(Bucket=BUCKET, Key=k)
        assert head["ObjectLockMode"] == "COMPLIANCE", k
        retain = head["ObjectLockRetainUntilDate"]
        assert started + timedelta(days=30) - timedelta(minutes=1) <= retain <= now() + timedelta(days=30), k
        assert head["ServerSideEncryption"] == "aws:kms" and key in head["SSEKMSKeyId"], k
    head = json.loads(s3.get_object(Bucket=BUCKET, Key="evidence/weekly/HEAD.json")["Body"].read())
    assert (head["sequence"], head["manifest_sha256"], head["checkpoint"]) == (2, results[1].manifest_sha256, None)

    version = results[1].s3_versions[f"weekly/runs/{results[1].bundle}/manifest.json"]
    with pytest.raises(ClientError) as info:
        s3.delete_object(Bucket=BUCKET, Key=manifest_key, VersionId=version)
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError):
        s3.delete_object(Bucket=BUCKET, Key=manifest_key, VersionId=version, BypassGovernanceRetention=True)
    assert s3.get_object(Bucket=BUCKET, Key=manifest_key, VersionId=version)["Body"].read() == \
        json_doc(manifest)


def test_an_intact_s3_archive_verifies(tmp_path, outcome):
    _, _, loaded = s3_setup(tmp_path, outcome)
    archive_times(loaded, outcome, 2)
    report = verify_s3(loaded)
    assert report.ok, report.to_json()
    assert report.suites[0].runs == [1, 2] and report.suites[0].head_sequence == 2
    lock_note = next(n for n in report.notes if n.startswith("Object Lock: "))
    assert "COMPLIANCE" in lock_note and "none" not in lock_note
    result = CliRunner().invoke(main, ["verify", f"s3://{BUCKET}/evidence/weekly", "--config", str(loaded.path)])
    assert result.exit_code == 0, result.output


def test_an_overwritten_object_is_altered_even_though_the_locked_original_survives(tmp_path, outcome):
    s3, _, loaded = s3_setup(tmp_path, outcome)
    results = archive_times(loaded, outcome, 2)
    key = f"evidence/weekly/runs/{results[0].bundle}/findings.json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}", ChecksumAlgorithm="SHA256")
    report = verify_s3(loaded)
    assert kinds(report) == ["altered"] and report.all_problems[0].where == f"s3://{BUCKET}/{key}", report.to_json()
    result = CliRunner().invoke(main, ["verify", f"s3://{BUCKET}/evidence/", "--config", str(loaded.path)])
    assert result.exit_code == 1 and "ALTERED" in result.output


@pytest.mark.parametrize("run, expected", [(2, ["broken_link"]), (3, ["truncated"])])
def test_deleting_a_run_leaves_delete_markers_and_is_detected(tmp_path, outcome, run, expected):
    s3, _, loaded = s3_setup(tmp_path, outcome)
    results = archive_times(loaded, outcome, 3)
    prefix = f"evidence/weekly/runs/{results[run - 1].bundle}/"
    for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]:
        assert s3.delete_object(Bucket=BUCKET, Key=obj["Key"])["DeleteMarker"]
    assert kinds(verify_s3(loaded)) == expected


def test_rolling_the_s3_head_back_is_detected_from_its_versions(tmp_path, outcome):
    s3, _, loaded = s3_setup(tmp_path, outcome)
    archive_times(loaded, outcome, 2)
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="evidence/weekly/HEAD.json")["Versions"]
    oldest = [v for v in versions if v["Key"] == "evidence/weekly/HEAD.json"][-1]  # listed newest first
    old = s3.get_object(Bucket=BUCKET, Key="evidence/weekly/HEAD.json", VersionId=oldest["VersionId"])["Body"].read()
    s3.put_object(Bucket=BUCKET, Key="evidence/weekly/HEAD.json", Body=old, ChecksumAlgorithm="SHA256")
    (tmp_path / "state").rename(tmp_path / "state-elsewhere")  # only S3's own head remains
    report = verify_s3(loaded)
    assert kinds(report) == ["head_mismatch", "head_mismatch"]
    assert any("moved the head back from run 2" in p.detail for p in report.all_problems)


def test_a_lost_state_directory_continues_the_chain_from_the_s3_head(tmp_path, outcome):
    _, _, loaded = s3_setup(tmp_path, outcome)
    archive_times(loaded, outcome, 2)
    shutil.rmtree(tmp_path / "state")
    assert archive_times(loaded, outcome, 1)[0].sequence == 3
    assert verify_s3(loaded).ok


def test_a_bucket_without_object_lock_gets_unlocked_objects_and_a_warning(tmp_path, outcome):
    s3, _, loaded = s3_setup(tmp_path, outcome, lock=False, with_kms=False)
    result = archive_times(loaded, outcome, 1)[0]
    assert result.ok and any("has no Object Lock enabled" in w for w in result.warnings)
    head = s3.head_object(Bucket=BUCKET, Key=f"evidence/weekly/runs/{result.bundle}/manifest.json")
    assert "ObjectLockMode" not in head
    report = verify_s3(loaded)
    assert report.ok and any(n.startswith("Object Lock: ") and " none" in n for n in report.notes)


def test_an_unreachable_bucket_fails_that_target_only(tmp_path, outcome):
    root, _ = outcome
    config = write_config(tmp_path, f"""
        sources: {{flow_logs: {root / 'flows'}}}
        state_dir: state
        archive:
          dir: archive
          s3: {{bucket: no-such-bucket}}
        """)
    result = archive_times(load_config(config), outcome, 1)[0]
    assert result.sequence == 1 and result.local_path is not None and result.s3_url is None
    assert result.errors and "no-such-bucket" in result.errors[0]


def test_kms_signatures(tmp_path, outcome):
    kms = boto3.client("kms", region_name="us-east-1")
    signing_key = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["Arn"]
    s3, _, loaded = s3_setup(tmp_path, outcome, extra=f"  signing: {{method: kms, kms_key_id: '{signing_key}'}}")
    results = archive_times(loaded, outcome, 1, kms_client=kms)
    sig = json.loads(s3.get_object(Bucket=BUCKET, Key=f"evidence/weekly/runs/{results[0].bundle}/manifest.json.sig")["Body"].read())
    assert sig["method"] == "kms" and sig["key_id"] == signing_key and sig["algorithm"] == "ECDSA_SHA_256"
    assert verify_s3(loaded, Keyring(kms_client=kms, expect_signed=True)).ok
    # Without KMS access: the manifest, S3's head and the state directory's head cannot be checked.
    assert kinds(verify_s3(loaded, Keyring(expect_signed=True))) == ["unverifiable"] * 3

    manifest_key = f"evidence/weekly/runs/{results[0].bundle}/manifest.json"
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    manifest["archived_at"] = "2030-01-01T00:00:00Z"
    s3.put_object(Bucket=BUCKET, Key=manifest_key, Body=json_doc(manifest), ChecksumAlgorithm="SHA256")
    assert kinds(verify_s3(loaded, Keyring(kms_client=kms))) == ["bad_signature", "head_mismatch", "head_mismatch"]


def test_verify_of_an_unknown_bucket_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["verify", "s3://no-such-bucket/evidence/"], catch_exceptions=False)
    assert result.exit_code == 2 and "cannot read the archive" in result.output


def test_state_heads_cross_check_the_s3_head(tmp_path, outcome):
    _, _, loaded = s3_setup(tmp_path, outcome)
    archive_times(loaded, outcome, 2)
    store = S3Store(boto3.client("s3", region_name="us-east-1"), BUCKET, "evidence/")
    heads = state_heads(tmp_path / "state", checks_checkpoint=False)
    assert verify_archive(store, keyring=Keyring(), heads=heads).ok
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.delete_object(Bucket=BUCKET, Key="evidence/weekly/HEAD.json")  # a delete marker hides S3's head
    for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix="evidence/weekly/runs/")["Contents"]:
        if "/000002-" in obj["Key"]:
            s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    assert kinds(verify_archive(store, keyring=Keyring(), heads=heads)) == ["truncated"]
