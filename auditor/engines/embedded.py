"""The embedded DuckDB every run has: it holds the inventory tables and runs each check's second phase
(``report.sql``) over the engine query's rows, whatever engine ran the first phase. The local engine
also keeps its flow-log and CloudTrail tables here.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Mapping

import duckdb
import pyarrow as pa
from sqlglot import exp

from auditor.config import DuckDBSettings
from auditor.engines import netaddr
from auditor.engines.sources import inventory
from auditor.engines.sql import prepare_duckdb
from auditor.errors import EngineError
from auditor.models import QueryResult, QueryStats

PHASE1_TABLE = "query_result"
SCRATCH_CATALOG = "auditor_scratch"


class Workspace:
    """One in-process DuckDB database for one run."""

    def __init__(self, settings: DuckDBSettings | None = None) -> None:
        self.con = duckdb.connect(":memory:")
        self._temp_directory = settings.temp_directory if settings is not None else None
        self._scratch: Path | None = None
        self._cleanup: weakref.finalize | None = None
        if settings is not None:
            if settings.memory_limit:
                self._set("memory_limit", settings.memory_limit)
            if settings.temp_directory:
                self._set("temp_directory", str(settings.temp_directory))
            if settings.threads:
                self._set("threads", settings.threads)
        netaddr.register(self.con)
        inventory.create_tables(self.con)
        self.inventory: inventory.InventorySnapshot | None = None

    def _set(self, name: str, value: Any) -> None:
        # DuckDB accepts a prepared parameter for SET values.
        self.con.execute(f"SET {name} = $value", {"value": value})

    def load_inventory(self, root: Path) -> inventory.InventorySnapshot:
        self.inventory = inventory.load_inventory(self.con, root)
        return self.inventory

    def rule_egress(self) -> dict[str, bool]:
        """Security-group rule ID -> whether it is an egress rule, from the inventory."""
        rows = self.con.execute("SELECT rule_id, is_egress FROM sg_rules WHERE rule_id IS NOT NULL").fetchall()
        return {rule_id: bool(egress) for rule_id, egress in rows}

    def execute(self, text: str, params: Mapping[str, Any], *, name: str, engine: str = "embedded") -> QueryResult:
        """Run Trino SQL here: transpile, bind, fetch."""
        prepared = prepare_duckdb(text, params, name=name)
        started = time.perf_counter()
        try:
            cur = self.con.execute(prepared.text, prepared.params)
            columns = tuple(d[0] for d in cur.description)
            types = tuple(str(d[1]) for d in cur.description)
            rows = tuple(cur.fetchall())
        except duckdb.Error as exc:
            raise EngineError(f"{name}: {exc}", engine=engine) from exc
        stats = QueryStats(engine=engine, text_as_run=prepared.text, duration_s=time.perf_counter() - started,
                           params=_display_params(prepared.params))
        return QueryResult(columns=columns, rows=rows, stats=stats, types=types)

    def register_result(self, result: QueryResult, table: str = PHASE1_TABLE) -> None:
        """Make an engine query's rows available to ``report.sql`` as ``query_result``."""
        columns = {c: [row[i] for row in result.rows] for i, c in enumerate(result.columns)}
        self.con.register("_engine_rows", pa.table(columns))
        # Arrow infers types from the values; an all-NULL or empty column would come out typed NULL, so
        # cast each column to the type the engine reported. Names and types are quoted through sqlglot.
        select = []
        for i, c in enumerate(result.columns):
            col = exp.column(c, quoted=True)
            if i < len(result.types):
                col = exp.cast(col, exp.DataType.build(result.types[i], dialect="duckdb"))
            select.append(exp.alias_(col, c, quoted=True))
        try:
            self.store(exp.select(*select).from_("_engine_rows").sql(dialect="duckdb"), {}, table)
        finally:
            self.con.unregister("_engine_rows")

    def store(self, select_sql: str, params: Mapping[str, Any], table: str = PHASE1_TABLE) -> int:
        """Materialise ``select_sql`` as ``table`` for ``report.sql``; return its row count.

        The rows go to a scratch database file in the temporary folder (``duckdb.temp_directory``, else the
        system's), not into an in-memory temporary table: DuckDB's buffer manager can write such a table's
        blocks out, while an in-memory one must fit. At 100M flow records the exposure checks keep about 38M
        phase-1 rows, and an in-memory table of them failed under ``memory_limit: 600MB``
        (benchmarks/RESULTS.md). ``table`` is then a temporary view of the stored rows.
        """
        stored = f"{self._scratch_catalog()}.main.{exp.to_identifier(table, quoted=True).sql('duckdb')}"
        view = exp.to_identifier(table, quoted=True).sql("duckdb")
        self.con.execute(f"CREATE OR REPLACE TABLE {stored} AS {select_sql}", dict(params) or None)
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {stored}")
        ((count,),) = self.con.execute(f"SELECT count(*) FROM {stored}").fetchall()
        return int(count)

    def _scratch_catalog(self) -> str:
        """The scratch database, attached on first use; its folder goes when the workspace closes."""
        if self._scratch is None:
            if self._temp_directory is not None:
                Path(self._temp_directory).mkdir(parents=True, exist_ok=True)
            self._scratch = Path(tempfile.mkdtemp(prefix="auditor-phase1-", dir=self._temp_directory))
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._scratch, ignore_errors=True)
            # ATTACH takes no parameters: the path (a folder this process just made) goes in as a quoted literal.
            path = exp.Literal.string(str(self._scratch / "phase1.duckdb")).sql("duckdb")
            self.con.execute(f"ATTACH {path} AS {SCRATCH_CATALOG}")
        return SCRATCH_CATALOG

    def close(self) -> None:
        self.con.close()
        if self._cleanup is not None:
            self._cleanup()


def _display_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in params.items()}
