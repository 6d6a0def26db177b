"""``reaggregates: true`` in check.yaml lets the local engine run the engine query without its GROUP BY inside
the report (one aggregate instead of two). This proves, for every check that says so, that the report gives the
same rows either way: over the demo data, once as the local engine runs it (fused, ungrouped) and once the way
Athena and Insights feed it (the engine query's grouped rows registered as ``query_result``)."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from auditor.builtins import builtins
from auditor.checks import load_check_dir
from auditor.config import load_config
from auditor.demo import generate
from auditor.engines.local import LocalEngine
from auditor.errors import CheckDefinitionError
from auditor.models import TimeWindow
from auditor.pipeline import run_audit

ANCHOR = date(2026, 11, 9)
REAGGREGATING = sorted(spec.id for spec in builtins().checks if spec.meta.reaggregates)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("reaggregates")
    generate(root / "data", ANCHOR)
    return root


def _run(root, name, check_id):
    config = root / f"{name}-{check_id}.yaml"
    config.write_text(f"sources: {{flow_logs: data/flowlogs, inventory: data/inventory}}\n"
                      f"checks:\n  {check_id}: {{}}\n")
    window = TimeWindow(datetime(2026, 11, 2, tzinfo=timezone.utc), datetime(2026, 11, 9, tzinfo=timezone.utc))
    outcome = run_audit(load_config(config), window, out_dir=root / f"out-{name}-{check_id}", force=True,
                        clock=lambda: datetime(2026, 11, 10, tzinfo=timezone.utc), formats=("json",))
    (result,) = outcome.record.checks
    assert result.error is None, result.error
    return result


def test_the_flag_is_where_the_reports_reaggregate():
    assert REAGGREGATING == ["exposed_well_known_ports", "unused_sg_rules"]


@pytest.mark.parametrize("check_id", REAGGREGATING)
def test_the_report_gives_the_same_rows_from_grouped_and_ungrouped_records(demo, check_id, monkeypatch):
    fused = _run(demo, "fused", check_id)
    (run,) = [q for q in fused.queries if q.name == "report"]
    assert "GROUP BY" not in run.text.split("), ", 1)[0].upper(), "the inlined engine query still groups"
    monkeypatch.setattr(LocalEngine, "shares_workspace", False)  # the Athena/Insights path: rows registered
    separate = _run(demo, "separate", check_id)
    assert [q.name for q in separate.queries][:2] == ["query", "report"]
    assert fused.rows and fused.findings, "the demo data must make the check fire, or this proves nothing"
    assert fused.rows == separate.rows
    assert [f.key for f in fused.findings] == [f.key for f in separate.findings]


@pytest.mark.parametrize("query, why", [
    ("SELECT srcaddr, avg(bytes) AS b FROM flow_logs GROUP BY srcaddr", "AVG"),
    ("SELECT srcaddr, count(*) AS n FROM flow_logs GROUP BY srcaddr HAVING count(*) > 1", "HAVING"),
])
def test_a_check_that_cannot_run_ungrouped_is_refused_when_it_loads(tmp_path, query, why):
    folder = tmp_path / "my_check"
    folder.mkdir()
    (folder / "check.yaml").write_text(
        "id: my_check\ntitle: t\nseverity: low\ndescription: d\nrisk: r\nremediation: m\nneeds: [flow_logs]\n"
        "key: [srcaddr]\nfinding_title: '{srcaddr}'\nreaggregates: true\n")
    (folder / "query.sql").write_text(query)
    (folder / "report.sql").write_text("SELECT srcaddr, count(*) AS n FROM query_result GROUP BY srcaddr")
    with pytest.raises(CheckDefinitionError, match=rf"my_check.check\.yaml \(query\.sql\).*{why}.*Remove reaggregates"):
        load_check_dir(folder)
    (folder / "report.sql").unlink()
    with pytest.raises(CheckDefinitionError, match="reaggregates needs both query.sql and report.sql"):
        load_check_dir(folder)
