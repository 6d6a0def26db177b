"""Report suites: a named subset of checks, a window, recipients, and the one function that runs one.

``run_suite`` is what both the scheduler's job and ``auditor run --suite NAME [--deliver] [--archive]`` call: a
suite run is ``run_audit`` -> archive -> mail -> heartbeat, in that order, so the two paths cannot drift apart. The report is written before any
mail is tried, so mail failing never loses it; the failure is retried, recorded in the stored run record
(the next report shows it) and in the suite's state, and the CLI turns it into exit code 4.

State per suite lives in ``state_dir/suites/<name>.json`` (last success, last failure, a marker while a run
is in progress) beside a lock file that keeps two runs of one suite from overlapping, even across processes.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from auditor.archive.archiver import DEFAULT_SUITE, ArchiveResult, archive_run
from auditor.aws import AwsSessions
from auditor.builtins import Registries, builtins
from auditor.checks import CheckSpec
from auditor.clock import utcnow
from auditor.config import LoadedConfig, SuiteSpec
from auditor.deliver.email import (
    PRESIGNED_MAX,
    BuiltMessage,
    DeliveryResult,
    PdfLink,
    Transport,
    build_message,
    build_notice,
    describe,
    presigned_pdf_link,
    send_with_retry,
    transport_from_settings,
)
from auditor.errors import AuditorError, ConfigError, DeliveryError, UsageError
from auditor.formats import DEFAULT_FORMATS
from auditor.history import History
from auditor.models import Change, RunRecord, TimeWindow, iso_z
from auditor.pipeline import RunOutcome, run_audit
from auditor.plan import select_checks
from auditor.registry import Registry, did_you_mean
from auditor.render import template_dirs
from auditor.render.view import build_view
from auditor.timeparse import default_window, parse_duration

log = logging.getLogger(__name__)

HttpGet = Callable[[str], Any]


class SuiteBusy(AuditorError):
    """The suite is already running (in this process or another one)."""

    exit_code = 2


@dataclass(frozen=True)
class Suite:
    """A suite resolved against the config and the check library at one moment."""

    name: str
    spec: SuiteSpec
    title: str
    checks: tuple[str, ...]  # what runs, in order
    window: TimeWindow
    recipients: tuple[str, ...]
    loaded: LoadedConfig  # the config as this suite sees it: only its checks


@dataclass(frozen=True)
class SuiteRun:
    """What one run of a suite produced: the report, and how its mail fared (None when not delivering)."""

    suite: str
    outcome: RunOutcome
    delivery: DeliveryResult | None = None
    heartbeat_error: str | None = None
    archived: Archived | None = None  # None when archiving was not asked for

    @property
    def delivery_failed(self) -> bool:
        return self.delivery is not None and self.delivery.failed


@dataclass(frozen=True)
class Archived:
    """How archiving one run fared: the archive's result, or the error that stopped it."""

    result: ArchiveResult | None
    error: AuditorError | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None or self.result is None or bool(self.result.errors)

    def describe(self) -> str:
        """One line for the suite's state: where the run went, or what went wrong."""
        if self.error is not None or self.result is None:
            return f"not archived: {self.error}"
        r = self.result
        where = ", ".join(str(p) for p in (r.local_path, r.s3_url) if p) or "nowhere"
        problems = f" ({'; '.join(r.errors)})" if r.errors else ""
        return f"suite {r.suite} run {r.sequence} -> {where}{problems}"


def archive_outcome(outcome: RunOutcome, loaded: LoadedConfig, *, suite: str = DEFAULT_SUITE) -> Archived:
    """Archive a finished run as evidence. Never raises for an archive problem: it is returned, and the report
    (already written) is kept."""
    try:
        return Archived(archive_run(outcome, loaded, suite=suite))
    except AuditorError as exc:
        return Archived(None, exc)


