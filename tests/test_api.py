"""The notebook API: gaitedge.analyse gives what `gaitedge replay --fast` gives, as tables and
a plot; gaitedge.stream yields live decisions to asyncio code; the example notebook runs."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import gaitedge
from firmware_bridge.emulator import EmulatedSerialDevice, Emulator, EmulatorConfig
from gaitedge.alerts import AlertType
from gaitedge.cli import app
from gaitedge.demo import DEMO_RECORDING
from gaitedge.engine import DEFAULT_MODEL
from gaitedge.recording import read_recording
from tests.conftest import REPO, missing


@pytest.fixture(scope="module")
def analysis():
    # Calibrated on the recording first (look-ahead), so the whole timeline is scored.
    return gaitedge.analyse(
        gaitedge.read(DEMO_RECORDING), device=DEMO_RECORDING.name, calibrate_first=True
    )


def test_analyse_is_what_replay_fast_decides(analysis, tmp_path):
    """Same alerts, same order, same windows as the CLI's `replay --fast` on the same file."""
    jsonl = tmp_path / "alerts.jsonl"
    args = ["replay", str(DEMO_RECORDING), "--fast", "--calibrate-first", "-q"]
    result = CliRunner().invoke(app, [*args, "--alerts-jsonl", str(jsonl)])
    assert result.exit_code == 0, result.output
    cli = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [a.to_dict() for a in analysis.alerts] == cli
    assert len(analysis.windows) == json.loads(result.stdout.splitlines()[-1])["windows"]
    assert analysis.calibration == "calibrated"


