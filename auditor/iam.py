"""The least-privilege IAM policy for a config: what its enabled checks and its sources need, and nothing more.

- Athena sources read by an enabled check: the Athena query calls on their workgroups
  (https://docs.aws.amazon.com/athena/latest/ug/workgroups-iam-policy.html), Glue reads of their database and
  tables (https://docs.aws.amazon.com/athena/latest/ug/fine-grained-access-to-glue-resources.html), S3 read and
  list under the log location (also what the scan budget lists), and S3 write under the query output location
  (https://docs.aws.amazon.com/athena/latest/ug/access.html).
- The live inventory: the EC2 describe calls it makes, limited to the configured regions
  (EC2 Describe* actions take no resource-level permission,
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html).
- The flow summary (Athena's one CREATE TABLE AS SELECT per run): glue:CreateTable, glue:DeleteTable and
  glue:GetTable on ``auditor_flow_summary_*`` tables of the scratch database only, and s3:PutObject and
  s3:DeleteObject under the scratch folder only (``athena.scratch_*``, default the source's database and
  ``auditor-flow-summary/`` under its output location).
- Accounts: sts:AssumeRole on each role; the EC2 statements then belong to those roles, so the output is two
  documents, the runner's and the audited role's.

An account or region the config does not pin becomes ``*`` in an ARN; names stay exact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from auditor.checks import CheckSpec
from auditor.config import AthenaSourceSpec, LoadedConfig
from auditor.engines.athena.summary import FOLDER as SUMMARY_FOLDER
from auditor.engines.athena.summary import TABLE_PREFIX as SUMMARY_TABLE_PREFIX
from auditor.plan import ENGINE_TABLES, select_checks
from auditor.registry import Registry

POLICY_VERSION = "2012-10-17"
ATHENA_ACTIONS = ["athena:GetQueryExecution", "athena:GetQueryResults", "athena:StartQueryExecution",
                  "athena:StopQueryExecution"]
GLUE_ACTIONS = ["glue:GetDatabase", "glue:GetTable"]
INVENTORY_ACTIONS = ["ec2:DescribeNetworkAcls", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroupRules",
                     "ec2:DescribeSecurityGroups"]
COVERAGE_ACTIONS = ["ec2:DescribeFlowLogs", "ec2:DescribeSubnets", "ec2:DescribeVpcs"]


def _bucket_key(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def _athena_statements(name: str, source: AthenaSourceSpec, with_output: bool,
                       scratch: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """``scratch``: the flow summary's (database, s3:// folder), for the flow-log source."""
    region = source.region or "*"
    sid = "".join(part.capitalize() for part in name.split("_"))
    glue = f"arn:aws:glue:{region}:*"
    folders = sorted({_bucket_key(loc) for loc in [source.location] + [t.location for t in source.tables if t.location]})
    bucket, prefix = folders[0]
    statements: list[dict[str, Any]] = [
        {"Sid": f"{sid}AthenaQueries", "Effect": "Allow", "Action": ATHENA_ACTIONS,
         "Resource": [f"arn:aws:athena:{region}:*:workgroup/{source.workgroup}"]},
        {"Sid": f"{sid}GlueCatalog", "Effect": "Allow", "Action": GLUE_ACTIONS,
         "Resource": [f"{glue}:catalog", f"{glue}:database/{source.database}"]
                     + [f"{glue}:table/{source.database}/{t.name}" for t in source.tables]},
        {"Sid": f"{sid}ReadLogs", "Effect": "Allow", "Action": ["s3:GetObject"],
         "Resource": [f"arn:aws:s3:::{b}/{p}*" for b, p in folders]},
    ]
    for b in sorted({b for b, _ in folders}):  # one list statement per bucket, for its log folders only
        statements.append({"Sid": f"{sid}ListLogs" + ("" if b == bucket else b.replace("-", "").replace(".", "")),
                           "Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
                           "Resource": [f"arn:aws:s3:::{b}"],
                           "Condition": {"StringLike": {"s3:prefix": [f"{p}*" for bb, p in folders if bb == b]}}})
    if name == "flow_logs" and scratch is not None:
        # The flow summary: CREATE TABLE AS SELECT writes Parquet under the run's folder and registers a table;
        # the run deletes both (https://docs.aws.amazon.com/athena/latest/ug/ctas-considerations-limitations.html).
        s_bucket, s_prefix = _bucket_key(scratch[1])
        statements += [
            {"Sid": f"{sid}SummaryTables", "Effect": "Allow",
             "Action": ["glue:CreateTable", "glue:DeleteTable", "glue:GetTable"],
             "Resource": [f"{glue}:catalog", f"{glue}:database/{scratch[0]}",
                          f"{glue}:table/{scratch[0]}/{SUMMARY_TABLE_PREFIX}*"]},
            {"Sid": f"{sid}SummaryObjects", "Effect": "Allow",
             "Action": ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListMultipartUploadParts",
                        "s3:PutObject"],
             "Resource": [f"arn:aws:s3:::{s_bucket}/{s_prefix}*"]},
            {"Sid": f"{sid}SummaryList", "Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
             "Resource": [f"arn:aws:s3:::{s_bucket}"], "Condition": {"StringLike": {"s3:prefix": [f"{s_prefix}*"]}}},
        ]
    if with_output and source.output_location:
        out_bucket, out_prefix = _bucket_key(source.output_location)
        statements += [
            {"Sid": f"{sid}WriteResults", "Effect": "Allow",
             "Action": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"],
             "Resource": [f"arn:aws:s3:::{out_bucket}/{out_prefix}*"]},
            {"Sid": f"{sid}ResultsBucket", "Effect": "Allow",
             "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
             "Resource": [f"arn:aws:s3:::{out_bucket}"]},
        ]
    return statements


