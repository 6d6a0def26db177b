"""The one formatting layer of what a person reads: times, spans, sizes, money, numbers, counts and plurals.

The report's view, the mail, the run's data-quality notes and the engines' messages all format through here, so
a size or a time reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from auditor.models import utc


def when(dt: datetime) -> str:
    return utc(dt).strftime("%Y-%m-%d %H:%M:%S UTC")


def short_when(dt: datetime) -> str:
    dt = utc(dt)
    return dt.strftime("%Y-%m-%d") if (dt.hour, dt.minute, dt.second) == (0, 0, 0) else dt.strftime("%Y-%m-%d %H:%M")


def span(seconds: float) -> str:
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute"), (secs, "second")]
    words = [f"{n} {unit}{plural_s(n)}" for n, unit in parts if n]
    return " ".join(words[:2]) or "0 seconds"


def seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs} s"


def size(n: int) -> str:
    """``1.5 GB``: decimal units, as AWS reports and bills bytes (Athena's data scanned)."""
    if n < 1000:
        return f"{n:,} B"
    units = ("KB", "MB", "GB", "TB")
    value, index = n / 1000, 0
    while value >= 1000 and index < len(units) - 1:
        value, index = value / 1000, index + 1
    return f"{value:.1f} {units[index]}"


def plain(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def plural_s(n: int) -> str:
    return "" if n == 1 else "s"


def count(n: int, noun: str, plural: str = "") -> str:
    """``3 files``; ``plural`` for a noun that does not take an s (``files or folders``)."""
    if plural:
        return f"{n:,} {noun if n == 1 else plural}"
    return f"{n:,} {noun}{plural_s(n)}"


def number(value: float | Decimal) -> str:
    if value != value:  # NaN
        return "NaN"
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    if abs(number) >= 1:
        # Counts, rates and averages: two decimals are plenty, and no scientific notation.
        return f"{number:.2f}".rstrip("0").rstrip(".")
    return f"{number:.4g}"


def listing(values: Sequence[str]) -> str:
    return ", ".join(values) if values else "not recorded"


def usd(amount: float) -> str:
    """``$0.0123`` below a dollar, ``$12.34`` from one."""
    return f"${amount:,.4f}" if amount < 1 else f"${amount:,.2f}"


# Service names of the ports a reader recognises (IANA service names, as people say them).
SERVICES = {20: "FTP data", 21: "FTP", 22: "SSH", 23: "Telnet", 25: "SMTP", 53: "DNS", 80: "HTTP", 110: "POP3",
            135: "MS RPC", 137: "NetBIOS", 138: "NetBIOS", 139: "NetBIOS", 143: "IMAP", 389: "LDAP", 443: "HTTPS",
            445: "SMB", 636: "LDAPS", 1433: "SQL Server", 1434: "SQL Server", 1521: "Oracle", 2375: "Docker API",
            2376: "Docker API", 3306: "MySQL", 3389: "RDP", 4333: "mSQL", 5432: "PostgreSQL", 5500: "VNC",
            5601: "Kibana", 5900: "VNC", 6379: "Redis", 8080: "HTTP", 8443: "HTTPS", 9200: "Elasticsearch",
            9300: "Elasticsearch", 11211: "Memcached", 27017: "MongoDB", 27018: "MongoDB"}
PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", -1: "all"}


def protocol_name(protocol: int | None) -> str:
    """``tcp`` for 6; the number for a protocol without a common name."""
    if protocol is None:
        return "any protocol"
    return PROTOCOLS.get(protocol, f"protocol {protocol}")


def port_range(protocol: int | None, from_port: int | None, to_port: int | None) -> str:
    """What a rule covers, in words: ``RDP (tcp/3389)``, ``tcp/1000-2000``, ``all traffic``, ``all tcp ports``."""
    if protocol == -1:
        return "all traffic"
    name = protocol_name(protocol)
    if protocol not in (6, 17):
        return name
    if from_port is None or to_port is None or (from_port <= 0 and to_port >= 65535):
        return f"all {name} ports"
    if from_port == to_port:
        service = SERVICES.get(from_port)
        return f"{service} ({name}/{from_port})" if service else f"{name}/{from_port}"
    return f"{name}/{from_port}-{to_port}"


def short_actor(actor: str | None) -> str:
    """An actor as people name it: ``alice@example.com (AdminRole)`` for an assumed-role session, ``legacy-ops`` for
    an IAM user, ``root``, a service (``config.amazonaws.com``) as it is. The full ARN belongs in the detail."""
    if not actor:
        return "an unknown principal"
    if not actor.startswith("arn:"):
        return actor
    resource = actor.split(":", 5)[-1]
    kind, _, rest = resource.partition("/")
    if kind == "assumed-role" and "/" in rest:
        role, _, session = rest.partition("/")
        return f"{session} ({role})"
    if kind in ("user", "role", "federated-user"):
        return rest.rsplit("/", 1)[-1]
    return resource
