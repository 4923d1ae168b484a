"""Headless Chromium for tests: open a local page, collect console errors and network requests.

Driven by Selenium with the system's chromedriver (Debian packages ``chromium`` + ``chromium-driver``,
whose versions always match). The driver path is given explicitly, so Selenium Manager never tries to
download a driver. :func:`available` says whether both binaries exist, so browser tests can skip.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--hide-scrollbars", "--force-device-scale-factor=1")


def binaries() -> tuple[str | None, str | None]:
    """Paths of chromium and chromedriver (None when missing)."""
    chrome = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    return chrome, shutil.which("chromedriver")


def available() -> str | None:
    """None when a browser test can run, else why not."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    chrome, driver = binaries()
    if not chrome or not driver:
        return "chromium/chromedriver not installed (apt-get install -y chromium chromium-driver)"
    return None


@dataclass
class Loaded:
    """What happened while a page loaded."""

    console: list[dict]  # browser log entries (level, message, source)
    requests: list[str]  # URLs the page requested (the document itself included)

    @property
    def errors(self) -> list[dict]:
        return [e for e in self.console if e.get("level") in ("SEVERE", "ERROR")]


class Browser:
    """One headless Chromium session (a fresh profile directory each time)."""

    def __init__(self, width: int = 1280, height: int = 900, dark: bool = False, javascript: bool = True):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        chrome, driver = binaries()
        self.profile = tempfile.mkdtemp(prefix="ml-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = chrome
        for flag in CHROME_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.driver = webdriver.Chrome(service=Service(driver), options=options)
        if not javascript:  # the page's own scripts; WebDriver's inspection still works
            self.driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
        if dark:
            self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})

    def open(self, path: Path) -> Loaded:
        """Load a local file and return its console messages and network requests."""
        url = Path(path).resolve().as_uri()
        self._drain()
        self.driver.get(url)
        self.driver.execute_script("return document.readyState")
        requests = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params") or {}
            # Only what this document asked for: the browser's own start page loads chrome:// pages too.
            if message.get("method") == "Network.requestWillBeSent" and params.get("documentURL") == url:
                requests.append(params["request"]["url"])
        return Loaded(self.driver.get_log("browser"), requests)

    def _drain(self) -> None:
        """Forget log entries from before the next navigation (the browser's start page)."""
        for kind in ("browser", "performance"):
            with contextlib.suppress(Exception):
                self.driver.get_log(kind)

    def alert_text(self) -> str | None:
        """The text of an open alert/confirm/prompt dialog, or None."""
        from selenium.common.exceptions import NoAlertPresentException

        try:
            return self.driver.switch_to.alert.text
        except NoAlertPresentException:
            return None

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """Save a PNG of the page (the whole scroll height by default)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if full_page:
            shot = self.driver.execute_cdp_cmd("Page.captureScreenshot",
                                               {"format": "png", "captureBeyondViewport": True})
            path.write_bytes(base64.b64decode(shot["data"]))
        else:
            self.driver.save_screenshot(str(path))
        return path

    def element_screenshot(self, css: str, path: Path) -> Path:
        """Save a PNG of the first element matching ``css`` (even where it lies below the fold)."""
        rect = self.js("var r = document.querySelector(arguments[0]).getBoundingClientRect();"
                       "return [r.left + scrollX, r.top + scrollY, r.width, r.height];", css)
        clip = dict(zip(("x", "y", "width", "height"), rect, strict=True), scale=1)
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot",
                                           {"format": "png", "captureBeyondViewport": True, "clip": clip})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)


@contextlib.contextmanager
def browser(**kwargs) -> Iterator[Browser]:
    session = Browser(**kwargs)
    try:
        yield session
    finally:
        session.close()
