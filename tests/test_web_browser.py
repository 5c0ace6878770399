"""The live web view in a real browser: Debian's Chromium (headless) driven by Selenium through
the system chromedriver, against the real CLI (`demo --web`, `listen --web`, `replay --web`)
running as a subprocess.

Set ``GAITEDGE_WEB_SCREENSHOT=docs/img/web.png`` to also write the README's screenshot.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.emulator import EmulatedSerialDevice, Emulator, EmulatorConfig
from gaitedge import datasets as ds
from gaitedge.demo import DEMO_RECORDING
from gaitedge.recording import Recording, read_recording
from tests.conftest import REPO, missing

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium is not installed (pip install -e '.[dev]')")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        missing("Chromium and chromedriver are not installed (apt-get install chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1200,1100")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class Cli:
    """``gaitedge <args>`` as a subprocess; its stderr lines are collected as they come."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gaitedge.cli", *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout_s: float = 30.0) -> re.Match:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if m := re.search(pattern, line):
                    return m
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}; output:\n" + "\n".join(self.lines))

    def url(self) -> str:
        return self.wait_for(r"web view: (http://\S+)").group(1)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._reader.join(5)
        return self.proc.wait()


@contextlib.contextmanager
def cli(*args: str):
    run = Cli(*args)
    try:
        yield run
    finally:
        run.stop()


