"""Issue 18 (unattended operation): the suite run archives under the suite's name, for the daemon and for
`auditor run --suite --archive` alike; an oversized mail links the archived PDF (a presigned S3 URL from a moto
server, fetched back over HTTP; or the local archive's path and the run ID) and a message still too large is
not sent (exit 4); addresses and suite names are validated in the schema; a hand run's usage error is never
mailed; a private CA for SMTP; the "not delivered" warning follows the time runs finished."""

from __future__ import annotations

import json
import os
import queue
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.config import load_config
from auditor.deliver.suite import SuiteState, run_suite
from auditor.errors import ConfigError, UsageError
from auditor.history import RECORD_VERSION, History
from auditor.schedule import Daemon, job_id
from tests.support.moto_server import FAKE_ENV, moto_server
from tests.support.smtp import smtp_server, suite_config

NOW = datetime(2026, 11, 16, 6, 0, tzinfo=timezone.utc)
ARGS = ("--since", "2026-11-09", "--until", "2026-11-16")


def archived_runs(root: Path, suite: str) -> list[str]:
    folder = root / "archive" / suite / "runs"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# ----------------------------------------------------------------------------- 1. the suite run archives


def test_the_daemon_archives_every_run_under_the_suite_name(tmp_path):
    with smtp_server(tmp_path) as server:
        loaded = load_config(suite_config(tmp_path, port=server.port, checks="[top_rejected_sources]",
                                          extra="archive: {dir: archive}\n"))
        runs: queue.Queue = queue.Queue()
        daemon = Daemon(loaded, clock=lambda: NOW, sleep=lambda s: None, on_run=lambda *a: runs.put(a))
        daemon.start()
        try:
            for _ in range(2):
                daemon.scheduler.modify_job(job_id("weekly"),
                                            next_run_time=datetime.now(timezone.utc) + timedelta(seconds=0.5))
                suite, result, error = runs.get(timeout=60)
                assert (suite, error) == ("weekly", None)
                assert result.archived is not None and result.archived.result.suite == "weekly"
        finally:
            daemon.stop(wait=True)
        server.inbox.wait(2)
    runs_archived = archived_runs(tmp_path, "weekly")
    assert len(runs_archived) == 2 and runs_archived[0].startswith("000001-")
    assert not (tmp_path / "archive" / "manual").exists()
    assert "archive" in SuiteState(loaded, "weekly").read()["last_success"]


def test_run_suite_archive_goes_under_the_suite_not_manual(tmp_path):
    cfg = suite_config(tmp_path, port=25, extra="archive: {dir: archive}\n")
    result = CliRunner().invoke(main, ["run", "--config", str(cfg), "--suite", "weekly", "--archive",
                                       "--format", "json", *ARGS])
    assert result.exit_code == 0, result.output
    assert "archived: suite weekly run 1" in result.output
    assert len(archived_runs(tmp_path, "weekly")) == 1 and archived_runs(tmp_path, "manual") == []
    # Without --archive a hand run archives nothing (the daemon archives whenever archive: is set).
    result = CliRunner().invoke(main, ["run", "--config", str(cfg), "--suite", "weekly", "--format", "json", *ARGS])
    assert result.exit_code == 0 and len(archived_runs(tmp_path, "weekly")) == 1


# ------------------------------------------------------------------ 2. an oversized mail links the archive


def big_mail_config(tmp_path, port: int, archive: str, max_bytes: int = 40_000) -> Path:
    return suite_config(tmp_path, port=port, checks="[top_rejected_sources]", email_extra=f"\n  max_bytes: {max_bytes}",
                        extra=f"archive: {archive}\n")


def test_oversized_mail_with_a_local_archive_names_the_archived_pdf_and_the_run(tmp_path):
    with smtp_server(tmp_path) as server:
        loaded = load_config(big_mail_config(tmp_path, server.port, "{dir: archive}"))
        ran = run_suite(loaded, "weekly", deliver=True, clock=lambda: NOW, formats=("json", "pdf"))
        (received,) = server.inbox.wait(1)
    assert ran.delivery.status == "sent" and not ran.delivery.attached
    text = received.message().get_body(("plain",)).get_content()
    bundle = ran.archived.result.local_path
    assert (bundle / "report.pdf").read_bytes() == (ran.outcome.out_dir / "report.pdf").read_bytes()
    assert f"It is archived as run {ran.outcome.record.id} at {bundle / 'report.pdf'}" in " ".join(text.split())
    assert "on the host that ran the audit" not in text