def test_analyse_from_a_cold_start_is_what_replay_fast_decides(tmp_path):
    """From a cold start (the default), the cold-start model reports activity while the
    mounting calibrates, as in `replay` (analyse ran without it: its first 107 s of the demo
    had no activity, replay's 12 cold-start alerts were missing)."""
    jsonl = tmp_path / "alerts.jsonl"
    args = ["replay", str(DEMO_RECORDING), "--fast", "-q", "--alerts-jsonl", str(jsonl)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    cli = [json.loads(line) for line in jsonl.read_text().splitlines()]
    cold = gaitedge.analyse(DEMO_RECORDING)
    assert [a.to_dict() for a in cold.alerts] == cli
    assert sum(a.get("mounting") == "cold start" for a in cli) >= 5
    assert len(cold.windows) == json.loads(result.stdout.splitlines()[-1])["windows"]
    assert cold.timeline[0].start_s < 5.0


def test_the_timeline_follows_the_recordings_labels(analysis):
    """Real HAPT data (a held-out subject): the timeline's spans carry the label the recording
    holds over most of each span."""
    rec = read_recording(DEMO_RECORDING)
    spans = analysis.timeline
    assert len({s.label for s in spans}) == 6  # all six activities, in order
    assert spans[-1].end_s == pytest.approx(rec.duration_s)
    t = rec.timestamp_s - rec.timestamp_s[0]
    covered = agree = 0.0
    for span in spans:
        inside = (t >= span.start_s) & (t < span.end_s) & (rec.label != "")
        covered += inside.sum()
        agree += (rec.label[inside] == span.label).sum()
    # Measured 0.79: 17 s of sitting read as standing (the model's known weak pair).
    assert agree / covered >= 0.75


def test_frames_hold_the_same_numbers(analysis):
    try:
        import pandas as pd
    except ImportError:
        missing("pandas is not installed (pip install -e '.[dev]')")
    timeline = analysis.timeline_frame()
    assert list(timeline.columns) == ["label", "start_s", "end_s", "p"]
    assert timeline["label"].tolist() == [s.label for s in analysis.timeline]
    alerts = analysis.alerts_frame()
    assert len(alerts) == len(analysis.alerts) and set(alerts["type"]) == {"activity"}
    windows = analysis.windows_frame()
    classes = analysis.windows.classes
    assert len(windows) == len(analysis.windows)
    probs = windows[[f"activity.{c}" for c in classes["activity"]]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert isinstance(windows, pd.DataFrame)
    assert (np.diff(windows["t_end_s"]) > 0).all()


def test_plot_draws_the_signal_and_the_probabilities(analysis):
    try:
        import matplotlib
    except ImportError:
        missing("matplotlib is not installed (pip install -e '.[dev]')")

    matplotlib.use("Agg")
    fig = analysis.plot()
    acc, act = fig.axes[:2]
    assert len(acc.lines) == 3 and len(act.lines) == len(analysis.windows.classes["activity"])
    np.testing.assert_allclose(act.lines[0].get_xdata(), analysis.windows.t_end_s)


def test_analyse_refuses_arrays_of_the_wrong_shape():
    """A Recording built by hand with [N] samples, or N - 1 rows for N stamps: one error
    naming both shapes (an IndexError, and a units refusal that blamed "g", before)."""
    from gaitedge.recording import Recording, RecordingError

    t = np.arange(1000) / 50.0
    for imu, shape in ((np.zeros(1000), "(1000,)"), (np.zeros((999, 6)), "(999, 6)")):
        with pytest.raises(RecordingError, match=rf"got \(1000,\) and {re.escape(shape)}"):
            gaitedge.analyse(Recording(t, imu))


def test_analyse_a_path_and_a_fall(sisfall_dir):
    """A path in any format reads through gaitedge.read; a real SisFall fall is alerted."""
    from gaitedge import datasets as ds

    rec = next(r for r in ds.sisfall_recordings(sisfall_dir.parent, ["sisfall:SA08"]) if r.is_fall)
    result = gaitedge.analyse(gaitedge.Recording(rec.timestamp_s, rec.imu), device="SA08")
    assert result.falls and result.falls[0].type is AlertType.FALL
    assert result.calibration == "online"  # 15 s trial, never calibrated: falls need no mounting


def test_analyse_refuses_a_bad_file_clearly(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z\n0,1,2,3,4,5,nan\n")
    with pytest.raises(gaitedge.RecordingError, match=r"bad\.csv"):
        gaitedge.analyse(bad)


def test_stream_yields_decisions_from_a_live_device():
    """An emulated serial device (the demo's): decisions every hop, in stream order."""
    rec = read_recording(DEMO_RECORDING)
    emulator = Emulator(rec.timestamp_s, rec.imu, EmulatorConfig(speed=8.0, loop=False))

    async def collect(path: str) -> list:
        out = []
        async for decision in gaitedge.stream(f"serial:{path}", DEFAULT_MODEL, duration_s=4.0):
            out.append(decision)
        return out

    with EmulatedSerialDevice(emulator) as device:
        got = asyncio.run(collect(device.path))
    assert len(got) >= 50  # 4 s at 8x: ~32 s of data, a decision every 0.2 s
    t = np.array([d.t_s for d in got])
    assert (np.diff(t) > 0).all() and np.allclose(np.diff(t), 0.2, atol=0.02)
    assert all(d.device == device.path and d.p_fall is not None for d in got)
    assert {d.activity for d in got} <= set(gaitedge.read_contract(DEFAULT_MODEL).heads["activity"])


def test_stream_refuses_an_unknown_spec():
    async def first():
        async for d in gaitedge.stream("usb:nothing"):
            return d

    with pytest.raises(ValueError, match="serial:PORT"):
        asyncio.run(first())


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"max_pending": 0}, "max_pending must be a whole number >= 1"),
        ({"speed": float("nan")}, "speed must be a positive number"),
        ({"duration_s": -1.0}, "duration_s must be a positive number"),
    ],
    ids=["max_pending-0", "speed-nan", "duration-negative"],
)
def test_stream_refuses_options_it_cannot_honour(option, message):
    """max_pending=0 hung for ever (a mailbox of none dropped the end too); a NaN speed ran
    as fast as it goes, a negative duration gave no decision: refused."""

    async def first():
        async for d in gaitedge.stream(str(DEMO_RECORDING), **({"speed": 100.0} | option)):
            return d

    with pytest.raises(ValueError, match=message):
        asyncio.run(asyncio.wait_for(first(), 30))


