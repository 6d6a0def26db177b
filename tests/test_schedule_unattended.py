"""Issue 18, the daemon: the changes of daylight saving time (a time that happens twice fires once, a time that
does not exist is skipped, and `--list` never shows one), a second daemon on a locked state directory refused
in one line, and the health file that `auditor schedule --health` reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.config import load_config
from auditor.schedule import HEALTH_FILE, Daemon, SchedulerBusy, job_id, list_suites, read_health, trigger_for
from tests.support.smtp import suite_config

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 16, 6, 0, tzinfo=timezone.utc)


def fires(loaded, start: datetime, count: int) -> list[datetime]:
    trigger = trigger_for(loaded.config.suites["weekly"])
    out: list[datetime] = []
    previous, now = None, start
    while len(out) < count:
        fire = trigger.get_next_fire_time(previous, now)
        out.append(fire)
        previous, now = fire, fire + timedelta(microseconds=1)
    return out


def local_days(times: list[datetime]) -> list[date]:
    return [t.astimezone(BERLIN).date() for t in times]


def test_0230_berlin_fires_once_on_the_october_night(tmp_path):
    loaded = load_config(suite_config(tmp_path, port=25, schedule="30 2 * * *"))
    times = fires(loaded, datetime(2026, 10, 23, 12, tzinfo=timezone.utc), 4)
    # 25 October 2026: 03:00 CEST becomes 02:00 CET, so 02:30 happens at 00:30 and at 01:30 UTC.
    assert local_days(times) == [date(2026, 10, 24), date(2026, 10, 25), date(2026, 10, 26), date(2026, 10, 27)]
    assert times[1].astimezone(timezone.utc) == datetime(2026, 10, 25, 0, 30, tzinfo=timezone.utc)  # the first one
    assert all(t.astimezone(BERLIN).strftime("%H:%M") == "02:30" for t in times)


def test_0230_berlin_is_skipped_on_the_march_night_and_list_never_shows_it(tmp_path):
    cfg = suite_config(tmp_path, port=25, schedule="30 2 * * *")
    loaded = load_config(cfg)
    # 29 March 2026: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that night.
    times = fires(loaded, datetime(2026, 3, 27, 12, tzinfo=timezone.utc), 3)
    assert local_days(times) == [date(2026, 3, 28), date(2026, 3, 30), date(2026, 3, 31)]
    assert all(t.astimezone(BERLIN).strftime("%H:%M") == "02:30" for t in times)
    (listing,) = list_suites(loaded, datetime(2026, 3, 28, 12, tzinfo=timezone.utc), count=3)
    assert [t.astimezone(BERLIN).strftime("%m-%d %H:%M %Z") for t in listing.next_fires] == \
        ["03-30 02:30 CEST", "03-31 02:30 CEST", "04-01 02:30 CEST"]


def test_every_quarter_hour_keeps_the_hour_after_the_repeated_one(tmp_path):
    loaded = load_config(suite_config(tmp_path, port=25, schedule="*/15 * * * *"))
    times = fires(loaded, datetime(2026, 10, 24, 23, 50, tzinfo=timezone.utc), 10)
    utc = [t.astimezone(timezone.utc).strftime("%H:%M") for t in times]
    # 00:00-00:45 UTC is 02:00-02:45 CEST; 01:00-01:45 UTC repeats 02:00-02:45 (CET) and is skipped; 02:00 UTC is 03:00 CET.
    assert utc == ["00:00", "00:15", "00:30", "00:45", "02:00", "02:15", "02:30", "02:45", "03:00", "03:15"]


# ------------------------------------------------------------------------- 8. one daemon per state directory


def test_a_second_daemon_on_a_locked_state_is_refused_in_one_line(tmp_path):
    cfg = suite_config(tmp_path, port=25, schedule="0 6 * * mon")
    loaded = load_config(cfg)
    first = Daemon(loaded, clock=lambda: NOW)
    first.start()
    try:
        with pytest.raises(SchedulerBusy, match=f"another auditor scheduler \\(pid {os.getpid()}\\) is running on"):
            Daemon(load_config(cfg)).start()
        # Another process: exit 2, one line, no traceback, no ERROR log.
        done = subprocess.run([sys.executable, "-m", "auditor", "schedule", "--config", str(cfg)], capture_output=True,
                              text=True, timeout=120)
    finally:
        first.stop()
    assert done.returncode == 2, done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert any("another auditor scheduler" in line and "one daemon per state directory" in " ".join(lines)
               for line in lines)
    assert "Traceback" not in done.stderr and "ERROR" not in done.stderr
    # Once the first one stopped, the lock is free again.
    again = Daemon(loaded, clock=lambda: NOW)
    again.start()
    again.stop()


# ---------------------------------------------------------------------------------------- 15. the health file


def test_health_file_and_schedule_health(tmp_path):
    cfg = suite_config(tmp_path, port=25, schedule="0 6 * * mon")
    loaded = load_config(cfg)
    result = CliRunner().invoke(main, ["schedule", "--config", str(cfg), "--health"])
    assert result.exit_code == 1 and "does not exist: the scheduler has not run" in result.output

    daemon = Daemon(loaded, clock=lambda: NOW)
    daemon.start()
    try:
        doc = json.loads((tmp_path / ".auditor" / HEALTH_FILE).read_text())
        nxt = daemon.scheduler.get_job(job_id("weekly")).next_run_time
        assert doc["suites"]["weekly"]["next_fire"] == nxt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert doc["health_version"] == 1 and doc["pid"] == os.getpid() and doc["stopped_at"] is None
        result = CliRunner().invoke(main, ["schedule", "--config", str(cfg), "--health"])
        assert result.exit_code == 0, result.output
        assert result.output.startswith("healthy: written at ") and "suite weekly: next fire " in result.output
        # Overdue: the next fire time passed long ago and nothing ran it.
        later = nxt + timedelta(hours=1)
        found = read_health(loaded, later)
        assert not found.ok and "suite weekly: overdue: its run was due at" in found.lines[0]
        assert "is not running or is stuck" in found.lines[0]  # the file is an hour old by then, too
    finally:
        daemon.stop()
    result = CliRunner().invoke(main, ["schedule", "--config", str(cfg), "--health"])
    assert result.exit_code == 1 and "unhealthy: the scheduler stopped at " in result.output


def test_health_records_the_last_failure(tmp_path):
    cfg = suite_config(tmp_path, port=25, schedule="0 6 * * mon")
    loaded = load_config(cfg)
    daemon = Daemon(loaded, clock=lambda: NOW, sleep=lambda s: None)
    daemon.start()
    try:
        daemon.run_job("weekly")  # nothing listens on port 25 here: delivery fails
        doc = json.loads((tmp_path / ".auditor" / HEALTH_FILE).read_text())
        found = read_health(loaded, datetime.now(timezone.utc))
    finally:
        daemon.stop()
    assert doc["suites"]["weekly"]["last_failure"] == "2026-11-16T06:00:00Z"
    assert doc["suites"]["weekly"]["last_failure_reason"].startswith("delivery failed:")
    assert found.ok and "last failure 2026-11-16T06:00:00Z: delivery failed:" in found.lines[1]
