"""The Athena engine: each check's query.sql on Athena (serverless Trino) over flow logs and CloudTrail in S3.

The flow-log checks read the flow summary, which the engine creates once per run and window with a CREATE TABLE
AS SELECT, and removes when it closes (:mod:`auditor.engines.athena.summary`): the window's flow logs are read
once per run, not once per check. A query goes through:

1. :func:`~auditor.engines.athena.querymap.compile_query`: logical tables mapped to the configured tables,
   partition predicates for the window, the account and region, values as execution parameters;
2. with ``athena.max_bytes_scanned`` set, an estimate of its scan from an S3 listing of the pruned partitions;
   a query that would take the run over budget is skipped, and the check says so;
3. StartQueryExecution, then GetQueryExecution with backoff until the query ends
   (https://docs.aws.amazon.com/athena/latest/APIReference/API_GetQueryExecution.html); past
   ``athena.timeout`` it is stopped with StopQueryExecution;
4. GetQueryResults page by page (at most 1,000 rows a page,
   https://docs.aws.amazon.com/athena/latest/APIReference/API_GetQueryResults.html). Values arrive as text and
   are typed from the result set metadata, so rows equal what the local engine returns for the same data.

FAILED, CANCELLED and timed-out queries raise :class:`EngineError` with the query ID and Athena's reason; the
pipeline turns it into an error of that check and the other checks go on.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from auditor import formatting as fmt
from auditor.aws import THROTTLING_CODES, Budget, describe_error, error_code
from auditor.config import AthenaSettings, AthenaSourceSpec, PricingSettings
from auditor.engines.athena.cost import Listing, cost_usd, estimate_scan, list_scan, own_objects
from auditor.engines.athena.querymap import (
    AthenaQuery,
    PartitionScan,
    Scope,
    check_source,
    compile_query,
)
from auditor.engines.athena.summary import (
    Scratch,
    Summary,
    ctas,
    delete_objects,
    drop_table,
    size_of,
    summary_for,
)
from auditor.engines.base import EngineContext
from auditor.engines.sql import parse
from auditor.engines.summary import FLOW_SUMMARY, reads_summary, summary_sql
from auditor.errors import AuditorError, CheckSkipped, EngineError
from auditor.models import (
    DataQuality,
    Query,
    QueryResult,
    QueryRun,
    QueryStats,
    TimeWindow,
    iso_z,
)
from auditor.timeparse import parse_duration

log = logging.getLogger(__name__)

ClientFactory = Callable[[str, "str | None"], Any]  # (service, region) -> boto3 client

CATALOG = "AwsDataCatalog"
PAGE_SIZE = 1000
POLL_FIRST_S = 0.25
POLL_MAX_S = 5.0
THROTTLE_RETRIES = 6


def _athena_types() -> dict[str, str]:
    # Athena result type names (https://docs.aws.amazon.com/athena/latest/ug/data-types.html) -> DuckDB names,
    # so the second phase's table ``query_result`` gets the same column types as on the local engine.
    return {"boolean": "BOOLEAN", "tinyint": "TINYINT", "smallint": "SMALLINT", "integer": "INTEGER", "int": "INTEGER",
            "bigint": "BIGINT", "double": "DOUBLE", "float": "FLOAT", "real": "FLOAT", "varchar": "VARCHAR",
            "char": "VARCHAR", "string": "VARCHAR", "json": "VARCHAR", "ipaddress": "VARCHAR", "uuid": "VARCHAR",
            "date": "DATE", "timestamp": "TIMESTAMP", "timestamp with time zone": "TIMESTAMP WITH TIME ZONE"}


ATHENA_TO_DUCKDB = _athena_types()


def _timestamp(text: str, zoned: bool) -> datetime:
    # Athena prints timestamps as 'YYYY-MM-DD HH:MM:SS.fff' and, with a zone, 'YYYY-MM-DD HH:MM:SS.fff UTC'
    # (or a zone ID / offset after the space).
    if zoned:
        stamp, _, zone = text.rpartition(" ")
        value = datetime.fromisoformat(stamp)
        if zone in ("UTC", "Z", "GMT"):
            return value.replace(tzinfo=timezone.utc)
        if zone[:1] in "+-":
            return datetime.fromisoformat(f"{stamp}{zone}").astimezone(timezone.utc)
        from zoneinfo import ZoneInfo
        return value.replace(tzinfo=ZoneInfo(zone)).astimezone(timezone.utc)
    return datetime.fromisoformat(text)


def convert(value: str | None, athena_type: str) -> Any:
    """One result value (text, or None for NULL) as the Python value of its Athena type."""
    if value is None:
        return None
    kind = athena_type.lower().split("(", 1)[0].strip()
    if kind == "boolean":
        return value.lower() == "true"
    if kind in ("tinyint", "smallint", "integer", "int", "bigint"):
        return int(value)
    if kind in ("double", "float", "real"):
        return float(value)
    if kind == "decimal":
        return Decimal(value)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "timestamp":
        return _timestamp(value, zoned=False)
    if kind == "timestamp with time zone":
        return _timestamp(value, zoned=True)
    return value  # varchar, json, and the text of arrays, maps and rows


def duckdb_type(column: Mapping[str, Any]) -> str:
    kind = str(column.get("Type", "varchar")).lower().split("(", 1)[0].strip()
    if kind == "decimal":
        return f"DECIMAL({int(column.get('Precision') or 38)}, {int(column.get('Scale') or 0)})"
    return ATHENA_TO_DUCKDB.get(kind, "VARCHAR")


class AthenaEngine:
    """Runs check queries on Athena. Clients come from ``clients(service, region)``; ``sleep`` and
    ``monotonic`` are injected so tests control time."""

    name = "athena"
    dialect = "trino"

    def __init__(self, *, sources: Mapping[str, AthenaSourceSpec], settings: AthenaSettings, budget: Budget,
                 delivery_lag: timedelta, clients: ClientFactory, scope: Scope = Scope(),
                 pricing: PricingSettings = PricingSettings(),
                 region: str | None = None, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic, jitter: Callable[[], float] = random.random,
                 run_token: str | None = None) -> None:
        self.sources = dict(sources)
        self.settings = settings
        self.budget = budget
        self.pricing = pricing
        self.delivery_lag = delivery_lag
        self.scope = scope
        self.default_region = region
        self._clients = clients
        self._cache: dict[tuple[str, str | None], Any] = {}
        self._sleep, self._monotonic, self._jitter = sleep, monotonic, jitter
        self.timeout_s = parse_duration(settings.timeout).total_seconds()
        # Names this engine's flow summary tables and their folder; one engine per run and target.
        self.run_token = run_token or uuid.uuid4().hex[:12]
        self._summaries: dict[TimeWindow, Summary] = {}
        self._runs: list[QueryRun] = []
        self._listings: dict[PartitionScan, Listing] = {}
        self._scans: set[tuple[PartitionScan, str | None]] = set()  # what the queries over the logs read, by region
        self.warnings: list[str] = []
        self.log_bytes = 0  # what the queries that read the logs themselves scanned (not the summary)

    # --- the Engine protocol ---------------------------------------------------------------------------

    def prepare(self, scans: Mapping[str, TimeWindow]) -> DataQuality:
        """Validate the tables against their projections; Athena reads S3 per query, so nothing is loaded."""
        for logical, source in self.sources.items():
            check_source(logical, source)
        return DataQuality()

    def run(self, query: Query, window: TimeWindow, params: Mapping[str, Any]) -> QueryResult:
        label = f"{query.check_id}/{query.name}"
        tables = sorted(t for t in (query.tables or self.sources) if t in self.sources)
        source = self.sources[tables[0]] if tables else next(iter(self.sources.values()))
        summary = self._summary(window) if reads_summary(parse(query.text, name=label)) else None
        compiled = compile_query(query.text, sources=self.sources, window=window, params=params,
                                 delivery_lag=self.delivery_lag, scope=self.scope, check_id=query.check_id,
                                 name=query.name,
                                 materialised={FLOW_SUMMARY: (summary.database, summary.table)} if summary else None)
        region = source.region or self.default_region
        columns, types, rows, stats = self._execute(label, compiled, source, region, summary=summary)
        return QueryResult(columns=columns, rows=tuple(rows), stats=stats, types=types)

    def take_runs(self) -> tuple[QueryRun, ...]:
        """The queries this engine ran on its own since the last call (the flow summary's CREATE TABLE AS SELECT),
        for the check that caused them: listed with its queries and counted in the cost."""
        runs, self._runs = tuple(self._runs), []
        return runs

    @property
    def window_bytes(self) -> int:
        """The bytes of the objects that hold the run's records: every object a query over the logs read, once,
        and only the configured flow logs' own (the report's "scanned N x the window")."""
        own: dict[tuple[str, str], int] = {}
        try:
            for scan, region in sorted(self._scans, key=repr):
                if scan not in self._listings:
                    self._listings[scan] = list_scan(self._client("s3", region), scan)
                own.update(own_objects(scan, self._listings[scan]))
        except EngineError as exc:  # the ratio is left out of the report; the run's numbers stand
            log.warning("the window's size is unknown: %s", exc)
            return 0
        return sum(own.values())

    def close(self) -> None:
        """Drop the flow summary tables of this run and delete their objects; a failure is kept in ``warnings``
        (the scratch prefix's lifecycle rule then removes the objects)."""
        for summary in self._summaries.values():
            region = self.sources["flow_logs"].region or self.default_region
            try:
                drop_table(self._client("glue", region), summary)
                delete_objects(self._client("s3", region), summary.location)
            except Exception as exc:  # noqa: BLE001 - cleanup goes on for the other summaries
                log.warning("flow summary cleanup failed: %s", exc)
                self.warnings.append(f"the flow summary {summary.database}.{summary.table} ({summary.location}) "
                                     f"could not be removed: {exc}; the lifecycle rule on the scratch prefix "
                                     "deletes its objects (docs/athena-cost.md)")
        self._summaries.clear()
        self._cache.clear()

    # --- the flow summary ------------------------------------------------------------------------------

    def _summary(self, window: TimeWindow) -> Summary:
        """The flow summary of ``window``, created by its CREATE TABLE AS SELECT the first time it is needed."""
        summary = self._summaries.get(window)
        if summary is None:
            source = self.sources.get("flow_logs")
            if source is None:
                raise EngineError("the flow summary needs sources.flow_logs on Athena", engine=self.name)
            scratch = Scratch.of(self.settings, source, self.run_token)
            summary = summary_for(scratch, window, self.run_token, len(self._summaries))
            # Registered before it runs: a CTAS that fails halfway may leave objects behind, removed at close().
            self._summaries[window] = summary
            label = f"{FLOW_SUMMARY}/ctas"
            try:
                select = compile_query(summary_sql(), sources=self.sources, window=window, params={},
                                       delivery_lag=self.delivery_lag, scope=self.scope, check_id=FLOW_SUMMARY,
                                       name="ctas")
                region = source.region or self.default_region
                _, _, _, stats = self._execute(label, ctas(select, summary), source, region, fetch=False)
                self._runs.append(QueryRun("flow summary", self.name, stats.text_as_run, stats, 0))
            except CheckSkipped as exc:  # over the budget: every check that reads it is skipped, and says why
                summary.skipped = str(exc)
            except AuditorError as exc:
                summary.error = str(exc)
        if summary.skipped is not None:
            raise CheckSkipped(summary.skipped)
        if summary.error is not None:
            raise EngineError(f"the flow summary of {window} could not be created: {summary.error}",
                              engine=self.name)
        return summary

    # --- steps -------------------------------------------------------------------------------------------

    def _execute(self, label: str, compiled: AthenaQuery, source: AthenaSourceSpec, region: str | None, *,
                 summary: Summary | None = None, fetch: bool = True
                 ) -> tuple[tuple[str, ...], tuple[str, ...], list[tuple[Any, ...]], QueryStats]:
        """Reserve the budget, start the query, wait for it, fetch its rows (``fetch``) and settle the budget."""
        estimate = self._reserve(label, compiled, region, summary)
        started = time.perf_counter()
        query_id, scanned = None, 0
        columns: tuple[str, ...] = ()
        types: tuple[str, ...] = ()
        rows: list[tuple[Any, ...]] = []
        try:
            query_id = self._start(label, compiled, source, region)
            execution = self._wait(label, query_id, region)
            # A failed or cancelled query is billed for what it scanned too.
            scanned = int(execution.get("Statistics", {}).get("DataScannedInBytes") or 0)
            status = execution.get("Status", {})
            if status.get("State") != "SUCCEEDED":
                error = status.get("AthenaError", {})
                reason = status.get("StateChangeReason") or error.get("ErrorMessage") or "no reason given"
                raise EngineError(f"{label}: Athena query {status.get('State')}: {reason}", query_id=query_id,
                                  engine=self.name)
            if fetch:
                columns, types, rows = self._results(label, query_id, region)
        finally:
            self.budget.settle(estimate, scanned)
            if compiled.scans:
                self.log_bytes += scanned
        shown = {k: (list(v) if isinstance(v, tuple) else iso_z(v) if isinstance(v, datetime) else v)
                 for k, v in compiled.shown.items()}
        if compiled.parameters:
            shown["execution_parameters"] = list(compiled.parameters)
        stats = QueryStats(engine=self.name, text_as_run=compiled.text, duration_s=time.perf_counter() - started,
                           query_id=query_id, bytes_scanned=scanned, params=shown,
                           cost_usd=cost_usd(scanned, self.pricing))
        return columns, types, rows, stats

    def _client(self, service: str, region: str | None) -> Any:
        key = (service, region)
        if key not in self._cache:
            self._cache[key] = self._clients(service, region)
        return self._cache[key]

    def _reserve(self, label: str, compiled: AthenaQuery, region: str | None, summary: Summary | None) -> int:
        """With a budget, list what the query will read and reserve it, or skip the query. Either way its scans
        are noted for :attr:`window_bytes`."""
        self._scans.update((scan, region) for scan in compiled.scans)
        if self.budget.limit is None:
            return 0
        s3 = self._client("s3", region)
        for scan in compiled.scans:
            if scan not in self._listings:
                self._listings[scan] = list_scan(s3, scan)
        if summary is not None:
            # Parquet: an upper bound, Athena reads only the columns the query uses.
            size = size_of(s3, summary.location)
            what = f"the flow summary {summary.table}"
        else:
            estimate = estimate_scan(s3, compiled.scans, self._listings)
            size = estimate.bytes
            what = f"{estimate.objects} objects under {estimate.prefixes} partitions"
        fits, left = self.budget.reserve(size)
        if not fits:
            raise CheckSkipped(f"{label}: skipped, the query would scan about {fmt.size(size)} "
                               f"({what}) and only {fmt.size(left)} of the run's max_bytes_scanned budget "
                               f"({fmt.size(self.budget.limit)}) is left")
        return size

    def _call(self, label: str, fn: Callable[..., Any], query_id: str | None = None, **kwargs: Any) -> Any:
        """Call an Athena API, retrying throttling with jittered exponential backoff (on top of botocore's own
        retries, which a burst of many checks can exhaust)."""
        delay = POLL_FIRST_S
        for attempt in range(THROTTLE_RETRIES + 1):
            try:
                return fn(**kwargs)
            except Exception as exc:
                if error_code(exc) in THROTTLING_CODES and attempt < THROTTLE_RETRIES:
                    self._sleep(delay * (0.5 + self._jitter()))
                    delay = min(delay * 2, POLL_MAX_S * 4)
                    continue
                raise EngineError(f"{label}: {fn.__name__}: {describe_error(exc)}", query_id=query_id,
                                  engine=self.name) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _start(self, label: str, compiled: AthenaQuery, source: AthenaSourceSpec, region: str | None) -> str:
        athena = self._client("athena", region)
        request: dict[str, Any] = {
            "QueryString": compiled.text,
            "QueryExecutionContext": {"Database": source.database, "Catalog": CATALOG},
            "WorkGroup": source.workgroup,
            # The same token on a retried call starts the query once
            # (https://docs.aws.amazon.com/athena/latest/APIReference/API_StartQueryExecution.html).
            "ClientRequestToken": str(uuid.uuid4()),
        }
        if source.output_location:
            request["ResultConfiguration"] = {"OutputLocation": source.output_location}
        if compiled.parameters:
            request["ExecutionParameters"] = list(compiled.parameters)
        return str(self._call(label, athena.start_query_execution, **request)["QueryExecutionId"])

    def _wait(self, label: str, query_id: str, region: str | None) -> Mapping[str, Any]:
        """The execution once it has ended (SUCCEEDED, FAILED or CANCELLED); stopped past the timeout."""
        athena = self._client("athena", region)
        deadline = self._monotonic() + self.timeout_s
        delay = POLL_FIRST_S
        while True:
            execution = self._call(label, athena.get_query_execution, query_id, QueryExecutionId=query_id)["QueryExecution"]
            status = execution.get("Status", {})
            state = status.get("State")
            if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
                return execution
            now = self._monotonic()
            if now >= deadline:
                stopped = "it was stopped"
                try:
                    self._call(label, athena.stop_query_execution, query_id, QueryExecutionId=query_id)
                except EngineError as exc:
                    stopped = f"stopping it failed: {exc}"
                raise EngineError(f"{label}: Athena query still {state or 'QUEUED'} after {self.settings.timeout} "
                                  f"(athena.timeout); {stopped}", query_id=query_id, engine=self.name)
            self._sleep(min(delay, deadline - now))
            delay = min(delay * 2, POLL_MAX_S)

    def _results(self, label: str, query_id: str, region: str | None) -> tuple[tuple[str, ...], tuple[str, ...], list[tuple[Any, ...]]]:
        athena = self._client("athena", region)
        columns: tuple[str, ...] = ()
        types: tuple[str, ...] = ()
        kinds: list[str] = []
        rows: list[tuple[Any, ...]] = []
        token: str | None = None
        first = True
        while True:
            kwargs: dict[str, Any] = {"QueryExecutionId": query_id, "MaxResults": PAGE_SIZE}
            if token:
                kwargs["NextToken"] = token
            page = self._call(label, athena.get_query_results, query_id, **kwargs)
            result_set = page.get("ResultSet", {})
            if first:
                info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = tuple(c.get("Name") or c.get("Label") or f"_col{i}" for i, c in enumerate(info))
                types = tuple(duckdb_type(c) for c in info)
                kinds = [str(c.get("Type", "varchar")) for c in info]
            page_rows = result_set.get("Rows", [])
            for i, row in enumerate(page_rows):
                values = [d.get("VarCharValue") for d in row.get("Data", [])]
                # A SELECT's first row holds the column labels (the API returns them as data).
                if first and i == 0 and values == list(columns):
                    continue
                if len(values) != len(columns):
                    raise EngineError(f"{label}: a result row has {len(values)} values for {len(columns)} columns",
                                      query_id=query_id, engine=self.name)
                try:
                    rows.append(tuple(convert(v, k) for v, k in zip(values, kinds)))
                except (ValueError, ArithmeticError) as exc:
                    raise EngineError(f"{label}: cannot read a result value: {exc}", query_id=query_id,
                                      engine=self.name) from exc
            first = False
            token = page.get("NextToken")
            if not token:
                return columns, types, rows


def create(context: EngineContext) -> AthenaEngine:
    """The Athena engine of a run (or of one account and region of it), from the config's Athena sources."""
    config = context.loaded.config
    target = context.aws_target()
    sources = {name: spec for name in ("flow_logs", "cloudtrail")
               if (spec := getattr(config.sources, name)) is not None and spec.engine == "athena"}
    account = target.account_id
    if account is None and any(spec.projection.layout != "day" and spec.projection.account_column
                               for spec in sources.values()):
        # Without accounts:, `auditor athena ddl` makes the account partition an *injected* projection, and Athena
        # refuses a query on an injected partition without a static equality on it
        # (https://docs.aws.amazon.com/athena/latest/ug/partition-projection-dynamic-id-partitioning.html).
        # The account is then the credentials' own, bound as an equality like a listed account's.
        account = context.sessions.caller_account()
    scope = Scope(account, target.region if target.filtered else None)
    return AthenaEngine(sources=sources, settings=config.athena, budget=context.budget, pricing=config.pricing,
                        delivery_lag=config.delivery_lag_td, scope=scope, region=context.sessions.default_region(),
                        clients=lambda service, region: context.sessions.client(service, region))
