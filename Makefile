# auditor — quick start: `make run` (install, generate demo data, produce the demo report) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
DEMO   ?= examples/demo-data
ANCHOR ?=
N      ?= 1000000

.PHONY: install install-test system-deps test-deps run demo lint docs test bench bench-render pdf-png clean

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	touch $@

$(VENV)/.installed: $(VENV)/.created pyproject.toml
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PIP) install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# WeasyPrint needs Pango at run time; libharfbuzz-subset0 makes its font subsetting much faster and
# poppler-utils lets you look at the PDF as PNG pages. Installed only when missing, and only where apt exists.
# EXTRA_DEBS adds packages: the test target adds Debian's chromium and chromium-driver, for the browser test of the
# HTML report (tests/render/test_browser.py; it skips, saying why, where they are absent).
DEBS       := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 poppler-utils
TEST_DEBS  := chromium chromium-driver
EXTRA_DEBS ?=
system-deps:
	@missing=""; \
	for pkg in $(DEBS) $(EXTRA_DEBS); do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "note: missing Debian packages:$$missing (install them for PDF output and speed)"; \
	  fi; \
	fi

$(DEMO)/.complete: | install
	$(VENV)/bin/auditor demo --out $(DEMO) $(if $(ANCHOR),--anchor $(ANCHOR))
	touch $@

demo: $(DEMO)/.complete

# The demo spans five weeks: the four before the last are backfilled into the history (once; a later `make run`
# finds them there), so the report of the last week has trends and what changed from the first run.
run: system-deps install demo
	$(VENV)/bin/auditor backfill --weeks 4 --config config.yaml
	$(VENV)/bin/auditor run --config config.yaml

# The guards first (seconds): ruff, the import contracts (pyproject's [tool.importlinter]), the docs (a broken
# link fails), then the tests.
lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# Regenerate docs/configuration.md and docs/checks.md from the schema and the check folders, and build the site.
docs: install-test
	$(PY) -m auditor.reference docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

test-deps:
	@$(MAKE) --no-print-directory system-deps EXTRA_DEBS="$(TEST_DEBS) $(EXTRA_DEBS)"

test: test-deps install-test lint
	$(PY) -m pytest -q

bench: system-deps install
	$(PY) benchmarks/run.py --records $(N)

bench-render: system-deps install-test
	$(PY) benchmarks/render_bench.py

pdf-png:
	@latest=$$(ls -td reports/*/ | head -1); pdftoppm -png -r 70 "$$latest/report.pdf" "$$latest/page" && ls "$$latest"/page*.png

clean:
	rm -rf $(VENV) $(DEMO) reports/*/ .pytest_cache site
