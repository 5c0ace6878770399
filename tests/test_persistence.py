"""Nothing learned is lost: the mounting estimate a live session learns survives how services
stop. The real ``gaitedge listen`` process, an emulated device on a pty walking (HAPT, fed
fast), a real SIGTERM and SIGINT, the store where the systemd unit puts it; an unwritable store
refused in one line (listen) or warned about (replay)."""

from __future__ import annotations

import itertools
import json
import re
import signal
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from firmware_bridge.emulator import EmulatedSerialDevice, Emulator, EmulatorConfig
from gaitedge.cli import app
from gaitedge.engine import DEFAULT_MODEL, load_engine
from gaitedge.mounting import MountStore, default_mount_file
from gaitedge.pipeline import Pipeline
from gaitedge.recording import Recording, write_recording
from gaitedge.runner import SAVE_INTERVAL_S, run_sources
from gaitedge.sinks import FanOut
from gaitedge.sources import ReplaySource
from tests.test_web_browser import Cli

# HAPT experiment 1, samples 7496-11715: four stretches of walking (label 1) with short stops,
# 84 s in all; 20 s of walking calibrate the mounting.
WALK = slice(7496, 11715)
# "calibrated (stored, 25 s walking, ...)"; a vertical mounting: "calibrated (vertical from
# gravity, stored, 25 s walking)".
CALIBRATED = re.compile(r"mounting=calibrated \((?:vertical from [^,]+, )?(stored, )?(\d+) s walk")


@pytest.fixture(scope="module")
def walking(hapt_experiment):
    t, x, _ = hapt_experiment
    return t[WALK] - t[WALK][0], x[WALK]


def _listen(port) -> Cli:
    return Cli("listen", "--serial", str(port), "--model", str(DEFAULT_MODEL))


