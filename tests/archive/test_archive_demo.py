"""End to end: a report built from the demo data (every format, the PDF included) is archived by
`auditor run --archive` into a local folder and an Object-Locked S3 bucket (moto), signed with Ed25519,
and `auditor verify` passes on both; one altered byte then fails both."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import date

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from auditor.archive.local import make_writable
from auditor.cli import main
from auditor.demo import generate
from tests.archive.test_archive import ED25519_PUBLIC, ED25519_SEED
from tests.support.flowdata import write_config

BUCKET = "demo-evidence"


@pytest.fixture
def aws(monkeypatch, tmp_path):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(tmp_path / "none"),
                        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AUDITOR_SIGNING_KEY", ED25519_SEED)
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


def test_demo_report_is_archived_locally_and_in_s3_and_verified(tmp_path, aws):
    s3 = aws
    s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    generate(tmp_path / "demo", date(2026, 11, 16))
    config = write_config(tmp_path, f"""
        sources:
          flow_logs: demo/flowlogs
          cloudtrail: demo/cloudtrail
          inventory: demo/inventory
        state_dir: state
        archive:
          dir: archive
          s3: {{bucket: {BUCKET}, prefix: audit/, object_lock_mode: GOVERNANCE, retain_days: 7}}
          signing: {{method: ed25519, key_env: AUDITOR_SIGNING_KEY}}
        """)
    runner = CliRunner()
    result = runner.invoke(main, ["run", "--config", str(config), "--since", "2026-11-09", "--until", "2026-11-16",
                                  "--out", str(tmp_path / "report"), "--archive"])
    assert result.exit_code == 0, result.output
    assert "archived: suite manual run 1" in result.output

    bundle = next((tmp_path / "archive" / "manual" / "runs").iterdir())
    pdf = (bundle / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and pdf == (tmp_path / "report" / "report.pdf").read_bytes()
    findings = json.loads((bundle / "findings.json").read_text())
    inputs = json.loads((bundle / "inputs.json").read_text())["inputs"]
    logs = [i for i in inputs if i["kind"] != "inventory"]
    assert len(logs) == findings["data_quality"]["files_read"] > 0
    sample = logs[0]
    with open(sample["path"], "rb") as fh:
        assert sample["sha256"] == hashlib.sha256(fh.read()).hexdigest()
    inventory = json.loads((bundle / "inventory.json").read_text())
    assert inventory["captured_at"] == findings["run"]["inventory_captured_at"] and inventory["files"]
    queries = json.loads((bundle / "queries.json").read_text())["queries"]
    assert {q["check_id"] for q in queries} == {c["id"] for c in findings["checks"] if c["queries"]}

    key = f"audit/manual/runs/{bundle.name}/report.pdf"
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == pdf
    assert s3.head_object(Bucket=BUCKET, Key=key)["ObjectLockMode"] == "GOVERNANCE"

    public = base64.b64encode(bytes.fromhex(ED25519_PUBLIC)).decode()
    assert public in (tmp_path / "archive" / "README.md").read_text()
    for target in (str(tmp_path / "archive"), f"s3://{BUCKET}/audit/"):
        verified = runner.invoke(main, ["verify", target, "--config", str(config), "--public-key", public])
        assert verified.exit_code == 0, verified.output
        assert "suite manual: 1 run(s) (1..1), head at run 1" in verified.output

    make_writable(bundle)
    data = bytearray((bundle / "report.pdf").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bundle / "report.pdf").write_bytes(bytes(data))
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(data), ChecksumAlgorithm="SHA256")
    for target in (str(tmp_path / "archive"), f"s3://{BUCKET}/audit/"):
        failed = runner.invoke(main, ["verify", target, "--config", str(config), "--public-key", public])
        assert failed.exit_code == 1 and "ALTERED" in failed.output and "report.pdf" in failed.output
