"""Replay is what listen would have said: the mounting starts cold (or stored) and calibrates
online, activity is held back until it has whatever the chunking, a stream that never calibrates
still gets activity at its end, and the bench's mounting references can fail."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from bench.devices import orientation_errors, step_axis
from gaitedge.alerts import AlertType
from gaitedge.cli import app
from gaitedge.engine import DEFAULT_MODEL, load_engine
from gaitedge.pipeline import CALIBRATING_PIECE_S, Pipeline, feed_chain
from gaitedge.preprocess import StreamingChain
from gaitedge.recording import Recording, write_recording
from gaitedge.sinks import FanOut, ListSink
from gaitedge.sources.base import SampleChunk
from gaitedge.windows import Windows

runner = CliRunner()


@pytest.fixture(scope="module")
def engine():
    return load_engine(DEFAULT_MODEL)


def _stream(engine, t, x, chunk: int):
    sink = ListSink()
    pipe = Pipeline(engine, FanOut([sink]))
    for a in range(0, len(t), chunk):
        pipe.process(SampleChunk("dev", t[a : a + chunk], x[a : a + chunk], host_rx_s=0.0))
    pipe.finish()
    return sink.alerts, pipe


def test_a_large_chunk_releases_no_activity_from_before_calibration(engine, hapt_experiment):
    """HAPT experiment 1's first 4 min: 2 min of postures, then walking. One 4-min chunk (as
    `replay --fast` feeds it) and 4-sample chunks (as a device sends) calibrate at the same
    moment, and no activity is reported from before it."""
    t, x, _ = hapt_experiment
    t, x = t[:12000], x[:12000]
    whole, pipe_whole = _stream(engine, t, x, len(t))
    live, pipe_live = _stream(engine, t, x, 4)
    at_whole = pipe_whole.devices["dev"].calibrated_at_s
    at_live = pipe_live.devices["dev"].calibrated_at_s
    assert at_live is not None and 120 < at_live < 240  # walking starts after the postures
    assert abs(at_whole - at_live) <= CALIBRATING_PIECE_S + 0.02
    for alerts in (whole, live):
        activity = [a for a in alerts if a.type is AlertType.ACTIVITY]
        assert activity and all(a.t >= at_live - CALIBRATING_PIECE_S for a in activity)
        assert all("mounting" not in a.extra for a in activity)
    labels = [(a.label, round(a.t)) for a in whole if a.type is AlertType.ACTIVITY]
    assert labels == [(a.label, round(a.t)) for a in live if a.type is AlertType.ACTIVITY]


def _piece_by_piece(chain, t, x):
    """The reference: each :data:`CALIBRATING_PIECE_S` of input its own chain call, its windows
    flagged with the mounting's state after it."""
    cuts = np.flatnonzero(np.diff(np.floor((t - t[0]) / CALIBRATING_PIECE_S))) + 1
    for a, b in zip((0, *cuts), (*cuts, len(t)), strict=True):
        windows = chain.process(t[a:b], x[a:b])
        yield windows, np.full(len(windows), chain.mounting.calibrated)


def _fed(chain, t, x, chunk: int, feed):
    parts, flags = [], []
    for a in range(0, len(t), chunk):
        for windows, calibrated in feed(chain, t[a : a + chunk], x[a : a + chunk]):
            parts.append(windows)
            flags.append(calibrated)
    return Windows.concat(parts), np.concatenate(flags), len(parts)


def _feed_chain(chain, t, x):
    for _, windows, _ in feed_chain(chain, t, x):
        yield windows, np.full(len(windows), chain.mounting.calibrated)


@pytest.mark.parametrize("margin_s", [None, -40.0])
def test_pieces_the_mounting_cannot_calibrate_in_go_whole(engine, hapt_experiment, margin_s,
                                                          monkeypatch):  # fmt: skip
    """While the mounting calibrates, ``feed_chain`` gives every window and its calibrated
    flag as 0.5-s pieces would, in far fewer chain calls: on HAPT experiment 1 (postures, then
    walking), clean and as a phone sends it (10-ms stamps: ties; a 3-s loss; a clock that steps
    back 100 s), in 1-min and 7-min chunks. With a margin that lets the pieces overrun the
    moment it calibrates (-40 s), the chain is put back and the pieces go one by one: the same
    windows again."""
    from gaitedge import pipeline

    if margin_s is not None:
        monkeypatch.setattr(pipeline, "CALIBRATION_MARGIN_S", margin_s)
    t, x, _ = hapt_experiment
    t, x = t[:21000], x[:21000]
    t_phone = np.round(t, 2)
    t_phone[12000:] -= 100.0
    keep = (t < 100) | (t >= 103)
    calls = []
    process = StreamingChain.process
    monkeypatch.setattr(StreamingChain, "process", lambda s, *a: calls.append(1) or process(s, *a))
    for tt, xx in ((t, x), (t_phone[keep], x[keep])):
        for chunk in (3000, 21000):
            cfg = engine.contract.chain
            ref, ref_flags, n_ref = _fed(StreamingChain(cfg), tt, xx, chunk, _piece_by_piece)
            calls.clear()
            got, flags, n_got = _fed(StreamingChain(cfg), tt, xx, chunk, _feed_chain)
            assert ref_flags.any() and not ref_flags.all()  # it calibrates in the stream
            np.testing.assert_array_equal(flags, ref_flags)
            np.testing.assert_array_equal(got.t_end_s, ref.t_end_s)
            np.testing.assert_array_equal(got.segment, ref.segment)
            np.testing.assert_allclose(got.data, ref.data, rtol=0, atol=1e-9)
            if margin_s is None:  # no call undone, a tenth of the calls
                assert len(calls) == n_got < n_ref / 10, (len(calls), n_got, n_ref)
            else:
                assert len(calls) > n_got  # a call was undone


