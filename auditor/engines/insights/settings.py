"""Config models of the Logs Insights engine. ``auditor.config`` assembles them; this module must not import it."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from auditor.configbase import Strict


class InsightsSourceSpec(Strict):
    """A flow-log or CloudTrail source in CloudWatch Logs, queried with Logs Insights."""

    engine: Literal["insights"] = Field(description="Query this source with CloudWatch Logs Insights.")
    log_groups: tuple[str, ...] = Field(min_length=1, description="The log groups (at most 50 per query).")
    format: Optional[str] = Field(None, description="The flow log's LogFormat, for the generated parse clause.")


class InsightsSettings(Strict):
    max_concurrency: int = Field(4, ge=1, description="Concurrent Logs Insights queries (AWS's quota varies by account).")
    min_slice: str = Field("1h", description="The shortest window slice when a result is truncated at 10,000 rows.")
    timeout: str = Field("15m", description="Stop a query (StopQuery) that runs longer than this.")
