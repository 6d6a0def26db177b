"""The engine protocol every engine implements (local: DuckDB over files; athena; insights), and the context an
engine factory is given."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from auditor.aws import AwsSessions, Budget, Target, plan_targets
from auditor.config import LoadedConfig
from auditor.engines.embedded import Workspace
from auditor.models import DataQuality, Query, QueryResult, TimeWindow


class Engine(Protocol):
    """Runs a check's engine query over the logical tables ``flow_logs`` and ``cloudtrail``.

    The window and parameters never go into query text as free strings: they travel as structured
    arguments, bound by the engine.
    """

    name: str
    dialect: str  # the query dialect it runs: "trino" (query.sql) or "insights" (query.insights)
    # An engine may also set ``shares_workspace = True`` when its tables live in the run's workspace (the local
    # engine): the execute stage then runs a check's engine query inside its report.sql instead of calling run().
    # Such an engine also has ``prepare_query(query)``, which the execute stage calls first, so that the tables the
    # query reads (the flow summary of its window) are ready in the workspace.

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


@dataclass(frozen=True)
class EngineContext:
    """Everything an engine factory (and the live inventory loader) may use, passed explicitly.

    ``target`` is the account and region this part of the run audits; None when the run is not split per
    target (no source is read through AWS), and then :meth:`aws_target` falls back to the config's first.
    """

    workspace: Workspace
    loaded: LoadedConfig
    sessions: AwsSessions
    budget: Budget
    target: Target | None = None

    @classmethod
    def of(cls, workspace: Workspace, loaded: LoadedConfig, *, sessions: AwsSessions | None = None,
           target: Target | None = None) -> EngineContext:
        """A context made from the config alone: sessions from its AWS settings, a budget of its own."""
        return cls(workspace=workspace, loaded=loaded, sessions=sessions or AwsSessions(loaded.config.aws),
                   budget=Budget(loaded.config.athena.max_bytes_scanned), target=target)

    def aws_target(self) -> Target:
        """The account and region an AWS engine of this run serves."""
        return self.target if self.target is not None else plan_targets(self.loaded, self.sessions)[0]
