"""The feedback pages in real headless Chromium: no console errors, images render, a screenshot is kept."""

import shutil

import pytest

from grading_support import ROOT

ARTIFACTS = ROOT / "test-artifacts"


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail("Chromium is not installed: run `make browser` (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1100,1600"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = _driver()
    yield driver
    driver.quit()


@pytest.mark.parametrize("page", ["index.html", "tiny-model/ada.html", "tiny-model/bob.html"])
def test_page_loads_cleanly_and_its_images_render(browser, feedback_dir, page):
    browser.get((feedback_dir / page).as_uri())
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight]);")
    assert images, f"{page} has no images"
    assert all(complete and width > 0 and height > 0 for complete, width, height in images)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"feedback-{page.replace('/', '-').replace('.html', '')}.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
