"""The APScheduler daemon with a persisted SQLite job store: a near-future run mailed through a real SMTP
server, restart after a missed fire (runs once within the grace time; a notice beyond it), reconciling jobs
without resetting fire times, interrupted runs, SIGTERM mid-run, and `auditor schedule --list`."""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from click.testing import CliRunner

from auditor.cli import main
from auditor.config import SuiteSpec, load_config
from auditor.deliver.suite import SuiteState, run_suite
from auditor.schedule import JOB_FUNC, Daemon, job_id, open_store, reconcile, store_url
from tests.support.smtp import smtp_server, suite_config

NOW = datetime(2026, 11, 16, 6, 0, tzinfo=timezone.utc)  # the clock the runs see (their window); APScheduler uses real time
ONE_CHECK = "[top_rejected_sources]"  # a short PDF: these tests are about timing, not content


def real_now() -> datetime:
    return datetime.now(timezone.utc)


def daily_two_hours_ago() -> tuple[str, datetime]:
    """A daily UTC cron whose latest fire time was two hours ago, and that fire time."""
    fire = (real_now() - timedelta(hours=2)).replace(second=0, microsecond=0)
    return f"{fire.minute} {fire.hour} * * *", fire


def set_next_run(loaded, suite: str, when: datetime) -> None:
    """Rewrite a stored job's next fire time while no daemon runs (the host was down)."""
    with open_store(loaded) as store:
        job = store.lookup_job(job_id(suite))
        job._modify(next_run_time=when)  # what the scheduler itself does when a job's fire time moves
        store.update_job(job)


@contextmanager
def scheduler_on_store(loaded):
    """A scheduler on the persisted store that never processes jobs (started paused), for reconcile()."""
    scheduler = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=store_url(loaded))}, timezone=timezone.utc)
    scheduler.start(paused=True)
    try:
        yield scheduler
    finally:
        scheduler.remove_jobstore("default")
        scheduler.shutdown(wait=False)


@contextmanager
def running(daemon: Daemon):
    try:
        yield daemon.start()
    finally:
        daemon.stop(wait=True)


def make_daemon(loaded, **kw) -> tuple[Daemon, queue.Queue]:
    runs: queue.Queue = queue.Queue()
    d = Daemon(loaded, clock=lambda: NOW, sleep=lambda s: None, on_run=lambda *a: runs.put(a), **kw)
    return d, runs


def test_near_future_run_is_produced_and_mailed(tmp_path):
    pinged = []
    with smtp_server(tmp_path) as server:
        cfg = suite_config(tmp_path, port=server.port, checks=ONE_CHECK,
                           extra="schedule: {heartbeat_url: 'https://hc.example.com/ping/1'}\n")
        loaded = load_config(cfg)
        daemon, runs = make_daemon(loaded, http_get=pinged.append)
        with running(daemon) as reconciled:
            assert reconciled.added == ("weekly",)
            job = daemon.scheduler.get_job(job_id("weekly"))
            assert job.next_run_time.strftime("%a %H:%M %Z") == "Mon 06:00 CET"  # Europe/Berlin, by name
            daemon.scheduler.modify_job(job_id("weekly"), next_run_time=real_now() + timedelta(seconds=1))
            suite, result, error = runs.get(timeout=30)
            (received,) = server.inbox.wait(1)
            after = daemon.scheduler.get_job(job_id("weekly")).next_run_time
    assert (suite, error) == ("weekly", None)
    assert result.delivery.status == "sent" and result.delivery.attached
    pdf = (result.outcome.out_dir / "report.pdf").read_bytes()
    msg = received.message()
    assert msg["Subject"] == "[auditor] Weekly network audit 2026-11-09..2026-11-16: 0 high, 1 new"
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_content() == pdf
    assert pinged == ["https://hc.example.com/ping/1"]
    assert after > real_now() and after.strftime("%a %H:%M") == "Mon 06:00"  # back on the cron
    assert SuiteState(loaded, "weekly").read()["last_success"]["run_id"] == result.outcome.record.id


