"""The ``parse @message`` clause for a flow log delivered to CloudWatch Logs in a custom format.

CloudWatch discovers named fields only for the default format
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_AnalyzeLogData-discoverable-fields.html); a custom
format's fields must be parsed out of ``@message``. The clause is generated from the flow log's ``LogFormat``
(DescribeFlowLogs, or ``sources.flow_logs.format``), so nobody writes one by hand, with the same field names the
local engine uses (:func:`auditor.engines.insights.catalog.insights_name`). Records are space separated, one
value per field in the format's order (https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html).
"""

from __future__ import annotations

from auditor.engines.insights.catalog import DEFAULT_V2, insights_name
from auditor.engines.insights.parser import Field, Parse, Regex, render_command
from auditor.logformat import FIELDS, parse_log_format

_BY_COLUMN = {f.column: f for f in FIELDS}


def format_fields(log_format: str) -> tuple[str, ...]:
    """The Logs Insights names of a LogFormat's fields, in order. Raises ValueError for an unknown field."""
    return tuple(insights_name(_BY_COLUMN[c].name) for c in parse_log_format(log_format))


def needs_parse(log_format: str | None) -> bool:
    """Whether a flow log's format differs from the default one (whose fields CloudWatch discovers itself)."""
    if not log_format:
        return False
    return parse_log_format(log_format) != tuple(f.column for f in DEFAULT_V2)


def parse_command(log_format: str) -> Parse:
    """``parse @message /^(?<version>\\S+) (?<accountId>\\S+) ...$/`` for the format."""
    names = format_fields(log_format)
    pattern = r"^\s*" + r"\s+".join(f"(?<{n}>\\S+)" for n in names) + r"\s*$"
    return Parse(0, Field(0, "@message"), Regex(0, pattern), names)


def parse_clause(log_format: str) -> str:
    """The parse clause as query text."""
    return render_command(parse_command(log_format))
