"""A cold-start model beside a device whose automatic mounting calibrates (issue 22 item 1):
its activity alerts (marked ``"mounting": "cold start"`` and the model) stand in for the held-
back ones, and its fall vote for the model gate, until the device calibrates; from then on
everything is what the device's own model says without it. Real HAPT data through the
runtime's replay path; the bundles are test bundles (tests/bundles.py), one with the automatic
mounting and one with ``vertical``, except where the shipped ones are named."""

from __future__ import annotations

import asyncio
import itertools
import shutil

import numpy as np
import pytest

import gaitedge.engine
from gaitedge.alerts import ActivityConfig, AlertType
from gaitedge.engine import cold_start_model, load_engine
from gaitedge.pipeline import Pipeline
from gaitedge.preprocess import ChainConfig
from gaitedge.recording import Recording
from gaitedge.runner import status, stream
from gaitedge.sinks import FanOut, ListSink
from gaitedge.sources import ReplaySource
from tests.bundles import NORM_MEAN, NORM_STD, make_bundle


@pytest.fixture(scope="module")
def auto_bundle(tmp_path_factory):
    chain = ChainConfig(hop_samples=25, mounting="auto")
    chain = chain.with_normalization(np.array(NORM_MEAN), np.array(NORM_STD))
    return make_bundle(tmp_path_factory.mktemp("auto") / "m.onnx", chain=chain)


@pytest.fixture(scope="module")
def vertical_bundle(tmp_path_factory):
    chain = ChainConfig(hop_samples=25, mounting="vertical")
    chain = chain.with_normalization(np.array(NORM_MEAN), np.array(NORM_STD))
    return make_bundle(tmp_path_factory.mktemp("vertical") / "v.onnx", chain=chain, seed=1)


def replay(auto_bundle, t, imu, cold=None, store=None):
    """``replay --fast`` of one recording, from a cold start or ``store``'s estimate:
    (alerts, pipeline)."""
    sink = ListSink()
    opener = None if cold is None else (lambda: load_engine(cold))
    # The test bundles are untrained (probabilities near uniform): every window votes.
    config = ActivityConfig(min_prob=0.0)
    pipe = Pipeline(
        load_engine(auto_bundle),
        FanOut([sink]),
        cold_start_engine=opener,
        activity_config=config,
        mount_store=store,
    )
    with pipe:
        source = ReplaySource(recording=Recording(t, imu), fast=True, device="dev")
        asyncio.run(stream(pipe, source))
    return sink.alerts, pipe


def _marked(alert) -> bool:
    return alert.extra.get("mounting") == "cold start"


def test_the_cold_start_model_speaks_until_the_device_calibrates(
    auto_bundle, vertical_bundle, hapt_experiment
):
    t, imu, _ = hapt_experiment
    alone, pipe_alone = replay(auto_bundle, t, imu)
    both, pipe = replay(auto_bundle, t, imu, cold=vertical_bundle)
    calibrated_at = pipe.devices["dev"].calibrated_at_s
    assert calibrated_at is not None and calibrated_at > 60  # experiment 1 walks after ~2.5 min
    early = [a for a in both if _marked(a)]
    assert early, "no activity from the cold-start model"
    assert all(a.type is AlertType.ACTIVITY and a.t <= calibrated_at + 1.0 for a in early)
    assert {a.extra["model"] for a in early} == {"tiny-test 0.0.1"}
    assert min(a.t for a in early) < 30  # from the first seconds, not after 2.5 min
    # Everything else is what the device's own model says alone, alert for alert (here: no
    # fall; before the calibration a fall would rest on the cold-start model's vote).
    assert [a for a in both if not _marked(a)] == alone
    assert pipe.stats.windows == pipe_alone.stats.windows  # its windows are not the device's


