"""Findings in other tools' formats: OCSF Detection Finding (ocsf.py) and AWS Security Hub ASFF (asff.py).

Both are pure functions of the run record and the check specs, like the report. What they share
lives here: which AWS resource a finding's key names, the check's metadata as text, and the finding's
fingerprint (the evaluate stage's, computed the same way when a finding lacks one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from auditor.checks import CheckSpec
from auditor.evaluate import fingerprint as finding_fingerprint
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
    """The finding's fingerprint, or the evaluate stage's for it (check, account, region, key) when missing."""
    return finding.fingerprint or finding_fingerprint(finding.check_id, finding.account_id, finding.region,
                                                      finding.key)


def spec_text(spec: CheckSpec | None, name: Literal["title", "description", "remediation"]) -> str:
    """A metadata text on one line; '' for a check without metadata."""
    return " ".join(str(getattr(spec.meta, name)).split()) if spec is not None else ""


def controls(spec: CheckSpec | None) -> list[Mapping[str, str]]:
    found = spec.meta.compliance if spec is not None else ()
    return [{"framework": c.framework, "version": c.version, "control": c.control, "title": c.title} for c in found]


def data_sources(spec: CheckSpec | None) -> list[str]:
    names = {"flow_logs": "VPC Flow Logs", "cloudtrail": "AWS CloudTrail", "inventory": "EC2 inventory"}
    return [names.get(n, n) for n in (spec.meta.needs if spec is not None else ())]


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


__all__ = ["ResourceRef", "TOOL", "controls", "cut", "data_sources", "fingerprint", "resources", "spec_text"]
