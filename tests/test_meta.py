"""Meta tests: every check has metadata, tests and golden SQL; the generated reference (docs/configuration.md,
docs/checks.md) matches the schema and the check folders; no package import hides inside a function."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from auditor import reference
from auditor.builtins import builtins
from auditor.config import documented_keys

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
DOCS = REPO / "docs"
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
    assert f"`{spec.id}`" in README, "the README's table of checks"
    assert f"## {spec.id}" in (DOCS / reference.CHECKS).read_text()


@pytest.mark.parametrize("spec", CHECKS, ids=lambda s: s.id)
def test_each_check_test_file_has_a_firing_and_a_clean_case(spec):
    text = (REPO / "tests" / "checks" / f"test_{spec.id}.py").read_text()
    assert re.search(r"def test_\w*(fire|fires|high|medium|verdict)", text), "a firing case"
    assert re.search(r"def test_\w*clean", text), "a clean case"


@pytest.mark.parametrize("name", sorted(reference.pages()))
def test_the_generated_reference_is_up_to_date(name):
    assert (DOCS / name).read_text() == reference.pages()[name], \
        f"docs/{name} is stale: run `python -m auditor.reference docs` (make docs)"


@pytest.mark.parametrize("key", sorted(documented_keys()))
def test_every_config_key_has_help_and_is_in_the_reference(key):
    assert documented_keys()[key], f"config key {key} has no help text in auditor/config/schema.py"
    assert f"`{key}`" in (DOCS / reference.CONFIGURATION).read_text()


def test_every_docs_page_is_in_the_nav():
    nav = (REPO / "mkdocs.yml").read_text()
    assert sorted(p.name for p in DOCS.glob("*.md") if f" {p.name}" not in nav) == []


def test_no_package_import_hides_inside_a_function():
    """An import of the package inside a function hides a cycle; the only ones allowed defer a heavy third-party
    module (WeasyPrint) for start-up time, and say so in a comment on the line before."""
    found = []
    for path in (REPO / "auditor").rglob("*.py"):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.startswith((" ", "\t")) and line.lstrip().startswith(("from auditor", "import auditor")):
                if "start-up time" not in lines[i - 1]:
                    found.append(f"{path.relative_to(REPO)}:{i + 1}: {line.strip()}")
    assert found == []


def test_readme_quick_start_is_the_two_commands():
    assert "make run" in README and "make test" in README
    assert "make test" in (REPO / ".ci" / "run").read_text()
