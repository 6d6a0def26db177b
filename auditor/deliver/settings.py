"""Config models of suites, the scheduler and email. ``auditor.config`` assembles them; do not import it here."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from auditor.configbase import Strict


class SuiteSpec(Strict):
    """A report suite: which checks, when, over which window, to whom."""

    schedule: str = Field(description="A cron expression (minute hour day month day-of-week); days of week by name (mon-sun).")
    timezone: str = Field("UTC", description="The time zone the schedule is read in.")
    checks: Optional[tuple[str, ...]] = Field(None, description="The checks to run; default every configured check.")
    window_days: int = Field(7, ge=1, le=366, description="The window: the last N whole UTC days before the run.")
    recipients: tuple[str, ...] = Field((), description="Who gets the report.")
    send: Literal["always", "on_change", "on_findings"] = Field("always", description="When to mail.")


class SmtpSettings(Strict):
    host: str = Field(description="SMTP server host.")
    port: int = Field(587, ge=1, le=65535, description="SMTP port.")
    security: Literal["starttls", "tls", "none"] = Field("starttls", description="STARTTLS, implicit TLS, or none.")
    username_env: Optional[str] = Field(None, description="The environment variable holding the SMTP user name.")
    password_env: Optional[str] = Field(None, description="The environment variable holding the SMTP password.")


class EmailSettings(Strict):
    transport: Literal["smtp", "ses"] = Field("smtp", description="How mail is sent.")
    sender: str = Field("auditor@localhost", description="The From address.")
    smtp: Optional[SmtpSettings] = Field(None, description="SMTP settings (transport: smtp).")
    subject: str = Field("[auditor] {suite} {since}..{until}: {high} high, {new} new",
                         description="The subject template.")
    max_bytes: int = Field(10 * 1000**2, ge=1000, description="Largest encoded message; over it the PDF is linked, not attached.")


class ScheduleSettings(Strict):
    misfire_grace: str = Field("6h", description="A run missed while the host was down runs on restart within this time.")
    heartbeat_url: Optional[str] = Field(None, description="A URL pinged (GET) after each successful run.")
