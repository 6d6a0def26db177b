"""The timeline is the same whichever engine reads CloudTrail and the flow logs: the local engine (Trino SQL on
DuckDB) and Logs Insights (its local twin) give the same tables, so the checks' second phase gives the same rows.
Athena runs the same Trino SQL as the local engine (tests/engines/athena feed its results through the same
second phase)."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timezone

import pytest

from auditor.builtins import builtins
from auditor.config import load_config
from auditor.demo import generate
from auditor.engines.base import EngineContext
from auditor.engines.embedded import Workspace
from auditor.engines.insights.local import LocalInsightsEngine
from auditor.models import Query, TimeWindow
from auditor.tables import TIMELINE_TABLES
from auditor.timeline.run import QUERIES, build_for_run, events_window
from tests.support.flowdata import write_config

WINDOW = TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc))


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    root = tmp_path_factory.mktemp("timeline")
    generate(root / "demo", date(2026, 11, 16), days=7)
    loaded = load_config(write_config(root, """
        sources:
          flow_logs: demo/flowlogs
          cloudtrail: demo/cloudtrail
          inventory: demo/inventory
        """))
    ws = Workspace()
    snapshot = ws.load_inventory(loaded.resolve(loaded.config.sources.inventory.path))
    local = builtins().engines.get("local").create(EngineContext.of(ws, loaded))
    local.prepare({"flow_logs": WINDOW, "cloudtrail": events_window(WINDOW, snapshot.captured_at)})
    yield loaded, ws, local, LocalInsightsEngine(local)
    ws.close()


def _build(loaded, ws, engine):
    for table in TIMELINE_TABLES:
        ws.con.execute(f'DELETE FROM "{table}"')
    sg = builtins().checks.get("sg_changes")
    run = build_for_run(ws, WINDOW, trail_engine=engine, flow_engine=engine,
                        sg_events_query={d: sg.query_for(d) for d in sg.dialects},
                        params={"sensitive_ports": tuple(loaded.config.sensitive_ports)},
                        delivery_lag=loaded.config.delivery_lag_td)
    tables = {t: Counter(ws.con.execute(f'SELECT * FROM "{t}"').fetchall()) for t in TIMELINE_TABLES}
    return run, tables


def test_flow_times_twin_agrees_with_sql(engines):
    loaded, ws, local, insights = engines
    params = {"interface_ids": ("eni-0a7d0664fd881ae5b", "eni-09a14bdbdf773e7c2")}
    out = []
    for engine, name in ((local, "flow_times.sql"), (insights, "flow_times.insights")):
        text = (QUERIES / name).read_text(encoding="utf-8")
        out.append(engine.run(Query("timeline", "flow_times", text, engine.dialect, frozenset({"flow_logs"}), WINDOW,
                                    params), WINDOW, params))
    assert out[0].columns == out[1].columns == ("interface_id", "dstaddr", "flow_direction", "dstport", "protocol",
                                                "srcaddr", "start", "flows")
    assert len(out[0].rows) > 100
    assert Counter(out[0].rows) == Counter(out[1].rows)


def test_the_timeline_is_the_same_from_either_engine_and_so_are_the_checks_rows(engines):
    loaded, ws, local, insights = engines
    local_run, local_tables = _build(loaded, ws, local)
    assert local_tables["sg_rule_versions"] and local_tables["flow_times"] and local_tables["timeline_changed"]
    assert {r.name for r in local_run.runs} == {"timeline: security-group events",
                                                "timeline: flows of the interfaces that changed"}
    insights_run, insights_tables = _build(loaded, ws, insights)
    assert insights_tables == local_tables
    assert [r.engine for r in insights_run.runs] == [insights.name, insights.name]
    # The second phase of the three checks over the insights-built timeline gives the rows the local one gave.
    rows = {}
    for label, engine in (("local", local), ("insights", insights)):
        _build(loaded, ws, engine)
        for check_id in ("exposed_well_known_ports", "sg_changes", "temporary_exposures"):
            spec = builtins().checks.get(check_id)
            params = {**spec.validate_params({}), "sensitive_ports": tuple(loaded.config.sensitive_ports),
                      "since": WINDOW.since, "until": WINDOW.until, "since_s": WINDOW.since_s,
                      "until_s": WINDOW.until_s}
            if spec.dialects:
                q = Query(check_id, "query", spec.query_for(engine.dialect), engine.dialect,
                          frozenset(spec.meta.needs) & {"flow_logs", "cloudtrail"}, WINDOW, params)
                ws.register_result(engine.run(q, WINDOW, params))
            rows[label, check_id] = ws.execute(spec.queries["report.sql"], params, name=check_id).rows
            ws.drop_result()
    for check_id in ("exposed_well_known_ports", "sg_changes", "temporary_exposures"):
        assert rows["local", check_id] == rows["insights", check_id], check_id
    assert any(r[-1] == "high" for r in rows["local", "temporary_exposures"])
