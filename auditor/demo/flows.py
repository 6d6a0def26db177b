"""Flow records: background traffic, the weekly scenarios (port scan, SSH brute force, public MySQL), and the
flow-log files in the default and a custom format, with a little dirt.
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from auditor.demo.manifest import WeekFacts
from auditor.demo.world import (
    ACCOUNT_ID,
    BRUTE_FORCE_IP,
    CORP_IP,
    CUSTOM_FIELDS,
    DIRT_KINDS,
    DIRTY_RATE,
    DIURNAL,
    ENIS,
    EXPOSED_PORT,
    EXPOSED_SOURCE_POOL,
    FLOW_FILE_SPAN,
    FLOW_LOGS,
    GROUPS,
    INTERVAL,
    NOISE_PORTS,
    PUBLIC_FIRST_OCTETS,
    REGION,
    SCAN_PORTS,
    SCANNER_IP,
    V2_FIELDS,
    WEEK,
    Eni,
    as_datetime,
    gzip_bytes,
    in_vpc,
    stamp_text,
    write_file,
)


class _Rec(NamedTuple):
    start: int
    end: int
    delivery: int
    eni: Eni
    src: str | None
    dst: str | None
    sport: int | None
    dport: int | None
    proto: int | None
    packets: int | None
    nbytes: int | None
    action: str | None
    flags: int | None
    direction: str | None
    status: str  # OK | NODATA | SKIPDATA
    pkt_src: str | None
    pkt_dst: str | None
    src_svc: str | None
    dst_svc: str | None
    path: int | None
    tag: str  # bg | noise | scan | brute | exposed | nodata | skipdata


class Flows:
    """Builds flow records. A connection is logged on every covered interface at either end, both directions."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.records: list[_Rec] = []

    def add(self, eni: Eni, start: int, dur: int, src: str, dst: str, sport: int, dport: int, proto: int,
            packets: int, nbytes: int, action: str, flags: int, direction: str, tag: str, *,
            pkt_src: str | None = None, pkt_dst: str | None = None, src_svc: str | None = None,
            dst_svc: str | None = None, path: int | None = None) -> None:
        if eni.flow_log is None:
            return
        end = start + dur
        delivery = max(end + 15, start + self.rng.randint(60, 600))
        if direction == "egress" and path is None:
            # traffic-path is logged for egress only
            # (https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html).
            path = 1 if in_vpc(pkt_dst or dst) else (8 if eni.nitro else 2)
        self.records.append(_Rec(start, end, delivery, eni, src, dst, sport, dport, proto, packets, nbytes, action,
                                 flags, direction, "OK", pkt_src or src, pkt_dst or dst, src_svc, dst_svc, path, tag))

    def status(self, eni: Eni, start: int, status: str) -> None:
        """A NODATA or SKIPDATA record: no addresses, ports or action."""
        end = start + self.rng.randint(500, 540)
        delivery = max(end + 15, start + self.rng.randint(60, 600))
        self.records.append(_Rec(start, end, delivery, eni, None, None, None, None, None, None, None, None, None,
                                 None, status, None, None, None, None, None, status.lower()))

    def session(self, t: int, client: Eni | str, server: Eni | str, cport: int, sport: int,
                c2s: tuple[int, int], s2c: tuple[int, int], dur: int, *, proto: int = 6, action: str = "ACCEPT",
                tag: str = "bg", flags: tuple[int, int] = (3, 19), server_ip: str | None = None,
                svc: str | None = None) -> None:
        """One connection. ``client``/``server`` are interfaces or outside addresses."""
        cip = client.ip if isinstance(client, Eni) else client
        sip = server_ip or (server.ip if isinstance(server, Eni) else server)
        path = 7 if svc else None
        if isinstance(client, Eni):
            self.add(client, t, dur, cip, sip, cport, sport, proto, *c2s, "ACCEPT", flags[0], "egress", tag,
                     dst_svc=svc, path=path)
            if action == "ACCEPT":
                self.add(client, t, dur, sip, cip, sport, cport, proto, *s2c, "ACCEPT", flags[1], "ingress", tag,
                         src_svc=svc)
        if isinstance(server, Eni):
            self.add(server, t, dur, cip, sip, cport, sport, proto, *c2s, action, flags[0], "ingress", tag)
            if action == "ACCEPT":
                self.add(server, t, dur, sip, cip, sport, cport, proto, *s2c, "ACCEPT", flags[1], "egress", tag)

    def via_nat(self, t: int, app: Eni, nat: Eni, host: str, cport: int, c2s: tuple[int, int],
                s2c: tuple[int, int], dur: int) -> None:
        """An app server reaching the internet through the NAT gateway: two records on the app, four on the NAT.

        On the gateway's interface the inside leg is addressed to the gateway and pkt-dstaddr names the host
        (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-records-examples.html).
        """
        self.add(app, t, dur, app.ip, host, cport, 443, 6, *c2s, "ACCEPT", 3, "egress", "bg")
        self.add(app, t, dur, host, app.ip, 443, cport, 6, *s2c, "ACCEPT", 19, "ingress", "bg")
        nport = self.rng.randint(1024, 65535)
        self.add(nat, t, dur, app.ip, nat.ip, cport, 443, 6, *c2s, "ACCEPT", 3, "ingress", "bg", pkt_dst=host)
        self.add(nat, t, dur, nat.ip, host, nport, 443, 6, *c2s, "ACCEPT", 3, "egress", "bg")
        self.add(nat, t, dur, host, nat.ip, 443, nport, 6, *s2c, "ACCEPT", 19, "ingress", "bg")
        self.add(nat, t, dur, nat.ip, app.ip, 443, cport, 6, *s2c, "ACCEPT", 19, "egress", "bg", pkt_src=host)


