"""The one formatting layer of what a person reads: times, spans, sizes, money, numbers, counts and plurals.

The report's view, the mail, the run's data-quality notes and the engines' messages all format through here, so
a size or a time reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from auditor.models import utc


def when(dt: datetime) -> str:
    return utc(dt).strftime("%Y-%m-%d %H:%M:%S UTC")


def short_when(dt: datetime) -> str:
    dt = utc(dt)
    return dt.strftime("%Y-%m-%d") if (dt.hour, dt.minute, dt.second) == (0, 0, 0) else dt.strftime("%Y-%m-%d %H:%M")


def span(seconds: float) -> str:
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute"), (secs, "second")]
    words = [f"{n} {unit}{plural_s(n)}" for n, unit in parts if n]
    return " ".join(words[:2]) or "0 seconds"


def seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs} s"


def size(n: int) -> str:
    """``1.5 GB``: decimal units, as AWS reports and bills bytes (Athena's data scanned)."""
    if n < 1000:
        return f"{n:,} B"
    units = ("KB", "MB", "GB", "TB")
    value, index = n / 1000, 0
    while value >= 1000 and index < len(units) - 1:
        value, index = value / 1000, index + 1
    return f"{value:.1f} {units[index]}"


def plain(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def plural_s(n: int) -> str:
    return "" if n == 1 else "s"


def count(n: int, noun: str, plural: str = "") -> str:
    """``3 files``; ``plural`` for a noun that does not take an s (``files or folders``)."""
    if plural:
        return f"{n:,} {noun if n == 1 else plural}"
    return f"{n:,} {noun}{plural_s(n)}"


def number(value: float | Decimal) -> str:
    if value != value:  # NaN
        return "NaN"
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    if abs(number) >= 1:
        # Counts, rates and averages: two decimals are plenty, and no scientific notation.
        return f"{number:.2f}".rstrip("0").rstrip(".")
    return f"{number:.4g}"


def listing(values: Sequence[str]) -> str:
    return ", ".join(values) if values else "not recorded"


def usd(amount: float) -> str:
    """``$0.0123`` below a dollar, ``$12.34`` from one."""
    return f"${amount:,.4f}" if amount < 1 else f"${amount:,.2f}"


def ratio(value: float) -> str:
    """A multiple, as in "scanned 1.1× the window": one decimal below 10, whole numbers from there."""
    return f"{value:.1f}×" if value < 10 else f"{value:.0f}×"
