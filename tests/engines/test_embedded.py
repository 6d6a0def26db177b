"""The run's embedded DuckDB: what a user sees when a query needs more memory than the config gives it."""

from __future__ import annotations

import re

import pytest

from auditor.config import DuckDBSettings
from auditor.engines.embedded import Workspace
from auditor.errors import EngineError

# An ordered array_agg keeps every value of its group in memory (it cannot spill): about 100 MB here.
HUNGRY = """
SELECT k, array_agg(v ORDER BY v) AS vs
FROM (SELECT i % 10 AS k, concat(repeat('x', 50), CAST(i AS VARCHAR)) AS v FROM UNNEST(sequence(1, 2000000)) AS t(i))
GROUP BY k
"""


def test_running_out_of_memory_names_the_setting_that_fixes_it(tmp_path):
    ws = Workspace(DuckDBSettings(memory_limit="20MB", temp_directory=tmp_path / "spill"))
    try:
        with pytest.raises(EngineError) as caught:
            ws.execute(HUNGRY, {}, name="hungry_check/report")
    finally:
        ws.close()
    message = str(caught.value)
    # the limit as DuckDB reports it (20MB reads "19.0 MiB" in DuckDB 2.0)
    assert re.match(r"hungry_check/report: ran out of memory with duckdb\.memory_limit at [0-9.]+ ?[KMG]i?B \(", message)
    assert "Raise duckdb.memory_limit" in message
    # DuckDB's own advice is about its settings, not this tool's config
    assert "SET threads" not in message and "preserve_insertion_order" not in message


def test_the_same_query_runs_with_enough_memory(tmp_path):
    ws = Workspace(DuckDBSettings(memory_limit="1GB", temp_directory=tmp_path / "spill"))
    try:
        result = ws.execute(HUNGRY, {}, name="hungry_check/report")
    finally:
        ws.close()
    assert sorted(row[0] for row in result.rows) == list(range(10))
    assert sum(len(row[1]) for row in result.rows) == 2_000_000