def poll(fn, timeout_s: float, interval_s: float = 0.05):
    """``fn()`` until it returns something truthy (returned), or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := fn():
            return value
        time.sleep(interval_s)
    raise AssertionError(f"nothing after {timeout_s} s")


def device_section(driver, name: str):
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, f'section.device[data-device="{name}"]')
    return found[0] if found else None


def test_demo_page_shows_the_device_and_follows_the_activity(browser, tmp_path):
    """`gaitedge demo --web`: the page shows the emulated device, its link and mounting, and
    its activity follows the recording as it changes: standing, sitting, lying... as the
    pipeline decides them (its alerts, on the same stream clock)."""
    from selenium.webdriver.common.by import By

    jsonl = tmp_path / "alerts.jsonl"
    args = ["demo", "--web", "0", "--duration", "30", "--speed", "8", "--alerts-jsonl", str(jsonl)]
    with cli(*args) as run:
        url = run.url()
        port = run.wait_for(r"device on (/dev/pts/\d+)").group(1)
        browser.get(url)
        section = poll(lambda: device_section(browser, port), 15)
        poll(lambda: section.find_element(By.CSS_SELECTOR, ".link").get_attribute("data-state")
             == "live", 10)  # fmt: skip
        seen: list[tuple[float, str]] = []
        deadline = time.monotonic() + 9  # 72 s of the recording at 8x
        read = (
            "const s = arguments[0]; return [s.querySelector('.activity').dataset.label, "
            "s.querySelector('.clock').textContent];"
        )
        while time.monotonic() < deadline:
            label, clock = browser.execute_script(read, section)
            if label and (m := re.match(r"t=([\d.]+) s", clock)):
                seen.append((float(m.group(1)), label))
            time.sleep(0.05)
        mounting = section.find_element(By.CSS_SELECTOR, ".mounting").text
        link = section.find_element(By.CSS_SELECTOR, ".link").text
    assert "calibrated" in mounting and "Hz" in link
    assert len({label for _, label in seen}) >= 3, seen  # standing, sitting, laying at least
    # The page shows the window ending at t; the pipeline's timeline (its activity alerts)
    # says what the recording was doing at that window's centre.
    changes = [
        a for a in map(json.loads, jsonl.read_text().splitlines()) if a["type"] == "activity"
    ]
    starts = np.array([a["t_event"] for a in changes])
    half_window_s = 128 / 50 / 2
    timeline = [
        changes[max(np.searchsorted(starts, t - half_window_s) - 1, 0)]["label"] for t, _ in seen
    ]
    agree = np.mean([shown == want for (_, shown), want in zip(seen, timeline, strict=True)])
    assert len(seen) >= 40 and agree >= 0.8, str(list(zip(seen, timeline, strict=True)))
    # Every change the pipeline made while the page watched, and held for 2 s, was shown.
    t_first, t_last = seen[0][0], seen[-1][0]
    shown = {label for _, label in seen}
    for a, b in itertools.pairwise(changes):
        if t_first <= a["t_event"] and b["t_event"] <= t_last and b["t_event"] - a["t_event"] >= 2:
            assert a["label"] in shown, (a, seen)


@pytest.fixture(scope="module")
def fall_trial(sisfall_dir):
    """A SisFall fall trial (held-out subject SA03) that the runtime alerts as a fall."""
    import gaitedge

    for rec in ds.sisfall_recordings(sisfall_dir.parent, ["sisfall:SA03"]):
        if not rec.is_fall:
            continue
        trial = Recording(rec.timestamp_s - rec.timestamp_s[0], rec.imu)
        if gaitedge.analyse(trial, device=rec.activity).falls:
            return trial
    pytest.fail("no SA03 fall trial raised a fall alert")


def test_live_fall_alert_reaches_the_page_within_a_second_and_a_dropped_link_shows(
    browser, fall_trial, tmp_path
):
    """`listen --serial --web` on an emulated device playing a real fall: the fall alert is on
    the page within 1 s of the pipeline writing it; then the device vanishes and its link
    shows as dropped."""
    from selenium.webdriver.common.by import By

    jsonl = tmp_path / "alerts.jsonl"
    emulator = Emulator(
        fall_trial.timestamp_s, fall_trial.imu, EmulatorConfig(speed=3.0, loop=True)
    )
    with EmulatedSerialDevice(emulator) as device:
        args = ["listen", "--serial", device.path, "--web", "0", "--alerts-jsonl", str(jsonl)]
        with cli(*args, "--mount-file", str(tmp_path / "mount.json")) as run:
            browser.get(run.url())
            section = poll(lambda: device_section(browser, device.path), 15)

            def pipeline_fall():
                lines = jsonl.read_text().splitlines() if jsonl.exists() else []
                falls = [json.loads(x) for x in lines if '"type": "fall"' in x]
                if not falls:
                    return None
                # The line's write time: the file's mtime if nothing was written after it.
                last = lines[-1] == json.dumps(falls[0], separators=(", ", ": "))
                return falls[0], (jsonl.stat().st_mtime if last else time.time())

            fall, written_s = poll(pipeline_fall, 30, interval_s=0.02)

            def shown():  # by value: JavaScript writes 12.0 as "12", Python as "12.0"
                items = browser.find_elements(By.CSS_SELECTOR, '#alerts li[data-type="fall"]')
                return [i for i in items if float(i.get_attribute("data-t")) == fall["t"]]

            try:
                item = poll(shown, 5)[0]
            except AssertionError:  # say what the page had instead (a rare miss under load)
                items = browser.find_elements(By.CSS_SELECTOR, "#alerts li")
                state = browser.find_element(By.ID, "connection").get_attribute("data-state")
                seen = [(i.get_attribute("data-type"), i.get_attribute("data-t")) for i in items]
                raise AssertionError(f"fall {fall} not on the page ({state}): {seen}") from None
            shown_s = int(item.get_attribute("data-shown-ms")) / 1000
            lag = shown_s - written_s
            print(f"fall alert (t={fall['t']}) on the page {lag:.3f} s after the pipeline's")
            assert shown_s - written_s <= 1.0, (shown_s - written_s, fall)
            assert "FALL" in item.text
            device.stop()  # the port vanishes, as an unplugged sensor's does
            link = section.find_element(By.CSS_SELECTOR, ".link")
            poll(lambda: link.get_attribute("data-state") == "dropped", 5)
            assert "dropped" in link.text


def test_replay_timeline_jumps_through_the_whole_recording(browser, tmp_path):
    """`replay --fast --web`: the page keeps serving after the end, with a timeline of the
    whole recording; clicking it shows the signal and the activity decided at that time."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    jsonl = tmp_path / "alerts.jsonl"
    args = ["replay", str(DEMO_RECORDING), "--fast", "--web", "0", "--alerts-jsonl", str(jsonl)]
    with cli(*args) as run:
        url = run.url()
        run.wait_for(r'"windows": \d+')  # the replay is over; the page stays up
        browser.get(url)
        poll(lambda: device_section(browser, DEMO_RECORDING.name), 15)
        link = browser.find_element(By.CSS_SELECTOR, ".link")
        poll(lambda: link.get_attribute("data-state") == "ended", 5)
        alerts = [json.loads(x) for x in jsonl.read_text().splitlines()]
        shown = browser.find_elements(By.CSS_SELECTOR, "#alerts li")
        # Calibrated online (no look-ahead): the default model's activity starts once it has
        # walked (9 alerts from ~107 s on); the cold-start model's before that.
        assert len(shown) == len(alerts) >= 6
        # Before the mounting calibrates online, activity is the cold-start model's: so marked.
        cold = [a for a in alerts if a.get("mounting") == "cold start"]
        marked = browser.find_elements(By.CSS_SELECTOR, '#alerts li[data-mounting="cold start"]')
        assert cold and len(marked) == len(cold)
        assert all(li.text.endswith(", cold start)") for li in marked)
        timeline = browser.find_element(By.ID, "timeline")
        duration = read_recording(DEMO_RECORDING).duration_s
        t_jump = 120.0  # the subject walks here
        x = timeline.size["width"] * (t_jump / duration - 0.5)
        ActionChains(browser).move_to_element_with_offset(timeline, x, 0).click().perform()
        info = poll(lambda: browser.find_element(By.ID, "review-info").text, 5)
        acts = [a for a in alerts if a["type"] == "activity" and a["t_event"] <= t_jump]
        m = re.search(r"at ([\d.]+) s: (\w+)", info)
        assert m and abs(float(m.group(1)) - t_jump) < 1.0, info
        assert m.group(2) == acts[-1]["label"], (info, acts[-1])
        screenshot = tmp_path / "web.png"
        browser.save_screenshot(str(screenshot))
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if target := os.environ.get("GAITEDGE_WEB_SCREENSHOT"):
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(screenshot, target)
        assert run.stop() == 0  # Ctrl-C ends the review cleanly


def test_a_device_without_a_gyroscope_shows_the_model_it_runs(browser, tmp_path):
    """An export without a gyroscope runs the accelerometer-only model: its panel names it
    (the page named only the session's, the default model)."""
    rec = read_recording(DEMO_RECORDING)
    n = 50 * 40
    path = tmp_path / "acc.csv"
    rows = np.column_stack([rec.timestamp_s[:n], rec.imu[:n, :3]])
    np.savetxt(path, rows, delimiter=",", header="timestamp_s,acc_x,acc_y,acc_z", comments="")
    with cli("replay", str(path), "--fast", "--web", "0") as run:
        url = run.url()
        run.wait_for(r'"windows": \d+')
        browser.get(url)
        section = poll(lambda: device_section(browser, path.name), 15)
        poll(lambda: "model: gaitedge-acc " in section.text, 5)
        assert run.stop() == 0
