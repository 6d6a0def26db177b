"""The CloudWatch Logs Insights engine: checks' ``query.insights`` over flow logs and CloudTrail delivered to
CloudWatch Logs, through an injected ``logs`` client (boto3 or botocore; tests stub it).

What CloudWatch imposes, and what this engine does about it:

* StartQuery's window is ``startTime``/``endTime`` in epoch seconds, both *inclusive*
  (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_StartQuery.html). Our windows are
  half-open, so the engine passes ``until - 1 s`` and also filters on the record's own start (``startTime`` for
  flow logs, ``eventTime`` for CloudTrail) inside the query.
* At most 50 log groups per query (same page): more are queried in batches and merged. Log groups of different
  flow-log formats go into different batches, each with the ``parse`` clause of its format (none for the default
  format, whose fields CloudWatch discovers). Before the checks, one query per batch counts the lines that do not
  match their log group's format, by log group, for the data-quality section.
* A result stops at 10,000 rows. The engine fetches full aggregates (no top-N), splits the window in halves while
  a slice comes back full, down to ``insights.min_slice``, and merges the slices (:mod:`.merge`). A slice still
  full at the minimum is kept, and the result is marked truncated with a note.
* Concurrent queries are capped by ``insights.max_concurrency`` (AWS's quota varies by account); throttling
  (LimitExceededException, ThrottlingException) is retried with full-jitter exponential backoff; a query running
  longer than ``insights.timeout`` is stopped with StopQuery.
* ``recordsScanned`` and ``bytesScanned`` are summed over every query sent, truncated ones included (they are
  billed), and priced with ``pricing.insights_usd_per_gb``.

Result values arrive as text; each column is typed with the type the local Insights engine gives the same query,
so the second phase (``report.sql``) sees the same columns and types whichever engine ran the first.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pyarrow as pa
from sqlglot import exp

from auditor.aws import describe_error, error_code
from auditor.config import InsightsSettings, InsightsSourceSpec
from auditor.engines import netaddr
from auditor.engines.base import EngineContext
from auditor.engines.connection import connect
from auditor.engines.insights import merge
from auditor.engines.insights.catalog import Catalog, TableCatalog, catalog_for
from auditor.engines.insights.compiler import CompiledQuery, compile_program
from auditor.engines.insights.local import source_table
from auditor.engines.insights.parse_clause import MATCHED, mismatch_command, needs_parse, parse_command
from auditor.engines.insights.parser import (
    Binary,
    Call,
    Command,
    Field,
    Filter,
    Item,
    Literal,
    Pipeline,
    Program,
    Stats,
    Unary,
    bind,
    parse,
    render,
)
from auditor.engines.sources import cloudtrail as cloudtrail_source
from auditor.engines.sources import flowlogs
from auditor.errors import EngineError
from auditor.logformat import parse_log_format
from auditor.models import (
    ENGINE_TABLES,
    DataQuality,
    FileQuality,
    Query,
    QueryResult,
    QueryStats,
    TimeWindow,
    iso_z,
)
from auditor.timeparse import parse_duration

log = logging.getLogger(__name__)

ROW_CAP = 10_000  # rows in one GetQueryResults answer (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/cloudwatch_limits_cwl.html)
MAX_LOG_GROUPS = 50  # log groups in one StartQuery
BYTES_PER_GB = 2**30
_THROTTLED = frozenset({"LimitExceededException", "ThrottlingException", "TooManyRequestsException",
                        "ServiceUnavailableException"})
_RUNNING = frozenset({"Scheduled", "Running"})
_MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class _Batch:
    """At most 50 log groups of one format, and the parse clause their lines need (none for the default format)."""

    index: int
    groups: tuple[str, ...]
    log_format: str | None  # None: the default format
    prefix: tuple[Command, ...] = ()


@dataclass(frozen=True)
class _Slice:
    window: TimeWindow
    batch: _Batch

    @property
    def groups(self) -> tuple[str, ...]:
        return self.batch.groups


@dataclass(frozen=True)
class _Fetched:
    slice: _Slice
    rows: tuple[Mapping[str, str | None], ...]
    full: bool  # the answer stopped at the row cap
    query_id: str
    bytes_scanned: float
    records_scanned: float
    text: str


class CloudInsightsEngine:
    """The engine protocol over CloudWatch Logs Insights."""

    name = "insights"
    dialect = "insights"

    def __init__(self, client: Any, *, sources: Mapping[str, InsightsSourceSpec], settings: InsightsSettings,
                 price_per_gb: float = 0.005, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None,
                 poll_interval: float = 1.0, row_cap: int = ROW_CAP) -> None:
        self.client = client
        self.sources = dict(sources)
        self.settings = settings
        self.price_per_gb = price_per_gb
        self.min_slice = parse_duration(settings.min_slice)
        self.timeout = parse_duration(settings.timeout).total_seconds()
        self.sleep, self.clock = sleep, clock
        self.rng = rng or random.Random()
        self.poll_interval = poll_interval
        self.row_cap = row_cap
        self._con = connect()  # pinned to UTC: CloudWatch's timestamps are UTC without a zone suffix
        netaddr.register(self._con)
        flowlogs.create_table(self._con)
        cloudtrail_source.create_table(self._con)

    # -- the engine protocol -------------------------------------------------------------------------------

    def prepare(self, scans: Mapping[str, TimeWindow]) -> DataQuality:
        """Each query scans CloudWatch Logs itself; nothing is read ahead. For flow logs, the lines of each log
        group that do not match its format are counted first (one query per batch), so that they are named in
        data quality instead of dropping out of the checks in silence."""
        missing = [t for t in scans if t not in self.sources]
        if missing:
            raise EngineError(f"no Logs Insights source for {', '.join(missing)}", engine=self.name)
        if "flow_logs" in scans:
            return self._format_check(scans["flow_logs"])
        return DataQuality()

    def batches(self, table: str) -> tuple[_Batch, ...]:
        """The source's log groups by format (in the order first listed), in batches of at most 50."""
        spec = self.sources[table]
        by_format: dict[tuple[str, ...] | None, tuple[str | None, list[str]]] = {}
        for group in spec.log_groups:
            fmt = spec.group_format(group) if table == "flow_logs" else None
            key = parse_log_format(fmt) if fmt and needs_parse(fmt) else None
            by_format.setdefault(key, (fmt if key else None, []))[1].append(group.name)
        out: list[_Batch] = []
        for fmt, names in by_format.values():
            prefix = (parse_command(fmt),) if fmt else ()
            for i in range(0, len(names), MAX_LOG_GROUPS):
                out.append(_Batch(len(out), tuple(names[i:i + MAX_LOG_GROUPS]), fmt, prefix))
        return tuple(out)

    def _format_check(self, window: TimeWindow) -> DataQuality:
        """Count, per log group, the lines in the window that its format's pattern does not match."""
        counts: dict[str, int] = {}
        fetched: list[_Fetched] = []
        failed: list[FileQuality] = []
        for batch in self.batches("flow_logs"):
            pos = 0
            absent = Unary(pos, "not", Call(pos, "ispresent", (Field(pos, MATCHED),), spelled="ispresent"))
            stats = Stats(pos, (Item(pos, Call(pos, "count", (), True, "count"), "auditorN"),),
                          (Item(pos, Field(pos, "@log"), "auditorLog"),))
            text = render(Pipeline(pos, (mismatch_command(batch.log_format), Filter(pos, absent), stats)))
            try:
                result = self._query(_Slice(window, batch), text, None)
            except EngineError as exc:  # the checks still run; the report says the lines were not checked
                shown = ", ".join(batch.groups[:3]) + (f" and {len(batch.groups) - 3} more" if len(batch.groups) > 3 else "")
                failed.append(FileQuality(path=f"CloudWatch Logs log groups {shown}",
                                          error=f"their lines could not be checked against their format: {exc}"))
                continue
            fetched.append(result)
            for row in result.rows:
                group = _log_group_name(row.get("auditorLog"))
                n = int(float(row.get("auditorN") or 0))
                if group and n:
                    counts[group] = counts.get(group, 0) + n
        scanned = int(sum(f.bytes_scanned for f in fetched))
        cost = scanned / BYTES_PER_GB * self.price_per_gb
        notes = [f"Logs Insights format check: {len(fetched)} quer{'y' if len(fetched) == 1 else 'ies'} scanned "
                 f"{scanned:,} bytes, about ${cost:.4f}"]
        files = []
        spec = self.sources["flow_logs"]
        formats = {g.name: spec.group_format(g) for g in spec.log_groups}
        for group, n in counts.items():
            described = f"its format {formats[group]}" if formats.get(group) else "the default format"
            line = "line does" if n == 1 else "lines do"
            note = (f"{n:,} {line} not match {described}; left out of the checks (set the log group's format in "
                    "sources.flow_logs.log_groups)")
            files.append(FileQuality(path=f"CloudWatch Logs log group {group}", malformed=n, notes=(note,)))
            notes.append(f"log group {group}: {note}")
        return DataQuality(files=tuple(files) + tuple(failed), notes=tuple(notes))

    def close(self) -> None:
        self._con.close()

    def run(self, query: Query, window: TimeWindow, params: Mapping[str, Any]) -> QueryResult:
        name = f"{query.check_id}/{query.name}"
        table = source_table(query.tables, name=name)
        spec = self.sources.get(table)
        if spec is None:
            raise EngineError(f"{name}: sources.{table} is not a Logs Insights source", engine=self.name)
        started = time.perf_counter()
        program = bind(parse(query.text), params)
        catalog = catalog_for(table)
        expected = compile_program(program, catalog, window=window)
        expected_types = self._types(expected)
        names = expected.names
        rows: list[tuple[Any, ...]] = []
        fetched: list[_Fetched] = []
        for part in program.parts:
            part_rows, part_names, part_fetched = self._run_part(program, part, catalog, table, window, name)
            index = {n: i for i, n in enumerate(part_names)}
            rows += [tuple(r[index[n]] if n in index else None for n in names) for r in part_rows]
            fetched += part_fetched
        return QueryResult(columns=names, rows=tuple(rows), stats=self._stats(fetched, params, started),
                           types=expected_types)

    # -- one part: plan, fetch, merge ------------------------------------------------------------------------

    def _run_part(self, program: Program, part: Pipeline, catalog: Catalog, table: str,
                  window: TimeWindow, name: str) -> tuple[list[tuple[Any, ...]], tuple[str, ...], list[_Fetched]]:
        single = Program((part,), program.text)
        compiled = compile_program(single, catalog, window=window)
        obj_sources = {c.name: c.source for c in compiled.columns if c.type == "obj" and c.source}
        if any(c.type == "obj" and not c.source for c in compiled.columns):
            raise program.error("a whole JSON object can only be shown as it is", part.pos, unsupported=True)
        batches = self.batches(table)
        try:
            rp = merge.plan(part, output=compiled.columns, obj_sources=obj_sources,  # type: ignore[arg-type]
                            batched=len(batches) > 1, dash_means_absent=table == "flow_logs")
        except merge.PlanError as exc:
            raise program.error(str(exc), exc.pos, unsupported=True) from None
        remote_types: dict[str, str] = {}
        for pipeline in (rp.remote, *rp.typed_subqueries):
            remote = compile_program(Program((pipeline,), program.text), catalog, window=window)
            remote_types.update(zip(remote.names, self._types(remote)))
        fetched = []
        for pipeline in (rp.remote, *rp.subqueries):
            fetched += self._fetch(pipeline, rp.remote_limit, table, batches, window)
        raw = [row for f in fetched for row in f.rows]
        if rp.kind == "stats":
            result = self._merge_stats(rp, raw, remote_types, table, catalog, program)
        else:
            result = self._merge_events(rp, raw, remote_types, table, program)
        if result.names != compiled.names:  # pragma: no cover - a planning bug, not a user error
            raise EngineError(f"{name}: merged columns {result.names} differ from {compiled.names}", engine=self.name)
        cur = self._con.execute(result.sql, dict(result.params))
        out = cur.fetchall()
        self._con.execute("DROP TABLE IF EXISTS __auditor_remote")
        self._con.execute("DROP TABLE IF EXISTS __auditor_merged")
        return [tuple(r) for r in out], result.names, fetched

    def _types(self, compiled: CompiledQuery) -> tuple[str, ...]:
        """DuckDB's types of a compiled query's columns, from running it over the empty tables."""
        cur = self._con.execute(f"SELECT * FROM ({compiled.sql}) LIMIT 0", dict(compiled.params))
        return tuple(str(d[1]) for d in cur.description)

    def _load_remote(self, columns: Sequence[str], types: Mapping[str, str], rows: Sequence[Mapping[str, Any]],
                     dash_null: Sequence[str], table: str) -> None:
        """The remote rows (text) as the typed table ``__auditor_remote``."""
        data = {c: pa.array([_text(r.get(c)) for r in rows], pa.string()) for c in columns}
        self._con.register("__auditor_raw", pa.table(data))
        select = []
        for c in columns:
            value: exp.Expression = exp.column(c, quoted=True)
            if table == "flow_logs" and c in dash_null:
                value = exp.Nullif(this=value, expression=exp.Literal.string("-"))  # "-": the field has no value
            value = exp.TryCast(this=value, to=exp.DataType.build(types.get(c, "VARCHAR"), dialect="duckdb"))
            select.append(exp.alias_(value, c, quoted=True))
        sql = exp.select(*select).from_("__auditor_raw").sql(dialect="duckdb")
        self._con.execute(f"CREATE OR REPLACE TEMP TABLE __auditor_remote AS {sql}")
        self._con.unregister("__auditor_raw")

    def _merge_stats(self, rp: merge.RemotePlan, raw: Sequence[Mapping[str, Any]], remote_types: Mapping[str, str],
                     table: str, catalog: Catalog, program: Program) -> CompiledQuery:
        self._load_remote(rp.remote_columns, remote_types, raw, rp.dash_null, table)
        assert rp.helper is not None
        helper = compile_program(Program((rp.helper,), program.text), catalog, window=None)
        merged_types = dict(zip(helper.names, self._types(helper)))
        q = lambda name: exp.column(name, quoted=True)  # noqa: E731
        keys = [exp.alias_(q(column), out, quoted=True) for column, out in rp.keys]
        values = []
        pct_parts = []
        for p in rp.parts:
            kind = p.kind
            if kind == "sum":
                value: exp.Expression = exp.Sum(this=q(p.remote[0]))
                if p.call.name == "count":
                    value = exp.Coalesce(this=value, expressions=[exp.Literal.number(0)])
            elif kind in ("min", "max"):
                value = (exp.Min if kind == "min" else exp.Max)(this=q(p.remote[0]))
            elif kind == "avg":
                value = exp.Div(this=exp.cast(exp.Sum(this=q(p.remote[0])), "DOUBLE"),
                                expression=exp.Nullif(this=exp.Sum(this=q(p.remote[1])), expression=exp.Literal.number(0)))
            elif kind in ("arg_min", "arg_max"):
                value = exp.Anonymous(this=kind, expressions=[q(p.remote[0]), q(p.remote[1])])
            elif kind == "distinct":
                value = exp.Count(this=exp.Distinct(expressions=[q(p.remote[0])]))
            else:
                pct_parts.append(p)
                continue
            values.append(exp.alias_(exp.cast(value, merged_types[p.merged]), p.merged, quoted=True))
        select = exp.select(*keys, *values).from_("__auditor_remote")
        if rp.keys:
            select = select.group_by(*[exp.Literal.number(i + 1) for i in range(len(rp.keys))])
        sql = select.sql(dialect="duckdb")
        for p in pct_parts:
            sql = self._with_percentile(sql, rp, p, merged_types[p.merged])
        self._con.execute(f"CREATE OR REPLACE TEMP TABLE __auditor_merged AS {sql}")
        described = self._con.execute("DESCRIBE __auditor_merged").fetchall()
        merged_catalog = TableCatalog("__auditor_merged", {r[0]: r[1] for r in described})
        return compile_program(merge.merged_program(rp), merged_catalog, post_stats=True)

    @staticmethod
    def _with_percentile(sql: str, rp: merge.RemotePlan, p: merge.AggregatePart, type_: str) -> str:
        """Add a weighted exact percentile to the merged groups: the nearest rank, the smallest value whose
        cumulative count reaches ceil(n * q), each distinct value counted as often as its weight (what DuckDB's
        quantile_disc computes over the raw values)."""
        def ident(name: str) -> str:
            return exp.to_identifier(name, quoted=True).sql("duckdb")
        keys = [ident(column) for column, _ in rp.keys]
        out_keys = [ident(out) for _, out in rp.keys]
        value = f"TRY_CAST({ident(p.remote[0])} AS {type_})"
        weight = ident(p.remote[1])
        part = ", ".join(keys)
        over = f"PARTITION BY {part}" if keys else ""
        pairs = (f"SELECT {part + ', ' if keys else ''}{value} AS __v, sum({weight}) AS __w FROM __auditor_remote "
                 f"WHERE {value} IS NOT NULL GROUP BY ALL")
        ranked = (f"SELECT *, sum(__w) OVER ({over} ORDER BY __v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) "
                  f"AS __cum, sum(__w) OVER ({over}) AS __n FROM ({pairs})")
        picked = (f"SELECT {part + ', ' if keys else ''}min(__v) FILTER (WHERE __cum >= greatest(ceil(__n * {p.percentile!r}), 1)) "
                  f"AS __pct FROM ({ranked}) {'GROUP BY ALL' if keys else ''}")
        on = " AND ".join(f"m.{o} IS NOT DISTINCT FROM x.{k}" for o, k in zip(out_keys, keys)) or "true"
        return (f"SELECT m.*, CAST(x.__pct AS {type_}) AS {ident(p.merged)} FROM ({sql}) AS m "
                f"LEFT JOIN ({picked}) AS x ON {on}")

    def _merge_events(self, rp: merge.RemotePlan, raw: Sequence[Mapping[str, Any]], remote_types: Mapping[str, str],
                      table: str, program: Program) -> CompiledQuery:
        columns = list(rp.remote_columns)
        types = dict(remote_types)
        rows = [dict(r) for r in raw]
        for out, key in rp.message_fields:
            # CloudWatch flattens a JSON event into leaf fields; a whole object (requestParameters) comes from
            # @message, written as compact JSON like the CloudTrail reader writes it.
            for r in rows:
                r[out] = _json_member(r.get("@message"), key)
            columns.append(out)
            types[out] = "VARCHAR"
        self._load_remote(columns, types, rows, rp.dash_null, table)
        described = self._con.execute("DESCRIBE __auditor_remote").fetchall()
        remote_catalog = TableCatalog("__auditor_remote", {r[0]: r[1] for r in described})
        return compile_program(Program((Pipeline(rp.remote.pos, rp.local),), program.text), remote_catalog)

    # -- fetching ------------------------------------------------------------------------------------------

    def _remote_text(self, remote: Pipeline, prefix: tuple[Command, ...], table: str, window: TimeWindow) -> str:
        pos = remote.pos
        if table == "flow_logs":
            field, lo, hi = Field(pos, "startTime"), Literal(pos, window.since_s), Literal(pos, window.until_s)
        else:
            field, lo, hi = Field(pos, "eventTime"), Literal(pos, iso_z(window.since)), Literal(pos, iso_z(window.until))
        # The record's own start, half-open, on top of StartQuery's inclusive window on @timestamp.
        in_window = Filter(pos, Binary(pos, "and", Binary(pos, ">=", field, lo), Binary(pos, "<", field, hi)))
        return render(Pipeline(pos, prefix + (in_window,) + remote.commands))

    def _fetch(self, remote: Pipeline, remote_limit: int | None, table: str, batches: Sequence[_Batch],
               window: TimeWindow) -> list[_Fetched]:
        done: list[_Fetched] = []
        errors: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=self.settings.max_concurrency, thread_name_prefix="insights") as pool:
            pending: dict[Future[_Fetched], _Slice] = {}

            def submit(s: _Slice) -> None:
                text = self._remote_text(remote, s.batch.prefix, table, s.window)
                pending[pool.submit(self._query, s, text, remote_limit)] = s

            for batch in batches:
                submit(_Slice(window, batch))
            while pending:
                finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for future in finished:
                    s = pending.pop(future)
                    try:
                        result = future.result()
                    except BaseException as exc:  # noqa: BLE001 - collected; the first is raised below
                        errors.append(exc)
                        continue
                    halves = self._halves(s.window) if result.full and not errors else None
                    if halves is None:
                        done.append(result)
                    else:
                        done.append(_Fetched(s, (), False, result.query_id, result.bytes_scanned,
                                             result.records_scanned, result.text))  # billed, then split
                        for half in halves:
                            submit(_Slice(half, s.batch))
        if errors:
            raise errors[0]
        # Completion order varies with threads; slices in time order (then batch) keep merges and stats stable.
        done.sort(key=lambda f: (f.slice.window.since, f.slice.window.until, f.slice.batch.index))
        return done

    def _halves(self, window: TimeWindow) -> tuple[TimeWindow, TimeWindow] | None:
        if window.duration / 2 < self.min_slice:
            return None
        mid = window.since + timedelta(seconds=int(window.duration.total_seconds()) // 2)
        if not window.since < mid < window.until:
            return None
        return TimeWindow(window.since, mid), TimeWindow(mid, window.until)

    def _call(self, operation: str, **kwargs: Any) -> Any:
        """One API call, retried with full-jitter exponential backoff while CloudWatch throttles it."""
        for attempt in range(_MAX_ATTEMPTS):
            try:
                return getattr(self.client, operation)(**kwargs)
            except Exception as exc:  # noqa: BLE001 - botocore's ClientError; anything else is re-raised
                code = error_code(exc)
                if not code:
                    raise
                if code not in _THROTTLED or attempt == _MAX_ATTEMPTS - 1:
                    raise EngineError(f"Logs Insights {operation} failed: {describe_error(exc)}",
                                      engine=self.name, query_id=kwargs.get("queryId")) from exc
                delay = self.rng.uniform(0, min(30.0, 0.5 * 2**attempt))
                log.info("Logs Insights %s throttled (%s); retrying in %.1f s", operation, code, delay)
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _query(self, s: _Slice, text: str, limit: int | None) -> _Fetched:
        # endTime is inclusive: the last second of a half-open window is until - 1.
        started = self._call("start_query", logGroupNames=list(s.groups), startTime=s.window.since_s,
                             endTime=s.window.until_s - 1, queryString=text, limit=self.row_cap)
        query_id = started["queryId"]
        began = self.clock()
        interval = self.poll_interval
        while True:
            answer = self._call("get_query_results", queryId=query_id)
            status = answer.get("status")
            if status == "Complete":
                break
            if status not in _RUNNING:
                raise EngineError(f"Logs Insights query ended {status}", engine=self.name, query_id=query_id)
            if self.clock() - began > self.timeout:
                self._call("stop_query", queryId=query_id)
                raise EngineError(f"Logs Insights query stopped after {self.settings.timeout} (insights.timeout)",
                                  engine=self.name, query_id=query_id)
            self.sleep(interval)
            interval = min(interval * 1.5, 10.0)
        results = list(answer.get("results", []))
        token = answer.get("nextToken")
        while token:  # newer CloudWatch pages past 10,000 rows; follow it when offered
            page = self._call("get_query_results", queryId=query_id, nextToken=token)
            results += page.get("results", [])
            token = page.get("nextToken")
        rows = tuple({f["field"]: f.get("value") for f in r if not str(f.get("field", "")).startswith("@ptr")}
                     for r in results)
        stats = answer.get("statistics") or {}
        full = len(rows) >= self.row_cap and not (limit is not None and limit <= len(rows))
        return _Fetched(s, rows, full, query_id, float(stats.get("bytesScanned") or 0),
                        float(stats.get("recordsScanned") or 0), text)

    def _stats(self, fetched: Sequence[_Fetched], params: Mapping[str, Any], started: float) -> QueryStats:
        scanned = int(sum(f.bytes_scanned for f in fetched))
        records = int(sum(f.records_scanned for f in fetched))
        cost = scanned / BYTES_PER_GB * self.price_per_gb
        truncated = any(f.full for f in fetched)
        notes = [f"Logs Insights: {len(fetched)} quer{'y' if len(fetched) == 1 else 'ies'} scanned {scanned:,} bytes "
                 f"({records:,} records), about ${cost:.4f} at ${self.price_per_gb}/GB"]
        if truncated:
            notes.append(f"truncated: a window slice of {self.settings.min_slice} or less still returned "
                         f"{self.row_cap:,} rows, CloudWatch's limit; some rows are missing")
        ids = [f.query_id for f in fetched]
        first = min(fetched, key=lambda f: (f.slice.window.since, f.slice.batch.index)) if fetched else None
        return QueryStats(engine=self.name, text_as_run=first.text if first else "", duration_s=time.perf_counter() - started,
                          query_id=",".join(ids) if len(ids) <= 3 else f"{ids[0]} (+{len(ids) - 1} more)",
                          bytes_scanned=scanned, records_scanned=records, truncated=truncated,
                          params={k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()},
                          cost_usd=cost, notes=tuple(notes))


def _log_group_name(value: Any) -> str | None:
    """The log group of an ``@log`` value, ``<account-id>:<log-group-name>``
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_AnalyzeLogData-discoverable-fields.html)."""
    if value is None:
        return None
    account, sep, name = str(value).partition(":")
    return name if sep and account.isdigit() else str(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _json_member(message: Any, key: str) -> str | None:
    try:
        event = json.loads(message) if isinstance(message, str) else None
    except ValueError:
        return None
    value = event.get(key) if isinstance(event, dict) else None
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def create(context: EngineContext, client: Any = None) -> CloudInsightsEngine:
    """The CloudWatch engine for a run. Unless a ``logs`` client is given (tests pass a stubbed one), it is made
    from the run's AWS sessions (``aws.profile``, the role of the account being audited) in the target's region:
    the first of ``aws.regions``, else the session's own."""
    cfg = context.loaded.config
    sources = {t: s for t in ENGINE_TABLES if (s := getattr(cfg.sources, t)) is not None
               and getattr(s, "engine", None) == "insights"}
    if client is None:
        target = context.aws_target()
        client = context.sessions.client("logs", target.region, target.account)
    return CloudInsightsEngine(client, sources=sources, settings=cfg.insights,
                               price_per_gb=cfg.pricing.insights_usd_per_gb)
