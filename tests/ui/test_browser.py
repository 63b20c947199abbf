"""The page in a real browser: edit the template, Run, see a parsed record, Save.

Headless Chromium from Debian's ``chromium`` package, driven by Selenium through Debian's
``chromium-driver`` (``.ci/run`` installs both); skipped, saying what is missing, where
they are not installed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from .conftest import TEMPLATE, Served

webdriver = pytest.importorskip("selenium.webdriver",
                                reason="selenium is not installed (the test extra has it)")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")

#: Seconds to wait for the page to change (it takes well under one here).
WAIT = 30


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium "
                    "chromium-driver; .ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1400,1600"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, condition):
    return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(condition)


def test_edit_run_see_a_record_then_save(served: Served, browser, tmp_path):
    browser.get(served.url)
    box = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#template textarea"))
    edited = TEMPLATE.replace("Ask one question", "Ask one tricky question").rstrip("\n")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(edited)

    browser.find_element(By.ID, "run").click()
    record = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR,
                                                        "#results .si-card[data-id=row1] "
                                                        ".si-record"))
    assert '"instruction": "What is rust?"' in record.text
    prompt = browser.find_element(By.CSS_SELECTOR, "#results .si-card[data-id=row1] .si-prompt")
    assert prompt.text.startswith("Ask one tricky question about rust (easy)")

    browser.find_element(By.ID, "save").click()
    command = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#command textarea")
                       .get_attribute("value") or None)
    assert command.startswith("selfinstruct distill ")
    saved = tmp_path / "saved" / "template-001.txt"
    assert f"--user-template {saved}" in command
    assert saved.read_text(encoding="utf-8") == edited
    assert "sk-never-shown-42" not in browser.page_source + command