def test_restart_after_a_missed_fire_runs_it_once(tmp_path):
    cron, fire = daily_two_hours_ago()
    with smtp_server(tmp_path) as server:
        loaded = load_config(suite_config(tmp_path, port=server.port, schedule=cron, timezone="UTC", checks=ONE_CHECK))
        daemon, runs = make_daemon(loaded)
        with running(daemon):
            pass  # the job is stored, due tomorrow
        # The host goes down for three days: the stored next fire time is three days old when it comes back.
        set_next_run(loaded, "weekly", fire - timedelta(days=3))
        daemon, runs = make_daemon(loaded)
        with running(daemon) as reconciled:
            assert reconciled.kept == ("weekly",)  # not replaced: replacing would have dropped the missed run
            suite, result, error = runs.get(timeout=30)
            time.sleep(1.5)  # four fire times were missed; coalescing runs them once
            assert runs.empty()
            after = daemon.scheduler.get_job(job_id("weekly")).next_run_time
        assert len(server.inbox.wait(1)) == 1
    assert error is None and result.delivery.status == "sent"
    assert after == fire + timedelta(days=1)


def test_a_run_missed_beyond_the_grace_time_sends_a_notice(tmp_path):
    cron, fire = daily_two_hours_ago()
    with smtp_server(tmp_path) as server:
        loaded = load_config(suite_config(tmp_path, port=server.port, schedule=cron, timezone="UTC", checks=ONE_CHECK,
                                          extra="schedule: {misfire_grace: 1h}\n"))
        daemon, runs = make_daemon(loaded)
        with running(daemon):
            pass
        set_next_run(loaded, "weekly", fire - timedelta(days=3))
        daemon, runs = make_daemon(loaded)
        with running(daemon):
            suite, result, error = runs.get(timeout=30)
            (notice,) = server.inbox.wait(1)
    assert result is None and "missed by more than the grace time (1h)" in error
    msg = notice.message()
    assert msg["Subject"].startswith("[auditor] FAILED: Weekly network audit: The run due at")
    body = msg.get_body(("plain",)).get_content()
    assert f"The run due at {fire:%Y-%m-%dT%H:%M:%SZ} was missed" in body
    assert "auditor run --suite weekly --deliver" in body
    assert not (tmp_path / "reports").exists()  # nothing ran
    assert "missed" in SuiteState(loaded, "weekly").read()["last_failure"]["reason"]


def test_reconcile_keeps_unchanged_jobs_and_their_fire_times(tmp_path):
    loaded = load_config(suite_config(tmp_path, port=25))
    a = SuiteSpec(schedule="0 6 * * mon", timezone="Europe/Berlin", recipients=("a@example.com",))
    b = SuiteSpec(schedule="0 7 * * *", recipients=("b@example.com",))
    past = real_now() - timedelta(hours=1)
    (tmp_path / ".auditor").mkdir()
    with scheduler_on_store(loaded) as s:
        assert reconcile(s, {"a": a, "b": b}, timedelta(hours=6)).added == ("a", "b")
        job = s.get_job(job_id("a"))
        assert (job.func_ref, job.args, job.coalesce, job.max_instances, job.misfire_grace_time) == \
            (JOB_FUNC, ("a",), True, 1, 6 * 3600)
        s.modify_job(job_id("a"), next_run_time=past)
    with scheduler_on_store(loaded) as s:  # a restart with the same config
        result = reconcile(s, {"a": a, "b": b}, timedelta(hours=2))
        assert (result.kept, result.rescheduled) == (("a", "b"), ())
        assert s.get_job(job_id("a")).next_run_time == past
        assert s.get_job(job_id("a")).misfire_grace_time == 2 * 3600  # settings follow the config
        result = reconcile(s, {"b": b.model_copy(update={"schedule": "30 7 * * *"})}, timedelta(hours=2))
        assert (result.rescheduled, result.removed) == (("b",), ("a",))
        assert s.get_job(job_id("a")) is None
        assert s.get_job(job_id("b")).next_run_time.minute == 30


def test_an_interrupted_run_is_reported_on_start(tmp_path):
    with smtp_server(tmp_path) as server:
        loaded = load_config(suite_config(tmp_path, port=server.port))
        state = SuiteState(loaded, "weekly")
        state.dir.mkdir(parents=True)
        state.lock_path.touch()
        state.update(running={"started_at": "2026-11-16T05:00:00Z", "pid": 424242})  # the process was killed
        daemon, runs = make_daemon(loaded)
        with running(daemon):
            (notice,) = server.inbox.wait(1)
    assert "The run started at 2026-11-16T05:00:00Z was interrupted" in notice.message().get_body(("plain",)).get_content()
    assert "running" not in state.read()


