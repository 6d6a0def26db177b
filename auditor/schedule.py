"""APScheduler 3 wiring, and nothing else: which suite fires when. What a run does is ``deliver.suite.run_suite``.

- One job per suite, id ``suite:<name>``, in a persistent SQLAlchemy job store (SQLite in the state dir).
  A job names its function as text (``auditor.schedule:fire``) so the store never holds pickled code.
- On start, jobs are *reconciled* with the config rather than replaced: a suite whose schedule did not
  change keeps its stored next fire time, so a run missed while the host was down is still due.
- ``coalesce=True`` runs a run missed several times once; ``misfire_grace_time`` runs it on restart only
  within the grace time. Later than that, APScheduler reports it missed and the recipients get a notice.
- ``max_instances=1``: a suite never overlaps itself (deliver.suite.SuiteState also locks across processes).
  One worker thread: suites run one at a time, so two runs never compete for DuckDB's memory limit.
- SIGTERM/SIGINT: no new run starts; the current one finishes and its report appears whole (outputs are
  staged and renamed, auditor.output), then the daemon exits 0.

APScheduler 3 semantics used here: https://apscheduler.readthedocs.io/en/3.x/userguide.html (missed job
executions and coalescing; limiting the number of concurrently executing instances).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from auditor.archive.archiver import require_archive
from auditor.builtins import Registries, builtins
from auditor.clock import utcnow
from auditor.config import LoadedConfig, SuiteSpec
from auditor.deliver.email import Transport
from auditor.deliver.suite import (
    HttpGet,
    SuiteRun,
    SuiteState,
    last_runs,
    notify_failure,
    resolve_suite,
    run_suite,
)
from auditor.errors import AuditorError
from auditor.models import iso_z
from auditor.timeparse import parse_duration

log = logging.getLogger(__name__)

JOB_FUNC = "auditor.schedule:fire"
JOB_PREFIX = "suite:"
STORE_FILE = "schedule.sqlite"
LOCK_FILE = "scheduler.lock"  # held by the one daemon of a state directory for its whole life
HEALTH_FILE = "health.json"
HEALTH_VERSION = 1
HEALTH_TICK = timedelta(seconds=30)  # how often serve() rewrites the health file (also after every run)
HEALTH_SLACK = timedelta(minutes=5)  # a fire time this far in the past, or a file this old, is unhealthy


class SchedulerBusy(AuditorError):
    """Another daemon holds the state directory's scheduler lock."""

    exit_code = 2

_active: Daemon | None = None  # the daemon of this process: a stored job names a function, not an object


def job_id(suite: str) -> str:
    return f"{JOB_PREFIX}{suite}"


class WallClockCronTrigger(CronTrigger):
    """A CronTrigger that treats the changes of daylight saving time as cron does: a local time that happens
    twice (the night clocks go back) fires once, the first time; a local time that does not exist (the night
    clocks go forward) is skipped, not moved to the hour after. APScheduler 3's own CronTrigger fires 02:30
    Europe/Berlin twice in October and fires a non-existent 02:30 in March at 03:30 local time.

    Stored jobs pickle the trigger by class path (auditor.schedule.WallClockCronTrigger)."""

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        fire = super().get_next_fire_time(previous_fire_time, now)
        for _ in range(10_000):  # a bound, never reached: one skip per transition, a repeated hour is 60 minutes
            if fire is None or (_exists(fire, self.timezone) and not _repeated(fire, self.timezone)):
                return fire
            resume = fire.astimezone(timezone.utc) + timedelta(microseconds=1)
            if _repeated(fire, self.timezone):
                # APScheduler 3 keeps answering the same instant inside the repeated hour: step out of it
                # (to the minute, so a fire time right at its end is kept).
                resume = fire.astimezone(timezone.utc)
                while _repeated(resume, self.timezone):
                    resume += timedelta(minutes=1)
            fire = super().get_next_fire_time(None, resume)
        return fire