def _eph(rng: random.Random) -> int:
    return rng.randint(32768, 60999)  # the Linux ephemeral range, clear of every well-known service port


def _public_ipv4(rng: random.Random) -> str:
    return (f"{rng.choice(PUBLIC_FIRST_OCTETS)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}."
            f"{rng.randint(1, 254)}")


def _public_ipv6(rng: random.Random) -> str:
    return (f"2a0{rng.randint(1, 9)}:{rng.randrange(0x1000, 0x10000):x}:{rng.randrange(0x10000):x}::"
            f"{rng.randrange(1, 0x10000):x}")


def background(fl: Flows, since: int, until: int) -> None:
    """Web, east-west, egress, admin and idle traffic for every 10-minute interval."""
    rng = fl.rng
    e = ENIS
    clients = [_public_ipv4(rng) for _ in range(2500)] + [_public_ipv6(rng) for _ in range(60)]
    saas = [_public_ipv4(rng) for _ in range(40)]
    s3 = [f"52.{rng.randint(216, 217)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(12)]
    pools: dict[tuple[str, str], int] = {}

    def pooled(t: int, client: Eni, server: Eni, port: int, scale: int) -> None:
        k = (client.key, server.key)
        if k not in pools or rng.random() < 0.1:
            pools[k] = _eph(rng)
        start = t + rng.randint(0, 30)
        p1, p2 = rng.randint(scale // 4, scale), rng.randint(scale // 4, scale)
        fl.session(start, client, server, pools[k], port, (p1, p1 * rng.randint(80, 300)),
                   (p2, p2 * rng.randint(150, 1200)), rng.randint(480, 540), flags=(0, 0))

    for t0 in range(since, until, INTERVAL):
        hour = (t0 // 3600) % 24
        load = DIURNAL[hour]
        for _ in range(int(3.5 * load + rng.random())):
            client = rng.choice(clients)
            alb = e["alb-a"] if rng.random() < 0.5 else e["alb-b"]
            v6 = ":" in client
            port = 443 if v6 or rng.random() < 0.9 else 80  # the ALB's group opens only 443 to ::/0
            n1 = rng.randint(6, 40) if port == 443 else rng.randint(3, 6)
            n2 = rng.randint(8, 90) if port == 443 else rng.randint(3, 5)
            fl.session(t0 + rng.randrange(INTERVAL - 60), client, alb, _eph(rng), port,
                       (n1, n1 * rng.randint(60, 400)), (n2, n2 * rng.randint(400, 1400)), rng.randint(1, 120),
                       server_ip=alb.ipv6 if v6 else None)
        for alb in (e["alb-a"], e["alb-b"]):
            for app in (e["app-1"], e["app-2"]):
                if rng.random() < 0.2 + 0.6 * load:
                    pooled(t0, alb, app, 8080, 400)
        for app in (e["app-1"], e["app-2"]):
            pooled(t0, app, e["pg"], 5432, 300)
            pooled(t0, app, e["redis"], 6379, 500)
            if rng.random() < 0.3:
                pooled(t0, app, e["mysql"], EXPOSED_PORT, 60)
            if rng.random() < 0.5 * load + 0.1:
                n1, n2 = rng.randint(5, 30), rng.randint(5, 60)
                fl.via_nat(t0 + rng.randrange(INTERVAL - 60), app, e["nat-a"], rng.choice(saas), _eph(rng),
                           (n1, n1 * rng.randint(80, 500)), (n2, n2 * rng.randint(300, 1400)), rng.randint(1, 60))
            if rng.random() < 0.2:
                n1, n2 = rng.randint(5, 40), rng.randint(10, 300)
                fl.session(t0 + rng.randrange(INTERVAL - 60), app, rng.choice(s3), _eph(rng), 443,
                           (n1, n1 * rng.randint(100, 1400)), (n2, n2 * rng.randint(500, 1400)), rng.randint(1, 90),
                           svc="S3")
        if t0 % 3600 == 0:  # hourly monitoring ping from the bastion
            for app in (e["app-1"], e["app-2"]):
                fl.session(t0 + rng.randint(0, 20), e["bastion"], app, 0, 0, (3, 252), (3, 252),
                           rng.randint(2, 4), proto=1, flags=(0, 0))
        if 8 <= hour < 18 and rng.random() < 0.12:  # an admin's SSH session through the bastion
            t = t0 + rng.randrange(INTERVAL - 60)
            n = rng.randint(40, 400)
            fl.session(t, CORP_IP, e["bastion"], rng.randint(49152, 65535), 22, (n, n * 90), (n, n * 160),
                       rng.randint(60, 520))
            target = rng.choice((e["app-1"], e["app-2"], e["pg"]))
            fl.session(t + 20, e["bastion"], target, _eph(rng), 22, (n, n * 80), (n, n * 150),
                       rng.randint(30, 480))
        if rng.random() < 0.05:  # package updates from the bastion, straight through the internet gateway
            n = rng.randint(20, 200)
            fl.session(t0 + rng.randrange(INTERVAL - 60), e["bastion"], rng.choice(saas), _eph(rng), 443,
                       (n, n * 70), (n, n * 1300), rng.randint(2, 60))
        if 2 <= hour < 3:  # the nightly reporting job; the rest of the time its interface is idle
            pooled(t0, e["reporting"], e["pg"], 5432, 800)
        else:
            fl.status(e["reporting"], t0 + rng.randint(0, 5), "NODATA")
        if rng.random() < 0.25:  # the DR region: a little egress and the odd admin login
            n = rng.randint(5, 50)
            fl.session(t0 + rng.randrange(INTERVAL - 60), e["dr-app"], rng.choice(saas), _eph(rng), 443,
                       (n, n * 100), (n, n * 900), rng.randint(1, 60))
        if hour == 10 and t0 % 3600 == 0:
            n = rng.randint(40, 200)
            fl.session(t0 + rng.randint(0, 300), CORP_IP, e["dr-app"], rng.randint(49152, 65535), 22, (n, n * 90),
                       (n, n * 150), rng.randint(60, 280))
        # Internet background noise: single probes far below any scan threshold, never on a port that is open.
        if rng.random() < 0.2:
            target = rng.choice((e["alb-a"], e["alb-b"], e["bastion"], e["mysql"]))
            closed = [pp for pp in NOISE_PORTS if pp[0] not in _open_ports(target)]
            port, proto = rng.choice(closed)
            fl.session(t0 + rng.randrange(INTERVAL - 10), _public_ipv4(rng), target, rng.randint(1024, 65535),
                       port, (1, 44 if proto == 6 else 76), (0, 0), rng.randint(0, 2), proto=proto,
                       action="REJECT", tag="noise", flags=(2 if proto == 6 else 0, 0))


def _open_ports(eni: Eni) -> set[int]:
    """Ports any source may reach on an interface (noise must not make an unused world-open rule look used)."""
    ports: set[int] = set()
    for g in eni.groups:
        for r in GROUPS[g].rules:
            if not r.egress and r.proto in ("tcp", "udp") and (r.cidr4 == "0.0.0.0/0" or r.cidr6 == "::/0"):
                ports.update(range(r.from_port, r.to_port + 1))
    return ports


@dataclass
class Block:
    index: int  # 0 = the newest week
    since: int
    until: int

    @property
    def variant(self) -> int:
        return self.index % 2


def week_blocks(since: int, until: int) -> list[Block]:
    out: list[Block] = []
    end, k = until, 0
    while end > since:
        start = max(since, end - WEEK)
        out.append(Block(k, start, end))
        end, k = start, k + 1
    return out


def pick(rng: random.Random, lo: int, hi: int) -> int:
    """A random second in [lo, hi), or lo when the range is empty."""
    return rng.randrange(lo, hi) if hi > lo else lo


@dataclass
class WeekPlan:
    """When this week's CloudTrail story happens; the flow scenarios are placed around it."""

    modify_mysql_at: int | None
    nacl_added_at: int
    sg_opened_at: int
    sg_closed_at: int


def scenarios(fl: Flows, block: Block, plan: WeekPlan) -> WeekFacts:
    rng = fl.rng
    e = ENIS
    lo, hi = block.since, block.until

    # Port scan: one documentation-range source sweeps a load balancer node three or four times, each sweep from
    # one source port (as nmap does), every probe a lone SYN that the security group rejects.
    target = e["alb-b"] if block.variant == 0 else e["alb-a"]
    ports = rng.sample([p for p in SCAN_PORTS if p not in _open_ports(target)], rng.randint(70, 90))
    sweeps = rng.randint(3, 4)
    scan_records = 0
    for _ in range(sweeps):
        t = pick(rng, lo + 3600, hi - 2 * 3600)
        sport = rng.randint(40000, 65000)
        for p in rng.sample(ports, len(ports)):
            t += rng.randint(0, 2)
            n = rng.randint(1, 2)
            fl.add(target, t, rng.randint(0, 2), SCANNER_IP, target.ip, sport, p, 6, n, 44 * n, "REJECT", 2,
                   "ingress", "scan")
            scan_records += 1

    # SSH brute force on the bastion: a few attempts get through (22 is open to the world), then the security
    # automation adds a network ACL deny for the source and the rest are rejected at the subnet.
    bastion = e["bastion"]
    n_acc, n_rej = rng.randint(3, 5), rng.randint(400, 650)
    t = plan.nacl_added_at - n_acc * 40 - 30
    for _ in range(n_acc):
        n = rng.randint(18, 30)
        fl.session(t, BRUTE_FORCE_IP, bastion, rng.randint(32768, 60999), 22, (n, n * 95), (n + 2, (n + 2) * 120),
                   rng.randint(4, 12), tag="brute")
        t += rng.randint(30, 40)
    t = plan.nacl_added_at + 5
    for _ in range(n_rej):
        n = rng.randint(1, 3)
        fl.add(bastion, t, rng.randint(0, 6 if n > 1 else 0), BRUTE_FORCE_IP, bastion.ip, rng.randint(32768, 60999),
               22, 6, n, 60 * n, "REJECT", 2, "ingress", "brute")
        t += rng.randint(3, 15)

    # Public access to the legacy MySQL port: a few outside addresses connect and are accepted, after the rule was
    # opened to 0.0.0.0/0 (in the older week, by the ModifySecurityGroupRules event).
    mysql = e["mysql"]
    sources = tuple(sorted(rng.sample(EXPOSED_SOURCE_POOL, rng.randint(3, 5))))
    first = (plan.modify_mysql_at + 3600) if plan.modify_mysql_at is not None else lo
    sessions = 0
    for src in sources:
        for _ in range(rng.randint(4, 12)):
            n1, n2 = rng.randint(8, 40), rng.randint(10, 120)
            fl.session(pick(rng, first, hi - 900), src, mysql, _eph(rng), EXPOSED_PORT,
                       (n1, n1 * rng.randint(70, 300)), (n2, n2 * rng.randint(200, 1400)), rng.randint(1, 300),
                       tag="exposed")
            sessions += 1

    # SKIPDATA: the capacity hiccups AWS reports when records could not be captured.
    for _ in range(2):
        fl.status(e["app-2"], pick(rng, lo, hi - INTERVAL), "SKIPDATA")

    return WeekFacts(since=as_datetime(lo), until=as_datetime(hi), scanner_target_eni=target.eni_id, scanner_ports=len(ports),
                     scanner_records=scan_records, bruteforce_rejects=n_rej, bruteforce_accepts=n_acc,
                     exposed_sources=sources, exposed_sessions=sessions, sg_opened_at=as_datetime(plan.sg_opened_at),
                     sg_closed_at=as_datetime(plan.sg_closed_at))


def brute_force_turns_to_scanning(fl: Flows, blocks: Sequence[Block], rng: random.Random) -> int:
    """In the newest week, once the network ACL stops its SSH guessing, the brute-force source sweeps 12 to 20 other
    ports of the bastion, all rejected: the same source, rejected on one port in the weeks before, is now a port
    scan. Its finding persists with a higher severity (low -> medium): the demo's escalated finding. Returns the
    number of records added."""
    newest = next((b for b in blocks if b.index == 0 and b.until - b.since >= 2 * 86400), None)
    if newest is None:
        return 0
    bastion = ENIS["bastion"]
    ports = rng.sample([p for p in SCAN_PORTS if p not in _open_ports(bastion) and p != 22], rng.randint(12, 20))
    t = pick(rng, newest.since + 86400, newest.until - 3 * 3600)
    added = 0
    for p in ports:
        for _ in range(rng.randint(1, 3)):
            t += rng.randint(5, 40)
            fl.add(bastion, t, 0, BRUTE_FORCE_IP, bastion.ip, rng.randint(32768, 60999), p, 6, 1, 60, "REJECT", 2,
                   "ingress", "brute-scan")
            added += 1
    return added


def on_call_fixes(fl: Flows, blocks: Sequence[Block], rng: random.Random) -> list[int | None]:
    """In the newer variant's weeks, an on-call engineer fixes the nightly reporting job over SSH from the bastion.

    That session is the only traffic the reporting group's SSH rule ever matches, so the rule is unused in the
    older variant's weeks and used in the newer one's: a state finding that one weekly report has and the next
    resolves. It draws from its own ``rng`` so that adding it moved no other scenario.
    """
    saved, fl.rng = fl.rng, rng
    try:
        out: list[int | None] = []
        for block in blocks:
            if block.variant != 0 or block.until - block.since < 2 * 86400:
                out.append(None)
                continue
            day = block.since + rng.randrange((block.until - block.since) // 86400 - 1) * 86400
            t = day + 3 * 3600 + rng.randint(300, 2400)  # just after the nightly job's hour
            n = rng.randint(60, 300)
            fl.session(t, ENIS["bastion"], ENIS["reporting"], _eph(rng), 22, (n, n * 80), (n, n * 150),
                       rng.randint(300, 1500))
            out.append(t)
        return out
    finally:
        fl.rng = saved


def plan_week(rng: random.Random, block: Block) -> WeekPlan:
    lo, hi = block.since, block.until
    modify = pick(rng, lo + 1800, min(hi, lo + 6 * 3600)) if block.variant == 1 else None
    nacl = pick(rng, max(lo + 4 * 3600, (modify or lo) + 3600), hi - 4 * 3600)
    opened = pick(rng, lo + 3600, hi - 7 * 3600)
    closed = opened + rng.randint(90 * 60, 5 * 3600)
    return WeekPlan(modify, nacl, opened, closed)


def _v2_line(r: _Rec) -> str:
    if r.status != "OK":
        return f"2 {ACCOUNT_ID} {r.eni.eni_id} - - - - - - - {r.start} {r.end} - {r.status}"
    return (f"2 {ACCOUNT_ID} {r.eni.eni_id} {r.src} {r.dst} {r.sport} {r.dport} {r.proto} {r.packets} {r.nbytes} "
            f"{r.start} {r.end} {r.action} OK")


# The values _custom_line computes, in this order; the template puts them in CUSTOM_FIELDS order.
_CUSTOM_VALUES = ("version", "account-id", "vpc-id", "subnet-id", "instance-id", "interface-id", "az-id", "region",
                  "start", "end", "log-status", "flow-direction", "type", "srcaddr", "dstaddr", "srcport", "dstport",
                  "pkt-srcaddr", "pkt-dstaddr", "protocol", "bytes", "packets", "action", "tcp-flags", "traffic-path",
                  "pkt-src-aws-service", "pkt-dst-aws-service", "sublocation-type", "sublocation-id")


_CUSTOM_TEMPLATE = " ".join(f"{{{_CUSTOM_VALUES.index(f)}}}" for f in CUSTOM_FIELDS)


@functools.cache
def _eni_columns(eni: Eni) -> tuple[str, ...]:
    sub = eni.subnet
    return ("5", ACCOUNT_ID, sub.vpc_id, sub.subnet_id, eni.instance_id or "-", eni.eni_id, sub.az_id, sub.region)


def _custom_line(r: _Rec) -> str:
    if r.status != "OK":
        return _CUSTOM_TEMPLATE.format(*_eni_columns(r.eni), r.start, r.end, r.status, *("-",) * 18)
    return _CUSTOM_TEMPLATE.format(
        *_eni_columns(r.eni), r.start, r.end, r.status, r.direction, "IPv6" if ":" in r.src else "IPv4", r.src,
        r.dst, r.sport, r.dport, r.pkt_src, r.pkt_dst, r.proto, r.nbytes, r.packets, r.action, r.flags,
        "-" if r.path is None else r.path, r.src_svc or "-", r.dst_svc or "-", "-", "-")


def write_flow_files(root: Path, records: list[_Rec], rng: random.Random,
                     counts: dict[str, int]) -> list[Path]:
    files: dict[tuple[str, int], list[_Rec]] = defaultdict(list)
    for r in records:
        assert r.eni.flow_log is not None
        files[(r.eni.flow_log, r.delivery // FLOW_FILE_SPAN)].append(r)
    ordered = sorted(files.items(), key=lambda kv: (kv[0][0], kv[0][1]))
    for _, recs in ordered:
        recs.sort(key=lambda r: r.start)

    # ~0.1% dirty lines, always made from background records of the main region so no scenario fact depends on
    # how forgiving a reader is. Truncated and bad-port lines are extra, corrupted copies; the double-spaced
    # record is the real one (a whitespace-splitting reader still reads it).
    candidates = [(fi, li) for fi, (key, recs) in enumerate(ordered) if FLOW_LOGS[key[0]].region == REGION
                  for li, r in enumerate(recs) if r.tag == "bg"]
    n_dirty = max(len(DIRT_KINDS), round(len(records) * DIRTY_RATE))
    kinds = [DIRT_KINDS[i % len(DIRT_KINDS)] for i in range(n_dirty)]
    dirt = dict(zip(sorted(rng.sample(candidates, n_dirty)), kinds))

    written: list[Path] = []
    for fi, ((fl_key, bucket), recs) in enumerate(ordered):
        flow_log = FLOW_LOGS[fl_key]
        header = " ".join(flow_log.fields)
        render = _v2_line if flow_log.fields == V2_FIELDS else _custom_line
        lines = [header]
        counts["flow_headers"] += 1
        for li, r in enumerate(recs):
            line = render(r)
            kind = dirt.get((fi, li))
            counts["flow_nodata" if r.status == "NODATA" else "flow_skipdata" if r.status == "SKIPDATA"
                   else "flow_records"] += 1
            if kind == "double_space":
                cut = line.index(" ", len(line) // 2)
                line = line[:cut] + " " + line[cut:]
            lines.append(line)
            if kind == "repeated_header":
                lines.append(header)
                counts["flow_headers"] += 1
            elif kind == "blank":
                lines.append("")
            elif kind == "truncated":
                # Cut inside the fourth-last field: at least three fields are missing.
                parts = line.split(" ")
                lines.append(" ".join(parts[:-4]) + " " + parts[-4][: max(1, len(parts[-4]) // 2)])
            elif kind == "bad_port":
                parts = line.split(" ")
                parts[flow_log.fields.index("dstport")] = "http"
                lines.append(" ".join(parts))
            if kind:
                counts[f"dirty_{kind}"] += 1
        last_delivery = max(r.delivery for r in recs)
        stamp = stamp_text(last_delivery - last_delivery % 300)
        day = as_datetime(bucket * FLOW_FILE_SPAN)
        tag = hashlib.sha256(f"{flow_log.flow_log_id}/{stamp}/{fi}".encode()).hexdigest()[:8]
        name = f"{ACCOUNT_ID}_vpcflowlogs_{flow_log.region}_{flow_log.flow_log_id}_{stamp}_{tag}.log.gz"
        path = (root / "flowlogs" / "AWSLogs" / ACCOUNT_ID / "vpcflowlogs" / flow_log.region
                / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}" / name)
        written.append(write_file(path, gzip_bytes(("\n".join(lines) + "\n").encode())))
    counts["flow_malformed"] = counts["dirty_truncated"] + counts["dirty_bad_port"]
    counts["flow_blank"] = counts["dirty_blank"]
    counts["flow_files"] = len(written)
    return written
