"""IANA protocol numbers, as flow logs, security group rules and CloudTrail spell them.

Flow logs carry the IANA number (``6``); security group rules carry a name (``tcp``, ``udp``, ``icmp``,
``icmpv6``), a number as a string (``"50"``) or ``-1`` for all protocols
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_IpPermission.html). Readers normalise to
the number so that the two sides can be joined.
"""

from __future__ import annotations

from collections.abc import Mapping

# The display names by number live in the one formatting layer, which every report and title speaks through.
from auditor.formatting import ALL_PROTOCOLS, PROTOCOL_NAMES

__all__ = ["ALL_PROTOCOLS", "PROTOCOL_NAMES", "protocol_name", "protocol_number"]

_BY_NAME: Mapping[str, int] = {
    **{name: number for number, name in PROTOCOL_NAMES.items()},
    "ipv6-icmp": 58,  # IANA's keyword for 58, as some tools print it
}


def protocol_number(value: object) -> int | None:
    """The IANA protocol number of ``value``, ``-1`` for all protocols, or None when it names none.

    Accepts ints, numeric strings and the names in :data:`PROTOCOL_NAMES` (any case, surrounding spaces
    ignored). Numbers must be -1 or 0..255: IANA numbers are one byte.
    """
    if isinstance(value, bool):  # bool is an int subclass; True is not protocol 1
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip().lower()
        if text in _BY_NAME:
            return _BY_NAME[text]
        try:
            number = int(text)
        except ValueError:
            return None
    else:
        return None
    return number if number == ALL_PROTOCOLS or 0 <= number <= 255 else None


def protocol_name(number: int | None) -> str:
    """A display name for a protocol number: its keyword when known, else the number itself."""
    if number is None:
        return "unknown"
    return PROTOCOL_NAMES.get(number, str(number))
