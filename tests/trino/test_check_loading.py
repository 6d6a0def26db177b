"""A check loaded from a folder goes through the conformance rules when it loads: what the local engine would refuse
when it runs is refused now, naming the file, the line and the column (issue 24)."""

from __future__ import annotations

import pytest

from auditor.checks import load_check_dir
from auditor.errors import CheckDefinitionError

CHECK_YAML = ("id: my_check\ntitle: t\nseverity: low\ndescription: d\nrisk: r\nremediation: m\nneeds: [flow_logs]\n"
              "key: [srcaddr]\nfinding_title: '{srcaddr}'\n")


def _folder(tmp_path, files):
    folder = tmp_path / "my_check"
    folder.mkdir()
    (folder / "check.yaml").write_text(CHECK_YAML)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("query, where, why", [
    ("-- the median of bytes per source\nSELECT srcaddr,\n       approx_percentile(bytes, 0.5) AS median\n"
     "FROM flow_logs GROUP BY srcaddr", "query.sql:3:8", "approx_percentile gives engine-dependent numbers"),
    ("SELECT srcaddr, sum(bytes) / 1.5 AS b FROM flow_logs GROUP BY srcaddr", "query.sql:1:17", "divides DECIMAL"),
    ("SELECT srcaddr, at_timezone(from_unixtime(start), 'Europe/Berlin') AS t\nFROM flow_logs",
     "query.sql:1:17", "holds UTC only"),
    ("SELECT srcaddr,\n  format_datetime(from_unixtime(start), 'G yyyy') AS era FROM flow_logs", "query.sql:2:3",
     "pattern letters"),
])
def test_a_refused_construct_is_refused_when_the_check_loads(tmp_path, query, where, why):
    folder = _folder(tmp_path, {"query.sql": query})
    with pytest.raises(CheckDefinitionError) as refused:
        load_check_dir(folder)
    assert str(refused.value).startswith(f"{folder}/{where}: ")
    assert why in str(refused.value)


def test_report_sql_is_typed_by_the_columns_of_query_sql(tmp_path):
    # flows is count(*), a BIGINT: an integer division, allowed; bytes_per_flow divides a DOUBLE by it
    folder = _folder(tmp_path, {
        "query.sql": "SELECT srcaddr, count(*) AS flows, sum(bytes) AS bytes FROM flow_logs GROUP BY srcaddr",
        "report.sql": "SELECT srcaddr, flows / 2 AS half, CAST(bytes AS DOUBLE) / flows AS per_flow FROM query_result",
    })
    assert load_check_dir(folder).id == "my_check"
    (folder / "report.sql").write_text("SELECT srcaddr,\n  1.0 / flows AS x FROM query_result")
    with pytest.raises(CheckDefinitionError, match=r"my_check/report\.sql:2:3: .*divides DECIMAL"):
        load_check_dir(folder)


def test_a_check_that_translates_loads(tmp_path):
    folder = _folder(tmp_path, {"query.sql": "SELECT srcaddr, date_diff('hour', from_unixtime(min(start)), "
                                             "from_unixtime(max(start))) AS hours FROM flow_logs GROUP BY srcaddr"})
    assert load_check_dir(folder).queries["query.sql"].startswith("SELECT srcaddr")
