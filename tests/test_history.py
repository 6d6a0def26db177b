"""What changed since the last run: fingerprints, new/persisting/resolved/aged out, trends, suppressions."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from auditor.builtins import builtins
from auditor.cli import main
from auditor.config import load_config
from auditor.demo import generate
from auditor.errors import ConfigError
from auditor.evaluate import fingerprint
from auditor.history import History, StoredCheck, StoredRun, compare
from auditor.models import (
    Change,
    CheckResult,
    DataQuality,
    Finding,
    RunRecord,
    Severity,
    Status,
    TimeWindow,
)
from auditor.pipeline import run_audit
from tests.support.flowdata import write_config

UTC = timezone.utc
ANCHOR = date(2026, 11, 16)
WEEK1 = TimeWindow(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC))
WEEK2 = TimeWindow(datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC))
NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)

CONFIG = """
    sources:
      flow_logs: demo/flowlogs
      cloudtrail: demo/cloudtrail
      inventory: demo/inventory
    state_dir: state
    %s
    """


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("history")
    manifest = generate(root / "demo", ANCHOR)
    return root, manifest


def _run(config, window, out):
    return run_audit(load_config(config), window, out_dir=out, force=True, clock=lambda: NOW, formats=("json",))


def _doc(outcome):
    return json.loads((outcome.out_dir / "findings.json").read_text())


def _checks(doc):
    return {c["id"]: c for c in doc["checks"]}


@pytest.fixture(scope="module")
def two_weeks(demo_root):
    root, manifest = demo_root
    config = write_config(root, CONFIG % "")
    first = _doc(_run(config, WEEK1, root / "w1"))
    second = _doc(_run(config, WEEK2, root / "w2"))
    again = _doc(_run(config, WEEK2, root / "w2-again"))
    return first, second, again, manifest, root


def test_first_run_marks_everything_new_and_resolves_nothing(two_weeks):
    first, *_ = two_weeks
    assert first["run"]["previous_run_id"] is None
    for check in first["checks"]:
        assert all(f["change"] == "new" for f in check["findings"])
        assert check["resolved"] == []


def test_second_week_compares_with_the_first(two_weeks):
    first, second, _, manifest, _ = two_weeks
    assert second["run"]["previous_run_id"] == first["run"]["id"]
    before, after = _checks(first), _checks(second)
    for check_id, check in after.items():
        old = {f["fingerprint"]: f for f in before[check_id]["findings"] if not f["suppressed"]}
        for f in check["findings"]:
            assert f["change"] == ("persisting" if f["fingerprint"] in old else "new"), (check_id, f["title"])
        now = {f["fingerprint"] for f in check["findings"]}
        assert {r["fingerprint"] for r in check["resolved"]} == set(old) - now
    # the misconfigured database port is exposed both weeks: persisting, same fingerprint
    exposed = [f for f in after["exposed_well_known_ports"]["findings"]
               if f["interface_id"] == manifest.exposed_eni and f["dstport"] == manifest.exposed_port]
    assert exposed and exposed[0]["change"] == "persisting"
    # SG changes are events: last week's are aged out, this week's are new
    changes = after["sg_changes"]
    assert changes["resolved"] and {r["label"] for r in changes["resolved"]} == {"aged out"}
    assert all(f["change"] == "new" for f in changes["findings"])
    events = {spec.id for spec in builtins().checks if spec.meta.event_like}
    assert {"sg_changes", "top_rejected_sources", "logging_disabled", "nacl_changes", "probing_sources"} == events
    assert {r["label"] for c in after.values() if c["id"] not in events for r in c["resolved"]} <= {"resolved"}
    assert {r["label"] for c in after.values() if c["id"] in events for r in c["resolved"]} <= {"aged out"}
    # a state finding goes away: the reporting host's SSH rule, unused in the older week, was used by the on-call
    # session of the newer one, so it is resolved (not aged out) and no longer listed
    assert manifest.weeks[1].on_call_ssh_at is None and WEEK2.contains(manifest.weeks[0].on_call_ssh_at)
    rules = after["unused_sg_rules"]
    assert [f for f in before["unused_sg_rules"]["findings"] if f["rule_id"] == manifest.on_call_rule]
    assert not [f for f in rules["findings"] if f["rule_id"] == manifest.on_call_rule]
    (gone,) = [r for r in rules["resolved"] if manifest.on_call_rule in r["title"]]
    assert gone["label"] == "resolved"
    assert any(r["label"] == "resolved" for c in after.values() for r in c["resolved"])


def test_rerunning_the_same_window_does_not_turn_everything_persisting(two_weeks):
    _, second, again, _, _ = two_weeks
    assert again["run"]["previous_run_id"] == second["run"]["previous_run_id"]
    for a, b in zip(second["checks"], again["checks"]):
        assert [f["change"] for f in a["findings"]] == [f["change"] for f in b["findings"]]
        assert a["resolved"] == b["resolved"]


def test_trend_holds_one_point_per_comparable_run(two_weeks):
    first, second, again, _, _ = two_weeks
    for check in _checks(again).values():
        if check["status"] in ("pass", "fail"):
            assert [p["until"] for p in check["trend"]] == ["2026-11-09T00:00:00Z", "2026-11-16T00:00:00Z"]
            assert check["trend"][-1]["value"] == len([f for f in check["findings"] if not f["suppressed"]])
            old = _checks(first)[check["id"]]
            assert check["trend"][0]["value"] == len([f for f in old["findings"] if not f["suppressed"]])


def test_state_lives_in_state_dir_not_in_reports(two_weeks):
    *_, root = two_weeks
    records = sorted((root / "state" / "runs").glob("*.json"))
    assert len(records) == 3
    doc = json.loads(records[0].read_text())
    assert doc["record_version"] == 1 and doc["findings"]["schema_version"] == 1
    assert not list((root / "w1").rglob("runs"))


def test_a_suppression_is_listed_does_not_count_and_warns_before_expiry(demo_root, tmp_path):
    root, manifest = demo_root
    exceptions = f"""exceptions:
      - check: exposed_well_known_ports
        match: {{interface_id: {manifest.exposed_eni}, dstport: {manifest.exposed_port}, protocol: 6}}
        owner: dba-team
        reason: migration window, ticket SEC-42
        expires: 2026-11-30
      - check: top_rejected_sources
        match: {{srcaddr: 192.0.2.254}}
        owner: netops
        reason: old scanner allowlist
        expires: 2026-10-01
    """
    config = write_config(root, (CONFIG % exceptions).replace("state_dir: state", f"state_dir: {tmp_path / 'st'}"))
    outcome = _run(config, WEEK2, tmp_path / "out")
    checks = {c.check_id: c for c in outcome.record.checks}
    exposed = checks["exposed_well_known_ports"]
    (suppressed,) = [f for f in exposed.findings if f.suppressed]
    assert suppressed.key["dstport"] == manifest.exposed_port
    assert suppressed.suppression.owner == "dba-team" and suppressed.suppression.expires == date(2026, 11, 30)
    assert suppressed not in exposed.active_findings
    doc = _doc(outcome)
    listed = [f for f in _checks(doc)["exposed_well_known_ports"]["findings"] if f["suppressed"]]
    assert listed[0]["suppression"]["reason"] == "migration window, ticket SEC-42"
    warnings = " | ".join(outcome.record.warnings)
    assert "expires on 2026-11-30" in warnings  # within 14 days of the run (2026-11-20)
    assert "expired on 2026-10-01" in warnings


def test_suppressed_findings_do_not_trigger_fail_on(tmp_path):
    from tests.support.flowdata import record, write_flow_log
    write_flow_log(tmp_path / "flows", [record(srcaddr="198.51.100.23", action="REJECT", dstport=p) for p in range(20, 40)])
    body = """
        sources: {flow_logs: flows}
        checks:
          top_rejected_sources: {min_flows: 5}
        %s
        """
    args = ["run", "--since", "2026-11-09", "--until", "2026-11-16", "--fail-on", "medium", "--force"]
    plain = write_config(tmp_path, body % "")
    assert CliRunner().invoke(main, [*args, "--config", str(plain), "--out", str(tmp_path / "a")]).exit_code == 1
    far = (date.today() + timedelta(days=60)).isoformat()
    suppressed = write_config(tmp_path, body % f"""exceptions:
          - {{check: top_rejected_sources, match: {{srcaddr: 198.51.100.23}}, owner: me, reason: our own scanner, expires: {far}}}""")
    result = CliRunner().invoke(main, [*args, "--config", str(suppressed), "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "b" / "findings.json").read_text())
    assert doc["checks"][0]["status"] == "pass" and doc["checks"][0]["findings"][0]["suppressed"] is True


def test_exception_on_a_non_key_column_is_a_config_error(tmp_path):
    config = write_config(tmp_path, """
        sources: {flow_logs: flows}
        exceptions:
          - check: top_rejected_sources
            match: {dstport: 22}
            owner: me
            reason: x
            expires: 2030-01-01
        """)
    with pytest.raises(ConfigError) as exc:
        run_audit(load_config(config), WEEK2, out_dir=tmp_path / "o", formats=("json",))
    assert "'dstport' is not a key column of top_rejected_sources" in str(exc.value)
    assert f"{config}:4:13:" in str(exc.value)


# --- compare() on hand-made values ---------------------------------------------------------------


def _finding(check_id, key):
    return Finding(check_id=check_id, severity=Severity.LOW, title=str(key), key=key,
                   fingerprint=fingerprint(check_id, None, None, key))


def _record(run_id, window, checks, key="s"):
    return RunRecord(id=run_id, window=window, engine="local", started_at=window.until, finished_at=window.until,
                     tool_version="t", checks=tuple(checks), data_quality=DataQuality(), sources_key=key)


def _stored(run_id, window, check_id, findings, status="fail", key="s"):
    return StoredRun(run_id, window.since, window.until, key,
                     {check_id: StoredCheck(status, {f.fingerprint: (f.title, "low") for f in findings}, len(findings))})


def test_fingerprint_is_stable_and_ignores_position_and_title():
    a = fingerprint("c", "1", "r", {"srcaddr": "198.51.100.1", "dstport": 22})
    assert a == fingerprint("c", "1", "r", {"dstport": 22, "srcaddr": "198.51.100.1"})
    assert a != fingerprint("c", "2", "r", {"srcaddr": "198.51.100.1", "dstport": 22})
    assert a != fingerprint("d", "1", "r", {"srcaddr": "198.51.100.1", "dstport": 22})


def test_errored_check_resolves_nothing_and_other_sources_do_not_compare():
    old = [_finding("c", {"k": 1}), _finding("c", {"k": 2})]
    history = [_stored("r1", WEEK1, "c", old)]
    errored = CheckResult(check_id="c", title="c", status=Status.ERROR, severity=Severity.LOW, error="boom")
    out = compare(_record("r2", WEEK2, [errored]), history, {"c": False})
    assert out.checks[0].resolved == ()
    assert [p.run_id for p in out.checks[0].trend] == ["r1"]  # history, but no point for a run that errored
    ok = CheckResult(check_id="c", title="c", status=Status.FAIL, severity=Severity.LOW, findings=(old[0],))
    other = compare(_record("r2", WEEK2, [ok], key="other-sources"), history, {"c": False})
    assert other.previous_run_id is None and other.checks[0].findings[0].change is Change.NEW
    same = compare(_record("r2", WEEK2, [ok]), history, {"c": False})
    assert same.checks[0].findings[0].change is Change.PERSISTING
    assert [r.fingerprint for r in same.checks[0].resolved] == [old[1].fingerprint]


def test_previous_run_skips_runs_where_the_check_errored():
    f = _finding("c", {"k": 1})
    w0 = TimeWindow(WEEK1.since - timedelta(days=7), WEEK1.since)
    history = [_stored("r0", w0, "c", [f]), _stored("r1", WEEK1, "c", [], status="error")]
    ok = CheckResult(check_id="c", title="c", status=Status.FAIL, severity=Severity.LOW, findings=(f,))
    out = compare(_record("r2", WEEK2, [ok]), history, {"c": False})
    assert out.checks[0].findings[0].change is Change.PERSISTING
    assert out.previous_run_id == "r0"


def test_a_check_without_data_resolves_nothing_adds_no_trend_point_and_is_never_the_previous_run():
    f, g = _finding("c", {"k": 1}), _finding("c", {"k": 2})
    w0 = TimeWindow(WEEK1.since - timedelta(days=7), WEEK1.since)
    history = [_stored("r0", w0, "c", [f, g]), _stored("r1", WEEK1, "c", [], status="no_data")]
    blind = CheckResult(check_id="c", title="c", status=Status.NO_DATA, severity=Severity.LOW, findings=(f,),
                        no_data_sources=("flow_logs",))
    out = compare(_record("r2", WEEK2, [blind]), history, {"c": False})
    check = out.checks[0]
    # g is not resolved: nothing was read that could show it gone. f, a configuration fact, persists from r0.
    assert check.resolved == () and check.findings[0].change is Change.PERSISTING
    assert out.previous_run_id == "r0"  # not r1, which had no data
    assert [p.run_id for p in check.trend] == ["r0"]  # no point for r1, nor for this run


def test_unknown_record_versions_are_skipped_with_a_warning(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "x.json").write_text(json.dumps({"record_version": 99}))
    (runs / "y.json").write_text("{not json")
    h = History(tmp_path)
    assert h.load() == []
    assert any("version 99" in w for w in h.warnings) and any("unreadable" in w for w in h.warnings)


def test_a_finding_that_persists_with_another_severity_is_escalated_or_de_escalated():
    up, down, same = _finding("c", {"k": 1}), _finding("c", {"k": 2}), _finding("c", {"k": 3})
    history = [StoredRun("r1", WEEK1.since, WEEK1.until, "s",
                         {"c": StoredCheck("fail", {up.fingerprint: ("up", "low"), down.fingerprint: ("down", "high"),
                                                    same.fingerprint: ("same", "medium")}, 3)})]
    now = (replace(up, severity=Severity.MEDIUM), replace(down, severity=Severity.LOW),
           replace(same, severity=Severity.MEDIUM))
    ok = CheckResult(check_id="c", title="c", status=Status.FAIL, severity=Severity.MEDIUM, findings=now)
    out = compare(_record("r2", WEEK2, [ok]), history, {"c": False})
    changes = [(f.change, f.previous_severity) for f in out.checks[0].findings]
    assert changes == [(Change.ESCALATED, Severity.LOW), (Change.DE_ESCALATED, Severity.HIGH),
                       (Change.PERSISTING, None)]
    assert out.previous_window == WEEK1
    doc = [f.to_json() for f in out.checks[0].findings]
    assert doc[0]["change"] == "escalated" and doc[0]["previous_severity"] == "low"
    assert doc[1]["change"] == "de-escalated" and "previous_severity" not in doc[2]