def suite_spec(loaded: LoadedConfig, name: str) -> SuiteSpec:
    """The suite called ``name``, or a config error with a did-you-mean."""
    suites = loaded.config.suites
    if name not in suites:
        known = ", ".join(sorted(suites)) or "none"
        raise loaded.error(f"unknown suite '{name}'{did_you_mean(name, list(suites))}; suites in this config: {known}",
                           ("suites",) if suites else ())
    return suites[name]


def resolve_suite(loaded: LoadedConfig, name: str, now: datetime, library: Registry[CheckSpec], *,
                  window: TimeWindow | None = None, deliver: bool = False) -> Suite:
    """The suite's checks (validated against the library), its window (the last ``window_days`` whole UTC days
    before ``now``, unless one is given) and its recipients. With ``deliver``, mail must be configured."""
    spec = suite_spec(loaded, name)
    if spec.checks is None:
        configured = loaded.config.checks
        checks = tuple(configured) if configured is not None else tuple(library.names())
        view = loaded
    else:
        # The suite's view of the config: only its checks, each with the parameters `checks:` gives it. The
        # planner then reads only the sources those checks need.
        subset = dict(select_checks(loaded, library, spec.checks, ("suites", name, "checks")))
        checks = tuple(subset)
        view = loaded.model_copy(update={"config": loaded.config.model_copy(update={"checks": subset})})
    if deliver:
        if loaded.config.email is None:
            raise loaded.error(f"suite '{name}' is to be mailed, but the config has no email: section",
                               ("suites", name), key=True)
        if not spec.recipients:
            raise loaded.error(f"suite '{name}' has no recipients", ("suites", name), key=True)
    return Suite(name=name, spec=spec, title=spec.title or name, checks=checks,
                 window=window or default_window(now, spec.window_days), recipients=spec.recipients, loaded=view)


def should_send(record: RunRecord, send: str) -> tuple[bool, str]:
    """Whether the suite's ``send`` policy mails this run, and why. A run with an errored check, or a check that
    had no data, is always mailed: a report that could not cover everything must not pass in silence."""
    if record.errored:
        return True, "a check errored"
    if record.no_data:
        return True, "a check had no data"
    if send == "always":
        return True, "send: always"
    active = [f for c in record.checks for f in c.active_findings]
    if send == "on_findings":
        return (True, f"{len(active)} active findings") if active else (False, "no active findings (send: on_findings)")
    new = sum(1 for f in active if f.change is Change.NEW)
    resolved = sum(len(c.resolved) for c in record.checks)
    if new or resolved:
        return True, f"{new} new, {resolved} resolved"
    return False, "nothing new or resolved since the previous run (send: on_change)"


# ------------------------------------------------------------------------------------------------- state


