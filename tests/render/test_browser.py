"""The HTML report in a real browser: Debian's chromium, headless, driven by Selenium through Debian's
chromium-driver. Load the report, sort a findings table by clicking its header, filter by severity and by change,
fold a section, and take a screenshot. Skipped, with the reason, where Chromium or its driver is absent
(`make test-deps` installs them; CI runs `.ci/run`, which does)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from auditor.builtins import builtins
from auditor.render import template_dirs
from auditor.render.html import render_html
from auditor.render.view import build_view
from tests.support.fixed_run import fixed_record

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or (
    "/usr/lib/chromium/chromedriver" if Path("/usr/lib/chromium/chromedriver").exists() else None)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="Debian's chromium and chromium-driver are not installed "
                                       "(apt-get install chromium chromium-driver, or make test-deps)")
SCREENSHOT = Path(__file__).resolve().parents[2] / "reports" / "browser-test.png"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,2000", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory):
    record = fixed_record()
    specs = {c.check_id: builtins().checks.get(c.check_id) for c in record.checks}
    html = render_html(build_view(record, specs, charts=False), dirs=template_dirs(None))
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(html, encoding="utf-8")
    browser.get(path.as_uri())
    return browser


def _rows(driver, check_id):
    from selenium.webdriver.common.by import By
    table = driver.find_element(By.CSS_SELECTOR, f"#check-{check_id} table.findings")
    return [r for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]


def test_the_report_sorts_filters_and_folds_in_a_browser(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = page
    # Everything is inline: no request leaves the page.
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
    toc = driver.find_element(By.ID, "toc")
    assert "Exposed well-known and sensitive ports" in toc.text and toc.is_displayed()

    check = "exposed_well_known_ports"
    before = [r.get_attribute("data-severity") for r in _rows(driver, check)]
    assert before == ["high", "high", "medium", "info"]
    header = driver.find_element(By.CSS_SELECTOR, f"#check-{check} table.findings thead th")  # Severity
    header.click()
    assert [r.get_attribute("data-severity") for r in _rows(driver, check)] == ["info", "medium", "high", "high"]
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert [r.get_attribute("data-severity") for r in _rows(driver, check)] == ["high", "high", "medium", "info"]
    finding = driver.find_elements(By.CSS_SELECTOR, f"#check-{check} table.findings thead th")[2]  # Finding
    finding.click()
    titles = [r.find_elements(By.TAG_NAME, "td")[2].text for r in _rows(driver, check)]
    assert titles == sorted(titles, key=str.lower)

    Select(driver.find_element(By.ID, "filter-severity")).select_by_value("high")
    shown = [r for c in (check, "sg_changes") for r in _rows(driver, c) if r.is_displayed()]
    assert {r.get_attribute("data-severity") for r in shown} == {"high"} and len(shown) == 3
    Select(driver.find_element(By.ID, "filter-change")).select_by_value("escalated")
    shown = [r for c in (check, "sg_changes") for r in _rows(driver, c) if r.is_displayed()]
    assert len(shown) == 1 and shown[0].text.startswith("HIGH")
    assert driver.find_element(By.ID, "filter-count").text == "1 of 6 findings shown"
    Select(driver.find_element(By.ID, "filter-severity")).select_by_value("")
    Select(driver.find_element(By.ID, "filter-change")).select_by_value("")
    assert all(r.is_displayed() for r in _rows(driver, check))

    fold = driver.find_element(By.CSS_SELECTOR, "#check-sg_changes button.fold")
    fold.click()
    assert not driver.find_element(By.CSS_SELECTOR, "#check-sg_changes table.findings").is_displayed()
    assert fold.get_attribute("aria-expanded") == "false"
    fold.click()
    assert driver.find_element(By.CSS_SELECTOR, "#check-sg_changes table.findings").is_displayed()

    SCREENSHOT.parent.mkdir(exist_ok=True)
    driver.find_element(By.ID, f"check-{check}").screenshot(str(SCREENSHOT))
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
