"""Suites: config validation (cron day-of-week numbers refused at file:line:col), resolving checks, window and
recipients, the send policy, and run_suite / `auditor run --suite NAME [--deliver]` against a real SMTP server,
including SMTP being down (report kept, failure recorded and shown next time, exit 4)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from apscheduler.triggers.cron import CronTrigger
from click.testing import CliRunner

from auditor.builtins import builtins
from auditor.cli import main
from auditor.config import load_config
from auditor.deliver.suite import (
    SuiteBusy,
    SuiteState,
    resolve_suite,
    run_suite,
    should_send,
)
from auditor.errors import ConfigError, UsageError
from auditor.models import Change, TimeWindow
from tests.support.flowdata import record, write_config, write_flow_log
from tests.support.smtp import free_port, smtp_server, suite_config

NOW = datetime(2026, 11, 16, 6, 0, tzinfo=timezone.utc)


def suite_yaml(schedule: str, extra: str = "") -> str:
    return f"""
        suites:
          weekly:
            schedule: "{schedule}"
            recipients: [secops@example.com]{extra}
        """


@pytest.mark.parametrize("schedule, fix", [
    ("0 6 * * 1", "'0 6 * * mon'"),
    ("0 6 * * 1-5", "'0 6 * * mon-fri'"),
    ("0 6 * * 0", "'0 6 * * sun'"),
    ("0 6 * * 7", "'0 6 * * sun'"),
    ("30 7 * * 0,6", "'30 7 * * sat-sun'"),
    ("0 6 * * 1,3,5", "'0 6 * * mon,wed,fri'"),
])
def test_numeric_day_of_week_is_refused_at_its_line_with_names_suggested(tmp_path, schedule, fix):
    with pytest.raises(ConfigError) as exc:
        load_config(write_config(tmp_path, suite_yaml(schedule)))
    assert (exc.value.line, exc.value.column) == (3, 15)
    assert str(exc.value).startswith(f"{tmp_path / 'config.yaml'}:3:15: suites.weekly.schedule: day of week")
    assert "APScheduler 3 counts Monday as 0" in str(exc.value)
    assert f"write {fix}" in str(exc.value)


def test_the_suggested_names_fire_on_the_day_cron_means(tmp_path):
    # cron's `0 6 * * 1` means Monday; APScheduler 3 would read the 1 as Tuesday. Its suggestion fires on Monday.
    sunday = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
    assert sunday.weekday() == 6
    numeric = CronTrigger.from_crontab("0 6 * * 1", timezone="UTC").get_next_fire_time(None, sunday)
    named = CronTrigger.from_crontab("0 6 * * mon", timezone="UTC").get_next_fire_time(None, sunday)
    assert numeric.strftime("%a") == "Tue" and named.strftime("%a") == "Mon"
    loaded = load_config(write_config(tmp_path, suite_yaml("0 6 * * mon")))
    assert loaded.config.suites["weekly"].schedule == "0 6 * * mon"


@pytest.mark.parametrize("schedule, error", [
    ("0 6 1 * mon", "restricts both the day of month (1) and the day of week (mon)"),
    ("0 6 * *", "has 4 fields"),
    ("61 6 * * mon", "not a valid schedule"),
])
def test_other_schedules_that_cron_and_apscheduler_read_differently_are_refused(tmp_path, schedule, error):
    with pytest.raises(ConfigError, match=":3:15: ") as exc:
        load_config(write_config(tmp_path, suite_yaml(schedule)))
    assert error in str(exc.value)


def test_unknown_time_zone_and_bad_recipient(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(write_config(tmp_path, suite_yaml("0 6 * * mon", "\n            timezone: Europe/Berlinn")))
    assert "config.yaml:5:15:" in str(exc.value) and "did you mean 'Europe/Berlin'" in str(exc.value)
    with pytest.raises(ConfigError, match="not an e-mail address"):
        load_config(write_config(tmp_path, suite_yaml("0 6 * * mon").replace("secops@example.com", "secops")))


def test_resolve_window_checks_and_recipients(tmp_path):
    loaded = load_config(suite_config(tmp_path, port=25))
    suite = resolve_suite(loaded, "weekly", datetime(2026, 11, 16, 23, 59, tzinfo=timezone.utc), builtins().checks)
    assert suite.window == TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc))
    assert suite.checks == ("exposed_well_known_ports", "top_rejected_sources")
    assert suite.recipients == ("secops@example.com", "cto@example.com")
    assert suite.title == "Weekly network audit"
    # the suite's view of the config keeps each check's parameters and drops the others
    assert suite.loaded.config.checks == {"exposed_well_known_ports": {},
                                          "top_rejected_sources": {"min_flows": 5, "scan_ports": 10}}
    assert loaded.config.checks is not None and "unused_security_groups" in loaded.config.checks


def test_unknown_suite_and_unknown_check_are_config_errors(tmp_path):
    path = suite_config(tmp_path, port=25, extra="""  daily:
    schedule: "0 7 * * *"
    checks: [sg_change]
    recipients: [a@example.com]
