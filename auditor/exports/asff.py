"""Findings in the AWS Security Finding Format (ASFF), ready for Security Hub's BatchImportFindings.

The format is the ``AwsSecurityFinding`` shape of the securityhub service model, which ships inside
botocore; its required members are pinned in auditor/schemas/asff-2018-10-08.required.json and tests
validate every finding against the live model. Field reference:
https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-findings-format-syntax.html

- ``Id`` is ``auditor/<check>/<fingerprint>``: stable across runs, so a re-import updates the same
  Security Hub finding instead of adding one per week.
- A suppressed finding is imported with ``Workflow.Status`` SUPPRESSED and a ``Note`` holding the
  exception's owner, reason and expiry.
- A finding the previous run had and this one lacks is imported with ``RecordState`` ARCHIVED and
  ``Workflow.Status`` RESOLVED, which is how a finding provider closes a finding. Its resource is
  an "Other" named after the fingerprint: a resolved finding keeps only its fingerprint and title.
- A finding of a check with status ``no_data`` (a source it reads yielded no usable record) is imported with
  ``Compliance.Status`` WARNING ("some information is missing") instead of FAILED, and
  ``ProductFields["auditor/CheckStatus"]`` ``no_data``.
- Title, Description and the remediation text are cut to ASFF's limits (256, 1024 and 512
  characters).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.checks import CheckSpec
from auditor.checks.library import DEFAULT_ASFF_TYPE
from auditor.exports import TOOL, controls, cut, fingerprint, resources, spec_text
from auditor.models import Finding, ResolvedFinding, RunRecord, Severity, Status, iso_z

SCHEMA_VERSION = "2018-10-08"
_LABEL = {Severity.INFO: "INFORMATIONAL", Severity.LOW: "LOW", Severity.MEDIUM: "MEDIUM", Severity.HIGH: "HIGH",
          Severity.CRITICAL: "CRITICAL"}
_MAX_REQUIREMENTS = 32  # Compliance.RelatedRequirements holds at most 32 entries


def to_asff(record: RunRecord, specs: Mapping[str, CheckSpec], *, product_arn: str, aws_account_id: str,
            region: str) -> list[dict[str, Any]]:
    """Every finding of the run, and every resolved one (archived), as ASFF findings.

    ``product_arn`` is the product findings are imported under; for your own account's findings it is
    ``arn:aws:securityhub:<region>:<account>:product/<account>/default``. ``aws_account_id`` and
    ``region`` are used where a finding does not name its own.
    """
    partition = product_arn.split(":")[1] if product_arn.count(":") >= 5 else "aws"
    out: list[dict[str, Any]] = []
    for check in record.checks:
        spec = specs.get(check.check_id)
        for finding in check.findings:
            doc = _active(record, spec, finding, product_arn, partition, aws_account_id, region)
            doc["ProductFields"][f"{TOOL}/CheckStatus"] = check.status.value
            if check.status is Status.NO_DATA:
                doc["Compliance"]["Status"] = "WARNING"
            out.append(doc)
        for gone in check.resolved:
            out.append(_archived(record, spec, check.check_id, gone, product_arn, partition, aws_account_id, region))
    return out


def _active(record: RunRecord, spec: CheckSpec | None, finding: Finding, product_arn: str, partition: str,
            account_id: str, region: str) -> dict[str, Any]:
    account = finding.account_id or account_id
    where = finding.region or region
    fp = fingerprint(finding)
    doc = _common(record, spec, finding.check_id, fp, finding.severity, finding.title, product_arn, account, where)
    doc["Resources"] = [
        {"Type": r.asff_type, "Id": cut(r.id, 512), "Partition": partition, "Region": where,
         **({"Details": {"Other": {r.column or "key": cut(r.value, 1024)}}} if r.asff_type == "Other" else {})}
        for r in resources(finding, partition=partition, account_id=account, region=where)
    ]
    doc["Compliance"]["Status"] = "FAILED"
    doc["Workflow"] = {"Status": "SUPPRESSED" if finding.suppressed else "NEW"}
    fields = doc["ProductFields"]
    if finding.change is not None:
        fields[f"{TOOL}/Change"] = finding.change.value
    if finding.previous_severity is not None:
        fields[f"{TOOL}/PreviousSeverity"] = finding.previous_severity.value
    for column, value in finding.key.items():
        if value is not None and str(value):
            fields[f"{TOOL}/key/{column}"] = cut(str(value), 2048)
    if finding.suppression is not None:
        s = finding.suppression
        doc["Note"] = {"Text": cut(f"Suppressed until {s.expires.isoformat()}: {s.reason}", 512),
                       "UpdatedBy": cut(s.owner, 512), "UpdatedAt": iso_z(record.finished_at)}
    return doc


def _archived(record: RunRecord, spec: CheckSpec | None, check_id: str, gone: ResolvedFinding, product_arn: str,
              partition: str, account_id: str, region: str) -> dict[str, Any]:
    doc = _common(record, spec, check_id, gone.fingerprint, gone.severity, gone.title, product_arn, account_id, region)
    doc["Resources"] = [{"Type": "Other", "Id": f"{TOOL}:finding/{gone.fingerprint}", "Partition": partition,
                         "Region": region}]
    doc["Compliance"]["Status"] = "PASSED"
    doc["Workflow"] = {"Status": "RESOLVED"}
    doc["RecordState"] = "ARCHIVED"
    doc["ProductFields"][f"{TOOL}/Change"] = gone.label
    return doc


def _common(record: RunRecord, spec: CheckSpec | None, check_id: str, fp: str, severity: Severity, title: str,
            product_arn: str, account: str, region: str) -> dict[str, Any]:
    description = spec_text(spec, "description") or title
    doc: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": f"{TOOL}/{check_id}/{fp}",
        "ProductArn": product_arn,
        "GeneratorId": f"{TOOL}/{check_id}",
        "AwsAccountId": account,
        "Region": region,
        "Types": [spec.meta.asff_type if spec is not None else DEFAULT_ASFF_TYPE],
        "FirstObservedAt": iso_z(record.window.since),
        "LastObservedAt": iso_z(record.window.until),
        # The finding as of this run; Security Hub keeps its own first-import time.
        "CreatedAt": iso_z(record.finished_at),
        "UpdatedAt": iso_z(record.finished_at),
        "Severity": {"Label": _LABEL[severity], "Original": severity.value},
        "Title": cut(title, 256),
        "Description": cut(description, 1024),
        "ProductFields": {
            f"{TOOL}/CheckId": check_id,
            f"{TOOL}/RunId": record.id,
            f"{TOOL}/Fingerprint": fp,
            f"{TOOL}/ToolVersion": record.tool_version,
        },
        "Compliance": {},
        "RecordState": "ACTIVE",
    }
    requirements = [f"{c['framework']} {c['version']} {c['control']}" for c in controls(spec)][:_MAX_REQUIREMENTS]
    if requirements:
        doc["Compliance"]["RelatedRequirements"] = requirements
    remediation = spec_text(spec, "remediation")
    if remediation:
        doc["Remediation"] = {"Recommendation": {"Text": cut(remediation, 512)}}
    return doc
