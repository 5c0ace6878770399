"""The pipeline end to end: replay and live serial through chain, engine, alerts and sinks."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import counts_to_si, si_to_counts
from firmware_bridge.emulator import EmulatedSerialDevice, Emulator, EmulatorConfig
from gaitedge.bundle import ContractError, read_contract
from gaitedge.datasets import HAPT_LABELS
from gaitedge.engine import DEFAULT_MODEL, load_engine
from gaitedge.pipeline import LatencyHistogram, Pipeline
from gaitedge.preprocess import ChainConfig
from gaitedge.recording import Recording, read_recording, write_recording
from gaitedge.runner import (
    SinkOptions,
    calibrate_recording,
    open_pipeline,
    run_sources,
    status,
    stream_many,
)
from gaitedge.sinks import FanOut
from gaitedge.sources import ReplaySource, SerialSource, SourceError
from tests.bundles import make_bundle

ALERT_KEYS = {"t", "t_event", "type", "label", "p", "device"}


@pytest.fixture
def bundle():
    """The shipped model: runtime tests run a trained model on real data."""
    return DEFAULT_MODEL


@pytest.fixture
def hapt_recording(hapt_experiment, tmp_path):
    """HAPT experiment 1, 6 minutes: postures, then walking (the mounting calibrates on it)."""
    t, x, label = hapt_experiment
    rec = Recording(t, x, label=label.astype(str))
    path = tmp_path / "hapt.csv"
    write_recording(path, rec)
    return path


def replay(pipe, path, **kwargs) -> None:
    """`gaitedge replay`: the recording calibrates its device's mounting, then streams."""
    source = ReplaySource(path, **kwargs)
    rec = read_recording(path)
    calibrate_recording(pipe, source.device, rec.timestamp_s, rec.imu)
    run_sources(pipe, [source])


def hop(bundle) -> int:
    return read_contract(bundle).chain.hop_samples


def test_replay_fast_through_the_pipeline_writes_alert_lines(bundle, hapt_recording, tmp_path):
    jsonl = tmp_path / "alerts.jsonl"
    with open_pipeline(bundle, SinkOptions(alerts_jsonl=jsonl), echo=lambda s: None) as pipe:
        replay(pipe, hapt_recording, fast=True)
    rec = read_recording(hapt_recording)
    expected_windows = (len(rec) - 128) // hop(bundle) + 1
    assert pipe.stats.windows == expected_windows
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert lines, "an activity must be reported at least once"
    for line in lines:
        assert set(line) >= ALERT_KEYS
        assert line["t_event"] <= line["t"] + 1e-9
        assert line["device"] == "hapt.csv"
    assert lines[0]["type"] == "activity"


def test_shipped_model_reports_the_real_activities(bundle, hapt_recording, tmp_path):
    """Experiment 1 of HAPT (subject 1: postures with transitions, then walking and stairs): the
    activity the pipeline reports agrees with the labels on 94.9 % of the labelled samples
    (reports lag a change by the smoothing, which costs most of the rest)."""
    jsonl = tmp_path / "alerts.jsonl"
    with open_pipeline(bundle, SinkOptions(alerts_jsonl=jsonl), echo=lambda s: None) as pipe:
        replay(pipe, hapt_recording, fast=True)
    reports = [json.loads(x) for x in jsonl.read_text().splitlines()]
    reports = [a for a in reports if a["type"] == "activity"]
    rec = read_recording(hapt_recording)
    current = np.searchsorted([a["t"] for a in reports], rec.timestamp_s, side="right") - 1
    truth = np.array([int(x) for x in rec.label])
    scored = (truth >= 1) & (truth <= 6) & (current >= 0)  # the six activities of the model
    said = np.array([reports[i]["label"] for i in current[scored]])
    agree = float(np.mean(said == np.array(HAPT_LABELS)[truth[scored] - 1]))
    # Measured 0.9491 over 12763 samples with model 0.3.0 (hop 10, calibrated on the
    # recording); the floor holds for 0.4.0 (suite run of this session).
    assert scored.sum() > 12000 and agree > 0.93, agree
    assert {a["label"] for a in reports} == set(HAPT_LABELS[:6])