""")
    loaded = load_config(path)
    with pytest.raises(ConfigError, match="unknown suite 'weeky' \\(did you mean 'weekly'\\?\\)"):
        resolve_suite(loaded, "weeky", NOW, builtins().checks)
    with pytest.raises(ConfigError) as exc:
        resolve_suite(loaded, "daily", NOW, builtins().checks)
    assert "unknown check 'sg_change' (did you mean 'sg_changes'?)" in str(exc.value)
    text = path.read_text().splitlines()
    assert "sg_change" in text[exc.value.line - 1]


def test_delivering_needs_email_settings_and_recipients(tmp_path):
    loaded = load_config(write_config(tmp_path, suite_yaml("0 6 * * mon").replace("recipients: [secops@example.com]",
                                                                                   "recipients: []")))
    assert resolve_suite(loaded, "weekly", NOW, builtins().checks).recipients == ()  # a hand run without mail is fine
    with pytest.raises(ConfigError, match="no email: section"):
        resolve_suite(loaded, "weekly", NOW, builtins().checks, deliver=True)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A real record with two new findings, for the send policy."""
    root = tmp_path_factory.mktemp("policy")
    return run_suite(load_config(suite_config(root, port=25)), "weekly", deliver=False, clock=lambda: NOW,
                     formats=("json",)).outcome.record


def test_send_policy(finished):
    assert should_send(finished, "always") == (True, "send: always")
    assert should_send(finished, "on_findings") == (True, "2 active findings")
    assert should_send(finished, "on_change") == (True, "2 new, 0 resolved")
    persisting = replace(finished, checks=tuple(
        replace(c, findings=tuple(replace(f, change=Change.PERSISTING) for f in c.findings)) for c in finished.checks))
    assert should_send(persisting, "on_change")[0] is False
    assert should_send(persisting, "on_findings")[0] is True
    clean = replace(finished, checks=tuple(replace(c, findings=()) for c in finished.checks))
    assert should_send(clean, "on_findings") == (False, "no active findings (send: on_findings)")
    errored = replace(clean, checks=(replace(clean.checks[0], status=type(clean.checks[0].status)("error")),))
    assert should_send(errored, "on_findings") == (True, "a check errored")
    blind = replace(clean, checks=(replace(clean.checks[0], status=type(clean.checks[0].status)("no_data")),))
    assert should_send(blind, "on_change") == (True, "a check had no data")


