"""The demo's page (GET / of examples/demo.rs) in a real browser: headless Chromium from Debian
driven by selenium, two browser profiles as two devices of one user (docs/DESIGN.md §9).

Both log in as "ann" through the page's form and each lists both devices, its own marked; the
cookie each browser keeps has the attributes the demo sets (HttpOnly, SameSite=Lax, Path=/, a
persistent expiry, not Secure on plain HTTP); "log out everywhere" on one device logs the other
out (its next page load is anonymous) and keeps the first logged in.

    python tests/browser/demo_devices.py target/debug/examples/demo

scripts/test.sh runs it with the test virtualenv's Python (selenium) after installing
chromium and chromium-driver when missing.
"""

import re
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def start_demo(binary, directory):
    """The demo on a free loopback port with an SQLite store in ``directory``; its base URL."""
    demo = subprocess.Popen(
        [
            binary,
            "--listen", "127.0.0.1:0",
            "--store", f"sqlite://{directory}/sessions.db",
            "--secret", "browser test secret",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = demo.stdout.readline()
    match = re.search(r"http://[0-9.:]+", line)
    if not match:
        demo.kill()
        raise SystemExit(f"the demo did not start: {line!r}")
    return demo, match.group(0)


def browser(profile):
    """Headless Chromium with a fresh profile of its own (one device)."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def wait_for_text(driver, element_id, text):
    WebDriverWait(driver, 10).until(
        lambda d: text in d.find_element(By.ID, element_id).text,
        f"{element_id} never read {text!r}: {driver.find_element(By.ID, element_id).text!r}",
    )


def devices(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#devices li.device")


def log_in(driver, base, user):
    driver.get(base + "/")
    wait_for_text(driver, "who", "Not logged in")
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "login-button").click()
    wait_for_text(driver, "who", f"You are {user}")


def main():
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as directory:
        demo, base = start_demo(sys.argv[1], directory)
        drivers = []
        try:
            laptop = browser(f"{directory}/laptop")
            drivers.append(laptop)
            phone = browser(f"{directory}/phone")
            drivers.append(phone)
            log_in(laptop, base, "ann")
            log_in(phone, base, "ann")
            laptop.refresh()
            wait_for_text(laptop, "who", "You are ann")
            WebDriverWait(laptop, 10).until(lambda d: len(devices(d)) == 2)
            marked = [item.text for item in devices(laptop) if "(this device)" in item.text]
            assert len(marked) == 1, [item.text for item in devices(laptop)]

            cookies = {cookie["name"]: cookie for cookie in laptop.get_cookies()}
            session = cookies["session"]
            assert session["httpOnly"] is True, session
            assert session["sameSite"] == "Lax", session
            assert session["path"] == "/", session
            assert session["secure"] is False, session
            assert session["expiry"] > time.time() + 30 * 24 * 3600, session
            assert "." in session["value"], "a signed id"

            laptop.find_element(By.ID, "logout-all").click()
            WebDriverWait(laptop, 10).until(lambda d: len(devices(d)) == 1)
            phone.refresh()
            wait_for_text(phone, "who", "Not logged in")
            assert devices(phone) == []
            laptop.refresh()
            wait_for_text(laptop, "who", "You are ann")

            laptop.find_element(By.ID, "logout").click()
            wait_for_text(laptop, "who", "Not logged in")
        finally:
            for driver in drivers:
                driver.quit()
            demo.terminate()
            demo.wait()
    print(f"browser test: two devices, log out everywhere: ok in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
