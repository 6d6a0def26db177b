"""Meta tests: every check has metadata, tests and golden SQL; every config key is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from auditor.builtins import builtins
from auditor.config import documented_keys

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
CHECKS = list(builtins().checks)


@pytest.mark.parametrize("spec", CHECKS, ids=lambda s: s.id)
def test_every_check_has_metadata_tests_golden_sql_and_docs(spec):
    assert spec.folder.name == spec.id
    for field in ("title", "description", "risk", "remediation"):
        assert getattr(spec, field).strip(), field
    assert spec.meta.compliance, "compliance controls are part of the metadata"
    assert (REPO / "tests" / "checks" / f"test_{spec.id}.py").exists(), "each check mirrors a test file"
    for name in spec.queries:
        if name.endswith(".sql"):
            assert (REPO / "tests" / "golden" / "sql" / f"{spec.id}.{name}").exists()
    assert f"`{spec.id}`" in README


@pytest.mark.parametrize("spec", CHECKS, ids=lambda s: s.id)
def test_each_check_test_file_has_a_firing_and_a_clean_case(spec):
    text = (REPO / "tests" / "checks" / f"test_{spec.id}.py").read_text()
    assert re.search(r"def test_\w*(fire|fires|high|medium|verdict)", text), "a firing case"
    assert re.search(r"def test_\w*clean", text), "a clean case"


@pytest.mark.parametrize("key", sorted(documented_keys()))
def test_every_config_key_is_documented_in_the_readme(key):
    assert f"`{key}`" in README, f"config key {key} is not in README.md"
    assert documented_keys()[key], f"config key {key} has no help text in auditor/config.py"


def test_readme_quick_start_is_the_two_commands():
    assert "make run" in README and "make test" in README
    assert "make test" in (REPO / ".ci" / "run").read_text()
