"""The one clock. Every stage that needs the time takes a ``clock`` argument defaulting to :func:`utcnow`, so
tests (and the scheduler) inject their own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(timezone.utc)