def test_deliver_mails_records_and_pings_the_heartbeat(tmp_path):
    pinged = []
    with smtp_server(tmp_path) as server:
        path = suite_config(tmp_path, port=server.port)
        path.write_text(path.read_text() + "schedule: {heartbeat_url: 'https://hc.example.com/ping/abc'}\n")
        loaded = load_config(path)
        ran = run_suite(loaded, "weekly", deliver=True, clock=lambda: NOW, http_get=pinged.append,
                        formats=("json",))
        (received,) = server.inbox.wait(1)
    assert ran.delivery.status == "sent" and not ran.delivery_failed
    assert received.message()["Subject"] == "[auditor] Weekly network audit 2026-11-09..2026-11-16: 1 high, 2 new"
    assert pinged == ["https://hc.example.com/ping/abc"]
    (stored,) = (tmp_path / ".auditor" / "runs").glob("*.json")
    delivery = json.loads(stored.read_text())["delivery"]
    assert (delivery["status"], delivery["suite"], delivery["recipients"]) == ("sent", "weekly", ["secops@example.com", "cto@example.com"])
    state = SuiteState(loaded, "weekly").read()
    assert state["last_success"]["run_id"] == ran.outcome.record.id and "running" not in state


def test_send_on_findings_without_findings_mails_nothing(tmp_path):
    with smtp_server(tmp_path) as server:
        path = suite_config(tmp_path, port=server.port)
        path.write_text(path.read_text().replace("recipients: [", "send: on_findings\n    recipients: ["))
        # Sixty days on, the flow logs hold one quiet record: data, and nothing to report. (Without any record
        # the checks would have no data, and such a run is always mailed.)
        write_flow_log(tmp_path / "flows", [record(start="2027-01-12T10:00:00Z", action="REJECT", srcaddr="10.0.0.9")],
                       day="2027/01/12")
        ran = run_suite(load_config(path), "weekly", deliver=True, clock=lambda: NOW + timedelta(days=60),
                        formats=("json",))
        assert server.inbox.messages == []
    assert ran.delivery.status == "skipped" and ran.delivery.reason == "no active findings (send: on_findings)"


def test_a_run_without_data_is_always_mailed_and_says_so_first(tmp_path):
    with smtp_server(tmp_path) as server:
        path = suite_config(tmp_path, port=server.port)
        path.write_text(path.read_text().replace("recipients: [", "send: on_findings\n    recipients: ["))
        ran = run_suite(load_config(path), "weekly", deliver=True, clock=lambda: NOW + timedelta(days=60),
                        formats=("json",))
        (received,) = server.inbox.messages
    assert ran.delivery.status == "sent"
    message = received.message()
    assert message["Subject"].startswith("NO DATA (2 checks): [auditor] Weekly network audit")
    text = message.get_body(("plain",)).get_content()
    assert text.index("NO DATA: 2 checks read no usable record") < text.index("Active findings by severity")


def test_hand_run_mails_only_with_deliver(tmp_path):
    with smtp_server(tmp_path) as server:
        cfg = suite_config(tmp_path, port=server.port)
        result = CliRunner().invoke(main, ["run", "--config", str(cfg), "--suite", "weekly", "--format", "json",
                                           "--since", "2026-11-09", "--until", "2026-11-16"])
        assert result.exit_code == 0, result.output
        assert "mail:" not in result.output
        assert server.inbox.messages == []
        result = CliRunner().invoke(main, ["run", "--config", str(cfg), "--deliver", "--format", "json"])
        assert result.exit_code == 2 and "--deliver needs --suite NAME" in result.output
        result = CliRunner().invoke(main, ["run", "--config", str(cfg), "--suite", "weekly", "--deliver",
                                           "--format", "json", "--since", "2026-11-09", "--until", "2026-11-16"])
        assert result.exit_code == 0, result.output
        assert "mail: sent to secops@example.com, cto@example.com" in result.output
        (received,) = server.inbox.wait(1)
    msg = received.message()
    assert "2026-11-09..2026-11-16" in msg["Subject"]
    assert list(msg.iter_attachments()) == []  # --format json: no PDF, and the mail says so
    assert "This run has no PDF: it was not requested (--format)" in msg.get_body(("plain",)).get_content()


