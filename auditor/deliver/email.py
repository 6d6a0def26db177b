"""The report by email: the MIME message, the transports (SMTP, Amazon SES) and retries with backoff.

The message is ``multipart/mixed``: a ``multipart/alternative`` (plain text, then HTML, both rendered from
the report's own view model, so the numbers match the PDF) and the PDF. The *encoded* size is compared
with ``email.max_bytes``; over it the PDF is left out and linked instead.

Nothing here reads the clock, the environment or AWS credentials on its own: the clock, the environment
mapping, the SSL context and the boto3 client come in as arguments.
"""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Protocol

import jinja2

from auditor import formatting as fmt
from auditor.aws import AwsSessions
from auditor.clock import utcnow
from auditor.config import AwsSettings, EmailSettings, SmtpSettings
from auditor.errors import DeliveryError, RenderError
from auditor.models import Change, RunRecord, Severity, iso_z, utc
from auditor.render.html import make_environment

log = logging.getLogger(__name__)

# A SigV4 presigned URL lives at most 7 days, and no longer than the credentials that signed it (a role
# session's URL dies with the session): https://docs.aws.amazon.com/AmazonS3/latest/userguide/ShareObjectPreSignedURL.html
PRESIGNED_MAX = timedelta(days=7)
HTML_TEMPLATE, TEXT_TEMPLATE = "email.html", "email.txt"
NOTICE_HTML_TEMPLATE, NOTICE_TEXT_TEMPLATE = "notice.html", "notice.txt"


# ---------------------------------------------------------------------------------------------- the message


@dataclass(frozen=True)
class PdfLink:
    """Where the archived PDF can be fetched when it is too large to attach."""

    url: str  # a URL, or (``local``) the archived PDF's path on the archiving host
    expires_at: datetime | None = None  # None: the link does not expire (a long-lived identity, a file share)
    presigned: bool = False
    local: bool = False  # a path in a local archive, not something the reader can open from the mail
    run_id: str = ""


@dataclass(frozen=True)
class PdfView:
    """What the mail says about the PDF."""

    attached: bool
    name: str
    size: str  # "1.4 MB", "" when there is no PDF
    note: str  # one sentence: why it is not attached, where it is instead; "" when attached
    link: str = ""
    link_note: str = ""  # how long the link lives


@dataclass(frozen=True)
class EmailView:
    """Everything the mail templates place. ``report`` is the report's own view model (auditor.render.view)."""

    report: Any
    suite: str
    title: str
    subject: str
    pdf: PdfView
    location: str  # where the full report is kept, "" when unknown


@dataclass(frozen=True)
class BuiltMessage:
    message: EmailMessage
    size: int  # encoded bytes, headers included
    attached: bool


def subject_fields(record: RunRecord, *, suite: str, title: str) -> dict[str, Any]:
    """The values a subject template may use: counts of active findings by severity, new, resolved, the window."""
    active = [f for c in record.checks for f in c.active_findings]
    counts = {s.value: sum(1 for f in active if f.severity is s) for s in Severity}
    return {"title": title, "suite": suite, "since": record.window.since.date().isoformat(),
            "until": record.window.until.date().isoformat(), "findings": len(active), **counts,
            "new": sum(1 for f in active if f.change is Change.NEW),
            "escalated": sum(1 for f in active if f.change is Change.ESCALATED),
            "de_escalated": sum(1 for f in active if f.change is Change.DE_ESCALATED),
            "window": fmt.window(record.window.since, record.window.until),
            "compared_with": fmt.compared_with(record.previous_window) if record.previous_window else "no earlier run",
            "resolved": sum(len(c.resolved) for c in record.checks),
            "errors": sum(1 for c in record.checks if c.status.value == "error"),
            "no_data": len(record.no_data), "run_id": record.id}


def render_subject(template: str, fields: Mapping[str, Any]) -> str:
    """The subject line. The template was validated at config load (known fields only, no attribute access).

    A run with checks that had no data says so first, whatever the template: "0 high" over no data would be
    false assurance in the one line everyone reads."""
    subject = " ".join(template.format_map(fields).split())
    if fields.get("no_data"):
        subject = f"NO DATA ({fields['no_data']} {'check' if fields['no_data'] == 1 else 'checks'}): {subject}"
    return subject


def _environments(dirs: Sequence[Path]) -> tuple[jinja2.Environment, jinja2.Environment]:
    """The HTML environment is the report's (autoescape always on: finding titles come from logs an
    attacker can write to); the plain-text one does not escape, because nothing interprets plain text."""

    html_env = make_environment(dirs)
    text_env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(d) for d in dirs]), autoescape=False,
                                  undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                                  keep_trailing_newline=True)
    return html_env, text_env