def test_a_stream_that_never_calibrates_gets_activity_not_a_held_back_summary(
    auto_bundle, vertical_bundle, hapt_experiment
):
    t, imu, _ = hapt_experiment
    n = 50 * 60  # the first minute: postures, no walking
    alone, _ = replay(auto_bundle, t[:n], imu[:n])
    assert [a.extra.get("mounting") for a in alone if a.type is AlertType.ACTIVITY] == [
        "uncalibrated"
    ]
    both, pipe = replay(auto_bundle, t[:n], imu[:n], cold=vertical_bundle)
    acts = [a for a in both if a.type is AlertType.ACTIVITY]
    assert acts and all(_marked(a) for a in acts)
    (row,) = status(pipe, [])
    assert "activity from the cold-start model tiny-test" in row.mounting
    assert row.activity == acts[-1].label


def test_the_shipped_cold_start_bundle_is_found_by_its_contract(
    tmp_path, monkeypatch, auto_bundle, vertical_bundle
):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copyfile(auto_bundle, models / "gaitedge-vertical.onnx")  # misleading name
    shutil.copyfile(vertical_bundle, models / "zz.onnx")
    shutil.copyfile(vertical_bundle, models / "a-fp32.onnx")  # a reference, never picked
    assert cold_start_model(models) == models / "zz.onnx"
    monkeypatch.setattr(gaitedge.engine, "MODELS_DIR", models)
    assert cold_start_model() == models / "zz.onnx"
    (models / "zz.onnx").unlink()
    (models / "a-fp32.onnx").unlink()
    assert cold_start_model() is None


def test_a_stored_estimate_needs_no_cold_start_model(auto_bundle, vertical_bundle, hapt_experiment):
    from gaitedge.mounting import MountStore
    from gaitedge.preprocess import calibrate

    t, imu, _ = hapt_experiment
    store = MountStore(None)
    store.put("dev", calibrate(load_engine(auto_bundle).contract.chain, [(t, imu)]))
    alerts, pipe = replay(auto_bundle, t, imu, cold=vertical_bundle, store=store)
    assert pipe.devices["dev"].companion is None
    assert not [a for a in alerts if _marked(a)]


def test_the_cold_start_models_fall_vote_removes_false_alarms_before_calibration(data_root):
    """Before a new device calibrates, its own model sees an unaligned frame and a fall rests on
    impact + orientation change alone; the shipped cold-start model's fall vote stands in for
    the model gate. Held-out SisFall subject SA08 from a cold start in its own frame: measured,
    4 of its D14 trials (ADL) raise a false fall alarm without it, none with it (1 with the
    cold-start model 0.4.0); its falls are
    still raised."""
    from gaitedge import datasets as ds
    from gaitedge.engine import DEFAULT_MODEL

    main = load_engine(DEFAULT_MODEL)
    cold = load_engine(cold_start_model())

    def falls(rec, with_cold: bool) -> int:
        sink = ListSink()
        opener = (lambda: cold) if with_cold else None
        with Pipeline(main, FanOut([sink]), cold_start_engine=opener) as pipe:
            source = ReplaySource(recording=Recording(rec.timestamp_s, rec.imu), fast=True)
            asyncio.run(stream(pipe, source))
        return sum(a.type is AlertType.FALL for a in sink.alerts)

    recs = list(ds.sisfall_recordings(data_root, ["sisfall:SA08"]))
    d14 = [r for r in recs if r.activity == "D14"]
    alone = sum(falls(r, False) > 0 for r in d14)
    voted = sum(falls(r, True) > 0 for r in d14)
    assert (alone, voted) == (4, 0), (alone, voted, len(d14))
    fall_trials = [r for r in recs if r.is_fall][:10]
    assert sum(falls(r, True) > 0 for r in fall_trials) >= 9


def test_a_stored_estimate_that_had_too_little_walking_hands_over_once_calibrated(
    auto_bundle, vertical_bundle, hapt_experiment
):
    """A stored estimate from a first minute without walking: the cold-start model speaks until
    the device calibrates online, then never again."""
    from gaitedge.mounting import MountStore
    from gaitedge.preprocess import calibrate

    t, imu, _ = hapt_experiment
    early = calibrate(load_engine(auto_bundle).contract.chain, [(t[:3000], imu[:3000])])
    assert not early.calibrated
    store = MountStore(None)
    store.put("dev", early)
    alerts, pipe = replay(auto_bundle, t, imu, cold=vertical_bundle, store=store)
    cold = [a for a in alerts if _marked(a)]
    own = [a for a in alerts if a.type is AlertType.ACTIVITY and not _marked(a)]
    assert cold and own and pipe.devices["dev"].companion is None
    assert max(a.t for a in cold) <= min(a.t for a in own) + 1.0


