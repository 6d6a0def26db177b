"""A real SMTP server for tests (aiosmtpd, on a free loopback port), with STARTTLS, implicit TLS and AUTH,
and a self-signed certificate made with `cryptography`. Also inputs that make one small, real report."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.flowdata import record, write_config, write_flow_log, write_inventory

USER, PASSWORD = "auditor-bot", "s3cret-pass"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None
    tls: bool

    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class Inbox:
    messages: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        with self.cond:
            # session.ssl is set after STARTTLS; an implicit-TLS connection shows in its transport.
            tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content,
                                          login, tls))
            self.cond.notify_all()
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == (USER, PASSWORD)
        self.logins.append((mechanism, auth_data.login.decode() if isinstance(auth_data, LoginPassword) else ""))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def wait(self, count: int, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} messages, got {len(self.messages)}")
                self.cond.wait(left)
            return list(self.messages)


@dataclass
class Server:
    host: str
    port: int
    inbox: Inbox
    client_context: ssl.SSLContext | None  # trusts the test certificate


@contextmanager
def smtp_server(tmp_path: Path, *, security: str = "none", auth: bool = False) -> Iterator[Server]:
    """An aiosmtpd server. ``security``: none, starttls (required before AUTH and MAIL) or tls (implicit)."""
    inbox = Inbox()
    port = free_port()
    kwargs: dict = {}
    client_context = None
    if security != "none":
        cert, key = self_signed(tmp_path)
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(cert, key)
        client_context = ssl.create_default_context(cafile=str(cert))
        if security == "starttls":
            kwargs.update(tls_context=server_context, require_starttls=True)
        else:
            kwargs.update(ssl_context=server_context)
    if auth:
        # aiosmtpd does not count implicit TLS as TLS for AUTH, so only the STARTTLS server requires both.
        kwargs.update(authenticator=inbox.authenticate, auth_required=security == "starttls",
                      auth_require_tls=security == "starttls")
    controller = Controller(inbox, hostname="127.0.0.1", port=port, server_hostname="localhost", **kwargs)
    controller.start()
    try:
        yield Server("127.0.0.1", port, inbox, client_context)
    finally:
        controller.stop()


# --------------------------------------------------------------------------------- a small, real report

FLOW_FIELDS = ("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
               "packets", "bytes", "start", "end", "action", "log-status")


def write_report_inputs(root: Path) -> None:
    """Flow logs and an inventory that give one high finding (public MySQL) and one medium (a port scan)."""
    recs = [record(interface_id="eni-db", srcaddr=src, dstaddr="10.0.2.20", dstport=3306, srcport=50000 + i)
            for i, src in enumerate(["198.51.100.7", "203.0.113.4"])]
    recs += [record(interface_id="eni-web", srcaddr="198.51.100.66", dstaddr="10.0.1.10", dstport=p, action="REJECT",
                    srcport=40000 + p) for p in range(20, 32) for _ in range(2)]
    write_flow_log(root / "flows", recs)
    write_inventory(root / "inventory", {"eni-db": ["10.0.2.20"], "eni-web": ["10.0.1.10"]})


def suite_config(root: Path, *, port: int, security: str = "none", auth: bool = False, extra: str = "",
                 suite: str = "", email_extra: str = "", schedule: str = "0 6 * * mon", timezone: str = "Europe/Berlin",
                 checks: str = "[exposed_well_known_ports, top_rejected_sources]", top: str = "") -> Path:
    """A config with the inputs above, one suite `weekly` mailed over SMTP to two recipients."""
    write_report_inputs(root)
    creds = "\n    username_env: TEST_SMTP_USER\n    password_env: TEST_SMTP_PASS" if auth else ""
    body = f"""{top}
sources:
  flow_logs: flows
  inventory: inventory
checks:
  exposed_well_known_ports: {{}}
  top_rejected_sources: {{min_flows: 5, scan_ports: 10}}
  unused_security_groups: {{}}
email:
  sender: auditor@example.com
  attempts: 2
  retry_backoff: 0s{email_extra}
  smtp:
    host: 127.0.0.1
    port: {port}
    security: {security}{creds}
suites:
  weekly:
    title: Weekly network audit
    schedule: "{schedule}"
    timezone: {timezone}
    checks: {checks}
    recipients: [secops@example.com, cto@example.com]
{suite}{extra}"""
    return write_config(root, body)
