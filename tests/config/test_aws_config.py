"""The AWS parts of the config: Athena sources, the aws_api inventory, accounts, and no secrets."""

from __future__ import annotations

import pytest

from auditor.config import load_config
from auditor.engines.athena import ddl
from auditor.errors import ConfigError, UsageError
from tests.support.flowdata import write_config

ATHENA = 'engine: athena, database: sec, location: "s3://org-logs/AWSLogs/"'


def test_athena_sources_and_the_live_inventory_parse(tmp_path):
    loaded = load_config(write_config(tmp_path, f"""
        engine: athena
        aws: {{regions: [us-east-1, eu-west-1], max_parallel: 2}}
        athena: {{max_bytes_scanned: 50 GB, timeout: 20m}}
        accounts:
          - {{id: "111122223333", role_arn: "arn:aws:iam::111122223333:role/auditor", external_id: ext-1}}
        sources:
          flow_logs: {{{ATHENA}, tables: [vpc_v2, {{name: vpc_v5, format: "${{version}} ${{srcaddr}} ${{region}}", file_format: text}}]}}
          cloudtrail: {{{ATHENA}, tables: [trail], projection: {{layout: day, day_column: timestamp}}}}
          inventory: {{engine: aws_api}}
        """))
    c = loaded.config
    assert c.sources.flow_logs.tables[0].name == "vpc_v2" and c.sources.flow_logs.tables[1].format.endswith("${region}")
    assert c.sources.cloudtrail.projection.layout == "day"
    assert c.sources.inventory.engine == "aws_api" and c.sources.inventory.flow_log_coverage
    assert c.athena.max_bytes_scanned == 50 * 10**9


def test_source_without_engine_takes_the_top_level_engine(tmp_path):
    loaded = load_config(write_config(tmp_path, """
        engine: athena
        sources:
          flow_logs: {database: sec, tables: [t], location: "s3://bkt/AWSLogs/"}
        """))
    assert loaded.config.sources.flow_logs.engine == "athena"


@pytest.mark.parametrize("body, message", [
    ('sources: {inventory: {engine: aws_api, coverge: true}}', "unknown key 'coverge'"),
    (f'sources: {{flow_logs: {{{ATHENA}, tables: [{{name: t, format: "${{version}} ${{srcadr}}"}}]}}}}',
     "did you mean 'srcaddr'"),
    ('accounts: [{id: "111122223333", role_arn: "arn:aws:iam::999999999999:role/x"}]', "is not in account"),
    (f'sources: {{flow_logs: {{{ATHENA}, tables: [t], flow_log_ids: [x]}}}}', "unknown key"),
    (f'sources: {{flow_logs: {{{ATHENA}, tables: [{{name: t, flow_log_ids: [bad]}}]}}}}', "not flow log IDs"),
])
def test_mistakes_are_config_errors_with_a_position(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(write_config(tmp_path, body))
    assert info.value.line is not None


@pytest.mark.parametrize("body, line, what", [
    ("aws:\n  profile: audit\n  secret_access_key: abc123\n", 3, "looks like a secret"),
    ("sources:\n  inventory: inv\naccounts:\n  - id: '111122223333'\n    role_arn: arn:aws:iam::111122223333:role/a\n"
     "    external_id: AKIAIOSFODNN7EXAMPLE\n", 6, "an AWS access key ID"),
    ("email:\n  smtp:\n    host: mail\n    password: hunter2\n", 4, "looks like a secret"),
    ("schedule:\n  heartbeat_url: https://user:pa55@hc.example/ping\n", 2, "a URL with a password"),
])
def test_a_config_holding_a_secret_is_refused_at_its_line(tmp_path, body, line, what):
    path = tmp_path / "config.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=what) as info:
        load_config(path)
    assert info.value.line == line and str(path) in str(info.value)
    assert "hunter2" not in str(info.value) and "abc123" not in str(info.value)


def test_environment_variable_names_are_not_secrets(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("email:\n  smtp:\n    host: mail\n    username_env: SMTP_USER\n    password_env: SMTP_PASSWORD\n")
    assert load_config(path).config.email.smtp.password_env == "SMTP_PASSWORD"


def test_ddl_covers_text_parquet_hive_and_cloudtrail(tmp_path):
    loaded = load_config(write_config(tmp_path, f"""
        aws: {{regions: [us-east-1, eu-west-1]}}
        accounts: [{{id: "111122223333", role_arn: "arn:aws:iam::111122223333:role/a"}}]
        sources:
          flow_logs: {{{ATHENA}, tables: [vpc_v2, {{name: vpc_v5, format: "${{version}} ${{srcaddr}} ${{region}} ${{flow-direction}}"}}]}}
          cloudtrail: {{{ATHENA}, tables: [trail]}}
        """))
    items = ddl.statements(loaded.config)
    text = [sql for _, sql in items]
    assert len(text) == 3
    v2, v5, trail = text
    assert "CREATE EXTERNAL TABLE IF NOT EXISTS `sec`.`vpc_v2`" in v2 and "`log_status` STRING" in v2
    assert "PARTITIONED BY (`aws_account_id` string, `aws_region` string, `day` string)" in v2
    assert "'skip.header.line.count'='1'" in v2 and "FIELDS TERMINATED BY ' '" in v2
    assert "'projection.aws_account_id.values'='111122223333'" in v2
    assert "'projection.aws_region.values'='us-east-1,eu-west-1'" in v2
    assert ("'storage.location.template'='s3://org-logs/AWSLogs/${aws_account_id}/vpcflowlogs/${aws_region}/${day}'"
            in v2)
    # the region field keeps its place among the columns: partitions are named apart
    assert v5.index("`srcaddr` STRING") < v5.index("`region` STRING") < v5.index("`flow_direction` STRING")
    assert "CloudTrailInputFormat" in trail and "`useridentity` STRUCT<" in trail and "/CloudTrail/${aws_region}/" in trail

    hive = load_config(write_config(tmp_path, f"""
        sources:
          flow_logs: {{{ATHENA}, tables: [{{name: pq, file_format: parquet}}], projection: {{layout: hive, hourly: true}}}}
        """))
    (_, pq), = ddl.statements(hive.config)
    assert "ParquetHiveSerDe" in pq and "skip.header" not in pq
    assert "`year` string, `month` string, `day` string, `hour` string" in pq
    assert "'projection.aws_account_id.type'='injected'" in pq
    assert "aws-account-id=${aws_account_id}/aws-service=vpcflowlogs/aws-region=${aws_region}/year=${year}" in pq


def test_ddl_without_athena_sources_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no source is read through Athena"):
        ddl.statements(load_config(write_config(tmp_path, "sources: {flow_logs: flows}")).config)