def test_a_large_chunk_sends_its_alerts_in_the_order_live_chunks_do(data_root):
    """``replay --fast`` hands a whole SisFall trial over as one chunk; before the device
    calibrates, the cold-start model's activity alerts and the device's fall alert (resting on
    that model's vote) reach the sinks in time order, as from live chunks, though the whole
    trial goes through each model's chain in one call (the mounting cannot calibrate in it)."""
    from gaitedge import datasets as ds
    from gaitedge.engine import DEFAULT_MODEL

    main, cold = load_engine(DEFAULT_MODEL), load_engine(cold_start_model())
    recs = [r for r in ds.sisfall_recordings(data_root, ["sisfall:SA08"]) if r.is_fall]

    def alerts(rec, chunk_samples: int) -> list:
        sink = ListSink()
        with Pipeline(main, FanOut([sink]), cold_start_engine=lambda: cold) as pipe:
            recording = Recording(rec.timestamp_s, rec.imu)
            source = ReplaySource(recording=recording, fast=True, fast_chunk_samples=chunk_samples)
            asyncio.run(stream(pipe, source))
        return sink.alerts

    checked = 0
    for rec in recs[:6]:
        fast = alerts(rec, 1 << 14)  # the whole trial at once
        kinds = {a.type for a in fast}
        if kinds != {AlertType.FALL, AlertType.ACTIVITY}:
            continue
        checked += 1
        assert all(b.t >= a.t for a, b in itertools.pairwise(fast)), [
            (a.type.value, round(a.t, 2)) for a in fast
        ]
        live = alerts(rec, 20)  # 0.1 s of SisFall's 200 Hz
        assert [(a.type, a.label) for a in fast] == [(a.type, a.label) for a in live]
    assert checked >= 3


def test_the_cold_start_model_reuses_its_devices_filtered_samples(hapt_experiment, monkeypatch):
    """The shipped models on a real recording in live 4-sample frames: the cold-start model's
    chain takes the device chain's filtered pieces (one front for two models while the device
    calibrates) and raises, bit for bit, what it raises filtering the samples itself; once the
    device has calibrated its chain keeps no pieces."""
    from gaitedge.engine import DEFAULT_MODEL
    from gaitedge.preprocess import StreamingChain
    from gaitedge.sources.base import SampleChunk

    main, cold = load_engine(DEFAULT_MODEL), load_engine(cold_start_model())
    t, x, _ = hapt_experiment
    t, x = t[:15000], x[:15000]  # calibrates (walking) after ~2.5 min of postures
    follow = StreamingChain.follow
    calls = []
    monkeypatch.setattr(
        StreamingChain, "follow", lambda s, leader: calls.append(1) or follow(s, leader)
    )

    def alerts(share: bool):
        if not share:
            monkeypatch.setattr(StreamingChain, "shares_front_with", lambda s, o: False)
        sink = ListSink()
        with Pipeline(main, FanOut([sink]), cold_start_engine=lambda: cold) as pipe:
            for a in range(0, len(t), 4):
                pipe.process(SampleChunk("dev", t[a : a + 4], x[a : a + 4], 0.0))
            pipe.finish()
            state = pipe.devices["dev"]
        return [(a.t, a.type, a.label, a.p, a.extra.get("mounting")) for a in sink.alerts], state

    shared, state = alerts(True)
    # ~1900 frames before it calibrates, most held until one completes a window
    assert len(calls) > 600 and state.calibrated_at_s is not None
    assert state.companion is None and not state.chain.keep_front and not state.chain.front
    n = len(calls)
    alone, _ = alerts(False)
    assert len(calls) == n  # filtered its own samples
    assert shared == alone
    assert sum(m == "cold start" for *_, m in shared) >= 2
