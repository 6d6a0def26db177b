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


# What a value of a field may look like, so that a line of another format (another field order) does not match:
# numbers are digits, action and log-status are their few words, and any field may be "-" (no value)
# (https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html).
_VALUE = {"action": r"ACCEPT|REJECT|-", "log-status": r"OK|NODATA|SKIPDATA|-"}
_NUMBER = r"-|[0-9]+"


def _value_pattern(column: str) -> str:
    spec = _BY_COLUMN[column]
    if spec.name in _VALUE:
        return _VALUE[spec.name]
    return _NUMBER if spec.type in ("INTEGER", "BIGINT") else r"\S+"


def line_pattern(log_format: str | None, names: tuple[str | None, ...] | None = None) -> str:
    """A regular expression matching exactly the lines of ``log_format`` (None: the default format). ``names``
    names the capture group of each field (None: not captured); by default every field by its Insights name."""
    columns = parse_log_format(log_format) if log_format else tuple(f.column for f in DEFAULT_V2)
    if names is None:
        names = tuple(insights_name(_BY_COLUMN[c].name) for c in columns)
    parts = [f"(?<{n}>{_value_pattern(c)})" if n else f"(?:{_value_pattern(c)})" for c, n in zip(columns, names)]
    return r"^\s*" + r"\s+".join(parts) + r"\s*$"


def parse_command(log_format: str) -> Parse:
    """``parse @message /^(?<version>-|[0-9]+) (?<accountId>\\S+) ...$/`` for the format: a line of another
    format does not match, and then has none of the fields (it is counted by :func:`mismatch_command`)."""
    return Parse(0, Field(0, "@message"), Regex(0, line_pattern(log_format)), format_fields(log_format))


MATCHED = "auditorLine"  # the one field the format check parses: present when a line matches its format


def mismatch_command(log_format: str | None) -> Parse:
    """A parse that sets ``auditorLine`` only on the lines that match ``log_format`` (None: the default format)."""
    columns = parse_log_format(log_format) if log_format else tuple(f.column for f in DEFAULT_V2)
    names = (MATCHED,) + (None,) * (len(columns) - 1)
    return Parse(0, Field(0, "@message"), Regex(0, line_pattern(log_format, names)), (MATCHED,))


def parse_clause(log_format: str) -> str:
    """The parse clause as query text."""
    return render_command(parse_command(log_format))
