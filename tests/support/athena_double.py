"""An executing stand-in for the Athena API, over S3 and Glue of a moto server: it runs the SQL the engine sends and
counts the bytes Athena would bill.

moto records Athena queries but runs none. This double does what Athena does with the queries auditor sends:

- a reference to a configured flow-log table reads the objects under the table's location whose partition
  values (account, region, day in the key) satisfy the predicates on the partition columns of the SELECT that
  reads it, and nothing else decides: Athena prunes files by partition only, never by ``"$path"``. Those
  objects are read as the text table reads them (header line skipped, ``-`` in a number column is NULL), with the
  partition columns and ``"$path"``, and their bytes are what the query scans;
- ``CREATE TABLE ... WITH (external_location = ...) AS SELECT`` writes the result as Parquet to that location and
  registers the table in Glue; a later query over that table scans its Parquet objects (all their bytes, an
  upper bound of what Athena would read);
- the SQL itself runs in DuckDB, translated by the local engine's Trino layer, so the rows are what the same
  SQL gives there.

``ledger`` keeps, per query, its text, the flow-log objects it read and the bytes it scanned.
"""

from __future__ import annotations

import gzip
import re
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from auditor import logformat
from auditor.config import AthenaSourceSpec
from auditor.engines.connection import connect
from auditor.engines.sql import catalog_of, duckdb_text, parse, to_duckdb
from tests.support.moto_server import athena_result

PARTITIONS = ("aws_account_id", "aws_region", "day")
_KEY = re.compile(r"^(?P<account>\d{12})/vpcflowlogs/(?P<region>[a-z0-9-]+)/(?P<day>\d{4}/\d{2}/\d{2})/[^/]+$")


class Crash(BaseException):
    """Raised by the double at a chosen query: the run stops halfway, as a killed process or a bug would."""


@dataclass
class Execution:
    text: str
    flow_log_keys: tuple[str, ...] = ()
    flow_log_bytes: int = 0
    summary_bytes: int = 0
    columns: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