def _pdf_view(pdf: bytes | None, name: str, *, attach: bool, limit: int, link: PdfLink | None,
              location: str, run_id: str = "") -> PdfView:
    if pdf is None:
        return PdfView(False, name, "", "This run has no PDF: it was not requested (--format), or it could not be "
                                        "written (see the run's errors).")
    if attach:
        return PdfView(True, name, fmt.size(len(pdf)), "")
    note = (f"The PDF ({fmt.size(len(pdf))}) is not attached: the message would exceed the {fmt.size(limit)} limit "
            "(email.max_bytes).")
    if link is None:
        run = f" of run {run_id}" if run_id else ""
        where = (f" It was not archived (the config has no archive: section); the report{run} is on the host that "
                 f"ran the audit, in {location}." if location else " It was not archived.")
        return PdfView(False, name, fmt.size(len(pdf)), note + where)
    if link.local:
        return PdfView(False, name, fmt.size(len(pdf)), note + f" It is archived as run {link.run_id} at {link.url} "
                                                              "on the archiving host.")
    if link.presigned:
        until = f" It expires at {iso_z(link.expires_at)}" if link.expires_at else " It expires within 7 days"
        link_note = (f"This is a presigned S3 link.{until}, or earlier if it was signed with temporary credentials "
                     "(it lives no longer than the session that signed it); after that, fetch the PDF from the archive.")
    else:
        link_note = f"The link expires at {iso_z(link.expires_at)}." if link.expires_at else ""
    return PdfView(False, name, fmt.size(len(pdf)), note + " Download it from the archive:", link.url, link_note)


def build_message(record: RunRecord, report_view: Any, *, settings: EmailSettings, suite: str, title: str,
                  recipients: Sequence[str], template_dirs: Sequence[Path], pdf: bytes | None,
                  pdf_name: str = "report.pdf", pdf_link: PdfLink | None = None, location: str = "",
                  now: datetime | None = None) -> BuiltMessage:
    """The report mail: summary in HTML and plain text, the PDF attached when the encoded message fits
    ``settings.max_bytes``, else linked (or its location named)."""
    now = utc(now or record.finished_at)
    subject = render_subject(settings.subject, subject_fields(record, suite=suite, title=title))
    html_env, text_env = _environments(template_dirs)
    sender_domain = settings.sender.rsplit("@", 1)[-1]
    message_id = make_msgid(idstring=f"auditor.{record.id}", domain=sender_domain)

    def build(attach: bool) -> BuiltMessage:
        view = EmailView(report=report_view, suite=suite, title=title, subject=subject, location=location,
                         pdf=_pdf_view(pdf, pdf_name, attach=attach, limit=settings.max_bytes, link=pdf_link,
                                       location=location, run_id=record.id))
        msg = _envelope(settings.sender, recipients, subject, now, message_id)
        msg["X-Auditor-Run"] = record.id
        msg["X-Auditor-Suite"] = suite
        _bodies(msg, view, html_env, text_env, HTML_TEMPLATE, TEXT_TEMPLATE)
        if attach and pdf is not None:
            msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=pdf_name)
        return BuiltMessage(msg, wire_size(msg), attach and pdf is not None)

    built = build(attach=pdf is not None)
    if built.size > settings.max_bytes and built.attached:
        log.info("message with the PDF is %d bytes, over email.max_bytes %d: linking it instead", built.size,
                 settings.max_bytes)
        built = build(attach=False)
    return built


@dataclass(frozen=True)
class NoticeView:
    suite: str
    title: str
    subject: str
    headline: str  # one sentence: what went wrong
    details: tuple[tuple[str, str], ...]  # label/value pairs
    action: str  # what the reader can do


def build_notice(*, settings: EmailSettings, suite: str, title: str, recipients: Sequence[str], headline: str,
                 details: Sequence[tuple[str, str]], action: str, template_dirs: Sequence[Path],
                 now: datetime) -> BuiltMessage:
    """A failure notice: a run failed, was missed beyond the grace time, or was interrupted."""
    subject = " ".join(f"[auditor] FAILED: {title}: {headline}".split())[:200]
    html_env, text_env = _environments(template_dirs)
    msg = _envelope(settings.sender, recipients, subject, utc(now),
                    make_msgid(idstring="auditor.notice", domain=settings.sender.rsplit("@", 1)[-1]))
    msg["X-Auditor-Suite"] = suite
    view = NoticeView(suite=suite, title=title, subject=subject, headline=headline, details=tuple(details), action=action)
    _bodies(msg, view, html_env, text_env, NOTICE_HTML_TEMPLATE, NOTICE_TEXT_TEMPLATE)
    return BuiltMessage(msg, wire_size(msg), False)


