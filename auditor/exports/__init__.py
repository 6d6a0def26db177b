"""Findings in other tools' formats: OCSF Detection Finding (ocsf.py) and AWS Security Hub ASFF (asff.py).

Both are pure functions of the run record and the check specs, like the report. What they share
lives here: which AWS resource a finding's key names, and a fingerprint for findings that the history
stage has not fingerprinted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping

from auditor.models import Finding

TOOL = "auditor"


@dataclass(frozen=True)
class ResourceRef:
    """The AWS resource (or other thing) a finding is about, from its key columns."""

    asff_type: str  # an ASFF resource type, or "Other"
    ocsf_type: str  # a CloudFormation-style type name
    id: str  # an ARN when the account and region are known, else the bare ID
    column: str
    value: str


# Key column -> (ASFF type, CloudFormation type, ARN resource part). ARN formats:
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html#amazonec2-resources-for-iam-policies
_RESOURCES: dict[str, tuple[str, str, str | None]] = {
    "interface_id": ("AwsEc2NetworkInterface", "AWS::EC2::NetworkInterface", "network-interface/{}"),
    "group_id": ("AwsEc2SecurityGroup", "AWS::EC2::SecurityGroup", "security-group/{}"),
    "rule_id": ("Other", "AWS::EC2::SecurityGroupRule", "security-group-rule/{}"),
    "srcaddr": ("Other", "IP Address", None),
    "event_id": ("Other", "AWS::CloudTrail::Event", None),
}


def resources(finding: Finding, *, partition: str = "aws", account_id: str | None = None,
              region: str | None = None) -> list[ResourceRef]:
    """The resources a finding's key names, most specific first; a key we do not know is an "Other"."""
    account = finding.account_id or account_id
    where = finding.region or region
    out = []
    for column, value in finding.key.items():
        if value is None or column not in _RESOURCES:
            continue
        asff_type, ocsf_type, arn_part = _RESOURCES[column]
        text = str(value)
        rid = text
        if arn_part and account and where:
            rid = f"arn:{partition}:ec2:{where}:{account}:{arn_part.format(text)}"
        out.append(ResourceRef(asff_type, ocsf_type, rid, column, text))
    if not out:
        key = ",".join(f"{k}={v}" for k, v in finding.key.items())
        out.append(ResourceRef("Other", "Other", f"{finding.check_id}:{key}"[:512], "", key))
    return out


def fingerprint(finding: Finding) -> str:
    """The finding's fingerprint, or one computed the same way (check, account, region, key) when missing."""
    if finding.fingerprint:
        return finding.fingerprint
    material = json.dumps([finding.check_id, finding.account_id, finding.region, sorted(finding.key.items())],
                          default=str, separators=(",", ":"))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def spec_text(spec: Any, name: str) -> str:
    return " ".join(str(getattr(spec, name, "") or "").split()) if spec is not None else ""


def controls(spec: Any) -> list[Mapping[str, str]]:
    meta = getattr(spec, "meta", None)
    found = getattr(meta, "compliance", None) or getattr(spec, "compliance", None) or ()
    return [{"framework": str(c.framework), "version": str(c.version), "control": str(c.control),
             "title": str(getattr(c, "title", "") or "")} for c in found]


def data_sources(spec: Any) -> list[str]:
    names = {"flow_logs": "VPC Flow Logs", "cloudtrail": "AWS CloudTrail", "inventory": "EC2 inventory"}
    needs = getattr(getattr(spec, "meta", None), "needs", ()) or ()
    return [names.get(n, n) for n in needs]


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


__all__ = ["ResourceRef", "TOOL", "controls", "cut", "data_sources", "fingerprint", "resources", "spec_text"]
