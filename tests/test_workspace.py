"""The workspace keeps phase-1 rows on disk, in the temporary folder, and leaves nothing behind."""

from __future__ import annotations

from auditor.config import DuckDBSettings
from auditor.engines.embedded import Workspace
from auditor.models import QueryResult, QueryStats


def test_phase1_rows_live_in_a_scratch_database_under_temp_directory_and_go_on_close(tmp_path):
    temp = tmp_path / "spill"
    ws = Workspace(DuckDBSettings(temp_directory=temp))
    assert not temp.exists() or not list(temp.glob("auditor-phase1-*"))  # nothing until a phase 1 is stored
    assert ws.store("SELECT range AS x FROM range(1000) WHERE range % $m = 0", {"m": 10}) == 100
    (folder,) = temp.glob("auditor-phase1-*")
    assert (folder / "phase1.duckdb").is_file()
    assert ws.con.execute("SELECT sum(x) FROM query_result").fetchall() == [(sum(range(0, 1000, 10)),)]
    # a second check replaces the rows; an engine's rows from Python go the same way
    ws.register_result(QueryResult(columns=("a", "b"), rows=((1, None), (2, None)), stats=QueryStats(engine="x", text_as_run=""),
                                   types=("INTEGER", "VARCHAR")))
    assert ws.con.execute("SELECT a, b FROM query_result ORDER BY a").fetchall() == [(1, None), (2, None)]
    assert [d[1] for d in ws.con.execute("DESCRIBE query_result").fetchall()] == ["INTEGER", "VARCHAR"]
    ws.close()
    assert not folder.exists()
