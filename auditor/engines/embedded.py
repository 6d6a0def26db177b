"""The embedded DuckDB every run has: it holds the inventory tables and runs each check's second phase
(``report.sql``) over the engine query's rows, whatever engine ran the first phase. The local engine
also keeps its flow-log and CloudTrail tables here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from auditor.config import DuckDBSettings
from auditor.engines import netaddr, trino_macros
from auditor.engines.connection import connect
from auditor.engines.sources import inventory
from auditor.engines.sql import catalog_of, prepare_duckdb, prepare_fused
from auditor.errors import EngineError
from auditor.models import InterfaceName, Names, QueryResult, QueryStats

PHASE1_TABLE = "query_result"


class Workspace:
    """One in-process DuckDB database for one run."""

    def __init__(self, settings: DuckDBSettings | None = None) -> None:
        # Pinned to UTC, Athena's session time zone: current_date, from_unixtime and date_trunc work in it here too.
        self.con = connect()
        if settings is not None:
            if settings.memory_limit:
                self._set("memory_limit", settings.memory_limit)
            if settings.temp_directory:
                self._set("temp_directory", str(settings.temp_directory))
            if settings.threads:
                self._set("threads", settings.threads)
        netaddr.register(self.con)
        trino_macros.register(self.con)
        inventory.create_tables(self.con)
        self.inventory: inventory.InventorySnapshot | None = None

    def _set(self, name: str, value: Any) -> None:
        # DuckDB accepts a prepared parameter for SET values.
        self.con.execute(f"SET {name} = $value", {"value": value})

    def load_inventory(self, root: Path) -> inventory.InventorySnapshot:
        self.inventory = inventory.load_inventory(self.con, root)
        return self.inventory

    def security_groups(self) -> int:
        """How many security groups the inventory holds: none means the inventory gave no usable record."""
        ((count,),) = self.con.execute("SELECT count(*) FROM sg_groups").fetchall()
        return int(count)

    def names(self) -> Names:
        """The inventory's names of interfaces (Name tag, instance, description) and groups, for finding titles."""
        interfaces = {eni: InterfaceName(name or "", instance or "", description or "")
                      for eni, name, instance, description in self.con.execute(
                          "SELECT interface_id, name, instance_id, description FROM enis").fetchall()}
        groups = {gid: name for gid, name in self.con.execute(
            "SELECT group_id, group_name FROM sg_groups WHERE group_name IS NOT NULL").fetchall()}
        return Names(interfaces, groups)

    def rule_egress(self) -> dict[str, bool]:
        """Security-group rule ID -> whether it is an egress rule, from the inventory."""
        rows = self.con.execute("SELECT rule_id, is_egress FROM sg_rules WHERE rule_id IS NOT NULL").fetchall()
        return {rule_id: bool(egress) for rule_id, egress in rows}

    def nacl_entries(self) -> dict[tuple[str, int, bool], dict[str, Any]]:
        """(network ACL ID, rule number, egress) -> the entry, from the inventory's describe-network-acls."""
        rows = self.con.execute("SELECT network_acl_id, rule_number, egress, rule_action, protocol, from_port, to_port, "
                                "cidr FROM nacl_entries WHERE network_acl_id IS NOT NULL").fetchall()
        return {(acl, number, bool(egress)): {"rule_action": action, "protocol": protocol, "from_port": lo,
                                              "to_port": hi, "cidr": cidr}
                for acl, number, egress, action, protocol, lo, hi, cidr in rows}

    def execute(self, text: str, params: Mapping[str, Any], *, name: str, engine: str = "embedded",
                phase1: tuple[str, Mapping[str, Any]] | None = None, ungrouped: bool = False) -> QueryResult:
        """Run Trino SQL here: transpile, bind, fetch. ``phase1``, the text and parameters of an engine query over
        this database's tables, is inlined as ``query_result`` (:func:`~auditor.engines.sql.prepare_fused`),
        without its GROUP BY when ``ungrouped`` (:func:`~auditor.engines.sql.ungroup`)."""
        catalog = catalog_of(self.con)  # the tables as they are now, query_result included, type the query
        if phase1 is None:
            prepared = prepare_duckdb(text, params, name=name, catalog=catalog)
        else:
            prepared = prepare_fused(text, params, phase1[0], phase1[1], table=PHASE1_TABLE, name=name,
                                     ungrouped=ungrouped, catalog=catalog)
        started = time.perf_counter()
        try:
            cur = self.con.execute(prepared.text, prepared.params)
            columns = tuple(d[0] for d in cur.description)
            types = tuple(str(d[1]) for d in cur.description)
            rows = tuple(cur.fetchall())
        except duckdb.Error as exc:
            raise query_error(self.con, name, exc, engine) from exc
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
        create = exp.select(*select).from_("_engine_rows")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {exp.to_identifier(table, quoted=True).sql('duckdb')} AS "
                         + create.sql(dialect="duckdb"))
        self.con.unregister("_engine_rows")

    def drop_result(self, table: str = PHASE1_TABLE) -> None:
        """Free a check's phase-1 rows once its report has run, so the next check does not run beside them."""
        self.con.execute(f"DROP TABLE IF EXISTS {exp.to_identifier(table, quoted=True).sql('duckdb')}")

    def close(self) -> None:
        self.con.close()


def query_error(con: duckdb.DuckDBPyConnection, name: str, exc: duckdb.Error, engine: str) -> EngineError:
    """A DuckDB failure as the check's error. Running out of memory names the setting that fixes it: DuckDB's
    own advice (fewer threads, insertion order) is not something a user of this tool can act on."""
    if not isinstance(exc, duckdb.OutOfMemoryException):
        return EngineError(f"{name}: {exc}", engine=engine)
    try:
        ((limit,),) = con.execute("SELECT current_setting('memory_limit')").fetchall()
    except duckdb.Error:
        limit = "unknown"
    reason = str(exc).strip().splitlines()[0]
    return EngineError(f"{name}: ran out of memory with duckdb.memory_limit at {limit} ({reason}). Raise "
                       "duckdb.memory_limit in the config (DuckDB spills to duckdb.temp_directory up to it) or run "
                       "a shorter window; docs/performance.md gives measured sizes.", engine=engine)


def _display_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in params.items()}