def test_a_stream_that_never_walks_gets_activity_at_its_end(engine, hapt_experiment):
    """The first minute of HAPT experiment 1 is standing and sitting: the mounting never
    calibrates, the status says activity is held back, and the end of the stream reports one
    activity, marked uncalibrated."""
    t, x, _ = hapt_experiment
    sink = ListSink()
    pipe = Pipeline(engine, FanOut([sink]))
    pipe.process(SampleChunk("dev", t[:3000], x[:3000], host_rx_s=0.0))
    assert not [a for a in sink.alerts if a.type is AlertType.ACTIVITY]
    assert "activity held back" in pipe.device_status()[0].mounting
    end = [a for a in pipe.finish() if a.type is AlertType.ACTIVITY]
    assert len(end) == 1 and end[0].extra["mounting"] == "uncalibrated"
    assert end[0].label in engine.contract.heads["activity"]
    assert end[0].extra["windows"] == pipe.devices["dev"].windows
    assert end[0] in sink.alerts  # sent to the sinks like any alert
    assert pipe.finish() == []  # said once


def test_replay_calibrates_online_unless_told_to_look_ahead(hapt_experiment, tmp_path):
    t, x, _ = hapt_experiment
    path = tmp_path / "hapt.csv"
    write_recording(path, Recording(t[:12000], x[:12000]))
    first = {}
    for extra in ([], ["--calibrate-first"]):
        jsonl = tmp_path / f"alerts{len(extra)}.jsonl"
        result = runner.invoke(
            app, ["replay", str(path), "--fast", "--alerts-jsonl", str(jsonl), *extra]
        )
        assert result.exit_code == 0, result.output
        alerts = [json.loads(line) for line in jsonl.read_text().splitlines()]
        acts = [a for a in alerts if a["type"] == "activity"]
        # Before the mounting calibrates online, activity is the shipped cold-start model's,
        # marked so; the default model's own starts at the calibration.
        cold = [a for a in acts if a.get("mounting") == "cold start"]
        own = [a for a in acts if a.get("mounting") != "cold start"]
        first[bool(extra)] = min(a["t"] for a in own)
        if extra:
            assert not cold  # calibrated first: the default model from the first seconds
        else:
            assert cold and min(a["t"] for a in cold) < 10, cold
            assert max(a["t"] for a in cold) <= first[False] + 1.0
            assert {a["model"] for a in cold} == {"gaitedge-vertical 0.4.1"}
            assert "activity before that came from the cold-start model" in result.stderr
            assert "(p=" in result.stdout and ", cold start)" in result.stdout  # the timeline
        online_line = "the mounting calibrated online at t=" in result.stderr
        assert online_line is not bool(extra)
    assert first[True] < 10 < 120 < first[False]  # look-ahead: activity from the first seconds


def test_the_mounting_reference_can_fail(hapt_experiment):
    """The fore-aft reference comes from the data (step-frequency axis of labelled walking, in
    the plane normal to standing gravity): it turns with the data, and a heading estimate
    turned 60 degrees about the vertical is judged 60 degrees off."""
    _, x, label = hapt_experiment
    acc = x[:, :3]
    up = acc[label == 5].mean(axis=0)
    up /= np.linalg.norm(up)
    fwd = step_axis(acc[np.isin(label, (1, 2, 3))], up, 50.0)
    assert fwd is not None and abs(fwd @ up) < 1e-9
    r = Rotation.random(random_state=3).as_matrix()
    turned = step_axis(acc[np.isin(label, (1, 2, 3))] @ r.T, r @ up, 50.0)
    assert abs(abs(turned @ (r @ fwd)) - 1) < 1e-6
    side = np.cross(up, fwd)
    exact = np.stack([up, fwd, side])
    assert orientation_errors(exact, up, fwd) == pytest.approx((0.0, 0.0), abs=1e-6)
    spin = Rotation.from_rotvec(np.radians(60) * up).as_matrix()
    tilt, heading = orientation_errors(exact @ spin.T, up, fwd)
    assert tilt == pytest.approx(0.0, abs=1e-6) and heading == pytest.approx(60.0, abs=1e-6)
