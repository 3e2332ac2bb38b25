"""Headless Chromium from Debian's packages (``make tools`` installs chromium and chromium-driver),
driven by Selenium through the matching ChromeDriver: a phone's screen or a desk's window. No browser is
downloaded: this machine reaches no browser CDN."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# without these, Chromium's background connections are refused by the closed network, many at a time
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage")


@contextmanager
def chromium(window: tuple[int, int] | None = None, phone: dict | None = None):
    """Headless Chromium: a desktop window of ``window`` pixels, or a phone's screen (``phone``:
    Chromium's device metrics)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), "no Chromium: `make tools` installs chromium and chromium-driver"
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if window:
        options.add_argument(f"--window-size={window[0]},{window[1]}")
    if phone:
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": phone})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def phone_browser():
    return chromium(phone={"width": 390, "height": 844, "pixelRatio": 2})


def desktop_browser(width: int = 1400, height: int = 1000):
    """What a supervisor has on a desk: the Prefect UI at a laptop's width."""
    return chromium(window=(width, height))
