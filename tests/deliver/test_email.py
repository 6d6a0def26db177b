"""The report mail: MIME structure, both bodies, the PDF, the encoded-size limit, subject templates, retries,
and the transports against a real aiosmtpd server (plain, STARTTLS + AUTH, implicit TLS + AUTH) and moto's SES."""

from __future__ import annotations

import base64
import smtplib
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from auditor.builtins import builtins
from auditor.config import EmailSettings, SmtpSettings, load_config
from auditor.deliver.email import (
    BuiltMessage,
    PdfLink,
    SesTransport,
    SmtpTransport,
    build_message,
    is_transient,
    presigned_pdf_link,
    send_with_retry,
    subject_fields,
    transport_from_settings,
)
from auditor.deliver.suite import run_suite
from auditor.errors import ConfigError, DeliveryError
from auditor.render import template_dirs
from auditor.render.view import build_view
from tests.support.flowdata import write_config
from tests.support.smtp import PASSWORD, USER, smtp_server, suite_config

NOW = datetime(2026, 11, 16, 6, 0, tzinfo=timezone.utc)
RECIPIENTS = ("secops@example.com", "cto@example.com")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One real run of the `weekly` suite (1 high, 1 medium finding), with its PDF, not mailed."""
    root = tmp_path_factory.mktemp("report")
    loaded = load_config(suite_config(root, port=25))
    ran = run_suite(loaded, "weekly", deliver=False, clock=lambda: NOW)
    reg = builtins()
    record = ran.outcome.record
    view = build_view(record, {c.check_id: reg.checks.get(c.check_id) for c in record.checks}, title="Weekly network audit",
                      charts=False)
    pdf = (ran.outcome.out_dir / "report.pdf").read_bytes()
    return record, view, pdf, ran.outcome.out_dir


def settings(**kw) -> EmailSettings:
    return EmailSettings(sender="auditor@example.com", smtp=SmtpSettings(host="127.0.0.1"), **kw)


def message(report, **kw) -> BuiltMessage:
    record, view, pdf, out_dir = report
    args = dict(settings=settings(), suite="weekly", title="Weekly network audit", recipients=RECIPIENTS,
                template_dirs=template_dirs(), pdf=pdf, location=str(out_dir), now=NOW)
    args.update(kw)
    return build_message(record, view, **args)


def assert_report_mail(msg, pdf: bytes) -> None:
    """Headers, both bodies and the attached PDF, byte for byte."""
    assert msg["From"] == "auditor@example.com"
    assert msg["To"] == "secops@example.com, cto@example.com"
    assert msg["Subject"] == "[auditor] Weekly network audit 2026-11-09..2026-11-16: 1 high, 2 new"
    assert msg["Date"] == "Mon, 16 Nov 2026 06:00:00 +0000"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"].endswith("@example.com>")
    assert msg.get_content_type() == "multipart/mixed"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for body in (text, html):
        assert "Weekly network audit" in body
        assert "9\u201315 Nov 2026, 7 days" in body  # the window, by its last included day
        assert "198.51.100.66 was rejected 24 times on 12 destination ports" in body  # a top item
        assert "MySQL (tcp/3306) on eni-db" in body and "6/3306" not in body
        assert "There is no earlier comparable run" in body  # new vs resolved
    assert "High          1  (1 new)" in text
    assert "<td style=\"text-align: right;\">1</td>" in html
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "report.pdf"
    assert attachment.get_content() == pdf


def test_message_holds_summary_bodies_and_the_pdf(report):
    built = message(report)
    assert built.attached
    assert built.size == len(built.message.as_bytes().replace(b"\n", b"\r\n"))  # CRLF on the wire
    assert_report_mail(built.message, report[2])
    assert built.message["X-Auditor-Run"] == report[0].id


def test_subject_fields_count_active_findings_by_severity(report):
    record = report[0]
    fields = subject_fields(record, suite="weekly", title="T")
    assert (fields["high"], fields["medium"], fields["critical"], fields["new"], fields["resolved"]) == (1, 1, 0, 2, 0)
    assert (fields["since"], fields["until"]) == ("2026-11-09", "2026-11-16")
    built = message(report, settings=settings(subject="{suite}: {findings} findings, {errors} errors, run {run_id}"))
    assert built.message["Subject"] == f"weekly: 2 findings, 0 errors, run {record.id}"


def test_html_body_escapes_what_comes_from_logs(report):
    record, view, pdf, out_dir = report
    evil = "<script>alert(1)</script>"
    checks = tuple(replace(c, findings=tuple(replace(f, title=evil) for f in c.findings)) for c in record.checks)
    record = replace(record, checks=checks)
    reg = builtins()
    view = build_view(record, {c.check_id: reg.checks.get(c.check_id) for c in record.checks}, charts=False)
    built = message((record, view, pdf, out_dir))
    html = built.message.get_body(("html",)).get_content()
    assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert evil in built.message.get_body(("plain",)).get_content()  # plain text is not HTML: nothing to escape


def test_encoded_size_over_the_limit_links_the_pdf_instead(report):
    pdf = report[2]
    # The raw PDF and the bodies would fit, but base64 makes the attachment a third larger: the encoded
    # size is what counts (SES's limit is on the encoded message).
    limit = len(pdf) + 20_000
    assert message(report).size > limit
    link = PdfLink("https://bucket.s3.amazonaws.com/run/report.pdf?X-Amz-Signature=abc",
                   expires_at=NOW + timedelta(days=7), presigned=True)
    built = message(report, settings=settings(max_bytes=limit), pdf_link=link)
    assert not built.attached and built.size <= limit
    assert list(built.message.iter_attachments()) == []
    for body in (built.message.get_body(("plain",)).get_content(), built.message.get_body(("html",)).get_content()):
        assert "is not attached" in body
        assert "expires at 2026-11-23T06:00:00Z" in body
        assert "temporary credentials" in body  # a role session's link dies with the session
    assert "https://bucket.s3.amazonaws.com/run/report.pdf?X-Amz-Signature=abc" in built.message.get_body(("plain",)).get_content()


def test_over_the_limit_without_an_archive_names_where_the_pdf_is(report):
    built = message(report, settings=settings(max_bytes=len(report[2])))
    text = built.message.get_body(("plain",)).get_content()
    assert not built.attached
    flat = " ".join(text.split())
    assert f"It was not archived (the config has no archive: section); the report of run {report[0].id} is on the " \
           f"host that ran the audit, in {report[3]}." in flat


def test_presigned_link_is_capped_at_seven_days(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1", config=Config(signature_version="s3v4"))
        link = presigned_pdf_link(s3, "evidence", "auditor/run/report.pdf", now=NOW, expires=timedelta(days=30))
    query = parse_qs(urlparse(link.url).query)
    assert query["X-Amz-Expires"] == ["604800"]
    assert link.expires_at == NOW + timedelta(days=7) and link.presigned


@pytest.mark.parametrize("subject, error", [
    ("[auditor] {titel}", "unknown subject field {titel} (did you mean 'title'?)"),
    ("{title.__class__}", "unknown subject field {title.__class__}"),
    ("{high!r} high", "only a width/alignment"),
    ("{high", "malformed"),
])
def test_subject_template_errors_name_the_line(tmp_path, subject, error):
    path = write_config(tmp_path, f"""
        email:
          sender: a@example.com
          smtp: {{host: localhost}}
          subject: "{subject}"
        """)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert exc.value.line == 4 and exc.value.column == 12
    assert error in str(exc.value)


@pytest.mark.parametrize("body, error", [
    ("email: {transport: smtp}", "transport: smtp needs an smtp:"),
    ("email: {smtp: {host: h, security: none, username_env: U, password_env: P}}", "clear text"),
    ("email: {smtp: {host: h, username_env: U}}", "set both username_env and password_env"),
    ("email: {smtp: {host: h, password_env: 'hunter2 x'}}", "not an environment variable name"),
    ("email: {sender: nobody, smtp: {host: h}}", "not an e-mail address"),
])
def test_email_settings_are_checked_at_load(tmp_path, body, error):
    with pytest.raises(ConfigError, match="config.yaml:1:") as exc:
        load_config(write_config(tmp_path, body))
    assert error in str(exc.value)


def test_smtp_port_defaults_follow_the_security():
    assert [SmtpSettings(host="h", security=s).effective_port for s in ("starttls", "tls", "none")] == [587, 465, 25]
    assert SmtpSettings(host="h", port=2525).effective_port == 2525


class FlakyTransport:
    name = "flaky"

    def __init__(self, failures):
        self.failures = list(failures)
        self.calls = 0

    def send(self, message, *, sender, recipients):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "<id@example.com>"


def test_transient_failures_are_retried_with_doubling_backoff(report):
    sleeps = []
    transport = FlakyTransport([smtplib.SMTPServerDisconnected("gone"), ConnectionRefusedError(111, "refused")])
    result = send_with_retry(transport, message(report), sender="a@example.com", recipients=RECIPIENTS, attempts=3,
                             backoff=timedelta(seconds=10), sleep=sleeps.append, clock=lambda: NOW)
    assert (result.status, result.attempts, transport.calls) == ("sent", 3, 3)
    assert sleeps == [10.0, 20.0]
    assert result.errors == ("SMTPServerDisconnected: gone", "ConnectionRefusedError: [Errno 111] refused")


def test_permanent_failure_is_not_retried(report):
    sleeps = []
    transport = FlakyTransport([smtplib.SMTPDataError(552, b"5.3.4 Message size exceeds fixed limit")])
    result = send_with_retry(transport, message(report), sender="a@example.com", recipients=RECIPIENTS, attempts=3,
                             sleep=sleeps.append, clock=lambda: NOW)
    assert (result.status, result.attempts, sleeps) == ("failed", 1, [])
    assert result.error == "SMTPDataError: 552 5.3.4 Message size exceeds fixed limit"
    assert result.to_json()["at"] == "2026-11-16T06:00:00Z"


@pytest.mark.parametrize("exc, transient", [
    (smtplib.SMTPResponseException(421, b"try later"), True),
    (smtplib.SMTPAuthenticationError(535, b"bad credentials"), False),
    (smtplib.SMTPRecipientsRefused({"a@x": (450, b"mailbox busy")}), True),
    (smtplib.SMTPRecipientsRefused({"a@x": (550, b"no such user")}), False),
    (TimeoutError("timed out"), True),
    (DeliveryError("env var missing"), False),
])
def test_which_failures_are_transient(exc, transient):
    assert is_transient(exc) is transient


def test_smtp_credentials_come_from_the_named_environment_variables():
    smtp = SmtpSettings(host="h", username_env="MAIL_USER", password_env="MAIL_PASS")
    t = SmtpTransport.from_settings(smtp, environ={"MAIL_USER": "bot", "MAIL_PASS": "pw"})
    assert (t.username, t.password, t.port, t.security) == ("bot", "pw", 587, "starttls")
    with pytest.raises(DeliveryError) as exc:
        SmtpTransport.from_settings(smtp, environ={"MAIL_USER": "bot"})
    assert "MAIL_PASS is not set" in str(exc.value) and "bot" not in str(exc.value)


@pytest.mark.parametrize("security, auth", [("none", False), ("starttls", True), ("tls", True)])
def test_smtp_delivers_through_a_real_server(tmp_path, report, security, auth):
    with smtp_server(tmp_path, security=security, auth=auth) as server:
        smtp = SmtpSettings(host=server.host, port=server.port, security=security,
                            **({"username_env": "U", "password_env": "P"} if auth else {}))
        transport = SmtpTransport.from_settings(smtp, environ={"U": USER, "P": PASSWORD},
                                                ssl_context=server.client_context, timeout=10)
        result = send_with_retry(transport, message(report), sender="auditor@example.com", recipients=RECIPIENTS,
                                 sleep=lambda s: None, clock=lambda: NOW)
        (received,) = server.inbox.wait(1)
    assert result.status == "sent" and result.attempts == 1
    assert received.mail_from == "auditor@example.com"
    assert received.rcpt_tos == list(RECIPIENTS)
    assert received.tls is (security != "none")
    assert server.inbox.logins == ([("PLAIN", USER)] if auth else [])
    assert_report_mail(received.message(), report[2])


def test_smtp_wrong_password_fails_without_retrying(tmp_path, report):
    with smtp_server(tmp_path, security="starttls", auth=True) as server:
        transport = SmtpTransport(server.host, server.port, "starttls", username=USER, password="wrong",
                                  ssl_context=server.client_context, timeout=10)
        result = send_with_retry(transport, message(report), sender="auditor@example.com", recipients=RECIPIENTS,
                                 attempts=3, sleep=lambda s: pytest.fail("a refused login must not be retried"))
        assert server.inbox.messages == []
    assert result.status == "failed" and result.attempts == 1
    assert result.error.startswith("SMTPAuthenticationError: 535")


def test_starttls_is_never_skipped_when_the_server_lacks_it(tmp_path, report):
    with smtp_server(tmp_path, security="none") as server:
        transport = SmtpTransport(server.host, server.port, "starttls", timeout=10)
        result = send_with_retry(transport, message(report), sender="auditor@example.com", recipients=RECIPIENTS,
                                 sleep=lambda s: None)
        assert server.inbox.messages == []  # nothing went out in clear text
    assert result.status == "failed" and result.attempts == 1
    assert "does not offer STARTTLS" in result.error


@pytest.fixture
def aws(monkeypatch):
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        yield


def test_ses_send_raw_email_reaches_moto(report, aws):
    client = boto3.client("ses", region_name="eu-west-1")
    client.verify_email_identity(EmailAddress="auditor@example.com")
    transport = transport_from_settings(settings(transport="ses"), ses_client=client)
    assert isinstance(transport, SesTransport)
    result = send_with_retry(transport, message(report), sender="auditor@example.com", recipients=RECIPIENTS,
                             sleep=lambda s: None)
    (sent,) = ses_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"].sent_messages
    assert result.status == "sent" and result.message_id == sent.id
    assert sent.source == "auditor@example.com"
    assert set(RECIPIENTS) <= set(sent.destinations)
    import email as email_lib
    import email.policy
    assert_report_mail(email_lib.message_from_string(sent.raw_data, policy=email.policy.default), report[2])


def test_ses_rejection_is_a_failed_delivery_not_a_crash(report, aws):
    client = boto3.client("ses", region_name="eu-west-1")  # the sender is not verified: MessageRejected
    result = send_with_retry(SesTransport(client), message(report), sender="auditor@example.com",
                             recipients=RECIPIENTS, attempts=3, sleep=lambda s: pytest.fail("not transient"))
    assert result.status == "failed" and result.attempts == 1
    assert "MessageRejected" in result.error
    assert ses_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"].sent_messages == []


def test_ses_transport_from_config_in_a_suite_run(tmp_path, aws):
    boto3.client("ses", region_name="eu-west-1").verify_email_identity(EmailAddress="auditor@example.com")
    cfg = suite_config(tmp_path, port=25, email_extra="\n  transport: ses\n  ses_region: eu-west-1")
    ran = run_suite(load_config(cfg), "weekly", deliver=True, clock=lambda: NOW, formats=("json", "pdf"))
    (sent,) = ses_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"].sent_messages
    assert ran.delivery.status == "sent" and ran.delivery.transport == "ses"
    assert "Weekly network audit 2026-11-09..2026-11-16" in sent.raw_data
    pdf_b64 = base64.b64encode((ran.outcome.out_dir / "report.pdf").read_bytes()[:300]).decode()[:60]
    assert pdf_b64 in sent.raw_data.replace("\n", "")