def _exists(moment: datetime, zone: Any) -> bool:
    """Whether ``moment``'s local wall-clock time in ``zone`` exists. APScheduler 3 hands out times in the gap
    (02:30+01:00 on the March night in Europe/Berlin); such a time does not survive a round trip through UTC."""
    wall = moment.replace(tzinfo=None)
    return wall.replace(tzinfo=zone, fold=0).astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None) == wall


def _repeated(moment: datetime, zone: Any) -> bool:
    """Whether ``moment`` is the second occurrence of its local wall-clock time (the night clocks go back)."""
    local = moment.astimezone(timezone.utc).astimezone(zone)
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


def trigger_for(spec: SuiteSpec) -> CronTrigger:
    """The suite's cron in its time zone (numeric days of week were refused at config load), fired once per
    wall-clock time across the changes of daylight saving time."""
    return WallClockCronTrigger.from_crontab(spec.schedule, timezone=spec.timezone)


def store_url(loaded: LoadedConfig) -> str:
    state = loaded.resolve(loaded.config.state_dir).resolve()
    return f"sqlite:///{state / STORE_FILE}"


@contextmanager
def open_store(loaded: LoadedConfig) -> Iterator[SQLAlchemyJobStore]:
    """The persisted job store, read without a running scheduler. A scheduler started only to read would run
    its processing loop, which may fire (or, at shutdown, skip) a due job: `--list` must never do that."""
    store = SQLAlchemyJobStore(url=store_url(loaded))
    store.start(BackgroundScheduler(timezone=timezone.utc), "default")  # never started: only restores jobs
    try:
        yield store
    finally:
        store.shutdown()


def _same_trigger(a: Any, b: CronTrigger) -> bool:
    return (type(a) is type(b) and str(a) == str(b) and str(a.timezone) == str(b.timezone)
            and a.start_date == b.start_date and a.end_date == b.end_date and a.jitter == b.jitter)


@dataclass(frozen=True)
class Reconciled:
    """What start-up did to the stored jobs."""

    added: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()  # unchanged: their stored next fire time stands
    rescheduled: tuple[str, ...] = ()  # the schedule changed: the next fire time is recomputed
    removed: tuple[str, ...] = ()  # no longer in the config


def reconcile(scheduler: BackgroundScheduler, suites: Mapping[str, SuiteSpec], grace: timedelta) -> Reconciled:
    """Make the stored jobs match the config without resetting the fire time of jobs that did not change."""
    grace_s = int(grace.total_seconds())
    options = {"misfire_grace_time": grace_s, "coalesce": True, "max_instances": 1}
    existing = {job.id: job for job in scheduler.get_jobs() if job.id.startswith(JOB_PREFIX)}
    added, kept, rescheduled = [], [], []
    for name, spec in suites.items():
        trigger = trigger_for(spec)
        job = existing.pop(job_id(name), None)
        if job is None:
            scheduler.add_job(JOB_FUNC, trigger, args=(name,), id=job_id(name), name=name, **options)
            added.append(name)
            continue
        if job.func_ref != JOB_FUNC or tuple(job.args) != (name,) or dict(job.kwargs):
            scheduler.modify_job(job.id, func=JOB_FUNC, args=(name,), kwargs={})
        if any(getattr(job, k) != v for k, v in options.items()):
            scheduler.modify_job(job.id, **options)  # leaves next_run_time alone
        if _same_trigger(job.trigger, trigger):
            kept.append(name)
        else:
            scheduler.reschedule_job(job.id, trigger=trigger)
            rescheduled.append(name)
    for stale in existing.values():
        scheduler.remove_job(stale.id)
    return Reconciled(tuple(added), tuple(kept), tuple(rescheduled),
                      tuple(j.id.removeprefix(JOB_PREFIX) for j in existing.values()))


def fire(suite: str) -> None:
    """The stored jobs' function: hand the suite to this process's daemon."""
    if _active is None:
        raise RuntimeError(f"suite {suite} fired, but no auditor scheduler is running in this process")
    _active.run_job(suite)


