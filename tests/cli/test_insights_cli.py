"""``auditor query --insights | --sql`` over local files: the output formats, the window, and the errors."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from auditor.cli import main
from tests.support.flowdata import record, write_config, write_flow_log
from tests.support.trail import event, write_trail


@pytest.fixture()
def config(tmp_path):
    write_flow_log(tmp_path / "flows", [
        record(srcaddr="198.51.100.7", dstport=22, action="REJECT", bytes=40, start="2026-11-10T01:00:00Z"),
        record(srcaddr="198.51.100.7", dstport=23, action="REJECT", bytes=60, start="2026-11-10T02:00:00Z"),
        record(srcaddr="192.0.2.10", dstport=443, action="ACCEPT", bytes=1000, start="2026-11-11T05:00:00Z"),
        record(srcaddr="192.0.2.10", dstport=443, action="ACCEPT", bytes=5, start="2026-11-20T05:00:00Z"),
    ])
    write_trail(tmp_path / "trail", [event("CreateSecurityGroup", {"groupName": "web"}, {"groupId": "sg-9"})])
    return write_config(tmp_path, """
        sources:
          flow_logs: flows
          cloudtrail: trail
        window: {since: 2026-11-09, until: 2026-11-16}
        """)


def invoke(*args):
    return CliRunner().invoke(main, ["query", *args])


def test_json_is_an_array_of_typed_objects_in_output_order(config):
    r = invoke("--insights", 'stats count(*) as flows, sum(bytes) as bytes, min(@timestamp) as first by srcAddr '
               "| sort flows desc", "--config", str(config), "--format", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data == [{"srcAddr": "198.51.100.7", "flows": 2, "bytes": 100, "first": "2026-11-10T01:00:00Z"},
                    {"srcAddr": "192.0.2.10", "flows": 1, "bytes": 1000, "first": "2026-11-11T05:00:00Z"}]
    assert list(data[0]) == ["srcAddr", "flows", "bytes", "first"]


def test_since_and_until_set_the_window(config):
    r = invoke("--insights", "stats count(*) as n", "--config", str(config), "--since", "2026-11-10T02:00:00Z",
               "--until", "2026-11-21", "--format", "json")
    assert json.loads(r.output) == [{"n": 3}]
    r = invoke("--insights", "stats count(*) as n", "--config", str(config), "--format", "json")
    assert json.loads(r.output) == [{"n": 3}]  # the config's window: 2026-11-09..16


def test_csv_and_table(config):
    r = invoke("--insights", 'filter action = "REJECT" | fields dstPort, bytes | sort dstPort', "--config",
               str(config), "--format", "csv")
    assert r.exit_code == 0, r.output
    assert list(csv.reader(io.StringIO(r.output))) == [["dstPort", "bytes"], ["22", "40"], ["23", "60"]]
    r = invoke("--insights", "fields srcAddr | limit 1", "--config", str(config))
    assert r.exit_code == 0 and "srcAddr" in r.output and "192.0.2.10" in r.output and "1 row" in r.output


def test_sql_and_cloudtrail(config):
    r = invoke("--sql", "SELECT dstport, count(*) AS n FROM flow_logs WHERE start >= :since_s GROUP BY 1 ORDER BY 1",
               "--config", str(config), "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == [{"dstport": 22, "n": 1}, {"dstport": 23, "n": 1}, {"dstport": 443, "n": 1}]
    r = invoke("--insights", "fields eventName, responseElements.groupId", "--source", "cloudtrail", "--config",
               str(config), "--format", "json")
    assert json.loads(r.output) == [{"eventName": "CreateSecurityGroup", "responseElements.groupId": "sg-9"}]


@pytest.mark.parametrize("args,code,message", [
    (["--insights", "filter srcaddr = 1"], 2, "line 1, column 8: unknown field 'srcaddr' (did you mean 'srcAddr'?)"),
    (["--insights", "pattern @message"], 2, "not supported"),
    (["--insights", "x", "--sql", "y"], 2, "exactly one of --insights"),
    ([], 2, "exactly one of --insights"),
    (["--sql", "SELECT nope FROM flow_logs"], 5, "nope"),
    (["--insights", "fields a", "--since", "2026-11-12", "--until", "2026-11-10"], 2, "must be before"),
])
def test_errors(config, args, code, message):
    r = invoke(*args, "--config", str(config))
    assert r.exit_code == code, r.output
    assert message in r.output


def test_a_source_on_another_engine_is_refused(tmp_path):
    cfg = write_config(tmp_path, """
        sources:
          flow_logs: {engine: insights, log_groups: [/vpc/flow]}
        """)
    r = invoke("--insights", "fields srcAddr", "--config", str(cfg))
    assert r.exit_code == 2 and "sources.flow_logs uses the insights engine" in r.output
