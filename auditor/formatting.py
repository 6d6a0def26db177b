"""The one formatting layer of what a person reads: times, windows, spans, sizes, money, numbers, counts and
plurals, and the words of the network: protocol and service names, rules, interfaces and groups by name, actors by
their short name, user agents by family, booleans as words.

The report's view, the mail, the run's data-quality notes, the engines' messages and every finding title format
through here, so a size or a port reads the same everywhere. :data:`FILTERS` offers the same functions to Jinja2
templates (finding titles and remediations in ``check.yaml``, the report's templates): see docs/report.md, "Words".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, pass_context
from jinja2 import meta as jinja_meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from auditor.models import Names, utc


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
    """``115 KB``, ``1.03 MB``, ``12.4 GB``: decimal units, as AWS reports and bills bytes (Athena's data scanned),
    with three significant digits, so that a 115 KB limit never reads as 0.1 MB."""
    if n < 1000:
        return f"{n:,} B"
    units = ("KB", "MB", "GB", "TB", "PB")
    value, index = n / 1000, 0
    while round(value, 2) >= 1000 and index < len(units) - 1:
        value, index = value / 1000, index + 1
    digits = 2 if value < 10 else 1 if value < 100 else 0
    return f"{value:.{digits}f} {units[index]}"


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


def ratio(value: float) -> str:
    """A multiple, as in "scanned 1.1× the window": one decimal below 10, whole numbers from there."""
    return f"{value:.1f}×" if value < 10 else f"{value:.0f}×"


# --- windows -------------------------------------------------------------------------------------------------

def window(since: datetime, until: datetime) -> str:
    """A half-open window ``[since, until)`` as a reader counts it: ``9–15 Nov 2026, 7 days``.

    A window of whole UTC days is named by its first and its *last included* day (the 16th's midnight ends the
    15th), so "9–15 Nov" and "7 days" agree. Other windows keep their times: ``2026-11-09 06:00 to 2026-11-09
    18:00 UTC (12 hours)``."""
    since, until = utc(since), utc(until)
    length = span((until - since).total_seconds())
    whole_days = all((t.hour, t.minute, t.second, t.microsecond) == (0, 0, 0, 0) for t in (since, until))
    if not whole_days or until <= since:
        return f"{short_when(since)} to {short_when(until)} UTC ({length})"
    last = until - timedelta(days=1)
    if since.date() == last.date():
        return f"{last.day} {last:%b %Y}, 1 day"
    if (since.year, since.month) == (last.year, last.month):
        first = f"{since.day}"
    elif since.year == last.year:
        first = f"{since.day} {since:%b}"
    else:
        first = f"{since.day} {since:%b %Y}"
    return f"{first}\u2013{last.day} {last:%b %Y}, {length}"


def day(dt: datetime) -> str:
    """``2026-11-16``."""
    return utc(dt).strftime("%Y-%m-%d")


def minute(dt: datetime | str | None) -> str:
    """``2026-11-26 19:05 UTC``: an event's time as a title says it."""
    if dt is None or dt == "":
        return "an unknown time"
    if isinstance(dt, str):
        try:
            dt = datetime.fromisoformat(dt.replace("Z", "+00:00"))
        except ValueError:
            return dt
    return utc(dt).strftime("%Y-%m-%d %H:%M UTC")


# --- the words of the network ----------------------------------------------------------------------------------

ALL_PROTOCOLS = -1

# Display names by IANA number. The keywords are IANA's
# (https://www.iana.org/assignments/protocol-numbers/protocol-numbers.xhtml), lower-cased, except 58:
# AWS writes ICMPv6 as "icmpv6" where IANA writes "ipv6-icmp".
PROTOCOL_NAMES: Mapping[int, str] = {
    ALL_PROTOCOLS: "all",
    1: "icmp",
    2: "igmp",
    4: "ipv4",
    6: "tcp",
    17: "udp",
    41: "ipv6",
    47: "gre",
    50: "esp",
    51: "ah",
    58: "icmpv6",
    132: "sctp",
}

# Service names of well-known and sensitive ports (IANA's service name registry, and the names people use for
# the sensitive ports of config.yaml's default sensitive_ports). Keyed by (protocol, port); protocol 0: both.
SERVICES: Mapping[tuple[int, int], str] = {
    (6, 20): "FTP data", (6, 21): "FTP", (6, 22): "SSH", (6, 23): "Telnet", (6, 25): "SMTP", (0, 53): "DNS",
    (6, 80): "HTTP", (6, 110): "POP3", (17, 123): "NTP", (6, 135): "MS RPC", (0, 137): "NetBIOS name service",
    (17, 138): "NetBIOS datagram", (6, 139): "NetBIOS session", (6, 143): "IMAP", (17, 161): "SNMP",
    (6, 389): "LDAP", (6, 443): "HTTPS", (6, 445): "SMB", (6, 465): "SMTPS", (6, 587): "SMTP submission",
    (6, 636): "LDAPS", (6, 993): "IMAPS", (6, 995): "POP3S", (6, 1433): "SQL Server", (0, 1434): "SQL Server browser",
    (6, 1521): "Oracle", (0, 2049): "NFS", (6, 2375): "Docker API", (6, 2376): "Docker API (TLS)",
    (6, 3000): "Grafana/dev server", (6, 3306): "MySQL", (6, 3389): "RDP", (0, 3389): "RDP", (6, 4333): "mSQL",
    (6, 5000): "dev server/registry", (6, 5432): "PostgreSQL", (6, 5500): "VNC (listen)", (6, 5601): "Kibana",
    (6, 5900): "VNC", (6, 5984): "CouchDB", (6, 6379): "Redis", (6, 8080): "HTTP alternate",
    (6, 8088): "HTTP alternate", (6, 8888): "HTTP alternate", (6, 9042): "Cassandra", (6, 9200): "Elasticsearch",
    (6, 9300): "Elasticsearch transport", (0, 11211): "Memcached", (6, 27017): "MongoDB",
}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def protocol(value: Any) -> str:
    """``tcp``, ``udp``, ``icmp``, ``all`` (-1); an unknown number reads ``protocol 99``."""
    number = _int(value)
    if number is None:
        return str(value) if value not in (None, "") else "any protocol"
    return PROTOCOL_NAMES.get(number, f"protocol {number}")


def service_name(port: Any, proto: Any = 6) -> str:
    """The service a port is known for (``MySQL``), or "" when it has no name here."""
    p, n = _int(port), _int(proto)
    if p is None:
        return ""
    return SERVICES.get((n or 6, p)) or SERVICES.get((0, p), "")


def service(port: Any, proto: Any = 6) -> str:
    """``MySQL (tcp/3306)``, or ``tcp/8443`` for a port without a well-known name."""
    plain_port = f"{protocol(proto)}/{port}"
    name = service_name(port, proto)
    return f"{name} ({plain_port})" if name else plain_port


def ports(proto: Any, from_port: Any = None, to_port: Any = None) -> str:
    """What a rule's protocol and port range admit: ``SSH (tcp/22)``, ``tcp/20-21``, ``all tcp ports``, ``icmp``,
    ``all traffic``."""
    number = _int(proto)
    lo, hi = _int(from_port), _int(to_port)
    if number == ALL_PROTOCOLS:
        return "all traffic"
    name = protocol(proto)
    if number not in (6, 17):
        return name if number is not None else f"{name} traffic"
    if lo is None or lo == -1 or (lo == 0 and hi == 65535):
        return f"all {name} ports"
    if hi is None or lo == hi:
        return service(lo, number)
    named = service_name(lo, number) if service_name(lo, number) and service_name(lo, number) == service_name(hi, number) else ""
    if lo == 20 and hi == 21:
        named = "FTP"
    return f"{named} ({name}/{lo}-{hi})" if named else f"{name}/{lo}-{hi}"


def is_world(source: Any) -> bool:
    """0.0.0.0/0 or ::/0 (a /0 with host bits, as anonymised logs write it, too)."""
    return isinstance(source, str) and "/" in source and source.rsplit("/", 1)[1] == "0"


def source(value: Any, group_id: Any = None) -> str:
    """A rule's source as words: ``0.0.0.0/0 (the internet)``, ``its own group``, ``sg-… (web)``, a CIDR."""
    if value in (None, ""):
        return "no source"
    if group_id is not None and value == group_id:
        return "its own group"
    if is_world(value):
        return f"{value} (the internet)"
    return str(value)


def rule(value: Mapping[str, Any] | None, group_id: Any = None) -> str:
    """One rule as short text: ``tcp/22 from 0.0.0.0/0``, ``all traffic from its own group``; egress rules say
    ``to``; a rule named by ID alone reads its ID."""
    if not isinstance(value, Mapping):
        return words(value)
    what = value.get("protocol")
    direction = value.get("direction")
    src = value.get("source")
    if what is None and src is None:
        return f"rule {value.get('rule_id') or 'unknown'}"
    if direction == "attach":
        return f"group {src}"
    admitted = ports(what, value.get("from_port"), value.get("to_port")) if what is not None else "traffic"
    peer = "its own group" if group_id is not None and src == group_id else (str(src) if src else "anywhere")
    return f"{admitted} {'to' if direction == 'egress' else 'from'} {peer}"


def rules(values: Any, group_id: Any = None) -> str:
    """A list of rules as short text, separated by semicolons."""
    if not isinstance(values, (list, tuple)):
        return words(values)
    return "; ".join(rule(v, group_id) for v in values) if values else "no rules"


def yes_no(value: Any) -> str:
    if value is None:
        return "unknown"
    return "yes" if value else "no"


def words(value: Any) -> str:
    """Any value as a person reads it: booleans as yes/no, lists as comma-separated text, nothing as a dash."""
    if value is None:
        return "\u2014"
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return ", ".join(words(v) for v in items) if items else "none"
    if isinstance(value, Mapping):
        return "; ".join(f"{k.replace('_', ' ')} {words(v)}" for k, v in value.items())
    if isinstance(value, float):
        return number(value)
    return str(value)


def cut(text: Any, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (the full value stays in the CSV and findings.json)."""
    text = words(text) if not isinstance(text, str) else text
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


# --- who did it ------------------------------------------------------------------------------------------------

def actor(arn: Any) -> str:
    """An actor's short name: the session (or user) name and the role: ``alice@example.com (AdminRole)``.

    ARN shapes: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-arns
    (``arn:aws:sts::123456789012:assumed-role/AdminRole/alice``, ``arn:aws:iam::123456789012:user/bob``,
    ``arn:aws:iam::123456789012:root``); a service principal (``cloudformation.amazonaws.com``) stays as it is."""
    if not isinstance(arn, str) or not arn:
        return "an unknown principal"
    if not arn.startswith("arn:"):
        return arn
    resource = arn.split(":", 5)[-1]
    kind, _, rest = resource.partition("/")
    parts = rest.split("/") if rest else []
    if kind == "assumed-role" and len(parts) >= 2:
        return f"{parts[-1]} ({parts[0]})"
    if kind == "user" and parts:
        return parts[-1]
    if kind == "role" and parts:
        return f"role {parts[-1]}"
    if resource == "root":
        return f"the root user of {arn.split(':')[4]}"
    if kind == "federated-user" and parts:
        return f"{parts[-1]} (federated)"
    return resource


# User agents by family, first match wins. CloudTrail's userAgent values:
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html
_AGENTS: tuple[tuple[str, str], ...] = (
    ("console.amazonaws.com", "console"), ("console.ec2.amazonaws.com", "console"), ("signin.amazonaws.com", "console"),
    ("aws-internal/3", "console"), ("cloudformation.amazonaws.com", "CloudFormation"),
    ("terraform", "Terraform"), ("pulumi", "Pulumi"), ("aws-cdk", "AWS CDK"), ("aws-cli", "AWS CLI"),
    ("aws-powershell", "AWS Tools for PowerShell"), ("boto3", "SDK (boto3)"), ("botocore", "SDK (botocore)"),
    ("aws-sdk-go", "SDK (Go)"), ("aws-sdk-java", "SDK (Java)"), ("aws-sdk-js", "SDK (JavaScript)"),
    ("aws-sdk-dotnet", "SDK (.NET)"), ("aws-sdk-ruby", "SDK (Ruby)"), ("aws-sdk-", "SDK"),
    ("amazonaws.com", "AWS service"),
)


def agent(user_agent: Any) -> str:
    """A user agent's family: ``console``, ``AWS CLI``, ``Terraform``, ``CloudFormation``, ``SDK (boto3)``; else
    the first word of the agent, cut."""
    if not isinstance(user_agent, str) or not user_agent:
        return "unknown client"
    low = user_agent.lower()
    # Terraform sends the Go SDK's agent with "Terraform/x.y" in it: the tool wins over the SDK.
    for needle, family in _AGENTS:
        if needle in low:
            return family
    return cut(user_agent.split()[0], 30)


# --- names from the inventory ------------------------------------------------------------------------------------

def interface(eni: Any, names: Names | None = None) -> str:
    """``web-1 (i-0abc…, eni-0be2…)``: an interface by its Name tag and instance, or its description."""
    if not eni:
        return "an unknown interface"
    known = names.interfaces.get(str(eni)) if names is not None else None
    if known is None:
        return str(eni)
    ids = ", ".join(x for x in (known.instance_id, str(eni)) if x)
    if known.name:
        return f"{known.name} ({ids})"
    if known.description:
        return f"{cut(known.description, 40)} ({ids})"
    return ids if known.instance_id else str(eni)


def group(group_id: Any, names: Names | None = None) -> str:
    """``sg-0ab… (web)``: a security group with its name, when the inventory knows it."""
    if not group_id:
        return "an unknown group"
    name = names.groups.get(str(group_id)) if names is not None else None
    return f"{group_id} ({name})" if name else str(group_id)


def join(values: Iterable[Any], last: str = "and") -> str:
    """``a, b and c``."""
    items = [str(v) for v in values]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


# --- sentences from templates --------------------------------------------------------------------------------------

@pass_context
def _interface_filter(ctx: Any, eni: Any) -> str:
    return interface(eni, ctx.get("names"))


@pass_context
def _group_filter(ctx: Any, group_id: Any) -> str:
    return group(group_id, ctx.get("names"))


def _count_filter(n: Any, noun: str, plural: str = "") -> str:
    return count(int(n or 0), noun, plural)


# Every word above, as Jinja2 filters: ``{{ dstport | service(protocol) }}``, ``{{ interface_id | interface }}``.
FILTERS: Mapping[str, Any] = {
    "actor": actor, "agent": agent, "count": _count_filter, "cut": cut, "day": day, "group": _group_filter,
    "interface": _interface_filter, "series": join, "minute": minute, "number": number, "plural_s": plural_s,
    "ports": ports, "protocol": protocol, "rule": rule, "rules": rules, "service": service, "size": size,
    "source": source, "when": when, "words": words, "yes_no": yes_no, "world": is_world,
}

_SENTENCES = ImmutableSandboxedEnvironment(autoescape=False, undefined=ChainableUndefined, trim_blocks=True,
                                           lstrip_blocks=True, keep_trailing_newline=False)
_SENTENCES.filters.update(FILTERS)
_SENTENCES.globals.update(is_world=is_world, service_name=service_name)
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def sentence_template(text: str) -> str:
    """A title pattern as a Jinja2 template. The old ``{column}`` placeholders (a user's check may still use them)
    read as ``{{ column | words }}``, so a boolean reads yes/no and a list reads as text there too."""
    if "{{" in text or "{%" in text:
        return text
    return _PLACEHOLDER.sub(lambda m: "{{ " + m.group(1) + " | words }}", text)


@lru_cache(maxsize=256)
def _compiled(text: str) -> Any:
    return _SENTENCES.from_string(sentence_template(text))


def template_variables(text: str) -> set[str]:
    """The row columns a title or remediation template reads (to check them when a check loads)."""
    return jinja_meta.find_undeclared_variables(_SENTENCES.parse(sentence_template(text))) - {"names"}


def sentence(text: str, row: Mapping[str, Any], names: Names | None = None) -> str:
    """A finding's title (or remediation) from its template and its row: one line, spaces collapsed."""
    rendered = _compiled(text).render({**row, "names": names})
    return " ".join(rendered.split())


def compared_with(previous: Any) -> str:
    """The run "what changed" compares with, by its window: ``the week of 2026-11-16 (16–22 Nov 2026)``, or
    ``the window 1–3 Nov 2026, 3 days`` when it was no week."""
    if previous is None:
        return "no earlier run"
    since, until = utc(previous.since), utc(previous.until)
    if until - since == timedelta(days=7):
        return f"the week of {day(since)} ({window(since, until).rsplit(',', 1)[0]})"
    return f"the window {window(since, until)}"