def wire_size(msg: EmailMessage) -> int:
    """The encoded size as sent: base64 parts and CRLF line ends (RFC 5322), headers included."""
    return len(msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")))


def _envelope(sender: str, recipients: Sequence[str], subject: str, now: datetime, message_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(utc(now))
    msg["Message-ID"] = message_id
    # RFC 3834: mail sent by a program, so auto-responders do not answer it.
    msg["Auto-Submitted"] = "auto-generated"
    return msg


def _bodies(msg: EmailMessage, view: Any, html_env: jinja2.Environment, text_env: jinja2.Environment,
            html_name: str, text_name: str) -> None:

    try:
        text = text_env.get_template(text_name).render(mail=view)
        html = html_env.get_template(html_name).render(mail=view)
    except jinja2.TemplateError as exc:
        raise RenderError(f"could not render the mail ({text_name}/{html_name}): {exc}") from exc
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")


def presigned_pdf_link(s3_client: Any, bucket: str, key: str, *, now: datetime,
                       expires: timedelta = PRESIGNED_MAX) -> PdfLink:
    """A presigned GET link to an archived PDF, capped at SigV4's 7 days."""
    lifetime = min(expires, PRESIGNED_MAX)
    url = s3_client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                           ExpiresIn=int(lifetime.total_seconds()))
    return PdfLink(url=url, expires_at=utc(now) + lifetime, presigned=True)


# ----------------------------------------------------------------------------------------------- transports


class Transport(Protocol):
    """Sends one message. Raises on failure; ``send_with_retry`` decides whether to try again."""

    name: str

    def send(self, message: EmailMessage, *, sender: str, recipients: Sequence[str]) -> str:
        """Send and return the server's message ID (or its reply)."""
        ...


class SmtpTransport:
    """SMTP with STARTTLS (RFC 3207), implicit TLS (RFC 8314) or neither; AUTH when credentials are given."""

    name = "smtp"

    def __init__(self, host: str, port: int, security: str = "starttls", *, username: str | None = None,
                 password: str | None = None, ssl_context: ssl.SSLContext | None = None, timeout: float = 30.0) -> None:
        if security not in ("starttls", "tls", "none"):
            raise ValueError(f"unknown SMTP security {security!r}")
        self.host, self.port, self.security = host, port, security
        self.username, self.password = username, password
        self.ssl_context = ssl_context
        self.timeout = timeout

    @classmethod
    def from_settings(cls, smtp: SmtpSettings, *, environ: Mapping[str, str] | None = None,
                      ssl_context: ssl.SSLContext | None = None, timeout: float = 30.0) -> SmtpTransport:
        """Credentials come from the environment variables the config names, read now (never stored in config)."""
        env = os.environ if environ is None else environ
        username = password = None
        if smtp.username_env:
            missing = [n for n in (smtp.username_env, smtp.password_env) if n and not env.get(n)]
            if missing:
                raise DeliveryError(f"SMTP credentials: environment variable {' and '.join(missing)} is not set")
            username, password = env[smtp.username_env], env[smtp.password_env or ""]
        return cls(smtp.host, smtp.effective_port, smtp.security, username=username, password=password,
                   ssl_context=ssl_context, timeout=timeout)

    def _context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()

    def send(self, message: EmailMessage, *, sender: str, recipients: Sequence[str]) -> str:
        if self.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context())
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with client:
            client.ehlo()
            if self.security == "starttls":
                # Refuse to go on in clear text when the server does not offer STARTTLS: smtplib would only
                # raise at starttls(), but say so plainly.
                if not client.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError(f"{self.host}:{self.port} does not offer STARTTLS")
                client.starttls(context=self._context())
                client.ehlo()
            if self.username is not None:
                client.login(self.username, self.password or "")
            refused = client.send_message(message, from_addr=sender, to_addrs=list(recipients))
        if refused:
            # Some recipients took the message, so trying again would send them a second copy: report the
            # others as a failure that is not retried.
            raise DeliveryError("delivered only in part; refused: "
                                + ", ".join(f"{r} ({code})" for r, (code, _) in sorted(refused.items())))
        return str(message["Message-ID"])


class SesTransport:
    """Amazon SES SendRawEmail through an injected boto3 ``ses`` client."""

    name = "ses"

    def __init__(self, client: Any) -> None:
        self.client = client

    def send(self, message: EmailMessage, *, sender: str, recipients: Sequence[str]) -> str:
        # https://docs.aws.amazon.com/ses/latest/APIReference/API_SendRawEmail.html: Destinations overrides the
        # To/Cc/Bcc headers as the envelope; RawMessage.Data is the whole MIME message.
        response = self.client.send_raw_email(Source=sender, Destinations=list(recipients),
                                              RawMessage={"Data": message.as_bytes()})
        return str(response["MessageId"])