def test_sigterm_mid_run_finishes_the_run_then_exits(tmp_path):
    """SIGTERM arrives while a run is in progress: the run completes (whole report, mail sent), nothing new
    starts, the daemon returns 0 and restores the signal handlers."""
    with smtp_server(tmp_path) as server:
        loaded = load_config(suite_config(tmp_path, port=server.port, checks=ONE_CHECK))
        daemon, _ = make_daemon(loaded)
        with running(daemon):
            pass
        set_next_run(loaded, "weekly", real_now() - timedelta(seconds=30))  # due as soon as it starts
        signalled = threading.Event()

        def clock() -> datetime:
            # The first time the run (in the worker thread) reads the clock, the daemon is told to stop.
            if threading.current_thread() is not threading.main_thread() and not signalled.is_set():
                signalled.set()
                os.kill(os.getpid(), signal.SIGTERM)
            return NOW

        runs: queue.Queue = queue.Queue()
        before = signal.getsignal(signal.SIGTERM)
        daemon = Daemon(loaded, clock=clock, sleep=lambda s: None, on_run=lambda *a: runs.put(a))
        started = time.monotonic()
        assert daemon.serve() == 0
        assert time.monotonic() - started < 60
        assert signal.getsignal(signal.SIGTERM) is before
        suite, result, error = runs.get_nowait()
        assert signalled.is_set() and error is None
        (received,) = server.inbox.wait(1)
    out_dir = result.outcome.out_dir
    assert {p.name for p in out_dir.iterdir()} == {"findings.json", "queries.sql", "report.html", "report.pdf", "results"}
    assert received.message()["X-Auditor-Run"] == result.outcome.record.id
    assert [p.name for p in out_dir.parent.iterdir()] == [out_dir.name]  # no staging folder left behind
    assert "running" not in SuiteState(loaded, "weekly").read()
    assert runs.empty() and not daemon.scheduler.running


def test_list_shows_next_fire_times_and_last_success(tmp_path):
    cfg = suite_config(tmp_path, port=25, checks=ONE_CHECK)
    result = CliRunner().invoke(main, ["schedule", "--config", str(cfg), "--list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "weekly: Weekly network audit  [0 6 * * mon, Europe/Berlin]  send always to secops@example.com, cto@example.com"
    nexts = [line for line in lines if line.startswith("  next: ")]
    assert len(nexts) == 3 and all("06:00 CET" in n and "T05:00Z" in n for n in nexts)
    assert "  (not scheduled yet (start `auditor schedule`))" in lines
    assert "  last success: never" in lines

    loaded = load_config(cfg)
    daemon, _ = make_daemon(loaded)
    with running(daemon):
        pass
    overdue = real_now() - timedelta(days=2)
    set_next_run(loaded, "weekly", overdue)
    ran = run_suite(loaded, "weekly", deliver=False, clock=lambda: NOW, formats=("json",))
    result = CliRunner().invoke(main, ["schedule", "--config", str(cfg), "--list"])
    assert result.exit_code == 0, result.output
    assert f"({overdue:%Y-%m-%dT%H:%MZ})  (overdue: runs when the daemon starts, within misfire_grace)" in result.output
    assert "  (stored job)" in result.output
    nexts = [line for line in result.output.splitlines() if line.startswith("  next: ")]
    assert len(nexts) == 3 and all("overdue" not in n for n in nexts[1:])
    later = [datetime.strptime(n.split("(")[1][:17], "%Y-%m-%dT%H:%MZ").replace(tzinfo=timezone.utc) for n in nexts[1:]]
    assert real_now() < later[0] < later[1]  # after the overdue run, the cron goes on from now
    assert f"  last success: 2026-11-16T06:00:00Z run {ran.outcome.record.id} (not requested), report {ran.outcome.out_dir}" \
        in result.output


def test_schedule_refuses_a_config_without_suites_or_mail(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("sources: {}\n")
    result = CliRunner().invoke(main, ["schedule", "--config", str(cfg)])
    assert result.exit_code == 2 and "there are no suites to schedule" in result.output
    cfg.write_text("suites:\n  weekly:\n    schedule: '0 6 * * mon'\n    recipients: [a@example.com]\n")
    result = CliRunner().invoke(main, ["schedule", "--config", str(cfg)])
    assert result.exit_code == 2 and "config.yaml:2:3: suite 'weekly' is to be mailed, but the config has no email:" in result.output
