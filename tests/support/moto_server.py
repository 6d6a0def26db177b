"""An in-process moto server over HTTP on 127.0.0.1, and helpers to feed its Athena canned results.

moto runs no query: GetQueryResults hands out canned results from one FIFO per account and region, each taken
by the next query execution that asks for results
(https://docs.getmoto.org/en/latest/docs/services/athena.html). Tests therefore run Athena queries serially.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
DEFAULT_ACCOUNT = "123456789012"  # moto's account for the base credentials


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """Start moto on a free 127.0.0.1 port; yields its URL. Every AWS client of the test points there."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _post(url: str, path: str, body: Mapping[str, Any] | None = None) -> int:
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(url + path, data=data, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - 127.0.0.1 only
        return int(response.status)


def reset(url: str) -> None:
    """Forget every resource the server holds."""
    _post(url, "/moto-api/reset")


# DuckDB type -> the type name Athena reports in ResultSetMetadata.ColumnInfo
_ATHENA_TYPE = {"BOOLEAN": "boolean", "TINYINT": "tinyint", "SMALLINT": "smallint", "INTEGER": "integer",
                "BIGINT": "bigint", "HUGEINT": "bigint", "DOUBLE": "double", "FLOAT": "real", "VARCHAR": "varchar",
                "DATE": "date", "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamp with time zone"}


def athena_type(duckdb_type: str) -> str:
    upper = duckdb_type.upper()
    if upper.startswith("DECIMAL"):
        return "decimal"
    return _ATHENA_TYPE.get(upper, "varchar")


def _text(value: Any, kind: str) -> str:
    """A value as Athena prints it in GetQueryResults."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if kind == "timestamp with time zone":
            value = value.astimezone(timezone.utc)
            return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d} UTC"
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (Decimal, float, int)):
        return str(value)
    return str(value)


def athena_result(columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """A moto canned result shaped as Athena returns a SELECT: a header row of labels, then the data rows
    (NULL is a Datum without VarCharValue)."""
    kinds = [athena_type(t) for t in types]
    header = {"Data": [{"VarCharValue": c} for c in columns]}
    data = [{"Data": [({"VarCharValue": _text(v, k)} if v is not None else {}) for v, k in zip(row, kinds)]}
            for row in rows]
    return {"rows": [header] + data,
            "column_info": [{"Name": c, "Label": c, "Type": k, "Nullable": "UNKNOWN"} for c, k in zip(columns, kinds)]}


def enqueue_athena_results(url: str, results: Sequence[Mapping[str, Any]], *, account: str = DEFAULT_ACCOUNT,
                           region: str = "us-east-1") -> None:
    """Append canned results to the FIFO of ``account`` and ``region``."""
    status = _post(url, "/moto-api/static/athena/query-results",
                   {"account_id": account, "region": region, "results": list(results)})
    assert status == 201, status