def test_fast_and_paced_replay_give_the_same_alerts(bundle, hapt_recording, tmp_path):
    """Batching windows into the engine (--fast) changes nothing but speed."""
    results = []
    for name, kwargs in [("fast", {"fast": True}), ("paced", {"speed": 200.0, "tick_s": 0.01})]:
        jsonl = tmp_path / f"{name}.jsonl"
        with open_pipeline(bundle, SinkOptions(alerts_jsonl=jsonl), echo=lambda s: None) as pipe:
            replay(pipe, hapt_recording, **kwargs)
        results.append([json.loads(x) for x in jsonl.read_text().splitlines()])
    fast, paced = results
    assert [(a["t"], a["label"]) for a in fast] == [(a["t"], a["label"]) for a in paced]


def test_live_serial_end_to_end_records_exactly_what_was_sent(bundle, hapt_recording, tmp_path):
    rec = read_recording(hapt_recording)
    rec = Recording(rec.timestamp_s[:1500], rec.imu[:1500])
    emulator = Emulator(rec.timestamp_s, rec.imu, EmulatorConfig(speed=10.0, samples_per_frame=4))
    record = tmp_path / "live.csv"
    jsonl = tmp_path / "alerts.jsonl"
    device = EmulatedSerialDevice(emulator)

    class OpenThenPlay(SerialSource):
        """Start the device once the port is open: what it sends before is not 'sent' to us."""

        async def __aenter__(self):
            opened = await super().__aenter__()
            device.start()
            return opened

    sinks = SinkOptions(alerts_jsonl=jsonl)
    try:
        # 30 s of postures: too little walking to calibrate; HAPT's frame is near the body's.
        pipeline = open_pipeline(bundle, sinks, echo=lambda s: None, record=record, mount="none")
        with pipeline as pipe:
            source = OpenThenPlay(device.path, watchdog_s=1.0, max_reconnects=1)
            with pytest.raises(SourceError, match="reconnect attempts failed"):
                run_sources(pipe, [source], duration_s=8.0)  # ends when the port closes
    finally:
        device.stop()
    recorded = read_recording(record)
    assert emulator.stats.bytes_overrun == 0, emulator.stats
    sent = counts_to_si(si_to_counts(rec.imu, emulator.info), emulator.info)
    assert len(recorded) == len(rec)
    np.testing.assert_array_equal(recorded.imu, sent)
    # the device's stamps, on the wall clock (UTC seconds; its first chunk anchors them)
    t = recorded.timestamp_s
    np.testing.assert_allclose(t - t[0], rec.timestamp_s - rec.timestamp_s[0], atol=1e-6)
    assert abs(t[0] - time.time()) < 60.0
    assert set(recorded.device_id) == {device.path}
    assert pipe.stats.windows == (len(rec) - 128) // hop(bundle) + 1
    assert jsonl.read_text().strip(), "alerts reached the JSONL sink"
    assert pipe.stats.latency["engine"].total > 0
    (row,) = status(pipe, [source])
    assert row.link.rate_hz == 50.0 and row.link.lost_frames == 0 and row.link.corrupt == 0
    assert row.link.clock_drift_ppm is not None and row.windows == pipe.stats.windows
    line = row.line()  # what `listen` prints
    assert line.startswith(f"[{device.path}] ")
    assert "type=gaitedge rate=50.0Hz lost_frames=0" in line


