"""The local Insights engine judges a check's no_data status as the local engine does: it reads the same tables,
so a flow-log folder that holds no record in the window makes a check no_data on it too, never pass."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from auditor.builtins import builtins
from auditor.config import load_config
from auditor.engines.base import EngineContext
from auditor.engines.embedded import Workspace
from auditor.engines.insights.local import LocalInsightsEngine
from auditor.execute import run_check
from auditor.models import Status, TimeWindow
from auditor.plan import plan_run
from tests.support.flowdata import record, write_config, write_flow_log

WINDOW = TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc))


def _run(tmp_path, records):
    (tmp_path / "flows").mkdir()
    if records:
        write_flow_log(tmp_path / "flows", records, day="2026/11/10")
    loaded = load_config(write_config(tmp_path, """
        sources:
          flow_logs: flows
        checks:
          top_rejected_sources: {min_flows: 1}
        """))
    reg = builtins()
    plan = plan_run(loaded, reg.checks, WINDOW, WINDOW.until, {e.name: e.dialect for e in reg.engines})
    ws = Workspace()
    try:
        local = reg.engines.get("local").create(EngineContext.of(ws, loaded))
        local.prepare(plan.scans)
        engine = LocalInsightsEngine(local)
        pc = next(c for c in plan.checks if c.spec.id == "top_rejected_sources")
        return engine.evidence("flow_logs", pc.window), run_check(pc, plan, engine, ws)
    finally:
        ws.close()


@pytest.mark.parametrize(("records", "count", "status"), [
    ([], 0, Status.NO_DATA),
    ([record(srcaddr="203.0.113.9", action="REJECT")], 1, Status.FAIL),
], ids=["empty folder", "one rejected record"])
def test_local_insights_counts_evidence_like_the_local_engine(tmp_path, records, count, status):
    found, result = _run(tmp_path, records)
    assert found == count
    assert result.status is status
    assert result.queries[0].engine == "local-insights"
