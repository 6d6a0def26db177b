"""Parsing the times users type (``--since``/``--until``, ``window:``) and the default window."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

from auditor.models import TimeWindow

_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION_HELP = "a duration like 90d, 24h, 30m or 2w"
_TIME_HELP = "an ISO 8601 time (2026-11-09T00:00:00Z), a date (2026-11-09) or a relative time (7d, 24h)"


# Bounds that no audit needs to cross, so that no arithmetic on a window can overflow: flow logs and CloudTrail
# hold Unix times, so nothing before 1970; a duration of a century is already far past any retention.
MAX_DURATION = timedelta(days=36_525)
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(3000, 1, 1, tzinfo=timezone.utc)


def parse_duration(text: str) -> timedelta:
    """``7d`` -> 7 days. Units: s, m, h, d, w. At most :data:`MAX_DURATION` (100 years)."""
    m = _RELATIVE.match(str(text))
    if not m:
        raise ValueError(f"'{text}' is not {_DURATION_HELP}")
    number, unit = int(m.group(1)), _UNITS[m.group(2)]
    if number > MAX_DURATION / timedelta(**{unit: 1}):
        raise ValueError(f"'{text}' is longer than 100 years (36525d); give {_DURATION_HELP}")
    return timedelta(**{unit: number})


def parse_time(text: str | datetime | date, now: datetime) -> datetime:
    """An ISO 8601 time (no zone means UTC), a date (its 00:00 UTC), or a relative time (now minus it)."""
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=timezone.utc)
    if isinstance(text, date):
        return datetime.combine(text, time(), tzinfo=timezone.utc)
    s = str(text).strip()
    if _RELATIVE.match(s):
        return now - parse_duration(s)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            return datetime.combine(date.fromisoformat(s), time(), tzinfo=timezone.utc)
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"'{text}' is not {_TIME_HELP}") from None
    return dt.astimezone(timezone.utc) if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def default_window(now: datetime, days: int = 7) -> TimeWindow:
    """The last ``days`` whole UTC days, ending at the most recent UTC midnight."""
    until = datetime.combine(now.astimezone(timezone.utc).date(), time(), tzinfo=timezone.utc)
    return TimeWindow(until - timedelta(days=days), until)


def resolve_window(since: str | datetime | None, until: str | datetime | None, now: datetime,
                   configured: tuple[str | datetime | None, str | datetime | None] | None = None) -> TimeWindow:
    """The run's window from the command line, else the config's ``window``, else the default.

    ``--since`` alone means until now. Raises ValueError (a usage error) when since >= until.
    """
    if since is None and until is None and configured and any(v is not None for v in configured):
        since, until = configured
    if since is None and until is None:
        return default_window(now)
    end = parse_time(until, now) if until is not None else now
    start = parse_time(since, now) if since is not None else end - timedelta(days=7)
    for flag, t in (("--since", start), ("--until", end)):
        if not EARLIEST <= t <= LATEST:
            raise ValueError(f"{flag} {t.date().isoformat()} is outside 1970-01-01..3000-01-01: flow logs and "
                             "CloudTrail hold Unix times, and no window needs to reach further")
    if start >= end:
        raise ValueError(f"--since ({start.isoformat()}) must be before --until ({end.isoformat()})")
    return TimeWindow(start, end)