def _bucket_key(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


class ExecutingAthena:
    """The Athena client the engine gets (start, get execution, get results, stop)."""

    def __init__(self, s3: Any, glue: Any, source: AthenaSourceSpec, *, crash_at: int | None = None) -> None:
        self.s3, self.glue, self.source = s3, glue, source
        self.tables = {t.name: t for t in source.tables}
        self.con = connect()
        self.ledger: list[Execution] = []
        self.executions: dict[str, Execution] = {}
        self.crash_at = crash_at
        self.created: dict[tuple[str, str], str] = {}  # (database, table) -> DuckDB table of a CTAS

    # --- the API --------------------------------------------------------------------------------------------

    def start_query_execution(self, QueryString: str, ExecutionParameters: list[str] | None = None,  # noqa: N803
                              **_: Any) -> dict[str, Any]:
        if self.crash_at is not None and len(self.ledger) == self.crash_at:
            raise Crash(f"the run stops at query {self.crash_at}")
        execution = self._run(QueryString, list(ExecutionParameters or []))
        qid = str(uuid.uuid4())
        self.ledger.append(execution)
        self.executions[qid] = execution
        return {"QueryExecutionId": qid}

    def get_query_execution(self, QueryExecutionId: str) -> dict[str, Any]:  # noqa: N803
        execution = self.executions[QueryExecutionId]
        return {"QueryExecution": {"QueryExecutionId": QueryExecutionId, "Query": execution.text,
                                   "Status": {"State": "SUCCEEDED"},
                                   "Statistics": {"DataScannedInBytes": execution.flow_log_bytes
                                                  + execution.summary_bytes}}}

    def get_query_results(self, QueryExecutionId: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        execution = self.executions[QueryExecutionId]
        return {"ResultSet": {"Rows": execution.rows, "ResultSetMetadata": {"ColumnInfo": execution.columns}}}

    def stop_query_execution(self, QueryExecutionId: str) -> dict[str, Any]:  # noqa: N803
        return {}

    # --- running a query ------------------------------------------------------------------------------------

    def _run(self, text: str, parameters: list[str]) -> Execution:
        bound = _bind(text, parameters)
        tree = parse(bound, name="athena-double")
        execution = Execution(text=text)
        create = tree if isinstance(tree, exp.Create) else None
        query = create.expression if create is not None else tree
        for table in list(query.find_all(exp.Table)):
            database, name = table.args.get("db"), table.name
            if database is None:
                continue
            database = database.name
            if (database, name) in self.created:
                bucket, prefix = _bucket_key(self._glue_location(database, name))
                execution.summary_bytes += sum(o["Size"] for o in _objects(self.s3, bucket, prefix))
                table.replace(exp.table_(self.created[(database, name)], alias=table.alias_or_name))
            elif database == self.source.database and name in self.tables:
                local, keys, size = self._load(table)
                execution.flow_log_keys += keys
                execution.flow_log_bytes += size
                table.replace(exp.to_table(local))
        sql = duckdb_text(to_duckdb(query, name="athena-double", catalog=catalog_of(self.con)))
        if create is not None:
            self._create(create, sql)
            return execution
        cur = self.con.execute(sql)
        columns = [d[0] for d in cur.description]
        types = [str(d[1]) for d in cur.description]
        result = athena_result(columns, types, cur.fetchall())
        execution.columns, execution.rows = result["column_info"], result["rows"]
        return execution

    def _load(self, table: exp.Table) -> tuple[str, tuple[str, ...], int]:
        """The objects the partition predicates of the SELECT over ``table`` select, read as the text table reads
        them, into a DuckDB table; returns its name, the keys and their bytes."""
        spec = self.tables[table.name]
        select = table.find_ancestor(exp.Select)
        where = select.args.get("where") if select is not None else None
        conjuncts = list(where.this.flatten()) if where is not None and isinstance(where.this, exp.And) else (
            [where.this] if where is not None else [])
        pruning = [c for c in conjuncts if {col.name for col in c.find_all(exp.Column)} <= set(PARTITIONS)]
        bucket, root = _bucket_key(spec.location or self.source.location)
        objects = []
        for obj in _objects(self.s3, bucket, root):
            m = _KEY.match(obj["Key"][len(root):])
            if m:
                objects.append((obj["Key"], obj["Size"], m["account"], m["region"], m["day"]))
        self.con.execute("CREATE OR REPLACE TEMP TABLE objects (key VARCHAR, size BIGINT, aws_account_id VARCHAR, "
                         "aws_region VARCHAR, day VARCHAR)")
        if objects:
            self.con.executemany("INSERT INTO objects VALUES (?, ?, ?, ?, ?)", objects)
        condition = " AND ".join(f"({c.sql(dialect='duckdb')})" for c in pruning) or "true"
        chosen = self.con.execute(f"SELECT key, size, aws_account_id, aws_region, day FROM objects WHERE {condition} "
                                  "ORDER BY key").fetchall()
        fields = logformat.parse_log_format(spec.format or logformat.DEFAULT_FORMAT)
        types = dict(logformat.TABLE_COLUMNS)
        rows = []
        for key, _size, account, region, day in chosen:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            for line in gzip.decompress(body).decode().splitlines()[1:]:  # skip.header.line.count = 1
                values = line.split(" ")
                rows.append(tuple(values[i] if i < len(values) else None for i in range(len(fields)))
                            + (account, region, day, f"s3://{bucket}/{key}"))
        local = f"scan_{len(self.ledger)}_{table.name}"
        raw = [*fields, *PARTITIONS, "$path"]
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE raw_lines ({', '.join(f'{_q(c)} VARCHAR' for c in raw)})")
        if rows:
            self.con.executemany(f"INSERT INTO raw_lines VALUES ({', '.join('?' for _ in raw)})", rows)
        # LazySimpleSerDe: a value that does not parse as the column's type ('-' in a number column) is NULL.
        typed = [f"TRY_CAST({_q(c)} AS {types[c]}) AS {_q(c)}" if types[c] != "VARCHAR" else _q(c) for c in fields]
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {_q(local)} AS SELECT {', '.join(typed)}, "
                         f"{', '.join(_q(c) for c in (*PARTITIONS, '$path'))} FROM raw_lines")
        return local, tuple(k for k, *_ in chosen), sum(s for _, s, *_ in chosen)

    def _create(self, create: exp.Create, sql: str) -> None:
        target = create.this if isinstance(create.this, exp.Table) else create.this.this
        database, name = target.args["db"].name, target.name
        props = {p.name.lower(): p.args["value"].name for p in create.find_all(exp.Property)
                 if isinstance(p.args.get("value"), exp.Literal)}
        location = props["external_location"]
        local = f"ctas_{name}"
        self.con.execute(f"CREATE OR REPLACE TABLE {_q(local)} AS {sql}")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "part-00000.parquet"
            self.con.execute(f"COPY {_q(local)} TO '{path}' (FORMAT PARQUET)")
            bucket, prefix = _bucket_key(location)
            self.s3.put_object(Bucket=bucket, Key=prefix + path.name, Body=path.read_bytes())
        self.glue.create_table(DatabaseName=database, TableInput={
            "Name": name, "StorageDescriptor": {"Location": location}, "TableType": "EXTERNAL_TABLE"})
        self.created[(database, name)] = local

    def _glue_location(self, database: str, name: str) -> str:
        return self.glue.get_table(DatabaseName=database, Name=name)["Table"]["StorageDescriptor"]["Location"]


def _q(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")


def _bind(text: str, parameters: list[str]) -> str:
    """The query with each ``?`` replaced by its execution parameter, in order (the engine's SQL has no ``?`` in
    a string literal or a comment)."""
    parts = text.split("?")
    assert len(parts) == len(parameters) + 1, (len(parts) - 1, len(parameters))
    return "".join(p + (parameters[i] if i < len(parameters) else "") for i, p in enumerate(parts))


def _objects(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    return [o for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]


def window_objects(s3: Any, location: str, days: Mapping[str, Any] | set[str]) -> dict[str, int]:
    """Key -> size of the flow-log objects under ``location`` in the given day folders (``yyyy/mm/dd``)."""
    bucket, root = _bucket_key(location)
    out = {}
    for obj in _objects(s3, bucket, root):
        m = _KEY.match(obj["Key"][len(root):])
        if m and m["day"] in days:
            out[obj["Key"]] = int(obj["Size"])
    return out


__all__ = ["Crash", "ExecutingAthena", "window_objects", "duckdb"]
