"""logging_disabled: what each call acted on (its target), whether it really reduced logging, and how bad it is.

Targets come from each API's request: DeleteFlowLogs (EC2 query API, ``DeleteFlowLogsRequest.FlowLogId``),
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteFlowLogs.html; CloudTrail ``name`` /
``trailName``, https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_StopLogging.html; CloudWatch Logs
``logGroupName``; Config ``configurationRecorderName`` / ``deliveryChannelName``; GuardDuty ``detectorId``, whose
UpdateDetector disables the detector only with ``enable: false``,
https://docs.aws.amazon.com/guardduty/latest/APIReference/API_UpdateDetector.html.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor import formatting as fmt
from auditor.checks import HookContext
from auditor.checks.events import content, request_json, unique_events

COLUMNS = ("event_id", "event_time", "event_name", "actor", "source_ip", "user_agent", "target", "error_code",
           "account_id", "region", "severity")

# A successful stop or delete of a trail, flow log, recorder, delivery channel or detector is high; other
# successful changes (selectors, a trail's settings, log groups, streams, retention) are medium.
STOPS = frozenset({"DeleteFlowLogs", "StopLogging", "DeleteTrail", "StopConfigurationRecorder",
                   "DeleteConfigurationRecorder", "DeleteDeliveryChannel", "DeleteDetector", "UpdateDetector"})

# What each call did, as a verb phrase, and what its target is called.
_DID = {
    "DeleteFlowLogs": ("deleted", "VPC flow log"),
    "StopLogging": ("stopped CloudTrail logging on", "trail"),
    "DeleteTrail": ("deleted", "CloudTrail trail"),
    "UpdateTrail": ("changed the settings of", "CloudTrail trail"),
    "PutEventSelectors": ("changed which events are recorded by", "CloudTrail trail"),
    "DeleteLogGroup": ("deleted", "CloudWatch Logs log group"),
    "DeleteLogStream": ("deleted", "CloudWatch Logs stream"),
    "PutRetentionPolicy": ("set the retention of", "CloudWatch Logs log group"),
    "StopConfigurationRecorder": ("stopped", "AWS Config recorder"),
    "DeleteConfigurationRecorder": ("deleted", "AWS Config recorder"),
    "DeleteDeliveryChannel": ("deleted", "AWS Config delivery channel"),
    "DeleteDetector": ("deleted", "GuardDuty detector"),
    "UpdateDetector": ("disabled", "GuardDuty detector"),
}


def transform(columns: tuple[str, ...], rows: list[dict[str, Any]], ctx: HookContext) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    out = []
    for row in unique_events(rows):
        req = request_json(row.get("request_parameters"))
        if row.get("event_name") == "UpdateDetector" and not _disables(req):
            continue  # an UpdateDetector that leaves the detector on (a finding frequency, a feature)
        judged = {c: row.get(c) for c in COLUMNS}
        judged["target"] = target(row.get("event_name") or "", req)
        judged["severity"] = severity(row.get("event_name") or "", row.get("error_code"))
        out.append(judged)
    return COLUMNS, out


def _disables(req: Mapping[str, Any]) -> bool:
    return str(req.get("enable")).lower() == "false"


def target(name: str, req: Mapping[str, Any]) -> str | None:
    """The flow-log IDs, trail, log group (and stream), recorder, delivery channel or detector acted on."""
    if name == "DeleteFlowLogs":
        inner = req.get("DeleteFlowLogsRequest") or req
        ids = content(inner.get("FlowLogId")) or content(inner.get("flowLogIds") or inner.get("FlowLogIds"))
        return ", ".join(ids) or None
    if name in ("StopLogging", "DeleteTrail", "UpdateTrail"):
        return req.get("name")
    if name == "PutEventSelectors":
        return req.get("trailName")
    if name == "DeleteLogStream":
        group, stream = req.get("logGroupName"), req.get("logStreamName")
        return f"{group} (stream {stream})" if group and stream else group or stream
    if name in ("DeleteLogGroup", "PutRetentionPolicy"):
        return req.get("logGroupName")
    if name in ("StopConfigurationRecorder", "DeleteConfigurationRecorder"):
        return req.get("configurationRecorderName")
    if name == "DeleteDeliveryChannel":
        return req.get("deliveryChannelName")
    if name in ("DeleteDetector", "UpdateDetector"):
        return req.get("detectorId")
    return None


def severity(name: str, error_code: str | None) -> str:
    if error_code:
        return "medium"  # an attempt is itself a signal
    return "high" if name in STOPS else "medium"


def finding_title(row: Mapping[str, Any]) -> str:
    """``legacy-ops deleted VPC flow log fl-0e17… from 206.90.1.223`` or ``dave@example.com (DeveloperRole) tried
    to stop the AWS Config recorder default from 192.0.2.12, refused (AccessDenied)``."""
    name = row.get("event_name") or "an unknown call"
    verb, noun = _DID.get(name, (f"called {name} on", "resource"))
    what = row.get("target")
    if name == "DeleteFlowLogs" and what and "," in what:
        noun = "VPC flow logs"
    thing = f"the {noun} {_short_trail(what) if 'trail' in noun else what}" if what else f"a {noun}"
    who = fmt.actor(row.get("actor"))
    where = f" from {row['source_ip']}" if row.get("source_ip") else ""
    if row.get("error_code"):
        return f"{who} tried to {_infinitive(verb)} {thing}{where}, refused ({row['error_code']})"
    return f"{who} {verb} {thing}{where}"


def _short_trail(name: str) -> str:
    """A trail named by its ARN (arn:aws:cloudtrail:…:trail/main) reads by its name."""
    return name.rsplit("trail/", 1)[-1] if name.startswith("arn:") else name


def _infinitive(verb: str) -> str:
    first, _, rest = verb.partition(" ")
    base = {"deleted": "delete", "stopped": "stop", "changed": "change", "disabled": "disable",
            "set": "set", "called": "call"}.get(first, first)
    return f"{base} {rest}".strip()
