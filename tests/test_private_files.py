"""Private by default: what gaitedge writes about people (alert logs, recordings, the mounting
store, saved layouts) is created 0600 in 0700 directories whatever the umask, whole files are
replaced atomically, and an existing file others can read is warned about in one line."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gaitedge.formats.generic import save_layout
from gaitedge.mounting import MountStore
from gaitedge.private import open_private_append, read_secret, write_private
from gaitedge.recording import RecordingWriter, read_recording
from gaitedge.sinks import JsonlSink
from tests.test_sinks import FALL


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 000: any privacy must come from the modes gaitedge asks for, not the umask."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_alert_log_is_private_in_new_private_folders(tmp_path: Path, open_umask) -> None:
    path = tmp_path / "care" / "ward3" / "alerts.jsonl"
    sink = JsonlSink(path)
    sink.send(FALL)
    sink.close()
    assert mode(path) == 0o600
    assert mode(path.parent) == mode(path.parent.parent) == 0o700


def test_existing_folder_is_left_alone(tmp_path: Path, open_umask) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    open_private_append(shared / "alerts.jsonl").close()
    assert mode(shared) == 0o755 and mode(shared / "alerts.jsonl") == 0o600


def test_recording_is_private_and_still_appends(tmp_path: Path, open_umask) -> None:
    path = tmp_path / "rec" / "live.csv"
    imu = np.arange(12, dtype=float).reshape(2, 6)
    for start in (0.0, 1.0):
        writer = RecordingWriter(path)
        writer.write(np.array([start, start + 0.02]), imu)
        writer.close()
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    rec = read_recording(path)
    np.testing.assert_array_equal(rec.timestamp_s, [0.0, 0.02, 1.0, 1.02])


def test_world_readable_file_is_warned_about_once_and_kept(tmp_path: Path, caplog) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_text("")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="gaitedge.private"):
        sink = JsonlSink(path)
        sink.send(FALL)
        sink.close()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert str(path) in warnings[0] and "mode 644" in warnings[0]
    assert mode(path) == 0o644  # the owner's choice is not silently undone


def test_private_file_is_not_warned_about(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="gaitedge.private"):
        JsonlSink(tmp_path / "a.jsonl").close()
        JsonlSink(tmp_path / "a.jsonl").close()
    assert caplog.records == []


def test_mount_store_is_replaced_atomically_and_private(tmp_path: Path, open_umask) -> None:
    path = tmp_path / "cache" / "mounting.json"
    store = MountStore(path)
    store.entries["belt-1"] = {"rotation": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}
    store.save()
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert MountStore(path).entries == store.entries
    path.chmod(0o644)
    store.save()  # a replaced file is the new private one
    assert mode(path) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["mounting.json"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "mounting.json"
    write_private(path, '{"old": 1}')
    with pytest.raises(UnicodeEncodeError):
        write_private(path, '{"new": "\ud800"}')  # fails while the temporary is being written
    assert path.read_text() == '{"old": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["mounting.json"]


def test_saved_layouts_share_the_private_writer(tmp_path: Path, monkeypatch, open_umask) -> None:
    monkeypatch.setenv("GAITEDGE_LAYOUTS", str(tmp_path / "config" / "layouts.json"))
    path = save_layout("phone", "time=ts:ms acc=ax,ay,az:g gyro=gx,gy,gz:deg/s")
    assert mode(path) == 0o600 and mode(path.parent) == 0o700


def test_secret_sources_in_order(tmp_path: Path, caplog) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "gaitedge.mqtt-password").write_text("from-systemd\n")
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-file\r\n")
    secret_file.chmod(0o600)
    ask = {"env": "PW", "credential": "gaitedge.mqtt-password"}
    environ = {"CREDENTIALS_DIRECTORY": str(creds), "PW": "from-env"}
    assert read_secret("pw", file=secret_file, environ=environ, **ask) == "from-file"
    assert read_secret("pw", environ=environ, **ask) == "from-env"
    assert read_secret("pw", environ={"CREDENTIALS_DIRECTORY": str(creds)}, **ask) == (
        "from-systemd"
    )
    assert read_secret("pw", environ={}, **ask) is None
    secret_file.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="gaitedge.private"):
        read_secret("MQTT password", file=secret_file, environ={})
    assert "MQTT password file" in caplog.text and "readable by other users" in caplog.text
    secret_file.write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        read_secret("MQTT password", file=secret_file, environ={})


def test_summaries_and_windows_are_private(tmp_path: Path, open_umask) -> None:
    """A person's days (summarize: hourly and daily CSV, JSON, the week's picture) and windows
    (windows --out) were written with the umask's mode (world-readable here)."""
    from typer.testing import CliRunner

    from gaitedge.cli import app
    from gaitedge.demo import DEMO_RECORDING

    out = tmp_path / "week"
    result = CliRunner().invoke(app, ["summarize", str(DEMO_RECORDING), "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = sorted(out.iterdir())
    assert {p.suffix for p in written} == {".csv", ".json", ".png"}
    assert mode(out) == 0o700 and all(mode(p) == 0o600 for p in written)
    npz = tmp_path / "w.npz"
    result = CliRunner().invoke(app, ["windows", str(DEMO_RECORDING), "--out", str(npz)])
    assert result.exit_code == 0, result.output
    assert mode(npz) == 0o600 and len(np.load(npz)["data"]) > 0