def test_oversized_mail_with_an_s3_archive_links_a_presigned_url_that_fetches_the_pdf(tmp_path, monkeypatch):
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    with moto_server() as url, smtp_server(tmp_path) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)  # every boto3 client of the run goes to the moto server
        boto3.client("s3", region_name="us-east-1", endpoint_url=url).create_bucket(Bucket="evidence-bucket")
        cfg = big_mail_config(tmp_path, server.port, "{s3: {bucket: evidence-bucket, prefix: ev/}}")
        cfg.write_text(cfg.read_text().replace("  attempts: 2", "  attempts: 2\n  pdf_link_expiry: 2d"))
        ran = run_suite(load_config(cfg), "weekly", deliver=True, clock=lambda: datetime.now(timezone.utc),
                        formats=("json", "pdf"), window=None)
        (received,) = server.inbox.wait(1)
        msg = received.message()
        html = msg.get_body(("html",)).get_content()
        text = " ".join(msg.get_body(("plain",)).get_content().split())
        link = next(w for w in text.split() if w.startswith(url))
        assert f'href="{link.replace("&", "&amp;")}"' in html
        with urllib.request.urlopen(link, timeout=10) as response:  # noqa: S310 - the local moto server
            fetched = response.read()
    assert list(msg.iter_attachments()) == []
    assert fetched == (ran.outcome.out_dir / "report.pdf").read_bytes()
    assert "/ev/weekly/runs/000001-" in link and "X-Amz-Expires=172800" in link  # 2 days, from the config
    expires = ran.delivery.at + timedelta(days=2)
    assert f"It expires at {expires:%Y-%m-%dT%H:%M}" in text


def test_a_message_still_too_large_without_the_pdf_is_not_sent_and_exits_4(tmp_path):
    with smtp_server(tmp_path) as server:
        cfg = big_mail_config(tmp_path, server.port, "{dir: archive}", max_bytes=1000)
        result = CliRunner().invoke(main, ["run", "--config", str(cfg), "--suite", "weekly", "--deliver",
                                           "--archive", "--format", "json,pdf", *ARGS])
        assert server.inbox.messages == []
    assert result.exit_code == 4, result.output
    assert "even without the PDF, over email.max_bytes (1,000); not sent" in " ".join(result.output.split())
    state = SuiteState(load_config(cfg), "weekly").read()
    assert state["last_delivery"]["status"] == "failed" and state["last_delivery"]["attempts"] == 0


# --------------------------------------------------- 3, 4. addresses and suite names, refused at validation


@pytest.mark.parametrize("where, value", [
    ("recipient", '"secops@example.com\\n"'),
    ("sender", '"auditor@example.com\\n"'),
])
def test_an_address_ending_in_a_newline_is_refused_by_validate(tmp_path, where, value):
    cfg = suite_config(tmp_path, port=25)
    text = cfg.read_text()
    if where == "recipient":
        text = text.replace("recipients: [secops@example.com,", f"recipients: [{value},")
    else:
        text = text.replace("sender: auditor@example.com", f"sender: {value}")
    cfg.write_text(text)
    result = CliRunner().invoke(main, ["validate", "--config", str(cfg)])
    assert result.exit_code == 2, result.output
    assert "is not an e-mail address like ops@example.com" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("name", ["../../escaped", "week\\r\\nBcc: x@evil.example", "weekly\\n", ".hidden"])
def test_unsafe_suite_names_are_refused_by_validate(tmp_path, name):
    cfg = suite_config(tmp_path, port=25)
    cfg.write_text(cfg.read_text().replace("\n  weekly:\n", f'\n  "{name}":\n'))
    with pytest.raises(ConfigError, match="use a slug of letters, digits"):
        load_config(cfg)
    result = CliRunner().invoke(main, ["validate", "--config", str(cfg)])
    assert result.exit_code == 2 and "suites:" in result.output
    assert not (tmp_path / "escaped").exists()


# ---------------------------------------------------------------- 6. a hand run's usage error is not mailed


