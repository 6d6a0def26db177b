"""Issue 18: the container recipe. Its promises are read from the Dockerfile (a Debian slim base with the Pango
libraries, a non-root user, the state, reports and archive on volumes, the health check), and the image is
built where a container tool with a running daemon is available (skipped with the reason otherwise)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_recipe_keeps_its_promises():
    steps = instructions()
    (base,) = [rest for word, rest in steps if word == "FROM"]
    assert re.fullmatch(r"python:3\.\d+-slim-(bookworm|trixie)", base), base  # Debian slim
    runs = " ".join(rest for word, rest in steps if word == "RUN")
    for package in ("libpango-1.0-0", "libpangoft2-1.0-0"):
        assert package in runs
    (user,) = [rest for word, rest in steps if word == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    assert "useradd" in runs and "10001" in runs
    (volumes,) = [rest for word, rest in steps if word == "VOLUME"]
    assert set(re.findall(r'"([^"]+)"', volumes)) == {"/var/lib/auditor/state", "/var/lib/auditor/reports",
                                                       "/var/lib/auditor/archive"}
    (health,) = [rest for word, rest in steps if word == "HEALTHCHECK"]
    assert '"schedule"' in health and '"--health"' in health
    # The config path of the image is the one docs/scheduling.md's CronJob mounts.
    assert "/etc/auditor/config.yaml" in (ROOT / "docs" / "scheduling.md").read_text()


def _container_tool() -> str | None:
    for tool in ("docker", "podman"):
        path = shutil.which(tool)
        if path and subprocess.run([path, "info"], capture_output=True, timeout=60).returncode == 0:
            return path
    return None


def test_the_image_builds_and_runs_as_non_root():
    tool = _container_tool()
    if tool is None:
        pytest.skip("no container tool with a running daemon (docker or podman) on this machine")
    tag = "auditor-test:issue18"
    build = subprocess.run([tool, "build", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    try:
        who = subprocess.run([tool, "run", "--rm", "--entrypoint", "id", tag, "-u"], capture_output=True, text=True,
                             timeout=300)
        assert who.stdout.strip() == "10001"
        version = subprocess.run([tool, "run", "--rm", tag, "--help"], capture_output=True, text=True, timeout=300)
        assert version.returncode == 0 and "schedule" in version.stdout
    finally:
        subprocess.run([tool, "rmi", "-f", tag], capture_output=True, timeout=300)
