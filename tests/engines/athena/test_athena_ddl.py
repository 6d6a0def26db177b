"""`auditor athena ddl [--apply]`: the statements printed, and run in Athena (the moto server)."""

from __future__ import annotations

import boto3
import pytest
from click.testing import CliRunner

from auditor.cli import main
from tests.support.flowdata import write_config
from tests.support.moto_server import FAKE_ENV, moto_server

CONFIG = """
    aws: {regions: [us-east-1]}
    sources:
      flow_logs: {engine: athena, database: security, workgroup: primary, output_location: "s3://athena-results/ddl/",
                  location: "s3://org-logs/AWSLogs/", tables: [vpc_v2]}
      cloudtrail: {engine: athena, database: security, output_location: "s3://athena-results/ddl/",
                   location: "s3://org-logs/AWSLogs/", tables: [cloudtrail]}
    """


def test_ddl_prints_one_statement_per_table(tmp_path):
    result = CliRunner().invoke(main, ["athena", "ddl", "--config", str(write_config(tmp_path, CONFIG))])
    assert result.exit_code == 0, result.output
    assert result.output.count("CREATE EXTERNAL TABLE IF NOT EXISTS") == 2
    assert "`security`.`vpc_v2`" in result.output and "`security`.`cloudtrail`" in result.output


def test_ddl_apply_runs_them_in_the_workgroup(tmp_path, monkeypatch):
    for k, v in FAKE_ENV.items():
        monkeypatch.setenv(k, v)
    with moto_server() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="athena-results")
        result = CliRunner().invoke(main, ["athena", "ddl", "--apply", "--config", str(write_config(tmp_path, CONFIG))])
        assert result.exit_code == 0, result.output
        assert "created `security`.`vpc_v2` in workgroup primary" in result.output
        athena = boto3.client("athena", region_name="us-east-1")
        ids = athena.list_query_executions()["QueryExecutionIds"]
        queries = [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]
    texts = [q["Query"] for q in queries]
    assert sum(t.startswith("CREATE DATABASE IF NOT EXISTS `security`") for t in texts) == 1
    assert sum("CREATE EXTERNAL TABLE IF NOT EXISTS `security`." in t for t in texts) == 2
    assert all(q["WorkGroup"] == "primary" for q in queries)
    # What is sent has no comment lines (a statement joined onto one line would be swallowed by its comment);
    # what is printed keeps them.
    tables = [t for t in texts if "CREATE EXTERNAL TABLE" in t]
    assert all(t.startswith("CREATE EXTERNAL TABLE IF NOT EXISTS") and "--" not in t for t in tables), tables
    printed = CliRunner().invoke(main, ["athena", "ddl", "--config", str(tmp_path / "config.yaml")])
    assert printed.output.count("\n-- VPC flow logs") + printed.output.startswith("-- VPC flow logs") == 1


@pytest.mark.parametrize("args", [["athena", "ddl", "--config", "missing.yaml"]])
def test_ddl_config_errors_exit_2(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(main, args).exit_code == 2
