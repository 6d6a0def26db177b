"""Each run keeps its inventory snapshot in the state directory; a run over a past window starts from the kept
snapshot nearest the window."""

from __future__ import annotations

import shutil

from tests.support.flowdata import ACCOUNT, write_config, write_inventory
from tests.support.runner import run

CONFIG = """
    sources:
      inventory: inventory
    checks:
      unused_security_groups: {}
    """


def group(gid):
    return {"GroupId": gid, "GroupName": gid, "VpcId": "vpc-1", "OwnerId": ACCOUNT}


def test_a_kept_snapshot_nearer_the_window_is_the_anchor(tmp_path):
    config = write_config(tmp_path, CONFIG)
    write_inventory(tmp_path / "inventory", {}, groups=[group("sg-then")], captured_at="2026-11-12T00:00:00Z")
    first = run(config)
    kept = tmp_path / ".auditor" / "inventory" / "20261112T000000Z"
    assert sorted(p.name for p in kept.rglob("*.json")) == ["describe-network-interfaces.json",
                                                           "describe-security-group-rules.json",
                                                           "describe-security-groups.json"]
    assert [r["group_id"] for r in first.record.checks[0].rows] == ["sg-then"]
    # Weeks later the inventory shows today's groups; a run over the same past window starts from the kept one.
    shutil.rmtree(tmp_path / "inventory")
    write_inventory(tmp_path / "inventory", {}, groups=[group("sg-now")], captured_at="2026-12-01T00:00:00Z")
    again = run(config)
    assert [r["group_id"] for r in again.record.checks[0].rows] == ["sg-then"]
    assert any("captured at 2026-11-12T00:00:00Z, kept by an earlier run" in w for w in again.record.warnings)
    assert (tmp_path / ".auditor" / "inventory" / "20261201T000000Z").is_dir()  # today's is kept too