def test_the_example_notebook_runs(tmp_path):
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError:
        missing("nbclient/nbformat are not installed (pip install -e '.[dev]')")
    notebook = nbformat.read(REPO / "examples" / "quickstart.ipynb", as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={
        "metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "WALKING" in html and "start_s" in html  # the timeline table
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plot
    assert Path(tmp_path).is_dir()


def test_stream_replays_a_path_as_replay_does():
    """A recording's path streams in (accelerated) real time, calibrated first as `replay`
    calibrates: activity from the first decision, the same decisions as `analyse`."""

    async def collect() -> list:
        decisions = gaitedge.stream(
            DEMO_RECORDING, speed=20.0, duration_s=2.0, calibrate_first=True
        )
        return [d async for d in decisions]

    got = asyncio.run(collect())
    assert len(got) >= 50 and all(d.activity is not None for d in got)
    whole = gaitedge.analyse(DEMO_RECORDING, calibrate_first=True)
    n = len(got)
    np.testing.assert_allclose([d.t_s for d in got], whole.windows.t_end_s[:n])
    np.testing.assert_allclose(
        [d.probs["activity"] for d in got], whole.windows.probs["activity"][:n], atol=1e-5
    )


def test_analyse_takes_lists_and_refuses_reversed_time_and_an_empty_path():
    """A Recording of Python lists was a TypeError deep in replay; reversed timestamps were
    read as clock resets (a negative duration, twice the windows); `read("")` read the working
    directory as a phyphox export."""
    from gaitedge.recording import Recording, RecordingError

    rec = gaitedge.read(DEMO_RECORDING)
    listed = gaitedge.analyse(Recording(rec.timestamp_s.tolist(), rec.imu.tolist()))
    assert [a.to_dict() for a in listed.alerts] == [
        a.to_dict() for a in gaitedge.analyse(rec).alerts
    ]
    reversed_ = Recording(rec.timestamp_s[::-1].copy(), rec.imu)
    with pytest.raises(RecordingError, match="timestamps in reverse"):
        gaitedge.analyse(reversed_)
    for empty in ("", " "):
        with pytest.raises(RecordingError, match="the recording path is empty"):
            gaitedge.read(empty)


def test_stream_from_a_cold_start_decides_as_replay_does():
    """From a cold start, a recording's decisions while its mounting calibrates are the
    cold-start model's, with its alerts, as `replay` and `listen` report them (stream ran
    without that model: no activity alert before the device calibrated)."""

    async def collect() -> list:
        return [d async for d in gaitedge.stream(DEMO_RECORDING, speed=1e4)]

    got = asyncio.run(collect())
    whole = gaitedge.analyse(DEMO_RECORDING)  # == replay --fast (the test above)
    streamed = [a.to_dict() for d in got for a in d.alerts]
    assert streamed == [a.to_dict() for a in whole.alerts]
    cold = [d for d in got if d.cold_start]
    assert len(cold) >= 100  # the demo's first ~107 s
    calibrated_at = min(d.t_s for d in got if not d.cold_start and d.t_s > cold[0].t_s)
    assert max(d.t_s for d in cold) < calibrated_at
    first = next(a for a in whole.alerts if a.type is AlertType.ACTIVITY)
    assert first.extra["mounting"] == "cold start"
    decided = next(d for d in got if first in d.alerts)
    assert decided.cold_start and decided.activity == first.label


def test_analyse_and_stream_run_an_export_without_a_gyroscope(tmp_path):
    """A file without a gyroscope runs on the shipped accelerometer-only model, as `replay`
    runs it (analyse and stream refused it: 'the model needs both')."""
    rec = read_recording(DEMO_RECORDING)
    n = 50 * 60
    path = tmp_path / "acc.csv"
    rows = np.column_stack([rec.timestamp_s[:n], rec.imu[:n, :3]])
    np.savetxt(path, rows, delimiter=",", header="timestamp_s,acc_x,acc_y,acc_z", comments="")
    jsonl = tmp_path / "alerts.jsonl"
    args = ["replay", str(path), "--fast", "-q", "--alerts-jsonl", str(jsonl)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    cli = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [a.to_dict() for a in gaitedge.analyse(path).alerts] == cli and cli

    async def collect() -> list:
        return [d async for d in gaitedge.stream(path, speed=1e4)]

    got = asyncio.run(collect())
    scored = [d for d in got if d.probs]  # and the held-back activity (never calibrated)
    assert len(scored) == json.loads(result.stdout.splitlines()[-1])["windows"]
    assert all(d.activity is not None for d in got)
    assert [a.to_dict() for d in got for a in d.alerts] == cli
    # the model it ran is the one named (it named the default model)
    assert gaitedge.analyse(path).model.startswith("gaitedge-acc ")


def test_a_recording_without_an_activity_alert_has_an_empty_timeline(tmp_path):
    """Too short for a window: an empty timeline and frame (a zip() error before)."""
    rec = read_recording(DEMO_RECORDING)
    short = gaitedge.Recording(rec.timestamp_s[:50], rec.imu[:50])
    result = gaitedge.analyse(short)
    assert result.alerts == () and result.timeline == []
    assert len(result.timeline_frame()) == 0


def test_stream_of_a_recording_keeps_every_decision_and_the_held_back_activity(tmp_path):
    """A recording played fast made more decisions per chunk than max_pending and the oldest
    were dropped ('the consumer fell behind', though it did nothing); a stream that never
    calibrated ended without the held-back activity alert `replay` prints."""
    from gaitedge.recording import Recording, write_recording

    async def collect(path, **options) -> list:
        return [d async for d in gaitedge.stream(path, speed=1e4, **options)]

    got = asyncio.run(collect(DEMO_RECORDING, max_pending=10))
    assert len(got) == len(gaitedge.analyse(DEMO_RECORDING).windows)
    rec = read_recording(DEMO_RECORDING)
    still = tmp_path / "postures.csv"  # its first 30 s: no walk, so no calibration
    write_recording(still, Recording(rec.timestamp_s[:1500], rec.imu[:1500]))
    whole = gaitedge.analyse(still, DEFAULT_MODEL)  # no cold-start model beside a given one
    (held,) = [a for a in whole.alerts if a.extra.get("mounting") == "uncalibrated"]
    got = asyncio.run(collect(still, model=DEFAULT_MODEL))
    last = got[-1]
    assert last.alerts == (held,) and last.activity == held.label and last.probs == {}


def test_stream_over_a_source_of_several_phones_goes_on_past_a_refused_one():
    """Two phones push to one listener, one in g: listen scores the other and names the
    refused one at the end; stream stopped both at the first refusal."""
    import secrets

    from firmware_bridge.phones import PushConfig, emulated_sensor_logger
    from gaitedge.pipeline import DevicesRefusedError
    from gaitedge.sources import HttpSource

    rec = read_recording(DEMO_RECORDING)
    t, imu = rec.timestamp_s[:3000], rec.imu[:3000]
    in_g = imu.copy()
    in_g[:, :3] /= 9.80665
    source = HttpSource("127.0.0.1", 0, token=secrets.token_urlsafe(16))
    source.listen()
    a = PushConfig(platform="ios", device_id="phone-A")
    b = PushConfig(
        platform="ios", device_id="phone-B", session_id="aaaaaaaa-6b7c-4f00-9d3e-2c1b0e5a7d11"
    )
    per: dict[str, int] = {}

    async def collect() -> None:
        async for d in gaitedge.stream(source, duration_s=6):
            per[d.device] = per.get(d.device, 0) + 1

    with (
        emulated_sensor_logger(source.push_url, t, imu, config=a, speed=10),
        emulated_sensor_logger(source.push_url, t, in_g, config=b, speed=10),
        pytest.raises(DevicesRefusedError, match="phone-B"),
    ):
        asyncio.run(collect())
    assert set(per) == {"phone-A"} and per["phone-A"] >= 100


def test_analyse_says_why_no_window_was_made(tmp_path, caplog):
    """A time column in ms read as seconds: replay says why no window was made; analyse
    returned an empty result without a word."""
    from gaitedge.recording import Recording, write_recording

    rec = read_recording(DEMO_RECORDING)
    path = tmp_path / "ms.csv"
    write_recording(path, Recording(rec.timestamp_s[:3000] * 1000.0, rec.imu[:3000]))
    with caplog.at_level("WARNING", logger="gaitedge.api"):
        result = gaitedge.analyse(path)
    assert len(result.windows) == 0
    assert "ms.csv: no window was made: gaps over 1 s" in caplog.text
    assert "a time column in ms read as seconds?" in caplog.text


def test_read_takes_an_app_export_without_a_gyroscope_as_replay_does(wild_exports):
    """gaitedge.read of a MetaBase accelerometer log refused it ('the model needs both') while
    replay and analyse run it on the accelerometer-only model."""
    path = wild_exports / "metabase_ios-gait-lowback-acconly"
    rec = gaitedge.read(path)
    assert rec.imu.shape[1] == 3 and len(rec) > 4000
    assert gaitedge.analyse(rec).model.startswith("gaitedge-acc ")
