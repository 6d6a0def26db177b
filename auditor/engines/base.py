"""The engine protocol every engine implements: local (DuckDB over files), later Athena and Logs Insights."""

from __future__ import annotations

from typing import Any, Mapping, Protocol

from auditor.models import DataQuality, Query, QueryResult, TimeWindow


class Engine(Protocol):
    """Runs a check's engine query over the logical tables ``flow_logs`` and ``cloudtrail``.

    The window and parameters never go into query text as free strings: they travel as structured
    arguments, bound by the engine.
    """

    name: str
    dialect: str  # the query dialect it runs: "trino" (query.sql) or "insights" (query.insights)
    # An engine may also set ``shares_workspace = True`` when its tables live in the run's workspace (the local
    # engine): the pipeline then runs a check's engine query inside its report.sql instead of calling run().

    def prepare(self, scans: Mapping[str, TimeWindow]) -> DataQuality:
        """Get ready to serve the tables named in ``scans``, each over (at least) its window.

        Called once per run, before any query, with the union of the windows the planned queries need,
        so an engine that reads files can read each of them once.
        """
        ...

    def run(self, query: Query, window: TimeWindow, params: Mapping[str, Any]) -> QueryResult:
        """Run one query over ``window`` with ``params`` bound."""
        ...

    def close(self) -> None:
        ...