@pytest.mark.parametrize("web", [[], ["--web", "0"]], ids=["", "web"])
def test_a_recording_on_a_full_disk_stops_alone_and_listen_says_so(
    bundle, hapt_recording, tmp_path, web
):
    """`listen --record` on a full disk: the first flush raised through the tick and ended the
    session (every device, with two tracebacks, no alert). The recording stops in one line,
    the live session goes on (windows, alerts to the JSONL), and `listen` exits 1 naming it;
    with the web view too (its tap before the writer: an AttributeError's traceback)."""
    import subprocess
    import sys

    rec = read_recording(hapt_recording)
    emulator = Emulator(rec.timestamp_s[:3000], rec.imu[:3000], EmulatorConfig(speed=10.0))
    record, jsonl = tmp_path / "live.csv", tmp_path / "alerts.jsonl"
    record.symlink_to("/dev/full")
    gaitedge = str(Path(sys.executable).with_name("gaitedge"))
    with EmulatedSerialDevice(emulator) as device:
        done = subprocess.run(
            [gaitedge, "listen", "--serial", device.path, "--model", str(bundle), "--duration",
             "5", "-q", "--record", str(record), "--alerts-jsonl", str(jsonl), "--mount", "none",
             *web],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[-1] == f"error: recording {record} stopped short: No space left on device"
    assert sum("stopped after" in ln and "goes on without it" in ln for ln in lines) == 1
    assert len(jsonl.read_text().splitlines()) >= 2  # alerts went on after the disk filled


def test_model_whose_channels_the_chain_cannot_feed_is_refused(tmp_path, hapt_recording):
    chain = ChainConfig(channels=("acc_x", "acc_y"), norm_mean=(0, 0), norm_std=(1, 1))
    model = make_bundle(tmp_path / "two.onnx", chain=chain, heads={"activity": ("a", "b")})
    engine = load_engine(model)
    with pytest.raises(ContractError, match="expects windows of 128 samples x 2"):
        engine.predict(np.zeros((1, 128, 9), np.float32))
    # A fall head needs the gravity channels; the pipeline says so instead of guessing.
    model = make_bundle(tmp_path / "nograv.onnx", chain=chain, heads={"fall": ("no_fall", "fall")})
    with pytest.raises(ValueError, match="fall detection needs gravity"):
        Pipeline(load_engine(model), FanOut([])).process(_chunk())
    model = make_bundle(tmp_path / "nofall.onnx", heads={"fall": ("no", "yes")})
    with pytest.raises(ContractError, match="no 'fall' class"):
        Pipeline(load_engine(model), FanOut([]))


def _chunk():
    from gaitedge.sources import SampleChunk

    imu = np.zeros((200, 6))
    imu[:, 2] = 9.80665  # lying still, screen up: gravity on +z (the units check's evidence)
    return SampleChunk("d", np.arange(200) / 50.0, imu, host_rx_s=0.0)


def test_bad_samples_in_a_live_stream_are_dropped_and_counted(bundle):
    pipe = Pipeline(load_engine(bundle), FanOut([]))
    chunk = _chunk()
    chunk.imu[10, 2] = np.nan
    pipe.process(chunk)  # held: fewer samples than the units check needs
    assert pipe.status()[0]["windows"] == 0
    pipe.finish()  # the end of the stream: the chain takes them
    (status,) = pipe.status()
    assert status["dropped"] == 1 and status["windows"] == (199 - 128) // hop(bundle) + 1


def test_several_devices_share_one_pipeline(bundle, hapt_recording, tmp_path):
    jsonl = tmp_path / "a.jsonl"
    sinks = SinkOptions(alerts_jsonl=jsonl)
    with open_pipeline(bundle, sinks, echo=lambda s: None, mount="none") as pipe:
        sources = [ReplaySource(hapt_recording, fast=True, device=f"dev{i}") for i in range(3)]
        asyncio.run(stream_many(pipe, sources))
    devices = {json.loads(x)["device"] for x in jsonl.read_text().splitlines()}
    assert devices == {"dev0", "dev1", "dev2"}
    assert {s["device"] for s in pipe.status()} == devices


def test_a_device_the_model_refuses_stops_alone(bundle, hapt_recording, tmp_path):
    """Two devices streaming together, one in g under m/s² headers: that one is refused (its
    source stops, the refusal is raised once every source has ended), and the other's alerts
    are those it raises alone (the refusal stopped every device of the tick before)."""
    rec = read_recording(hapt_recording)
    imu = rec.imu.copy()
    imu[:, :3] /= 9.80665
    in_g = tmp_path / "in_g.csv"
    write_recording(in_g, Recording(rec.timestamp_s, imu))

    def alerts(names_paths, jsonl):
        with open_pipeline(bundle, SinkOptions(alerts_jsonl=jsonl), echo=lambda s: None) as pipe:
            sources = [ReplaySource(p, fast=True, device=n) for n, p in names_paths]
            asyncio.run(stream_many(pipe, sources))

    alone = tmp_path / "alone.jsonl"
    alerts([("good", hapt_recording)], alone)
    together = tmp_path / "together.jsonl"
    with pytest.raises(ContractError, match=r"^in_g: median \|acceleration\| is 1\.0"):
        alerts([("good", hapt_recording), ("in_g", in_g)], together)
    lines = [json.loads(x) for x in together.read_text().splitlines()]
    assert lines and {a["device"] for a in lines} == {"good"}
    keys = ("t", "type", "label", "p")
    expected = [json.loads(x) for x in alone.read_text().splitlines()]
    assert [[a[k] for k in keys] for a in lines] == [[a[k] for k in keys] for a in expected]


def test_a_device_whose_link_fails_stops_alone(bundle, hapt_recording, tmp_path):
    """A serial port that is not there beside a device that streams (paced: still streaming
    when the port fails): the port's error is logged and raised when the other has ended, and
    the other's alerts are all those it raises alone (the error ended the session at once)."""

    def alerts(sources, jsonl) -> list[dict]:
        with open_pipeline(bundle, SinkOptions(alerts_jsonl=jsonl), echo=lambda s: None) as pipe:
            asyncio.run(stream_many(pipe, sources))
        return [json.loads(x) for x in jsonl.read_text().splitlines()]

    alone = alerts([ReplaySource(hapt_recording, fast=True, device="good")], tmp_path / "a.jsonl")
    together = tmp_path / "b.jsonl"
    sources = [
        SerialSource(str(tmp_path / "no-such-tty")),
        ReplaySource(hapt_recording, speed=200.0, device="good"),  # ~2 s
    ]
    with pytest.raises(SourceError, match="no-such-tty"):
        alerts(sources, together)
    got = [json.loads(x) for x in together.read_text().splitlines()]
    assert {a["device"] for a in got} == {"good"}
    keys = ("type", "label")
    assert [[a[k] for k in keys] for a in got] == [[a[k] for k in keys] for a in alone]


def test_activity_smoothing_restarts_after_a_gap(bundle, hapt_experiment):
    """A gap (segment break) makes the activity be reported afresh, never smoothed across."""
    t, x, _ = hapt_experiment
    t, x = t[:2000].copy(), x[:2000]
    t[1000:] += 5.0
    from gaitedge.sources import SampleChunk

    pipe = Pipeline(load_engine(bundle), FanOut([]), mount="none")
    alerts = pipe.process(SampleChunk("d", t, x, host_rx_s=0.0))
    after_gap = [a for a in alerts if a.t > t[1000]]
    assert after_gap and after_gap[0].t_event >= t[1000]


def test_latency_histogram_percentiles():
    h = LatencyHistogram()
    for v in np.linspace(0.001, 0.002, 100):
        h.add(v)
    # 2 significant digits: within 1 % of the exact quantiles (1.5 and 1.99 ms).
    assert h.percentile_ms(50) == pytest.approx(1.5, rel=0.01)
    assert h.percentile_ms(99) == pytest.approx(1.99, rel=0.01)
    assert np.isnan(LatencyHistogram().percentile_ms(50))


def test_latency_histogram_batches_are_the_values_one_by_one():
    """Values wait and go into the histogram in batches of distinct values with counts: every
    quantile, the count, the minimum and maximum are those of recording them one by one (read
    mid-batch, at a batch's end and after several)."""
    from hdrh.histogram import HdrHistogram

    rng = np.random.default_rng(3)
    latencies = np.concatenate([rng.lognormal(-7.5, 0.8, 9000), [1e-7, 0.0015, 250.0]])
    h, one_by_one = LatencyHistogram(), HdrHistogram(1, 100_000_000, 2)
    for n, v in enumerate(latencies, start=1):
        h.add(float(v))
        one_by_one.record_value(max(1, min(round(float(v) * 1e6), 100_000_000)))
        if n in (100, LatencyHistogram.BATCH, 2 * LatencyHistogram.BATCH + 7, len(latencies)):
            for q in (0, 1, 25, 50, 90, 95, 99, 99.9, 100):
                assert h.percentile_ms(q) == one_by_one.get_value_at_percentile(q) / 1e3
            assert h._hdr.total_count == one_by_one.total_count == h.total == n
            assert (h._hdr.min_value, h._hdr.max_value) == (
                one_by_one.min_value,
                one_by_one.max_value,
            )


def test_a_device_whose_acceleration_is_not_in_m_s2_is_refused(bundle, hapt_experiment):
    """Data in g reaching a model that expects m/s² is refused with a reason, not scored."""
    from gaitedge.sources import SampleChunk

    t, x, _ = hapt_experiment
    in_g = x[:400].copy()
    in_g[:, :3] /= 9.80665
    pipe = Pipeline(load_engine(bundle), FanOut([]))
    with pytest.raises(ContractError, match=r"look like g .*expects m/s²"):
        for i in range(0, 400, 50):
            pipe.process(SampleChunk("dev", t[i : i + 50], in_g[i : i + 50], host_rx_s=0.0))
    # Refused for good: a later chunk (even in m/s²) is not let through unchecked.
    windows = pipe.status()[0]["windows"]
    with pytest.raises(ContractError, match=r"look like g .*expects m/s²"):
        pipe.process(SampleChunk("dev", t[400:450], x[400:450], host_rx_s=0.0))
    assert pipe.status()[0]["windows"] == windows
    (row,) = pipe.device_status()
    assert row.line().startswith("[dev] refused: dev: median |acceleration| is 1.0")


@pytest.mark.parametrize("scale", [1000 / 9.80665, 1 / 9.80665], ids=["mg", "g"])
def test_a_device_in_the_wrong_unit_raises_no_alert_before_it_is_refused(
    bundle, hapt_experiment, scale
):
    """A live device in mg or g, in 4-sample frames with a corrupted sample among its first:
    no window of it is scored before the units check refuses it (its first 2.56 s made
    windows, and an mg device standing still was called WALKING_DOWNSTAIRS). In m/s² the same
    frames make the same windows and alerts as the whole stream at once."""
    from gaitedge.sources import SampleChunk

    t, x, _ = hapt_experiment
    bad = x[:400].copy()
    bad[:, :3] *= scale
    bad[30, 2] = np.nan
    pipe = Pipeline(load_engine(bundle), FanOut([]))
    alerts = []
    with pytest.raises(ContractError, match=r"look like m?g "):
        for i in range(0, 400, 4):
            alerts += pipe.process(SampleChunk("dev", t[i : i + 4], bad[i : i + 4], 0.0))
    assert i == 248 and alerts == [] and pipe.stats.windows == 0
    good = x[:3000].copy()
    good[30, 2] = np.nan
    framed, whole = (
        Pipeline(load_engine(bundle), FanOut([])),
        Pipeline(load_engine(bundle), FanOut([])),
    )
    got = [
        a
        for i in range(0, 3000, 4)
        for a in framed.process(SampleChunk("dev", t[i : i + 4], good[i : i + 4], 0.0))
    ]
    want = whole.process(SampleChunk("dev", t[:3000], good, 0.0))
    assert [(a.type, a.label, a.t) for a in got] == [(a.type, a.label, a.t) for a in want]
    assert framed.status() == whole.status() and framed.status()[0]["dropped"] == 1


def test_a_stream_shorter_than_the_units_check_is_judged_at_its_end(bundle, hapt_experiment):
    """4 s of data in g (200 samples, fewer than the check's 250) was scored unchecked: a
    STANDING alert and exit 0 from `replay`. Judged on what it sent when it ends: refused,
    nothing scored; the same 4 s in m/s² make their windows."""
    from gaitedge.sources import SampleChunk

    t, x, _ = hapt_experiment
    in_g = x[:200].copy()
    in_g[:, :3] /= 9.80665
    for imu, refused in ((in_g, True), (x[:200], False)):
        pipe = Pipeline(load_engine(bundle), FanOut([]))
        alerts = []
        for i in range(0, 200, 4):
            alerts += pipe.process(SampleChunk("dev", t[i : i + 4], imu[i : i + 4], 0.0))
        assert alerts == [] and pipe.stats.windows == 0  # held for the check
        if refused:
            with pytest.raises(ContractError, match=r"dev: median \|acceleration\| is 1\.0"):
                pipe.finish()
            assert pipe.stats.windows == 0
            assert pipe.device_status()[0].line().startswith("[dev] refused: dev: median")
        else:
            pipe.finish()
            assert pipe.stats.windows == (200 - 128) // hop(bundle) + 1


def test_a_slow_device_is_checked_after_5_s_not_250_samples(bundle, hapt_experiment):
    """A 12.5 Hz accelerometer (MetaBase's slowest setting) waited 250 samples, 20 s, for its
    first decision; its units are judged on its first 5 s now (50 Hz and faster: on 250
    samples, as before). In g it is refused there, nothing scored."""
    from gaitedge.sources import SampleChunk

    t, x, _ = hapt_experiment
    t, x = t[:2000:4], x[:2000:4].copy()  # 12.5 Hz, 40 s
    first = None
    pipe = Pipeline(load_engine(bundle), FanOut([]))
    for i in range(0, len(t), 4):
        pipe.process(SampleChunk("dev", t[i : i + 4], x[i : i + 4], 0.0))
        if first is None and pipe.stats.windows:
            first = float(t[i + 3])
    assert first is not None and first <= 5.5
    x[:, :3] /= 9.80665
    pipe = Pipeline(load_engine(bundle), FanOut([]))
    with pytest.raises(ContractError, match=r"look like g "):
        for i in range(0, len(t), 4):
            pipe.process(SampleChunk("dev", t[i : i + 4], x[i : i + 4], 0.0))
    assert float(t[i + 3]) <= 5.5 and pipe.stats.windows == 0


def test_a_frame_of_other_channels_after_held_frames_is_the_chain_s_error(bundle, hapt_experiment):
    """Frames held back (before the units check, or while no window is due) and then one with
    the gyroscope missing: the chain refuses that one as it would alone (it was numpy's
    concatenation error), after taking those held."""
    from gaitedge.preprocess import ChainInputError
    from gaitedge.sources import SampleChunk

    t, x, _ = hapt_experiment
    for at in (100, 1500):  # before the units check; held while no window is due
        pipe = Pipeline(load_engine(bundle), FanOut([]))
        for i in range(0, at, 4):
            pipe.process(SampleChunk("dev", t[i : i + 4], x[i : i + 4], 0.0))
        with pytest.raises(ChainInputError, match="no gyroscope"):
            pipe.process(SampleChunk("dev", t[at : at + 4], x[at : at + 4, :3], 0.0))
        assert pipe.devices["dev"].chain.stats.samples_in == at


def test_a_corrupted_sample_among_the_first_does_not_fail_the_units_check(bundle, hapt_experiment):
    """One NaN among a live device's first samples: dropped and counted as any other, and the
    units check judges the others (its median was NaN, and the device was refused as "mg");
    a device in g with one NaN is still refused as g."""
    from gaitedge.sources import SampleChunk

    t, x, _ = hapt_experiment
    corrupted = x[:400].copy()
    corrupted[10, 1] = np.nan
    pipe = Pipeline(load_engine(bundle), FanOut([]))
    for i in range(0, 400, 50):
        pipe.process(SampleChunk("dev", t[i : i + 50], corrupted[i : i + 50], host_rx_s=0.0))
    (status,) = pipe.status()
    assert status["dropped"] == 1 and status["windows"] > 0
    in_g = corrupted.copy()
    in_g[:, :3] /= 9.80665
    pipe = Pipeline(load_engine(bundle), FanOut([]))
    with pytest.raises(ContractError, match=r"is 1\.0\d* m/s².*look like g .*expects m/s²"):
        for i in range(0, 400, 50):
            pipe.process(SampleChunk("dev", t[i : i + 50], in_g[i : i + 50], host_rx_s=0.0))


@settings(max_examples=400, deadline=None)
@given(
    start=st.sampled_from([0.0, 12.345, 1.7e9 + 0.25]),
    steps=st.lists(
        st.sampled_from([0.0, 0.02, 0.03, 0.1, 0.25, 0.4999999, -0.01, -1e-9]), max_size=12
    ),
)
def test_a_live_frame_in_one_piece_is_said_so_as_the_pieces_would(start, steps):
    """feed_chain's check on Python floats agrees with its cut of a chunk into pieces."""
    from gaitedge.pipeline import CALIBRATING_PIECE_S, _one_piece

    t = start + np.concatenate([[0.0], np.cumsum(steps)])
    t = t if len(t) >= 2 else np.array([start, start + 0.02])
    cuts = np.flatnonzero(np.diff(np.floor((t - t[0]) / CALIBRATING_PIECE_S)))
    assert _one_piece(t) == (len(cuts) == 0)
    assert not _one_piece(np.array([start, np.nan, start + 0.02]))
