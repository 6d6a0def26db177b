"""Every DuckDB connection the tool opens, pinned to UTC.

DuckDB casts a time without a zone, and prints a TIMESTAMPTZ, in the session's TimeZone, which defaults to
the host's zone: the same query gave different rows on a host in UTC and one in Pacific/Kiritimati (UTC+14).
Every connection is set to UTC before it is used. The setting needs DuckDB's ICU extension, built into the
Python wheel; it cannot be given to ``duckdb.connect`` in ``config`` (ICU is not loaded yet at that point).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb


def connect(database: str = ":memory:", config: Mapping[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` with the session's TimeZone set to UTC."""
    con = duckdb.connect(database, config=dict(config or {}))
    con.execute("SET TimeZone = 'UTC'")
    return con
