"""Driving the server's demo page in headless Chromium (the `browser` fixture is in conftest.py)."""

import os
import shutil
import tempfile
from contextlib import contextmanager

try:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # reported by the fixture, as a failure: CI must run the browser tests
    webdriver = By = WebDriverWait = None

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def _driver_path():
    return shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _binary():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing():
    """What the browser tests lack, as the fix to apply, or None."""
    if webdriver is None:
        return "the browser tests need selenium: pip install -e '.[test]'"
    if not os.path.exists(_driver_path()) or _binary() is None:
        return "the browser tests need Chromium: apt-get install -y chromium chromium-driver"
    return None


@contextmanager
def chromium():
    """A headless Chromium WebDriver (check `missing()` first)."""
    driver_path = _driver_path()
    options = webdriver.ChromeOptions()
    options.binary_location = _binary()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def card(driver, name):
    """The page's section for model `name`, once the model list has loaded."""
    return WebDriverWait(driver, 20).until(
        lambda driver: driver.find_element(By.CSS_SELECTOR, f'section.model[data-model="{name}"]')
    )


def wait_for_result(driver, section, selector):
    """The elements matching `selector` inside the section's result, once there are some."""
    return WebDriverWait(driver, 20).until(lambda _: section.find_elements(By.CSS_SELECTOR, f".result {selector}"))


@contextmanager
def demo_card(driver, model_base_path, name="tiny"):
    """Serve the models under `model_base_path`, open the demo page and yield model `name`'s section."""
    from keras_tasks.serving import server

    config = server.ServerConfig(model_base_path=model_base_path, port=0, poll_seconds=60)
    with server.ServerThread(config) as running:
        driver.get(running.url + "/")
        yield card(driver, name)


def option_fields(section):
    """The section's option inputs (the export's signature defaults), by name."""
    return {field.get_attribute("name"): field for field in section.find_elements(By.CSS_SELECTOR, "input.input-option")}
