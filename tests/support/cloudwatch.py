"""A fake CloudWatch Logs for the Logs Insights engine: log groups holding flow-log lines as CloudWatch Logs holds
them (each line its own event, ``@message`` the line as written, ``@log`` ``<account>:<group>``), answering
StartQuery through a botocore Stubber.

CloudWatch discovers the fields of the default flow-log format only
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_AnalyzeLogData-discoverable-fields.html): a line of a
default-format log group has ``version`` ... ``logStatus`` as text; a custom-format line has none of them until a
``parse`` clause extracts them. Queries are evaluated by the local Insights compiler over these events, so a
query's meaning is the local engine's, and only the data is laid out as CloudWatch lays it out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import botocore.session
import pyarrow as pa
from botocore.stub import ANY, Stubber

from auditor.engines.connection import connect
from auditor.engines.insights.catalog import DEFAULT_V2, TableCatalog, insights_name
from auditor.engines.insights.compiler import compile_program
from auditor.engines.insights.local import execute
from auditor.engines.insights.parser import parse
from auditor.logformat import FIELDS

ACCOUNT = "111122223333"
DISCOVERED = tuple(insights_name(f.name) for f in DEFAULT_V2)
_SESSION = botocore.session.get_session()


def logs_client() -> Any:
    return _SESSION.create_client("logs", region_name="us-east-1", aws_access_key_id="testing",
                                  aws_secret_access_key="testing")


def cw(value: Any) -> str:
    """A value the way GetQueryResults writes it."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return str(value)


class CloudWatchLogs:
    """``groups``: log group -> [(event time in epoch seconds, line)]. ``discovered``: the groups whose flow log
    uses the default format (CloudWatch discovers their fields). ``row_cap``: rows per answer."""

    def __init__(self, groups: Mapping[str, Sequence[tuple[int, str]]], *, discovered: Collection[str],
                 row_cap: int = 10_000) -> None:
        self.client = logs_client()
        self.stub = Stubber(self.client)
        self.row_cap = row_cap
        self.calls: list[dict[str, Any]] = []
        self.con = connect()
        columns: dict[str, list[Any]] = {"@timestamp": [], "@message": [], "@log": [], "@logStream": []}
        columns.update({name: [] for name in DISCOVERED})
        for group, events in groups.items():
            for when, line in events:
                values = line.split()
                found = group in discovered and len(values) == len(DISCOVERED)
                columns["@timestamp"].append(datetime.fromtimestamp(when, timezone.utc))
                columns["@message"].append(line)
                columns["@log"].append(f"{ACCOUNT}:{group}")
                columns["@logStream"].append(f"{values[2] if found else 'eni-unknown'}-all")
                for name, value in zip(DISCOVERED, values if found else [None] * len(DISCOVERED)):
                    columns[name].append(value)
        types = {"@timestamp": pa.timestamp("ms", tz="UTC")}
        self.con.register("__events", pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in columns.items()}))
        # A field no event has is simply empty in CloudWatch: every other flow-log name is an empty column.
        empty = [insights_name(f.name) for f in FIELDS if insights_name(f.name) not in DISCOVERED]
        self.con.execute("CREATE TABLE events AS SELECT *, "
                         + ", ".join(f'CAST(NULL AS VARCHAR) AS "{n}"' for n in empty) + " FROM __events")
        self.con.unregister("__events")
        self.client.meta.events.register("provide-client-params.logs.StartQuery", self._start)
        self.stub.activate()

    def _start(self, params: dict, **_: Any) -> dict:
        qid = f"q-{len(self.calls) + 1}"
        self.calls.append(dict(params))
        # StartQuery's window is inclusive at both ends, on @timestamp.
        self.con.execute('CREATE OR REPLACE TEMP TABLE selected AS SELECT * FROM events WHERE "@log" IN '
                         '(SELECT ? || \':\' || unnest(?)) AND "@timestamp" >= to_timestamp(?) '
                         'AND "@timestamp" <= to_timestamp(?)',
                         [ACCOUNT, list(params["logGroupNames"]), params["startTime"], params["endTime"]])
        described = self.con.execute("DESCRIBE selected").fetchall()
        catalog = TableCatalog("selected", {r[0]: r[1] for r in described})
        res = execute(self.con, compile_program(parse(params["queryString"]), catalog, window=None))
        rows = [[{"field": c, "value": cw(v)} for c, v in zip(res.columns, row) if v is not None]
                for row in res.rows[:self.row_cap]]
        self.stub.add_response("start_query", {"queryId": qid}, {k: ANY for k in params})
        self.stub.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": qid})
        self.stub.add_response("get_query_results", {
            "status": "Complete", "results": rows,
            "statistics": {"recordsMatched": float(len(res.rows)),
                           "recordsScanned": float(self.con.execute("SELECT count(*) FROM selected").fetchone()[0]),
                           "bytesScanned": 100.0 * len(res.rows)}}, {"queryId": qid})
        return params
