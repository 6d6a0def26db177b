"""What the hooks of the CloudTrail checks share: each event once, and the request as CloudTrail records it.

Request shapes differ by service and by API generation: the EC2 query API wraps a request in
``<Action>Request`` with capitalised keys and ``{"content": ..., "tag": n}`` values, and writes lists as
``{"items": [...]}``; the JSON APIs (CloudTrail, CloudWatch Logs, Config, GuardDuty) record their parameters as
sent. https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any


def unique_events(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Each event once: an organization trail and an account trail both deliver the same call, with the same
    ``eventID``. The local reader already drops (and counts) such duplicates; Athena and Insights read the
    delivered files as they are, so a check drops them in its hook, the first row winning. Rows without an event
    ID are never taken as duplicates."""
    seen: set[Any] = set()
    out = []
    for row in rows:
        event_id = row.get("event_id")
        if event_id is not None:
            if event_id in seen:
                continue
            seen.add(event_id)
        out.append(row)
    return out


def request_json(text: Any) -> dict[str, Any]:
    """``requestParameters`` (or ``responseElements``) as a dict; {} when absent or not a JSON object."""
    if isinstance(text, dict):
        return text
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    """CloudTrail writes lists as {"items": [...]}; accept a bare list or a single object too."""
    if isinstance(value, dict):
        value = value.get("items", [value] if value else [])
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def content(value: Any) -> list[str]:
    """The values of an EC2 query-API list parameter: ``{"content": "fl-1", "tag": 1}``, a list of those, or plain
    strings."""
    out = []
    for item in items(value):
        if isinstance(item, dict):
            item = item.get("content")
        if item not in (None, ""):
            out.append(str(item))
    return out
