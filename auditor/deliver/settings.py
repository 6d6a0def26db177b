"""Config models of suites, the scheduler and email. ``auditor.config`` assembles them; do not import it here.

Everything that can be checked without running anything is checked here, so a mistake is a
``config.yaml:line:col`` error at load time rather than a daemon that fires on the wrong day.
"""

from __future__ import annotations

import re
import string
from typing import Literal, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import Field, field_validator, model_validator

from auditor.configbase import Strict
from auditor.registry import did_you_mean
from auditor.timeparse import parse_duration

# What a subject template may name; each is a plain value (no attribute or index access).
SUBJECT_FIELDS = ("title", "suite", "since", "until", "findings", "critical", "high", "medium", "low", "info",
                  "new", "resolved", "errors", "no_data", "run_id")
DEFAULT_SUBJECT = "[auditor] {title} {since}..{until}: {high} high, {new} new"

# cron numbers days of the week from Sunday=0 (7 is Sunday too); these are its names for 0..7.
_CRON_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+$")


def _address(value: str, what: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"{what} {value!r} is not an e-mail address like ops@example.com")
    return value


class SuiteSpec(Strict):
    """A report suite: which checks, when, over which window, to whom."""

    schedule: str = Field(description="A cron expression (minute hour day month day-of-week), read in `timezone`; "
                                      "days of the week by name (mon-fri), never by number.")
    timezone: str = Field("UTC", description="The IANA time zone the schedule is read in, e.g. Europe/Berlin.")
    title: Optional[str] = Field(None, max_length=120, description="The report's name in the subject and the mail; "
                                                                   "default: the suite's name.")
    checks: Optional[tuple[str, ...]] = Field(None, description="The checks to run; default: every configured check.")
    window_days: int = Field(7, ge=1, le=366, description="The window: the last N whole UTC days before the run.")
    recipients: tuple[str, ...] = Field((), description="Who gets the report and the failure notices.")
    send: Literal["always", "on_change", "on_findings"] = Field(
        "always", description="When to mail: always; on_change (a finding is new or resolved); on_findings (any "
                              "active finding). A run with an errored check is always mailed.")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        check_cron(v)
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}{did_you_mean(v, available_timezones())}; "
                             "use an IANA name such as UTC or Europe/Berlin") from None
        return v

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_address(r, "recipient") for r in v)

    @field_validator("title")
    @classmethod
    def _one_line(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and ("\n" in v or "\r" in v):
            raise ValueError("the title goes into the subject line: it must be one line")
        return v


def check_cron(expr: str) -> None:
    """Raise ValueError unless ``expr`` is a five-field cron that APScheduler 3 reads the way cron does.

    Two places where APScheduler 3's CronTrigger differs from cron are refused rather than guessed:
    - day-of-week numbers: APScheduler 3 counts Monday as 0, cron counts Sunday as 0, so ``0 6 * * 1`` would
      fire on Tuesdays (https://apscheduler.readthedocs.io/en/3.x/modules/triggers/cron.html, and the warning
      on ``CronTrigger.from_crontab``);
    - a restricted day of month *and* day of week: cron fires when either matches, APScheduler when both do.
    """
    from apscheduler.triggers.cron import CronTrigger

    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"{expr!r} has {len(fields)} fields; a cron schedule has 5: minute hour day month day-of-week "
                         "(for example '0 6 * * mon')")
    minute, hour, day, month, dow = fields
    if any(ch.isdigit() for ch in dow):
        names = _dow_names(dow)
        fix = " ".join([minute, hour, day, month, names]) if names else None
        hint = f"; write {fix!r}" if fix else "; write days by name: mon, tue, wed, thu, fri, sat, sun, ranges like mon-fri"
        raise ValueError(f"day of week {dow!r} is a number: cron counts Sunday as 0 but APScheduler 3 counts Monday as 0, "
                         f"so it would fire on the wrong day{hint}")
    if day not in ("*", "?") and dow not in ("*", "?"):
        raise ValueError(f"{expr!r} restricts both the day of month ({day}) and the day of week ({dow}): cron fires "
                         "when either matches, APScheduler 3 only when both do; set one of them to '*' "
                         "(or use two suites)")
    try:
        CronTrigger.from_crontab(expr, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"{expr!r} is not a valid schedule: {exc}") from None


def _dow_names(field: str) -> str | None:
    """A numeric cron day-of-week field as names (cron's meaning: 0 and 7 are Sunday), or None if unreadable."""
    days: set[int] = set()  # 0 = mon .. 6 = sun
    for part in field.split(","):
        m = re.fullmatch(r"(\*|\d+)(?:-(\d+))?(?:/(\d+))?", part)
        if not m:
            return None
        start, end, step = m.group(1), m.group(2), int(m.group(3) or 1)
        if start == "*":
            lo, hi = 0, 6
        else:
            lo = int(start)
            hi = int(end) if end is not None else (7 if m.group(3) else lo)
        if not (0 <= lo <= 7 and 0 <= hi <= 7 and lo <= hi and step >= 1):
            return None
        for n in range(lo, hi + 1, step):
            days.add(_WEEK.index(_CRON_DAY_NAMES[n]))
    return _compress(sorted(days))


