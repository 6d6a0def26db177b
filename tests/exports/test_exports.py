"""OCSF Detection Finding and ASFF exports, checked against the required fields pinned in the repo
(auditor/schemas/) and, for ASFF, against the securityhub service model inside botocore."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import botocore
import botocore.session
import pytest
from botocore.validate import ParamValidator

import auditor
from auditor.builtins import builtins
from auditor.exports import fingerprint
from auditor.exports.asff import to_asff
from auditor.exports.ocsf import to_ocsf
from auditor.models import Finding, Severity, Status
from tests.render.test_render import BASTION, changed_record, specs_for
from tests.support.fixed_run import fixed_record

SCHEMAS = Path(auditor.__file__).parent / "schemas"
OCSF = json.loads((SCHEMAS / "ocsf-1.1.0-detection_finding.required.json").read_text())
ASFF = json.loads((SCHEMAS / "asff-2018-10-08.required.json").read_text())
ACCOUNT, REGION = "111122223333", "eu-west-1"
PRODUCT = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"


@pytest.fixture(scope="module")
def securityhub():
    return botocore.session.get_session().get_service_model("securityhub")


def _at(doc: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        doc = doc[part]
    return doc


# --- OCSF ------------------------------------------------------------------------------------------

def test_every_ocsf_event_has_the_pinned_required_fields_and_valid_enums():
    rec = changed_record()
    events = to_ocsf(rec, specs_for(rec))
    assert len(events) == sum(len(c.findings) + len(c.resolved) for c in rec.checks) == 7
    for event in events:
        for where, names in OCSF["required"].items():
            if where != "event" and where.split(".")[0] not in event:
                assert where not in ("finding_info", "metadata", "cloud"), where  # those are always required
                continue
            obj = event if where == "event" else _at(event, where)
            missing = [n for n in names if obj.get(n) in (None, "", [], {})]
            assert not missing, (where, missing, event["finding_info"]["title"])
        for profile in event["metadata"]["profiles"]:
            for name in OCSF["profile_required"][profile]:
                assert name in event
        for name, values in OCSF["enums"].items():
            if name in event:
                assert str(event[name]) in values, (name, event[name])
        assert event["class_uid"] == OCSF["class"]["uid"] and event["category_uid"] == OCSF["class"]["category_uid"]
        assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"]
        assert event["metadata"]["version"] == OCSF["ocsf_version"]
        assert isinstance(event["time"], int) and event["time"] == int(rec.finished_at.timestamp() * 1000)
    json.dumps(events)  # plain JSON all the way down


def test_ocsf_activity_and_status_follow_change_suppression_and_resolution():
    rec = changed_record()
    events = {e["finding_info"]["uid"]: e for e in to_ocsf(rec, specs_for(rec))}
    new, persisting = events["exposed-fp03"], events["exposed-fp00"]
    assert new["finding_info"]["title"] == "Newest high finding"
    assert (new["activity_id"], new["status_id"], new["severity_id"]) == (1, 1, 4)
    assert (persisting["activity_id"], persisting["status_id"]) == (2, 1)
    assert persisting["cloud"] == {"provider": "AWS", "region": REGION,
                                   "account": {"uid": ACCOUNT, "type_id": 10, "type": "AWS Account"}}
    bastion = events["exposed-fp02"]
    assert bastion["status_id"] == 3 and bastion["status"] == "Suppressed"
    assert bastion["comment"] == "Suppressed by platform-team until 2024-05-20: bastion host, reviewed quarterly"
    assert bastion["unmapped"]["auditor"]["suppression"] == BASTION.to_json()
    closed = events["dead" * 8]
    assert (closed["activity_id"], closed["status_id"], closed["finding_info"]["title"]) == (3, 4, "Port 23 was open")
    aged = events["beef" * 8]
    assert aged["unmapped"]["auditor"]["change"] == "aged out"
    assert new["unmapped"]["auditor"]["compliance"][0] == {
        "framework": "NIST SP 800-53", "version": "r5", "control": "SC-7", "title": "Boundary Protection"}
    assert new["remediation"] == {"desc": "Remediation for Exposed ports. Then more detail."}


def test_ocsf_of_the_builtin_checks_carries_their_controls_and_data_sources():
    reg = builtins()
    spec = reg.checks.get("exposed_well_known_ports")
    rec = changed_record()
    check = replace(rec.checks[0], check_id=spec.id, findings=(
        Finding(spec.id, Severity.HIGH, "eni-1 6/22", {"interface_id": "eni-1", "dstport": 22, "protocol": 6},
                account_id=ACCOUNT, region=REGION),))
    [event] = to_ocsf(replace(rec, checks=(check,)), {spec.id: spec})[:1]
    assert event["finding_info"]["data_sources"] == ["VPC Flow Logs"]
    assert {c["control"] for c in event["unmapped"]["auditor"]["compliance"]} >= {"SC-7", "AC-4"}
    assert event["resources"][0]["uid"] == f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-interface/eni-1"
    assert event["resources"][0]["type"] == "AWS::EC2::NetworkInterface"
    # No fingerprint from the history stage: one is derived from check, account, region and key, stably.
    assert event["finding_info"]["uid"] == fingerprint(check.findings[0]) and len(event["finding_info"]["uid"]) == 32


# --- ASFF ------------------------------------------------------------------------------------------

def test_pinned_asff_required_members_match_the_installed_botocore(securityhub):
    live = {name: list(securityhub.shape_for(name).required_members) for name in ASFF["required"]}
    assert live == ASFF["required"], f"the securityhub model changed (botocore {botocore.__version__})"


def _check_shape(value: Any, shape, path: str, problems: list[str]) -> None:
    """What ParamValidator leaves out: unknown members, enums and the non-blank pattern."""
    kind = shape.type_name
    if kind == "structure":
        for name in value:
            if name not in shape.members:
                problems.append(f"{path}: unknown member {name}")
        for name in shape.required_members:
            if name not in value:
                problems.append(f"{path}: missing {name}")
        for name, member in value.items():
            if name in shape.members:
                _check_shape(member, shape.members[name], f"{path}.{name}", problems)
    elif kind == "list":
        for i, item in enumerate(value):
            _check_shape(item, shape.member, f"{path}[{i}]", problems)
    elif kind == "map":
        for k, v in value.items():
            _check_shape(v, shape.value, f"{path}[{k}]", problems)
    elif kind == "string":
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} not in {shape.enum}")
        if shape.metadata.get("pattern") == ".*\\S.*" and not value.strip():
            problems.append(f"{path}: blank")


def test_every_asff_finding_validates_against_the_securityhub_model(securityhub):
    rec = changed_record()
    findings = to_asff(rec, specs_for(rec), product_arn=PRODUCT, aws_account_id=ACCOUNT, region=REGION)
    assert len(findings) == 7
    request = securityhub.operation_model("BatchImportFindings").input_shape
    report = ParamValidator().validate({"Findings": findings}, request)
    assert not report.has_errors(), report.generate_report()
    problems: list[str] = []
    shape = securityhub.shape_for("AwsSecurityFinding")
    for i, finding in enumerate(findings):
        _check_shape(finding, shape, f"Findings[{i}]", problems)
        for name in ASFF["required"]["AwsSecurityFinding"]:
            assert finding.get(name) not in (None, "", []), name
    assert problems == []


def test_asff_ids_are_stable_and_states_follow_suppression_and_resolution():
    rec = changed_record()
    findings = {f["Id"]: f for f in to_asff(rec, specs_for(rec), product_arn=PRODUCT, aws_account_id="999999999999",
                                            region="us-east-1")}
    # The Id is the check and the fingerprint: the same finding next week updates the same Security Hub finding.
    new = findings["auditor/exposed/exposed-fp03"]
    assert new["Title"] == "Newest high finding" and new["GeneratorId"] == "auditor/exposed"
    assert (new["Workflow"], new["RecordState"], new["Severity"]) == (
        {"Status": "NEW"}, "ACTIVE", {"Label": "HIGH", "Original": "high"})
    assert new["AwsAccountId"] == "999999999999" and new["Region"] == "us-east-1"  # the finding names neither
    persisting = findings["auditor/exposed/exposed-fp00"]
    assert persisting["AwsAccountId"] == ACCOUNT and persisting["Region"] == REGION
    assert persisting["ProductFields"]["auditor/Change"] == "persisting"
    assert persisting["Resources"][0]["Details"] == {"Other": {"srcaddr": "198.51.100.0"}}
    bastion = findings["auditor/exposed/exposed-fp02"]
    assert bastion["Workflow"] == {"Status": "SUPPRESSED"}
    assert bastion["Note"] == {"Text": "Suppressed until 2024-05-20: bastion host, reviewed quarterly",
                               "UpdatedBy": "platform-team", "UpdatedAt": "2024-05-13T06:02:00Z"}
    gone = findings["auditor/exposed/" + "dead" * 8]
    assert (gone["RecordState"], gone["Workflow"], gone["Compliance"]["Status"]) == (
        "ARCHIVED", {"Status": "RESOLVED"}, "PASSED")
    assert gone["Title"] == "Port 23 was open"
    assert new["Compliance"]["RelatedRequirements"] == ["NIST SP 800-53 r5 SC-7", "PCI DSS 4.0 1.3.1"]


def test_asff_cuts_long_text_to_the_documented_limits():
    rec = changed_record()
    long_title = "T" * 300
    check = replace(rec.checks[0], findings=(replace(rec.checks[0].findings[0], title=long_title),), resolved=())
    specs = specs_for(rec)
    old = specs["exposed"]
    specs["exposed"] = replace(old, meta=old.meta.model_copy(update={"description": "D" * 2000, "remediation": "R" * 900}))
    [finding] = to_asff(replace(rec, checks=(check,)), specs, product_arn="arn:aws-cn:securityhub:cn-north-1:"
                        f"{ACCOUNT}:product/{ACCOUNT}/default", aws_account_id=ACCOUNT, region="cn-north-1")
    assert len(finding["Title"]) == 256 and finding["Title"].endswith("\u2026")
    assert len(finding["Description"]) == 1024 and len(finding["Remediation"]["Recommendation"]["Text"]) == 512
    assert finding["Resources"][0]["Partition"] == "aws-cn"


def test_findings_of_a_check_without_data_say_so_in_both_formats():
    rec = changed_record()
    first = rec.checks[0]
    blind = replace(first, status=Status.NO_DATA, no_data_sources=("flow_logs",), resolved=(),
                    notes=("No data: the flow logs yielded no usable record in the window, so it cannot say pass.",))
    rec = replace(rec, checks=(blind,) + rec.checks[1:])
    events = [e for e in to_ocsf(rec, specs_for(rec)) if e["unmapped"]["auditor"]["check_id"] == first.check_id]
    assert events and all(e["status_detail"].startswith("No data: the flow logs") for e in events)
    assert {e["unmapped"]["auditor"]["check_status"] for e in events} == {"no_data"}
    asff = [d for d in to_asff(rec, specs_for(rec), product_arn=PRODUCT, aws_account_id=ACCOUNT, region=REGION)
            if d["GeneratorId"] == f"auditor/{first.check_id}"]
    assert asff and {d["Compliance"]["Status"] for d in asff} == {"WARNING"}
    assert {d["ProductFields"]["auditor/CheckStatus"] for d in asff} == {"no_data"}


def test_an_escalated_finding_carries_its_previous_severity_in_both_formats(securityhub):
    rec = fixed_record()
    specs = {c.check_id: builtins().checks.get(c.check_id) for c in rec.checks}
    escalated = next(f for c in rec.checks for f in c.findings if f.change is not None and f.change.value == "escalated")
    events = {e["finding_info"]["uid"]: e for e in to_ocsf(rec, specs)}
    event = events[fingerprint(escalated)]
    assert event["activity_id"] == 2  # an update of a finding the previous run had
    assert event["unmapped"]["auditor"]["change"] == "escalated"
    assert event["unmapped"]["auditor"]["previous_severity"] == "medium"
    docs = {d["Id"]: d for d in to_asff(rec, specs, product_arn=PRODUCT, aws_account_id=ACCOUNT, region=REGION)}
    doc = docs[f"auditor/{escalated.check_id}/{fingerprint(escalated)}"]
    assert doc["ProductFields"]["auditor/Change"] == "escalated"
    assert doc["ProductFields"]["auditor/PreviousSeverity"] == "medium"
    report = ParamValidator().validate({"Findings": [doc]}, securityhub.operation_model("BatchImportFindings").input_shape)
    assert not report.has_errors(), report.generate_report()
