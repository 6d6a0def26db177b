"""Config models of the Logs Insights engine. ``auditor.config`` assembles them; this module must not import it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from auditor.configbase import LogFormat, Strict
from auditor.timeparse import parse_duration


class InsightsSourceSpec(Strict):
    """A flow-log or CloudTrail source in CloudWatch Logs, queried with Logs Insights."""

    engine: Literal["insights"] = Field(description="Query this source with CloudWatch Logs Insights.")
    log_groups: tuple[str, ...] = Field(min_length=1, description="The log groups (at most 50 per query; more are "
                                                                  "queried in batches and merged).")
    format: LogFormat = Field(None, description="The flow log's LogFormat (from DescribeFlowLogs), for the "
                                                "generated parse clause. Default: the default format, whose "
                                                "fields CloudWatch discovers itself.")


class InsightsSettings(Strict):
    max_concurrency: int = Field(4, ge=1, description="Concurrent Logs Insights queries (AWS's quota varies by account).")
    min_slice: str = Field("1h", description="The shortest window slice when a result is truncated at 10,000 rows.")
    timeout: str = Field("15m", description="Stop a query (StopQuery) that runs longer than this.")

    @field_validator("min_slice", "timeout")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)  # raises ValueError: "'x' is not a duration like 90d, 24h, 30m or 2w"
        return v