def test_a_usage_error_in_a_hand_run_is_printed_and_never_mailed(tmp_path):
    with smtp_server(tmp_path) as server:
        cfg = suite_config(tmp_path, port=server.port)
        occupied = tmp_path / "occupied"
        occupied.mkdir()
        (occupied / "x").write_text("x")
        result = CliRunner().invoke(main, ["run", "--config", str(cfg), "--suite", "weekly", "--deliver",
                                           "--out", str(occupied), "--format", "json", *ARGS])
        assert result.exit_code == 2 and "not empty" in result.output
        # The daemon's path (not by hand) still tells the recipients.
        with pytest.raises(UsageError):
            run_suite(load_config(cfg), "weekly", deliver=True, clock=lambda: NOW, out_dir=occupied,
                      formats=("json",))
        (notice,) = server.inbox.wait(1)
    assert notice.message()["Subject"].startswith("[auditor] FAILED")


# ------------------------------------------------------------------------------ 9. a private CA for SMTP


def test_smtp_ca_file_trusts_a_private_ca(tmp_path):
    with smtp_server(tmp_path, security="starttls") as server:
        cfg = suite_config(tmp_path, port=server.port, security="starttls")
        os.environ.pop("SSL_CERT_FILE", None)
        # Without the CA the certificate check refuses the server (permanent: one attempt).
        ran = run_suite(load_config(cfg), "weekly", deliver=True, clock=lambda: NOW, formats=("json",))
        assert ran.delivery.failed and "CERTIFICATE_VERIFY_FAILED" in ran.delivery.error
        cfg.write_text(cfg.read_text().replace("    security: starttls", "    security: starttls\n    ca_file: cert.pem"))
        ran = run_suite(load_config(cfg), "weekly", deliver=True, clock=lambda: NOW + timedelta(days=7),
                        formats=("json",))
        (received,) = server.inbox.wait(1)
    assert ran.delivery.status == "sent" and received.tls


def test_a_missing_ca_file_is_a_config_error(tmp_path):
    cfg = suite_config(tmp_path, port=25, security="starttls")
    cfg.write_text(cfg.read_text().replace("    security: starttls", "    security: starttls\n    ca_file: nope.pem"))
    result = CliRunner().invoke(main, ["validate", "--config", str(cfg)])
    assert result.exit_code == 2, result.output
    assert "email.smtp.ca_file:" in result.output and "nope.pem is not a readable file" in result.output



# ------------------------------------------------- 5. the "not delivered" warning follows the finishing time


def stored_run(history_dir: Path, run_id: str, finished: str, status: str) -> None:
    run = {"id": run_id, "since": "2026-11-09T00:00:00Z", "until": "2026-11-16T00:00:00Z",
           "started_at": finished, "finished_at": finished}
    doc = {"record_version": RECORD_VERSION, "sources_key": "k", "metrics": {},
           "findings": {"run": run, "checks": []},
           "delivery": {"status": status, "suite": "weekly", "recipients": ["secops@example.com"], "attempts": 2,
                        "error": "ConnectionRefusedError" if status == "failed" else None, "at": finished}}
    history_dir.mkdir(parents=True, exist_ok=True)
    (history_dir / f"20261116T000000Z-{run_id}.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("failed_id, sent_id", [("zzzz0000", "aaaa0000"), ("aaaa0000", "zzzz0000")])
def test_a_later_successful_run_of_the_same_window_clears_the_warning(tmp_path, failed_id, sent_id):
    # Same window; the failed run finished first, the successful re-run an hour later. The run IDs (random in
    # real runs) sort either way round, and must not decide.
    stored_run(tmp_path / "runs", failed_id, "2026-11-16T06:00:00Z", "failed")
    stored_run(tmp_path / "runs", sent_id, "2026-11-16T07:00:00Z", "sent")
    history = History(tmp_path)
    history.load()
    assert not any("was not delivered" in w for w in history.warnings), history.warnings
    # ... and the other way round: the failure is the latest, so it is reported.
    stored_run(tmp_path / "runs", failed_id, "2026-11-16T08:00:00Z", "failed")
    history = History(tmp_path)
    history.load()
    assert any(f"run {failed_id} (suite weekly) was not delivered" in w for w in history.warnings)