@dataclass
class Daemon:
    """The scheduler of one config. ``serve()`` is ``auditor schedule``; tests drive ``start``/``stop``.

    Everything that varies is injected and passed to ``run_suite``: the clock, the mail transport, the
    heartbeat's HTTP getter and the retry sleep.
    """

    loaded: LoadedConfig
    clock: Callable[[], datetime] = utcnow
    transport: Transport | None = None
    http_get: HttpGet | None = None
    sleep: Callable[[float], None] = time.sleep
    registries: Registries | None = None
    on_run: Callable[[str, SuiteRun | None, str | None], None] | None = None  # (suite, result, error) after each run
    stopping: threading.Event = field(default_factory=threading.Event)
    scheduler: BackgroundScheduler | None = None
    # The clock APScheduler's fire times are real on (health.json); ``clock`` is what the runs see (their window).
    wall_clock: Callable[[], datetime] = utcnow
    _lock_fd: int | None = None

    @property
    def grace(self) -> timedelta:
        return parse_duration(self.loaded.config.schedule.misfire_grace)

    def start(self) -> Reconciled:
        """Validate every suite, open the job store, reconcile the jobs, tell about interrupted runs, start."""
        global _active
        config = self.loaded.config
        if not config.suites:
            raise self.loaded.error("there are no suites to schedule: add a suites: section (see docs/scheduling.md)")
        reg = self.registries = self.registries or builtins()
        now = self.clock()
        for name in config.suites:
            resolve_suite(self.loaded, name, now, reg.checks, deliver=True)  # config errors before anything runs
        if config.archive is not None:
            require_archive(self.loaded)  # every run archives: a signing key missing from the environment fails now
        self.loaded.resolve(config.state_dir).mkdir(parents=True, exist_ok=True)
        self._lock_state()
        if _active is not None and _active is not self:
            self._unlock_state()
            raise RuntimeError("another auditor scheduler is already running in this process")
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=store_url(self.loaded))},
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(self.grace.total_seconds())},
            timezone=timezone.utc,
        )
        self.scheduler.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        _active = self
        self.stopping.clear()
        self.scheduler.start(paused=True)  # no job is processed until the store matches the config
        try:
            result = reconcile(self.scheduler, config.suites, self.grace)
            self._notify_interrupted()
        except BaseException:
            self.stop(wait=False)
            raise
        self.scheduler.resume()
        self.write_health()
        log.info("scheduler started: added %s, kept %s, rescheduled %s, removed %s", result.added, result.kept,
                 result.rescheduled, result.removed)
        return result

    def _lock_state(self) -> None:
        """Hold the state directory's scheduler lock, or refuse to start: two daemons on one state would fire
        every job twice (each run then fails on the suite's lock)."""
        path = self.loaded.resolve(self.loaded.config.state_dir) / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SchedulerBusy(f"another auditor scheduler (pid {holder}) is running on {path.parent}; one daemon "
                                "per state directory: stop it first, or give this one its own state_dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _unlock_state(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def write_health(self, stopped: bool = False) -> None:
        """``state_dir/health.json``: when it was written, and per suite its next fire time, last success and last
        failure. ``auditor schedule --health`` reads it (container health checks, monitoring). Never raises: a
        health file that cannot be written is logged."""
        jobs = {}
        if self.scheduler is not None and self.scheduler.running and not stopped:
            jobs = {j.id: j.next_run_time for j in self.scheduler.get_jobs()}
        suites = {}
        for name in self.loaded.config.suites:
            state = last_runs(self.loaded, name)
            nxt = jobs.get(job_id(name))
            suites[name] = {"next_fire": iso_z(nxt) if nxt else None,
                            "last_success": (state.get("last_success") or {}).get("at"),
                            "last_failure": (state.get("last_failure") or {}).get("at"),
                            "last_failure_reason": (state.get("last_failure") or {}).get("reason"),
                            "running_since": (state.get("running") or {}).get("started_at")}
        now = self.wall_clock()
        doc = {"health_version": HEALTH_VERSION, "updated_at": iso_z(now), "pid": os.getpid(),
               "stopped_at": iso_z(now) if stopped else None, "suites": suites}
        path = self.loaded.resolve(self.loaded.config.state_dir) / HEALTH_FILE
        try:
            tmp = path.with_name(f".{HEALTH_FILE}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(doc, indent=1))
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("could not write %s: %s", path, exc)

    def stop(self, wait: bool = True) -> None:
        """No new run starts; with ``wait``, the current one finishes first."""
        global _active
        self.stopping.set()
        if self.scheduler is not None and self.scheduler.running:
            # APScheduler 3's shutdown() wakes its loop for one more pass *after* the executors are shut down;
            # a job due at that moment fails to submit but still gets its next fire time advanced, and the run
            # is lost. Detaching the job store first leaves that job due in the store for the next start.
            self.scheduler.pause()
            self.scheduler.remove_jobstore("default")
            self.scheduler.shutdown(wait=wait)
            self.write_health(stopped=True)
        self._unlock_state()
        if _active is self:
            _active = None

    def serve(self) -> int:
        """Run until SIGTERM or SIGINT, then end cleanly: the current run completes, no new one starts."""
        def on_signal(signum: int, _frame: Any) -> None:
            log.warning("%s: stopping after the current run", signal.Signals(signum).name)
            self.stopping.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            last = time.monotonic()
            while not self.stopping.wait(1.0):
                if time.monotonic() - last >= HEALTH_TICK.total_seconds():
                    self.write_health()
                    last = time.monotonic()
        finally:
            self.stop(wait=True)
            for s, handler in previous.items():
                signal.signal(s, handler)
        return 0

    def run_job(self, suite: str) -> None:
        """One scheduled run. Never raises: a failure is mailed by run_suite and reported through ``on_run``."""
        if self.stopping.is_set():
            # Queued behind another suite when the stop came: its fire time has already moved on, so say so.
            notify_failure(self.loaded, suite, "The scheduler was stopping, so the run due now was not started.",
                           [], clock=self.clock, transport=self.transport, sleep=self.sleep)
            self._report(suite, None, "not started: the scheduler was stopping")
            return
        try:
            result = run_suite(self.loaded, suite, deliver=True, clock=self.clock, transport=self.transport,
                               registries=self.registries, sleep=self.sleep, http_get=self.http_get)
        except Exception as exc:  # noqa: BLE001 - the daemon goes on; run_suite has sent the failure notice
            log.exception("suite %s failed", suite)
            self._report(suite, None, f"{type(exc).__name__}: {exc}")
            return
        self._report(suite, result, result.delivery.error if result.delivery_failed and result.delivery else None)

    def _report(self, suite: str, result: SuiteRun | None, error: str | None) -> None:
        self.write_health()
        if self.on_run is not None:
            self.on_run(suite, result, error)

    def _on_event(self, event: JobEvent) -> None:
        suite = event.job_id.removeprefix(JOB_PREFIX)
        due = getattr(event, "scheduled_run_time", None)
        due_text = iso_z(due) if due else "an earlier time"
        if event.code == EVENT_JOB_MISSED:
            headline = (f"The run due at {due_text} was missed by more than the grace time "
                        f"({self.loaded.config.schedule.misfire_grace}): the host or the scheduler was down.")
        else:
            headline = f"The run due at {due_text} was skipped: the previous run of this suite is still going."
        notify_failure(self.loaded, suite, headline, [("Due at", due_text)], clock=self.clock,
                       transport=self.transport, sleep=self.sleep)
        self._report(suite, None, headline)

    def _notify_interrupted(self) -> None:
        for name in self.loaded.config.suites:
            state = SuiteState(self.loaded, name)
            marker = state.interrupted()
            if marker is None:
                continue
            state.update(running=None)
            notify_failure(self.loaded, name, f"The run started at {marker.get('started_at')} was interrupted "
                           "(the process stopped before it finished); no report was produced.",
                           [("Started at", str(marker.get("started_at"))), ("Process", str(marker.get("pid")))],
                           clock=self.clock, transport=self.transport, sleep=self.sleep)


@dataclass(frozen=True)
class SuiteListing:
    """One line group of ``auditor schedule --list``."""

    name: str
    spec: SuiteSpec
    next_fires: tuple[datetime, ...]
    stored: bool  # the daemon has a job for it (else the times are what it would get)
    overdue: bool  # the stored next fire time has passed: a missed run waits for the daemon
    state: Mapping[str, Any]


def list_suites(loaded: LoadedConfig, now: datetime, count: int = 3) -> list[SuiteListing]:
    """Each suite's next ``count`` fire times (the stored job's, when the daemon has run) and its last runs.
    Reads the job store without running anything."""
    stored: dict[str, Any] = {}
    if (loaded.resolve(loaded.config.state_dir) / STORE_FILE).exists():
        with open_store(loaded) as store:
            stored = {j.id: j for j in store.get_all_jobs()}
    out = []
    for name, spec in loaded.config.suites.items():
        trigger = trigger_for(spec)
        job = stored.get(job_id(name))
        same = job is not None and _same_trigger(job.trigger, trigger)
        upcoming = trigger.get_next_fire_time(None, now)
        overdue = same and job.next_run_time is not None and job.next_run_time < now
        # An overdue stored time runs once when the daemon starts (coalesced); then the cron goes on from now.
        times: list[datetime] = [job.next_run_time] if overdue else []
        if same and not overdue:
            upcoming = job.next_run_time
        while upcoming is not None and len(times) < count:
            times.append(upcoming)
            upcoming = trigger.get_next_fire_time(upcoming, upcoming)
        out.append(SuiteListing(name, spec, tuple(times), same, overdue, last_runs(loaded, name)))
    return out


@dataclass(frozen=True)
class Health:
    """What ``auditor schedule --health`` found: ``ok``, and one line per finding."""

    ok: bool
    lines: tuple[str, ...]


def read_health(loaded: LoadedConfig, now: datetime, slack: timedelta = HEALTH_SLACK) -> Health:
    """Judge ``state_dir/health.json``: unhealthy when it is missing or unreadable, when the daemon stopped, when
    it was last written more than ``slack`` ago (the daemon is gone or stuck), or when a suite's next fire time
    passed more than ``slack`` ago (a run is overdue). A suite whose last run failed is reported, not unhealthy:
    its recipients were told."""
    path = loaded.resolve(loaded.config.state_dir) / HEALTH_FILE
    try:
        doc = json.loads(path.read_text())
        updated = datetime.fromisoformat(str(doc["updated_at"]).replace("Z", "+00:00"))
        suites = dict(doc.get("suites") or {})
    except FileNotFoundError:
        return Health(False, (f"unhealthy: {path} does not exist: the scheduler has not run on this state directory",))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Health(False, (f"unhealthy: {path} is unreadable ({exc})",))
    problems, lines = [], []
    if doc.get("stopped_at"):
        problems.append(f"the scheduler stopped at {doc['stopped_at']}")
    elif now - updated > slack:
        problems.append(f"{path.name} was last written at {iso_z(updated)}, over {_minutes(slack)} ago: the "
                        f"scheduler (pid {doc.get('pid')}) is not running or is stuck")
    for name in loaded.config.suites:
        info = suites.get(name) or {}
        nxt = info.get("next_fire")
        if name not in suites or (nxt is None and not doc.get("stopped_at")):
            problems.append(f"suite {name}: not scheduled (start `auditor schedule` with this config)")
        elif nxt and now - datetime.fromisoformat(nxt.replace("Z", "+00:00")) > slack:
            problems.append(f"suite {name}: overdue: its run was due at {nxt}")
        last = f"last success {info.get('last_success') or 'never'}"
        if info.get("last_failure") and (info.get("last_success") or "") < info["last_failure"]:
            last += f"; last failure {info['last_failure']}: {info.get('last_failure_reason')}"
        lines.append(f"suite {name}: next fire {nxt or 'none'}; {last}")
    head = "unhealthy: " + "; ".join(problems) if problems else f"healthy: written at {iso_z(updated)}"
    return Health(not problems, (head, *lines))


def _minutes(span: timedelta) -> str:
    return f"{int(span.total_seconds() // 60)} minutes"