def _scratch(config: Any, source: AthenaSourceSpec) -> tuple[str, str] | None:
    """Where the runs put their flow summaries: (database, s3:// folder), as the engine decides it."""
    location = config.athena.scratch_location or (source.output_location + SUMMARY_FOLDER
                                                  if source.output_location else None)
    if location is None:
        return None
    return config.athena.scratch_database or source.database, location


def _merge_statements(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop exact duplicates (two sources on the same workgroup and bucket) and keep the order."""
    seen: set[str] = set()
    out = []
    for st in statements:
        key = json.dumps({k: v for k, v in st.items() if k != "Sid"}, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(st)
    return out


def needed_tables(loaded: LoadedConfig, library: Registry[CheckSpec]) -> set[str]:
    """The engine tables (flow_logs, cloudtrail) that the enabled checks read."""
    tables: set[str] = set()
    for check_id, raw in select_checks(loaded, library):
        if raw.get("enabled", True):
            tables |= {t for t in library.get(check_id).meta.needs if t in ENGINE_TABLES}
    return tables


def policy_documents(loaded: LoadedConfig, library: Registry[CheckSpec]) -> Mapping[str, dict[str, Any]]:
    """``{"runner": policy}``, plus ``"audited_role"`` when ``accounts:`` are configured."""
    config = loaded.config
    runner: list[dict[str, Any]] = []
    outputs_seen: set[str] = set()
    for name in sorted(needed_tables(loaded, library)):
        source = getattr(config.sources, name)
        if source is not None and source.engine == "athena":
            first_output = source.output_location not in outputs_seen
            outputs_seen.add(source.output_location or "")
            runner += _athena_statements(name, source, with_output=first_output,
                                         scratch=_scratch(config, source) if name == "flow_logs" else None)
    inventory: list[dict[str, Any]] = []
    spec = config.sources.inventory
    if spec is not None and spec.engine == "aws_api":
        actions = INVENTORY_ACTIONS + (COVERAGE_ACTIONS if spec.flow_log_coverage else [])
        regions = sorted({r for a in config.accounts for r in (a.regions or ())} | set(config.aws.regions))
        statement: dict[str, Any] = {"Sid": "InventoryDescribe", "Effect": "Allow", "Action": sorted(actions),
                                     "Resource": "*"}
        if regions:
            statement["Condition"] = {"StringEquals": {"aws:RequestedRegion": regions}}
        inventory.append(statement)
    uses_aws = bool(runner or inventory)
    docs: dict[str, dict[str, Any]] = {}
    if config.accounts and uses_aws:
        runner.append({"Sid": "AssumeAuditRoles", "Effect": "Allow", "Action": ["sts:AssumeRole"],
                       "Resource": sorted({a.role_arn for a in config.accounts})})
        docs["runner"] = {"Version": POLICY_VERSION, "Statement": _merge_statements(runner)}
        if inventory:
            docs["audited_role"] = {"Version": POLICY_VERSION, "Statement": inventory}
    else:
        docs["runner"] = {"Version": POLICY_VERSION, "Statement": _merge_statements(runner + inventory)}
    return docs