def _compress(days: list[int]) -> str:
    runs: list[list[int]] = []
    for d in days:
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    parts = [(_WEEK[r[0]] if len(r) == 1 else f"{_WEEK[r[0]]}-{_WEEK[r[-1]]}") for r in runs]
    return ",".join(parts)


class SmtpSettings(Strict):
    host: str = Field(description="SMTP server host.")
    port: Optional[int] = Field(None, ge=1, le=65535, description="SMTP port; default 587 for starttls, 465 for tls, "
                                                                  "25 for none.")
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls (RFC 3207, usually port 587), tls (implicit TLS, RFC 8314, usually 465) "
                                "or none.")
    username_env: Optional[str] = Field(None, description="The environment variable holding the SMTP user name "
                                                          "(never the value itself).")
    password_env: Optional[str] = Field(None, description="The environment variable holding the SMTP password.")

    @field_validator("username_env", "password_env")
    @classmethod
    def _env_name(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError(f"{v!r} is not an environment variable name (name the variable, do not paste its value)")
        return v

    @model_validator(mode="after")
    def _credentials(self) -> "SmtpSettings":
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("set both username_env and password_env, or neither")
        if self.username_env is not None and self.security == "none":
            raise ValueError("security: none would send the SMTP password in clear text; use starttls or tls")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.security]


class EmailSettings(Strict):
    transport: Literal["smtp", "ses"] = Field("smtp", description="How mail is sent: smtp, or ses (Amazon SES "
                                                                  "SendRawEmail, with the standard boto3 credentials).")
    sender: str = Field("auditor@localhost", description="The From address (for SES, a verified identity).")
    smtp: Optional[SmtpSettings] = Field(None, description="SMTP settings (transport: smtp).")
    ses_region: Optional[str] = Field(None, description="The SES region (transport: ses); default: the boto3 "
                                                        "default region.")
    subject: str = Field(DEFAULT_SUBJECT, description="The subject template. Fields: "
                                                      + ", ".join("{%s}" % f for f in SUBJECT_FIELDS) + ".")
    max_bytes: int = Field(10 * 1000**2, ge=1000, description="Largest encoded message; over it the PDF is linked, "
                                                              "not attached. Default: SES's 10 MB limit.")
    attempts: int = Field(3, ge=1, le=10, description="Tries per message before the delivery counts as failed.")
    retry_backoff: str = Field("10s", description="The wait before the second try; it doubles for each further try.")

    @field_validator("sender")
    @classmethod
    def _sender(cls, v: str) -> str:
        return _address(v, "sender")

    @field_validator("subject")
    @classmethod
    def _subject(cls, v: str) -> str:
        if "\n" in v or "\r" in v:
            raise ValueError("the subject must be one line")
        try:
            parts = list(string.Formatter().parse(v))
        except ValueError as exc:
            raise ValueError(f"the subject template {v!r} is malformed: {exc} (write a literal brace as {{{{ or }}}})") from None
        for _, name, spec, conversion in parts:
            if name is None:
                continue
            if name not in SUBJECT_FIELDS:
                raise ValueError(f"unknown subject field {{{name}}}{did_you_mean(name, SUBJECT_FIELDS)}; "
                                 f"known: {', '.join(SUBJECT_FIELDS)}")
            if conversion or (spec and not re.fullmatch(r"[<>^]?\d*", spec)):
                raise ValueError(f"subject field {{{name}}}: only a width/alignment like {{{name}:>3}} is allowed")
        return v

    @field_validator("retry_backoff")
    @classmethod
    def _backoff(cls, v: str) -> str:
        parse_duration(v)
        return v

    @model_validator(mode="after")
    def _transport_settings(self) -> "EmailSettings":
        if self.transport == "smtp" and self.smtp is None:
            raise ValueError("transport: smtp needs an smtp: {host: ...} section")
        return self


class ScheduleSettings(Strict):
    misfire_grace: str = Field("6h", description="A run missed while the host was down runs once on restart within "
                                                 "this time; later than that, the recipients get a failure notice.")
    heartbeat_url: Optional[str] = Field(None, description="A URL pinged (GET) after each successful delivered run.")

    @field_validator("misfire_grace")
    @classmethod
    def _grace(cls, v: str) -> str:
        if parse_duration(v).total_seconds() < 1:
            raise ValueError("misfire_grace must be at least 1s")
        return v

    @field_validator("heartbeat_url")
    @classmethod
    def _url(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not re.match(r"^https?://[^\s]+$", v):
            raise ValueError(f"heartbeat_url {v!r} must be an http:// or https:// URL")
        return v