class SuiteState:
    """``state_dir/suites/<name>.json`` and its lock."""

    def __init__(self, loaded: LoadedConfig, name: str) -> None:
        self.name = name
        self.dir = loaded.resolve(loaded.config.state_dir) / "suites"
        self.path = self.dir / f"{name}.json"
        self.lock_path = self.dir / f"{name}.lock"

    def read(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.path.read_text())
            return doc if isinstance(doc, dict) else {}
        except (OSError, ValueError):
            return {}

    def update(self, **changes: Any) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        doc = {**self.read(), **changes}
        doc = {k: v for k, v in doc.items() if v is not None}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False))
        os.replace(tmp, self.path)

    @contextmanager
    def running(self, now: datetime) -> Iterator[None]:
        """Hold the suite's lock for one run, with a marker that survives the process if it is killed."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                since = (self.read().get("running") or {}).get("started_at", "an unknown time")
                raise SuiteBusy(f"suite '{self.name}' is already running (since {since}); a suite never overlaps "
                                "itself") from None
            self.update(running={"started_at": iso_z(now), "pid": os.getpid()})
            try:
                yield
            finally:
                self.update(running=None)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def interrupted(self) -> dict[str, Any] | None:
        """The marker of a run whose process died mid-run (its lock is free but the marker is still there)."""
        marker = self.read().get("running")
        if not marker or not self.lock_path.exists():
            return None
        fd = os.open(self.lock_path, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None  # a live run holds it
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        return dict(marker)


# --------------------------------------------------------------------------------------------------- runs


def run_suite(loaded: LoadedConfig, name: str, *, deliver: bool, clock: Callable[[], datetime] = utcnow,
              transport: Transport | None = None, registries: Registries | None = None,
              window: TimeWindow | None = None, out_dir: Path | None = None, force: bool = False,
              formats: Sequence[str] = DEFAULT_FORMATS, sleep: Callable[[float], None] = time.sleep,
              http_get: HttpGet | None = None, pdf_link: Callable[[RunOutcome], PdfLink | None] | None = None,
              environ: Mapping[str, str] | None = None, archive: bool | None = None, s3_client: Any = None,
              by_hand: bool = False) -> SuiteRun:
    """Run one suite: ``run_audit`` -> archive -> mail -> heartbeat.

    ``archive``: archive the run under the suite's name (the config's ``archive:``); None (the scheduler's
    jobs) archives whenever the config has an ``archive:`` section. Archiving comes before the mail, so that a
    PDF too large to attach is linked from the archive (``pdf_link`` replaces that link, for tests).
    With ``deliver``, the report is mailed per the suite's ``send``.

    A run that raises sends a failure notice (with ``deliver``) and re-raises; with ``by_hand`` (``auditor run
    --suite``), a usage or config error is the operator's: it is raised, never mailed. After a successful
    delivered run the heartbeat URL is pinged. ``transport`` defaults to the configured one, built when first
    needed; ``s3_client`` (for the presigned link) to one from the config's AWS settings.
    """
    reg = registries or builtins()
    suite = resolve_suite(loaded, name, clock(), reg.checks, window=window, deliver=deliver)
    state = SuiteState(loaded, name)
    with state.running(clock()):
        try:
            outcome = run_audit(suite.loaded, suite.window, out_dir=out_dir, force=force, clock=clock, registries=reg,
                                formats=formats)
        except Exception as exc:
            reason = describe(exc) if not isinstance(exc, AuditorError) else str(exc)
            if by_hand and isinstance(exc, (UsageError, ConfigError)):
                raise  # printed by the CLI to the operator who typed the command; nothing ran, nobody is told
            state.update(last_failure={"at": iso_z(clock()), "reason": reason})
            if deliver:
                notify_failure(loaded, name, f"The run failed: {reason}",
                               [("Window", str(suite.window)), ("Checks", ", ".join(suite.checks))],
                               clock=clock, transport=transport, sleep=sleep, environ=environ)
            raise
        if archive is None:
            archive = loaded.config.archive is not None
        archived = archive_outcome(outcome, loaded, suite=name) if archive else None
        if archived is not None and pdf_link is None:
            pdf_link = _archived_pdf_link(archived, loaded, clock, s3_client)
        delivery = None
        if deliver:
            delivery = deliver_report(suite, outcome, clock=clock, transport=transport, registries=reg, sleep=sleep,
                                      pdf_link=pdf_link, environ=environ,
                                      previous_failed=(state.read().get("last_delivery") or {}).get("status") == "failed")
            History(loaded.resolve(loaded.config.state_dir)).record_delivery(
                outcome.record.id, {**delivery.to_json(), "suite": name, "report": str(outcome.out_dir)})
            state.update(last_delivery={**delivery.to_json(), "run_id": outcome.record.id})
        summary = {"at": iso_z(clock()), "run_id": outcome.record.id, "window": str(suite.window),
                   "report": str(outcome.out_dir), "delivery": delivery.status if delivery else "not requested"}
        if archived is not None:
            summary["archive"] = archived.describe()
        heartbeat_error = None
        if delivery is not None and delivery.failed:
            state.update(last_failure={**summary, "reason": f"delivery failed: {delivery.error}"})
        elif archived is not None and archived.failed:
            state.update(last_failure={**summary, "reason": f"archiving failed: {archived.describe()}"})
        else:
            state.update(last_success=summary)
            url = loaded.config.schedule.heartbeat_url
            if deliver and url:
                heartbeat_error = ping_heartbeat(url, http_get)
    return SuiteRun(suite=name, outcome=outcome, delivery=delivery, heartbeat_error=heartbeat_error,
                    archived=archived)


def _archived_pdf_link(archived: Archived, loaded: LoadedConfig, clock: Callable[[], datetime],
                       s3_client: Any) -> Callable[[RunOutcome], PdfLink | None]:
    """Where the mail points when the PDF is too large to attach: a presigned link to the PDF in the S3 archive
    (lifetime ``email.pdf_link_expiry``), else the PDF's path in the local archive with the run's ID."""

    def link(outcome: RunOutcome) -> PdfLink | None:
        result = archived.result
        if result is None:
            return None
        settings = loaded.config.archive
        pdf_key = f"{result.suite}/runs/{result.bundle}/report.pdf"
        if result.s3_url and settings is not None and settings.s3 is not None and pdf_key in result.s3_versions:
            # SigV4, whose presigned URLs carry their own lifetime (X-Amz-Expires, at most 7 days).
            client = s3_client or AwsSessions(loaded.config.aws).client("s3", signature_version="s3v4")
            email = loaded.config.email
            lifetime = parse_duration(email.pdf_link_expiry) if email is not None else PRESIGNED_MAX
            return presigned_pdf_link(client, settings.s3.bucket, settings.s3.prefix + pdf_key, now=clock(),
                                      expires=lifetime)
        if result.local_path is not None and (result.local_path / "report.pdf").is_file():
            return PdfLink(url=str(result.local_path / "report.pdf"), local=True, run_id=outcome.record.id)
        return None

    return link


def deliver_report(suite: Suite, outcome: RunOutcome, *, clock: Callable[[], datetime], transport: Transport | None,
                   registries: Registries, sleep: Callable[[float], None] = time.sleep,
                   pdf_link: Callable[[RunOutcome], PdfLink | None] | None = None,
                   environ: Mapping[str, str] | None = None, previous_failed: bool = False) -> DeliveryResult:
    """Mail one finished report, or record why it was not mailed. Never raises for a mail problem."""
    loaded = suite.loaded
    settings = loaded.config.email
    assert settings is not None  # resolve_suite(deliver=True) guarantees it
    record = outcome.record
    send, reason = should_send(record, suite.spec.send)
    if not send and previous_failed:
        send, reason = True, "the previous report was not delivered"
    if not send:
        log.info("suite %s: not mailed: %s", suite.name, reason)
        return DeliveryResult("skipped", settings.transport, suite.recipients, reason=reason, at=clock())
    try:
        built = _report_message(suite, outcome, registries, clock(), pdf_link)
        if built.size > settings.max_bytes:
            # Even without the PDF the message is too large (a long summary, a small limit): a mail server would
            # refuse it, or cut it. It is not sent, and the delivery counts as failed.
            raise DeliveryError(f"the message is {built.size:,} bytes even without the PDF, over email.max_bytes "
                                f"({settings.max_bytes:,}); not sent")
        chosen = transport or transport_from_settings(settings, environ=environ, aws_profile=loaded.config.aws.profile,
                                                          base_dir=loaded.base_dir)
    except AuditorError as exc:  # a missing credential, a broken override template
        return DeliveryResult("failed", settings.transport, suite.recipients, 0, str(exc), at=clock(), errors=(str(exc),))
    return send_with_retry(chosen, built, sender=settings.sender, recipients=suite.recipients,
                           attempts=settings.attempts, backoff=parse_duration(settings.retry_backoff), sleep=sleep,
                           clock=clock)


def _report_message(suite: Suite, outcome: RunOutcome, registries: Registries, now: datetime,
                    pdf_link: Callable[[RunOutcome], PdfLink | None] | None) -> BuiltMessage:
    loaded = suite.loaded
    config = loaded.config
    assert config.email is not None
    record = outcome.record
    specs = {c.check_id: registries.checks.get(c.check_id) for c in record.checks if c.check_id in registries.checks}
    view = build_view(record, specs, table_limit=config.table_limit, title=suite.title, charts=False,
                      engines={e.name: e.dialect for e in registries.engines})
    pdf_path = outcome.out_dir / "report.pdf"
    pdf = pdf_path.read_bytes() if pdf_path in outcome.artifacts else None
    link = pdf_link(outcome) if (pdf_link is not None and pdf is not None) else None
    return build_message(record, view, settings=config.email, suite=suite.name, title=suite.title,
                         recipients=suite.recipients, template_dirs=_template_dirs(loaded), pdf=pdf,
                         pdf_name=pdf_path.name, pdf_link=link, location=str(outcome.out_dir), now=now)


def _template_dirs(loaded: LoadedConfig) -> tuple[Path, ...]:
    user = loaded.config.templates_dir
    return template_dirs(loaded.resolve(user) if user else None)


def notify_failure(loaded: LoadedConfig, name: str, headline: str, details: Sequence[tuple[str, str]], *,
                   clock: Callable[[], datetime] = utcnow, transport: Transport | None = None,
                   sleep: Callable[[float], None] = time.sleep,
                   environ: Mapping[str, str] | None = None) -> DeliveryResult | None:
    """Mail a failure notice to the suite's recipients and record the failure in its state.

    Returns None when there is nobody to tell (no email settings or no recipients). Never raises for a mail
    problem: the failure is logged and returned.
    """
    spec = suite_spec(loaded, name)
    now = clock()
    SuiteState(loaded, name).update(last_failure={"at": iso_z(now), "reason": headline})
    settings = loaded.config.email
    if settings is None or not spec.recipients:
        log.error("suite %s: %s (no recipients to notify)", name, headline)
        return None
    action = (f"Run it by hand with `auditor run --suite {name} --deliver` (add --since/--until for a past window), "
              "and check the host and the scheduler's log.")
    try:
        built = build_notice(settings=settings, suite=name, title=spec.title or name, recipients=spec.recipients,
                             headline=headline, details=[("Suite", name), ("Schedule", f"{spec.schedule} ({spec.timezone})"),
                                                         *details, ("Noticed at", iso_z(now))],
                             action=action, template_dirs=_template_dirs(loaded), now=now)
        chosen = transport or transport_from_settings(settings, environ=environ, aws_profile=loaded.config.aws.profile,
                                                          base_dir=loaded.base_dir)
    except AuditorError as exc:
        log.error("suite %s: could not send the failure notice (%s): %s", name, exc, headline)
        return DeliveryResult("failed", settings.transport, spec.recipients, 0, str(exc), at=clock())
    result = send_with_retry(chosen, built, sender=settings.sender, recipients=spec.recipients,
                             attempts=settings.attempts, backoff=parse_duration(settings.retry_backoff), sleep=sleep,
                             clock=clock)
    if result.failed:
        log.error("suite %s: the failure notice could not be sent (%s): %s", name, result.error, headline)
    return result


def ping_heartbeat(url: str, http_get: HttpGet | None = None) -> str | None:
    """GET the heartbeat URL (a dead man's switch such as healthchecks.io); return the error, if any.
    A heartbeat that cannot be reached is logged, never a failed run."""
    try:
        (http_get or _http_get)(url)
    except Exception as exc:  # noqa: BLE001 - the report and the mail are done; this is only a signal
        log.warning("heartbeat %s failed: %s", url, exc)
        return describe(exc)
    return None


def _http_get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - an http(s) URL, checked at config load
        response.read(1024)


def last_runs(loaded: LoadedConfig, name: str) -> Mapping[str, Any]:
    """The suite's stored state: ``last_success``, ``last_failure``, ``last_delivery``, ``running``."""
    return SuiteState(loaded, name).read()
