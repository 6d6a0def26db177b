"""logging_disabled on the local engine: every call that reduces logging, its target and its severity, a real
detonation (Stratus Red Team's DeleteFlowLogs), failed attempts, and what does not count."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta, timezone

from auditor.models import Severity, Status, TimeWindow
from tests.support.flowdata import write_config
from tests.support.runner import results
from tests.support.trail import event, write_trail

CONFIG = """
    sources:
      cloudtrail: trail
    checks:
      logging_disabled: {}
    """

ROLE = {"type": "AssumedRole", "principalId": "AROAX:mallory",
        "arn": "arn:aws:sts::111122223333:assumed-role/BreakGlass/mallory",
        "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/BreakGlass"}}}


def run(tmp_path, events):
    write_trail(tmp_path / "trail", events)
    return results(write_config(tmp_path, CONFIG))["logging_disabled"]


def rows(result):
    return {row["event_id"]: row for row in result.rows}


def severities(result):
    return {f.key["event_id"]: f.severity for f in result.findings}


def titles(result):
    return {f.key["event_id"]: f.title for f in result.findings}


def test_stops_and_deletes_are_high_with_their_targets(tmp_path):
    flow = event("DeleteFlowLogs", {"DeleteFlowLogsRequest": {"FlowLogId": [{"content": "fl-1", "tag": 1},
                                                                              {"content": "fl-2", "tag": 2}]}},
                 time="2026-11-10T01:00:00Z")
    stop = event("StopLogging", {"name": "arn:aws:cloudtrail:eu-west-1:111122223333:trail/main"},
                 source="cloudtrail.amazonaws.com", time="2026-11-10T02:00:00Z", arn=None, userIdentity=ROLE)
    recorder = event("StopConfigurationRecorder", {"configurationRecorderName": "default"},
                     source="config.amazonaws.com", time="2026-11-10T03:00:00Z")
    channel = event("DeleteDeliveryChannel", {"deliveryChannelName": "default"}, source="config.amazonaws.com",
                    time="2026-11-10T03:30:00Z")
    detector = event("DeleteDetector", {"detectorId": "12abc34d567e8fa901bc2d34e56789f0"},
                     source="guardduty.amazonaws.com", time="2026-11-10T04:00:00Z")
    disabled = event("UpdateDetector", {"detectorId": "12abc", "enable": False}, source="guardduty.amazonaws.com",
                     time="2026-11-10T05:00:00Z")
    r = run(tmp_path, [flow, stop, recorder, channel, detector, disabled])
    assert set(severities(r).values()) == {Severity.HIGH} and len(r.findings) == 6
    assert r.status is Status.FAIL and r.severity is Severity.HIGH
    got = rows(r)
    assert got[flow["eventID"]]["target"] == "fl-1, fl-2"
    assert got[stop["eventID"]]["target"] == "arn:aws:cloudtrail:eu-west-1:111122223333:trail/main"
    assert got[recorder["eventID"]]["target"] == "default"
    assert got[disabled["eventID"]]["target"] == "12abc"
    assert got[stop["eventID"]]["actor"] == "arn:aws:sts::111122223333:assumed-role/BreakGlass/mallory"
    assert list(r.columns) == ["event_id", "event_time", "event_name", "actor", "source_ip", "user_agent", "target",
                               "error_code", "account_id", "region", "severity"]
    t = titles(r)
    assert t[stop["eventID"]] == "mallory (BreakGlass) stopped CloudTrail logging on the trail main from 198.51.100.44"
    assert t[flow["eventID"]] == "alice deleted the VPC flow logs fl-1, fl-2 from 198.51.100.44"
    assert t[disabled["eventID"]] == "alice disabled the GuardDuty detector 12abc from 198.51.100.44"


def test_other_changes_and_failed_attempts_are_medium(tmp_path):
    retention = event("PutRetentionPolicy", {"logGroupName": "/vpc/flow", "retentionInDays": 1},
                      source="logs.amazonaws.com", time="2026-11-10T01:00:00Z")
    stream = event("DeleteLogStream", {"logGroupName": "/vpc/flow", "logStreamName": "eni-1-all"},
                   source="logs.amazonaws.com", time="2026-11-10T02:00:00Z")
    selectors = event("PutEventSelectors", {"trailName": "main", "eventSelectors": [{"readWriteType": "ReadOnly"}]},
                      source="cloudtrail.amazonaws.com", time="2026-11-10T03:00:00Z")
    refused = event("DeleteTrail", {"name": "main"}, source="cloudtrail.amazonaws.com", time="2026-11-10T04:00:00Z",
                    error="AccessDenied")
    r = run(tmp_path, [retention, stream, selectors, refused])
    assert severities(r) == {e["eventID"]: Severity.MEDIUM for e in (retention, stream, selectors, refused)}
    assert rows(r)[stream["eventID"]]["target"] == "/vpc/flow (stream eni-1-all)"
    assert rows(r)[refused["eventID"]]["error_code"] == "AccessDenied"
    assert titles(r)[refused["eventID"]] == ("alice tried to delete the CloudTrail trail main from 198.51.100.44, "
                                             "refused (AccessDenied)")
    assert titles(r)[retention["eventID"]] == ("alice set the retention of the CloudWatch Logs log group /vpc/flow "
                                               "from 198.51.100.44")


def test_a_real_delete_flow_logs_detonation_fires(tmp_path, corpus):
    # Stratus Red Team's aws.defense-evasion.vpc-remove-flow-logs, as CloudTrail recorded it.
    src = corpus / "stratus-red-team" / "aws.defense-evasion.vpc-remove-flow-logs.json"
    (e,) = json.loads(src.read_text())
    folder = tmp_path / "trail"
    folder.mkdir()
    shutil.copy(src, folder / src.name)
    day = datetime.combine(date.fromisoformat(e["eventTime"][:10]), datetime.min.time(), tzinfo=timezone.utc)
    r = results(write_config(tmp_path, CONFIG), TimeWindow(day, day + timedelta(days=1)))["logging_disabled"]
    (row,) = r.rows
    assert row["target"] == "fl-0e17aa62a21d4bbfe" and row["event_id"] == e["eventID"]
    assert row["actor"] == "arn:aws:iam::498376118699:user/christophe"
    assert severities(r) == {e["eventID"]: Severity.HIGH}
    assert titles(r)[e["eventID"]] == "christophe deleted the VPC flow log fl-0e17aa62a21d4bbfe from 206.90.1.223"


def test_clean_when_logging_is_only_read_or_turned_on(tmp_path):
    noise = [
        event("DescribeFlowLogs", {}, time="2026-11-10T01:00:00Z"),
        event("CreateFlowLogs", {"CreateFlowLogsRequest": {}}, time="2026-11-10T02:00:00Z"),
        event("StartLogging", {"name": "main"}, source="cloudtrail.amazonaws.com", time="2026-11-10T03:00:00Z"),
        event("UpdateDetector", {"detectorId": "12abc", "enable": True}, source="guardduty.amazonaws.com",
              time="2026-11-10T04:00:00Z"),
        event("UpdateDetector", {"detectorId": "12abc", "findingPublishingFrequency": "SIX_HOURS"},
              source="guardduty.amazonaws.com", time="2026-11-10T04:30:00Z"),
        # Amazon Fraud Detector has a DeleteDetector too: not a logging control.
        event("DeleteDetector", {"detectorId": "fraud"}, source="frauddetector.amazonaws.com",
              time="2026-11-10T05:00:00Z"),
        event("DeleteLogGroup", {"logGroupName": "x"}, source="ec2.amazonaws.com", time="2026-11-10T06:00:00Z"),
    ]
    r = run(tmp_path, noise)
    assert r.rows == () and r.findings == ()
    assert r.status is Status.PASS


def test_the_same_event_from_two_trails_counts_once(tmp_path):
    e = event("StopLogging", {"name": "main"}, source="cloudtrail.amazonaws.com")
    write_trail(tmp_path / "trail", [e])
    r = run(tmp_path, [e])
    assert len(r.rows) == 1 and len(r.findings) == 1