def _calibrated(run: Cli, timeout_s: float = 60.0, after: int = 0) -> re.Match:
    """The first status line that says calibrated, from the ``after``-th line on."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in run.lines[after:]:
            if m := CALIBRATED.search(line):
                return m
        if run.proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError("never calibrated; output:\n" + "\n".join(run.lines))


def _stop(run: Cli, sig: signal.Signals) -> None:
    run.proc.send_signal(sig)
    code = run.proc.wait(30)
    run._reader.join(5)
    output = "\n".join(run.lines)
    assert code == 0, output
    assert "Traceback" not in output, output


def _saved(path, device: str):
    """The stored estimate of ``device``; the store is a whole private file, no temporaries."""
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert path.stat().st_mode & 0o777 == 0o600
    est = MountStore(path).get(device, 50.0)
    assert est is not None and est.calibrated
    return est


def test_listen_keeps_its_estimate_across_sigterm_and_sigint_in_the_units_state_directory(
    walking, tmp_path, monkeypatch
):
    """As under the shipped unit: $STATE_DIRECTORY set, the home unusable (ProtectHome=yes),
    the port a stable name. Calibrate, SIGTERM (systemctl stop/restart), restart: calibrated
    from the stored estimate at once; walk more, SIGINT: the grown estimate replaces the file."""
    state = tmp_path / "var-lib-gaitedge"
    (tmp_path / "no-home").write_text("")  # a file: nothing can be made under it
    monkeypatch.delenv("GAITEDGE_MOUNT_FILE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "no-home" / "gaitedge"))
    monkeypatch.setenv("STATE_DIRECTORY", str(state))
    store = state / "mounting.json"
    port = tmp_path / "ttyACM0"  # udev's name: the same device at every (re)start
    t, x = walking

    emulator = Emulator(t, x, EmulatorConfig(speed=20.0, loop=True))
    with EmulatedSerialDevice(emulator) as device:
        port.symlink_to(device.path)
        run = _listen(port)
        try:
            started = time.monotonic()
            first = _calibrated(run)
            assert first.group(1) is None  # learned here, not restored
            periodic = time.monotonic() - started >= SAVE_INTERVAL_S
            assert periodic or not store.exists()  # so the signal is what saves it
            _stop(run, signal.SIGTERM)
        finally:
            run.stop()
    before = _saved(store, str(port))
    inode = store.stat().st_ino

    emulator = Emulator(t, x, EmulatorConfig(speed=20.0, loop=True))
    with EmulatedSerialDevice(emulator) as device:  # replugged: a new pty behind the name
        port.unlink()
        port.symlink_to(device.path)
        run = _listen(port)
        try:
            restored = _calibrated(run)
            assert restored.group(1) == "stored, "
            assert not any("calibrating" in line for line in run.lines)
            grown = _calibrated(run, after=len(run.lines))
            while int(grown.group(2)) < before.walking_s + 10:  # it learns on
                grown = _calibrated(run, after=len(run.lines))
            _stop(run, signal.SIGINT)
        finally:
            run.stop()
    after = _saved(store, str(port))
    assert store.stat().st_ino != inode  # replaced (os.replace), not rewritten in place
    assert after.walking_s >= before.walking_s + 10


def test_the_store_is_saved_periodically_while_the_estimate_moves(walking, tmp_path):
    """In-process, a paced replay: the file appears and is replaced while streaming, at most
    once per interval (not on every 2 s block), and not again when nothing moved."""
    t, x = walking
    path = tmp_path / "mounting.json"
    seen = []  # (walking_s, inode) of each version of the file seen while streaming

    def look(_rows) -> None:
        if path.exists():
            version = (json.loads(path.read_text())["replay"]["long"]["walking_s"],
                       path.stat().st_ino)  # fmt: skip
            if not seen or seen[-1] != version:
                seen.append(version)

    store = MountStore(path)
    source = ReplaySource(recording=Recording(t, x), speed=40.0, device="replay", tick_s=0.02)
    interval_s = 0.4
    with Pipeline(load_engine(DEFAULT_MODEL), FanOut([]), mount="auto", mount_store=store) as pipe:
        started = time.monotonic()
        run_sources(pipe, [source], on_status=look, status_interval_s=0.05,
                    save_interval_s=interval_s)  # fmt: skip
        took_s = time.monotonic() - started
        walking_blocks = pipe.devices["replay"].chain.mounting.estimator.walking_s / 2.0
        assert len(seen) >= 2, seen  # written while it streamed, and again as it moved
        assert [w for w, _ in seen] == sorted(w for w, _ in seen)
        # each save a new file renamed over the last (a freed inode number may come back later)
        assert all(a[1] != b[1] for a, b in itertools.pairwise(seen))
        assert len(seen) <= took_s / interval_s + 1 < walking_blocks
        pipe.save_mountings(if_changed=True)
        assert not pipe.save_mountings(if_changed=True)  # nothing moved: nothing written


runner = CliRunner()


def test_listen_refuses_an_unwritable_store_before_it_streams(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("GAITEDGE_MOUNT_FILE", str(tmp_path / "a-file" / "mounting.json"))
    # A port that does not exist: the store's error comes first, so nothing was opened.
    result = runner.invoke(app, ["listen", "--serial", "/dev/nonexistent-port"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0].startswith("error: cannot save mounting estimates to ")
    assert "a-file/mounting.json" in lines[0] and "GAITEDGE_MOUNT_FILE" in lines[0]


def test_listen_with_a_fixed_mounting_needs_no_store(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("GAITEDGE_MOUNT_FILE", str(tmp_path / "a-file" / "mounting.json"))
    result = runner.invoke(app, ["listen", "--serial", "/dev/nonexistent-port", "--mount", "none"])
    assert result.exit_code == 1 and "cannot open serial port" in result.output


def test_replay_warns_about_an_unwritable_store_and_goes_on(walking, tmp_path, caplog):
    t, x = walking
    rec = tmp_path / "walk.csv"
    write_recording(rec, Recording(t[:2500], x[:2500]))
    (tmp_path / "a-file").write_text("")
    unwritable = tmp_path / "a-file" / "mounting.json"
    result = runner.invoke(app, ["replay", str(rec), "--fast", "--mount-file", str(unwritable)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["windows"] > 0
    said = [r.getMessage() for r in caplog.records if "mounting.json" in r.getMessage()]
    assert len(said) == 1 and "\n" not in said[0], said  # one warning, at the start
    assert said[0].startswith(f"cannot save mounting estimates to {unwritable}: ")
    assert said[0].endswith("going on without saving")
    assert caplog.records[0].levelname == "WARNING"


def test_the_default_store_follows_the_environment_systemd_gives():
    cache = {"XDG_CACHE_HOME": "/home/u/.cache"}
    unit = {**cache, "STATE_DIRECTORY": "/var/lib/gaitedge"}  # StateDirectory=gaitedge
    assert default_mount_file(cache) == Path("/home/u/.cache/gaitedge/mounting.json")
    assert default_mount_file(unit) == Path("/var/lib/gaitedge/mounting.json")
    several = {"STATE_DIRECTORY": "/var/lib/gaitedge:/var/lib/gaitedge-extra"}
    assert default_mount_file(several) == Path("/var/lib/gaitedge/mounting.json")
    chosen = {**unit, "GAITEDGE_MOUNT_FILE": "/srv/sensors/mounting.json"}
    assert default_mount_file(chosen) == Path("/srv/sensors/mounting.json")
    assert default_mount_file({**unit, "GAITEDGE_MOUNT_FILE": ""}) == default_mount_file(unit)


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda e: e["long"].update(up=[0, 0, 0]), "no up direction"),
        (lambda e: e["long"].update(m2=[[float("nan")] * 3] * 3), "not a finite number"),
        (lambda e: e.update(long=5), "incomplete"),
        ("text", "an entry of type str, not an object"),
    ],
    ids=["zero-up", "nan", "long-not-an-object", "entry-not-an-object"],
)
def test_a_damaged_stored_estimate_is_one_line_naming_the_file_and_device(tmp_path, damage, says):
    """Entries of a mount file edited by hand: 'Eigenvalues did not converge' after a
    RuntimeWarning, 'string indices must be integers', with no file named; and a binary file
    was a bare codec error. One MountingError naming the file, the device and what to do."""
    from gaitedge.demo import DEMO_RECORDING
    from gaitedge.mounting import MountingError

    path = tmp_path / "mount.json"
    result = runner.invoke(app, ["calibrate", str(DEMO_RECORDING), "--mount-file", str(path)])
    assert result.exit_code == 0, result.output
    entries = json.loads(path.read_text())
    (device,) = entries
    if damage == "text":
        entries[device] = "text"
    else:
        damage(entries[device])
    path.write_text(json.dumps(entries))
    with pytest.raises(MountingError) as caught:
        MountStore(path).get(device, 50.0)
    message = str(caught.value)
    assert message.startswith(f"{path}: the stored estimate of {device!r} is damaged (")
    assert says in message and message.endswith("delete that entry and the device calibrates anew")
    result = runner.invoke(
        app, ["replay", str(DEMO_RECORDING), "--fast", "-q", "--mount-file", str(path)]
    )
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {message}", result.output
    path.write_bytes(b"\xff\xfe\x00 not text")
    with pytest.raises(MountingError, match=rf"^{re.escape(str(path))}: not a readable mount file"):
        MountStore(path)
