from datetime import datetime, timezone

import pytest

from auditor.models import TimeWindow
from auditor.timeparse import default_window, parse_duration, parse_time, resolve_window

NOW = datetime(2026, 11, 23, 9, 30, 15, tzinfo=timezone.utc)
UTC = timezone.utc


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-09T00:00:00Z", datetime(2026, 11, 9, tzinfo=UTC)),
    ("2026-11-09T01:00:00+01:00", datetime(2026, 11, 9, tzinfo=UTC)),
    ("2026-11-09T06:30:00", datetime(2026, 11, 9, 6, 30, tzinfo=UTC)),  # no zone means UTC
    ("2026-11-09", datetime(2026, 11, 9, tzinfo=UTC)),
    ("7d", datetime(2026, 11, 16, 9, 30, 15, tzinfo=UTC)),
    ("24h", datetime(2026, 11, 22, 9, 30, 15, tzinfo=UTC)),
])
def test_parse_time(text, expected):
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "7 days", ""])
def test_parse_time_rejects_with_the_accepted_forms(bad):
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time(bad, NOW)


def test_default_window_is_last_7_whole_utc_days():
    w = default_window(NOW)
    assert w == TimeWindow(datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))


def test_since_alone_means_until_now():
    w = resolve_window("2026-11-20", None, NOW)
    assert w.since == datetime(2026, 11, 20, tzinfo=UTC) and w.until == NOW


def test_configured_window_applies_only_without_flags():
    configured = ("2026-11-01", "2026-11-08")
    assert resolve_window(None, None, NOW, configured).until == datetime(2026, 11, 8, tzinfo=UTC)
    assert resolve_window("2026-11-20", None, NOW, configured).until == NOW


def test_since_not_before_until_is_an_error():
    with pytest.raises(ValueError, match="must be before"):
        resolve_window("2026-11-10", "2026-11-10", NOW)


def test_window_is_half_open():
    w = TimeWindow(datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC))
    assert w.contains(datetime(2026, 11, 9, tzinfo=UTC))
    assert not w.contains(datetime(2026, 11, 10, tzinfo=UTC))
    assert w.until_s - w.since_s == 86400


def test_durations():
    assert parse_duration("90d").days == 90
    with pytest.raises(ValueError):
        parse_duration("90")