def transport_from_settings(settings: EmailSettings, *, environ: Mapping[str, str] | None = None,
                            ses_client: Any = None, aws_profile: str | None = None,
                            ssl_context: ssl.SSLContext | None = None, base_dir: Path | None = None) -> Transport:
    """The configured transport. An SES client is created only when none is injected. ``base_dir`` resolves a
    relative ``email.smtp.ca_file`` (the config's folder)."""
    if settings.transport == "ses":
        if ses_client is None:
            ses_client = AwsSessions(AwsSettings(profile=aws_profile)).client("ses", settings.ses_region)
        return SesTransport(ses_client)
    assert settings.smtp is not None  # EmailSettings guarantees it for transport: smtp
    if ssl_context is None and settings.smtp.ca_file is not None:
        ssl_context = ca_context(settings.smtp.ca_file if base_dir is None else base_dir / settings.smtp.ca_file)
    return SmtpTransport.from_settings(settings.smtp, environ=environ, ssl_context=ssl_context)


def ca_context(ca_file: Path) -> ssl.SSLContext:
    """A client TLS context that trusts only the CAs in ``ca_file`` (host names are still checked)."""
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise DeliveryError(f"email.smtp.ca_file {ca_file}: not a readable PEM file of CA certificates: {exc}") from None


# ------------------------------------------------------------------------------------------------- retries


@dataclass(frozen=True)
class DeliveryResult:
    """How one message fared. ``status``: sent, failed, or skipped (the suite's ``send`` said not to)."""

    status: str
    transport: str = ""
    recipients: tuple[str, ...] = ()
    attempts: int = 0
    error: str | None = None
    message_id: str | None = None
    size: int | None = None
    attached: bool = False
    reason: str = ""  # why it was skipped
    at: datetime | None = None
    errors: tuple[str, ...] = field(default=(), compare=False)  # every attempt's error, oldest first

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "transport": self.transport, "recipients": list(self.recipients),
                "attempts": self.attempts, "error": self.error, "message_id": self.message_id, "size": self.size,
                "attached": self.attached, "reason": self.reason, "at": iso_z(self.at) if self.at else None,
                "errors": list(self.errors)}


_TRANSIENT_AWS = {"Throttling", "ThrottlingException", "ServiceUnavailable", "InternalFailure", "RequestTimeout",
                  "RequestTimeoutException", "TooManyRequestsException"}


def is_transient(exc: BaseException) -> bool:
    """Worth another try: the connection failed, or the server said 4xx (RFC 5321 section 4.2.1) or throttled.
    A 5xx reply, a refused login, a bad certificate or a missing credential will not get better by waiting."""
    if isinstance(exc, DeliveryError):
        return False
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True
    if isinstance(exc, (ssl.SSLCertVerificationError, smtplib.SMTPNotSupportedError)):
        return False
    if isinstance(exc, (ConnectionError, socket.timeout, TimeoutError, socket.gaierror)):
        return True
    try:
        from botocore.exceptions import ClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return isinstance(exc, OSError)
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code") in _TRANSIENT_AWS
    if isinstance(exc, BotoConnectionError):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError)


def describe(exc: BaseException) -> str:
    """One line for the run record and the next report; never includes credentials."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "recipients refused: " + ", ".join(f"{r} ({c})" for r, (c, _) in sorted(exc.recipients.items()))
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{type(exc).__name__}: {exc.smtp_code} {' '.join(text.split())}"
    return f"{type(exc).__name__}: {' '.join(str(exc).split()) or 'no detail'}"


def send_with_retry(transport: Transport, built: BuiltMessage, *, sender: str, recipients: Sequence[str],
                    attempts: int = 3, backoff: timedelta = timedelta(seconds=10),
                    sleep: Callable[[float], None] = time.sleep,
                    clock: Callable[[], datetime] = utcnow) -> DeliveryResult:
    """Send, trying again after ``backoff``, then twice that, and so on, while the failure is transient."""
    errors: list[str] = []
    tried = 0
    for attempt in range(1, attempts + 1):
        tried = attempt
        try:
            message_id = transport.send(built.message, sender=sender, recipients=recipients)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded; mail failing never loses the report
            errors.append(describe(exc))
            log.warning("mail via %s, attempt %d of %d failed: %s", transport.name, attempt, attempts, errors[-1])
            if attempt == attempts or not is_transient(exc):
                break
            sleep(backoff.total_seconds() * 2 ** (attempt - 1))
            continue
        return DeliveryResult("sent", transport.name, tuple(recipients), attempt, None, message_id, built.size,
                              built.attached, at=clock(), errors=tuple(errors))
    return DeliveryResult("failed", transport.name, tuple(recipients), tried, errors[-1], None, built.size,
                          built.attached, at=clock(), errors=tuple(errors))
