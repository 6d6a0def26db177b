"""`auditor iam-policy`: exactly what the configured checks and sources need."""

from __future__ import annotations

import json

from click.testing import CliRunner

from auditor.builtins import builtins
from auditor.cli import main
from auditor.config import load_config
from auditor.iam import policy_documents
from tests.support.flowdata import write_config

FLOW = ('flow_logs: {engine: athena, database: sec, tables: [vpc_v2, vpc_v5], workgroup: audit, region: us-east-1, '
        'output_location: "s3://athena-results/auditor/", location: "s3://org-logs/AWSLogs/"}')
TRAIL = ('cloudtrail: {engine: athena, database: trails, tables: [ct], workgroup: audit, region: us-east-1, '
         'output_location: "s3://athena-results/auditor/", location: "s3://trail-logs/AWSLogs/o-abc123/"}')


def policy(tmp_path, body):
    loaded = load_config(write_config(tmp_path, body))
    return policy_documents(loaded, builtins().checks)


def actions(doc):
    return sorted({a for st in doc["Statement"] for a in st["Action"]})


def resources(doc):
    return sorted({r for st in doc["Statement"] for r in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])})


def test_athena_sources_and_live_inventory_for_all_checks(tmp_path):
    docs = policy(tmp_path, f"""
        aws: {{regions: [us-east-1, eu-west-1]}}
        sources:
          {FLOW}
          {TRAIL}
          inventory: {{engine: aws_api}}
        """)
    assert list(docs) == ["runner"]
    doc = docs["runner"]
    assert doc["Version"] == "2012-10-17"
    assert actions(doc) == sorted([
        "athena:GetQueryExecution", "athena:GetQueryResults", "athena:StartQueryExecution", "athena:StopQueryExecution",
        "glue:GetDatabase", "glue:GetTable", "s3:GetObject", "s3:GetBucketLocation", "s3:ListBucket",
        "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:PutObject", "s3:ListBucketMultipartUploads",
        "glue:CreateTable", "glue:DeleteTable", "s3:DeleteObject",
        "ec2:DescribeFlowLogs", "ec2:DescribeNetworkAcls", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroupRules",
        "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"])
    res = resources(doc)
    assert "arn:aws:athena:us-east-1:*:workgroup/audit" in res
    assert {"arn:aws:glue:us-east-1:*:table/sec/vpc_v2", "arn:aws:glue:us-east-1:*:table/sec/vpc_v5",
            "arn:aws:glue:us-east-1:*:table/trails/ct"} <= set(res)
    assert {"arn:aws:s3:::org-logs/AWSLogs/*", "arn:aws:s3:::trail-logs/AWSLogs/o-abc123/*",
            "arn:aws:s3:::athena-results/auditor/*"} <= set(res)
    # nothing broader than the log and result prefixes
    assert not [r for r in res if r.startswith("arn:aws:s3:::") and r.endswith("/*")
                and not r.startswith(("arn:aws:s3:::org-logs/AWSLogs/", "arn:aws:s3:::trail-logs/AWSLogs/",
                                      "arn:aws:s3:::athena-results/auditor/"))]
    ec2 = next(st for st in doc["Statement"] if st["Sid"] == "InventoryDescribe")
    assert ec2["Condition"] == {"StringEquals": {"aws:RequestedRegion": ["eu-west-1", "us-east-1"]}}
    # the results bucket appears once although both sources write there (the flow summary's folder apart)
    assert sum(1 for st in doc["Statement"] if "s3:PutObject" in st["Action"]
               and st["Sid"] != "FlowLogsSummaryObjects") == 1
    # the flow summary: create and delete its tables and objects, and nothing wider
    tables = next(st for st in doc["Statement"] if st["Sid"] == "FlowLogsSummaryTables")
    assert tables["Resource"] == ["arn:aws:glue:us-east-1:*:catalog", "arn:aws:glue:us-east-1:*:database/sec",
                                  "arn:aws:glue:us-east-1:*:table/sec/auditor_flow_summary_*"]
    objects = next(st for st in doc["Statement"] if st["Sid"] == "FlowLogsSummaryObjects")
    assert objects["Resource"] == ["arn:aws:s3:::athena-results/auditor/auditor-flow-summary/*"]
    assert "s3:DeleteObject" in objects["Action"]
    assert [st["Sid"] for st in doc["Statement"] if "s3:DeleteObject" in st["Action"]
            or {"glue:CreateTable", "glue:DeleteTable"} & set(st["Action"])] == [
        "FlowLogsSummaryTables", "FlowLogsSummaryObjects"]


def test_only_the_tables_the_enabled_checks_read(tmp_path):
    doc = policy(tmp_path, f"""
        sources:
          {FLOW}
          {TRAIL}
        checks:
          sg_changes: {{}}
          top_rejected_sources: {{enabled: false}}
        """)["runner"]
    res = resources(doc)
    assert "arn:aws:glue:us-east-1:*:table/trails/ct" in res
    assert not [r for r in res if "vpc_v2" in r or "org-logs" in r]
    assert not [a for a in actions(doc) if a.startswith("ec2:")]


def test_accounts_split_the_runner_and_the_audited_role(tmp_path):
    docs = policy(tmp_path, f"""
        accounts:
          - {{id: "111122223333", role_arn: "arn:aws:iam::111122223333:role/auditor", regions: [us-east-1]}}
          - {{id: "444455556666", role_arn: "arn:aws:iam::444455556666:role/auditor", regions: [eu-west-1]}}
        sources:
          {FLOW}
          inventory: {{engine: aws_api, flow_log_coverage: false}}
        """)
    assert set(docs) == {"runner", "audited_role"}
    assume = next(st for st in docs["runner"]["Statement"] if st["Sid"] == "AssumeAuditRoles")
    assert assume["Resource"] == ["arn:aws:iam::111122223333:role/auditor", "arn:aws:iam::444455556666:role/auditor"]
    assert not [a for a in actions(docs["runner"]) if a.startswith("ec2:")]
    assert actions(docs["audited_role"]) == ["ec2:DescribeNetworkAcls", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroupRules",
                                             "ec2:DescribeSecurityGroups"]


def test_local_sources_need_no_permission_and_the_cli_prints_json(tmp_path):
    cfg = write_config(tmp_path, f"""
        sources:
          {FLOW}
        checks:
          top_rejected_sources: {{}}
        """)
    result = CliRunner().invoke(main, ["iam-policy", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert "arn:aws:glue:us-east-1:*:table/sec/vpc_v5" in resources(doc)
    assert policy(tmp_path, "sources: {flow_logs: flows}")["runner"]["Statement"] == []