def test_smtp_down_keeps_the_report_exits_4_and_the_next_report_shows_it(tmp_path):
    port = free_port()  # nothing listens here
    cfg = suite_config(tmp_path, port=port)
    result = CliRunner().invoke(main, ["run", "--config", str(cfg), "--suite", "weekly", "--deliver",
                                       "--since", "2026-11-09", "--until", "2026-11-16", "--format", "json,pdf"])
    assert result.exit_code == 4, result.output
    assert "the report was not mailed after 2 attempt(s): ConnectionRefusedError" in result.output
    (report_dir,) = (tmp_path / "reports").iterdir()
    assert {p.name for p in report_dir.iterdir()} >= {"findings.json", "report.pdf"}
    assert (report_dir / "report.pdf").read_bytes().startswith(b"%PDF")
    first_id = json.loads((report_dir / "findings.json").read_text())["run"]["id"]
    (stored,) = (tmp_path / ".auditor" / "runs").glob("*.json")
    delivery = json.loads(stored.read_text())["delivery"]
    assert (delivery["status"], delivery["attempts"]) == ("failed", 2)
    assert delivery["report"] == str(report_dir)
    loaded = load_config(cfg)
    assert SuiteState(loaded, "weekly").read()["last_failure"]["reason"].startswith("delivery failed: ConnectionRefusedError")

    # The next week, with the server back: the report and its mail say the previous one was not delivered.
    with smtp_server(tmp_path) as server:
        cfg.write_text(cfg.read_text().replace(f"port: {port}", f"port: {server.port}"))
        # The runs after it finish after it (the CLI's run above used the real clock): what was delivered last is
        # decided by when runs finished.
        ran = run_suite(load_config(cfg), "weekly", deliver=True, clock=lambda: datetime.now(timezone.utc) + timedelta(days=7),
                        window=TimeWindow(NOW, NOW + timedelta(days=7)), formats=("json",))
        (received,) = server.inbox.wait(1)
    expected = f"the report of run {first_id} (suite weekly) was not delivered to secops@example.com, cto@example.com"
    assert any(w.startswith(expected) for w in ran.outcome.record.warnings)
    assert expected in received.message().get_body(("plain",)).get_content()
    findings = json.loads((ran.outcome.out_dir / "findings.json").read_text())
    assert any(w.startswith(expected) for w in findings["run"]["warnings"])
    # delivered now: the warning is gone from the run after
    third = run_suite(load_config(cfg), "weekly", deliver=False, clock=lambda: datetime.now(timezone.utc) + timedelta(days=14),
                      window=TimeWindow(NOW + timedelta(days=7), NOW + timedelta(days=14)), formats=("json",))
    assert not any("was not delivered" in w for w in third.outcome.record.warnings)


def test_a_failed_run_sends_a_notice_and_raises(tmp_path):
    with smtp_server(tmp_path) as server:
        loaded = load_config(suite_config(tmp_path, port=server.port))
        occupied = tmp_path / "occupied"
        occupied.mkdir()
        (occupied / "x").write_text("x")
        with pytest.raises(UsageError, match="not empty"):
            run_suite(loaded, "weekly", deliver=True, clock=lambda: NOW, out_dir=occupied, formats=("json",))
        (notice,) = server.inbox.wait(1)
    msg = notice.message()
    assert msg["Subject"].startswith("[auditor] FAILED: Weekly network audit: The run failed:")
    assert "not empty" in msg.get_body(("plain",)).get_content()
    assert notice.rcpt_tos == ["secops@example.com", "cto@example.com"]
    state = SuiteState(loaded, "weekly").read()
    assert "not empty" in state["last_failure"]["reason"] and "running" not in state


def test_a_suite_never_overlaps_itself(tmp_path):
    loaded = load_config(suite_config(tmp_path, port=25))
    state = SuiteState(loaded, "weekly")
    with state.running(NOW):
        with pytest.raises(SuiteBusy, match="suite 'weekly' is already running \\(since 2026-11-16T06:00:00Z\\)"):
            run_suite(loaded, "weekly", deliver=False, clock=lambda: NOW, formats=("json",))
        assert state.interrupted() is None  # a live holder is not an interrupted run
    assert "running" not in state.read()
