"""The array paths that make long replays fast give what the per-block and per-window
reference paths give: the mounting estimator's ``feed`` against ``update`` fed block by block
(a real HAPT recording with a slip, any chunking), and the engine's split batches against one
call."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gaitedge.engine import cold_start_model, load_engine
from gaitedge.mounting import MountingEstimator


def _slipped(hapt_experiment) -> np.ndarray:
    """[N, 3] low-pass-free acceleration of a real recording, re-clipped 90 deg half-way."""
    _, x, _ = hapt_experiment
    acc = np.concatenate([x[:, :3], x[:, :3]])
    half = len(acc) // 2
    acc[half:] = acc[half:] @ np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]).T
    return acc


def _by_blocks(acc: np.ndarray) -> tuple[MountingEstimator, np.ndarray]:
    est, rot, i = MountingEstimator(50.0), np.empty((len(acc), 3, 3)), 0
    while i < len(acc):
        j = min(len(acc), i + est.boundary())
        rot[i:j] = est.rotation
        est.update(acc[i:j])
        i = j
    return est, rot


def _fed(acc: np.ndarray, cuts: list[int]) -> tuple[MountingEstimator, np.ndarray]:
    est, rot = MountingEstimator(50.0), np.empty((len(acc), 3, 3))
    for a, b in itertools.pairwise(cuts):
        starts, rots = est.feed(acc[a:b])
        rot[a:b] = rots[np.repeat(np.arange(len(starts)), np.diff([*starts, b - a]))]
    return est, rot


@pytest.mark.parametrize("pieces", [1, 7, 300])
def test_feed_is_update_block_by_block(hapt_experiment, pieces):
    acc = _slipped(hapt_experiment)
    want_est, want = _by_blocks(acc)
    rng = np.random.default_rng(pieces)
    cuts = [0, *sorted(rng.choice(np.arange(1, len(acc)), pieces - 1, replace=False)), len(acc)]
    got_est, got = _fed(acc, cuts)
    assert want_est.walking_s > 60 and want_est.realignments == 1  # it walked and slipped
    np.testing.assert_allclose(got, want, atol=1e-9)
    assert got_est.realignments == want_est.realignments
    assert got_est.walking_s == want_est.walking_s
    assert got_est._short_blocks == want_est._short_blocks
    np.testing.assert_allclose(got_est.short.m3, want_est.short.m3, rtol=1e-9, atol=1e-9)


def test_split_engine_batches_are_one_call():
    engine = load_engine()
    cfg = engine.contract.chain
    x = np.random.default_rng(0).normal(
        size=(engine.MAX_BATCH + 37, *(cfg.window_samples, cfg.n_channels))
    )
    whole = engine.predict(x)
    for head, p in whole.items():
        assert p.shape == (len(x), len(engine.contract.heads[head]))
        single = np.concatenate([engine.predict(x[i : i + 1])[head] for i in (0, len(x) - 1)])
        np.testing.assert_allclose(p[[0, -1]], single, atol=1e-6)


def test_a_large_call_on_two_threads_gives_what_one_gives(hapt_experiment, monkeypatch):
    """``replay --fast``'s engine (``batch_threads``): the windows of 10 min of real HAPT data
    in one call run as batches on two threads at once and give, bit for bit and in order, the
    probabilities of one thread."""
    import threading

    from gaitedge.preprocess import StreamingChain

    t, x, _ = hapt_experiment
    one, two = load_engine(), load_engine(batch_threads=2)
    windows = StreamingChain(one.contract.chain).process(t[:30000], x[:30000]).data
    run, threads = two.session.run, set()
    monkeypatch.setattr(
        two.session, "run", lambda *a: threads.add(threading.get_ident()) or run(*a)
    )
    assert len(windows) > 4 * one.MAX_BATCH
    for n in (one.MAX_BATCH + 1, len(windows)):
        want, got = one.predict(windows[:n]), two.predict(windows[:n])
        for head in want:
            np.testing.assert_array_equal(got[head], want[head])
    assert len(threads) == 2 and threading.get_ident() not in threads


def _ticks(streams: dict[str, tuple[np.ndarray, np.ndarray]], frame: int):
    """Each device's 4-sample frames, tick by tick (device d starts d + 1 samples late, so
    their windows fall due in different ticks)."""
    from gaitedge.sources import SampleChunk

    longest = max(len(t) for t, _ in streams.values())
    for k in range(-(-longest // frame) + 1):
        tick = []
        for d, (name, (t, x)) in enumerate(streams.items()):
            a, b = max(0, k * frame - d - 1), max(0, (k + 1) * frame - d - 1)
            if a < min(b, len(t)):
                tick.append(SampleChunk(name, t[a:b], x[a:b], 0.0, new_connection=a == 0))
        yield tick


def test_one_engine_call_per_tick_gives_what_each_device_alone_gives(hapt_experiment, data_root):
    """Real recordings of four devices (two HAPT stretches with walking, two SisFall falls),
    in live 4-sample frames: the chunks of each tick through ``process_many`` (one engine call)
    raise the alerts, in the same order, and leave the devices in the states that
    ``process`` on each chunk in turn does."""
    from gaitedge.datasets import sisfall_recordings
    from gaitedge.pipeline import Pipeline
    from gaitedge.sinks import FanOut

    t, x, _ = hapt_experiment
    falls = [r for r in sisfall_recordings(data_root, ["sisfall:SA03"]) if r.is_fall][:2]
    streams = {
        "wrist": (t[:3000], x[:3000]),
        "hip": (t[:3000], x[9000:12000]),
        **{f"fall{i}": (r.timestamp_s, r.imu) for i, r in enumerate(falls)},
    }
    engine = load_engine()
    alone, together = Pipeline(engine, FanOut([])), Pipeline(engine, FanOut([]))
    want, got = [], []
    for tick in _ticks(streams, 4):
        for chunk in tick:
            want += alone.process(chunk)
        got += together.process_many(tick)
    want += alone.finish()
    got += together.finish()
    key = [(a.device, a.type, a.label, a.t, a.t_event, a.confirmed_by) for a in want]
    assert [(a.device, a.type, a.label, a.t, a.t_event, a.confirmed_by) for a in got] == key
    np.testing.assert_allclose([a.p for a in got], [a.p for a in want], atol=1e-6)
    assert {a.type.value for a in want} >= {"activity", "fall"}  # both heads were exercised
    assert {a.device for a in want} == set(streams)
    assert together.status() == alone.status()
    assert together.stats.windows == alone.stats.windows > 500
    # one engine call per tick that completed a window, not one per device's chain call
    calls_alone = alone.stats.latency["engine"].total
    assert together.stats.latency["engine"].total < 0.75 * calls_alone


def test_two_chunks_of_one_device_in_one_tick_score_in_order(hapt_experiment):
    """A tick that carries two chunks of one device (a source that read two frames at once)
    beside another device's: the first chunk's windows are scored before the second goes
    through the chain, so the alerts and states are those of ``process`` on each in turn."""
    from gaitedge.pipeline import Pipeline
    from gaitedge.sinks import FanOut
    from gaitedge.sources import SampleChunk

    t, x, _ = hapt_experiment
    streams = {"wrist": (t[:3000], x[:3000]), "hip": (t[:3000], x[9000:12000])}
    engine = load_engine()
    alone, together = Pipeline(engine, FanOut([])), Pipeline(engine, FanOut([]))
    want, got = [], []
    for tick in _ticks(streams, 8):
        split = []
        for chunk in tick:  # each 8-sample frame as two 4-sample chunks of the same device
            for a in range(0, len(chunk.t_s), 4):
                part = slice(a, a + 4)
                first = chunk.new_connection and a == 0
                split.append(
                    SampleChunk(
                        chunk.device, chunk.t_s[part], chunk.imu[part], 0.0, new_connection=first
                    )
                )
        for chunk in split:
            want += alone.process(chunk)
        got += together.process_many(split)
    want += alone.finish()
    got += together.finish()
    key = [(a.device, a.type, a.label, a.t, a.t_event) for a in want]
    assert [(a.device, a.type, a.label, a.t, a.t_event) for a in got] == key
    assert len(key) >= 4
    assert together.status() == alone.status()
    assert together.stats.windows == alone.stats.windows > 500


def test_frames_held_until_a_window_is_due_change_nothing(hapt_experiment, data_root, monkeypatch):
    """Live frames that cannot complete a window wait for the one that can (``Pipeline._wait``):
    the same alerts, bit for bit, and every window decided on the frame it was decided on
    before (none later), as each frame through the chain at once, in far fewer chain calls.
    Real streams: HAPT experiment 1 calibrating from cold then calibrated (4-sample frames),
    the same as a phone sends it (stamps rounded to 30 ms: ties; a 3-s loss; the clock
    stepping back 200 s; an axis map), and SisFall falls in 3-sample frames (mounting given);
    the two HAPT streams again with the cold-start model beside the calibrating device."""
    from gaitedge.datasets import sisfall_recordings
    from gaitedge.pipeline import Pipeline
    from gaitedge.sinks import FanOut
    from gaitedge.sources.base import SampleChunk

    t, x, _ = hapt_experiment
    t, x = t[:21000], x[:21000]
    phone = np.round(t, 2) // 0.03 * 0.03
    phone[15000:] -= 200.0
    keep = (t < 250) | (t >= 253)
    falls = [r for r in sisfall_recordings(data_root, ["sisfall:SA03"]) if r.is_fall][:3]
    cases = [("hapt", t, x, 4, None), ("phone", phone[keep], x[keep], 4, "y,-x,z")]
    cases += [(f"fall{i}", r.timestamp_s, r.imu, 3, "none") for i, r in enumerate(falls)]
    # with the cold-start model beside the device while it calibrates (as replay and listen)
    cases += [("hapt-cold", t, x, 4, "cold"), ("phone-cold", phone[keep], x[keep], 4, "cold")]
    engine, cold = load_engine(), load_engine(cold_start_model())
    wait = Pipeline._wait

    def run(hold: bool):
        monkeypatch.setattr(Pipeline, "_wait", wait if hold else lambda *a: False)
        out = {}
        for name, tt, xx, frame, mount in cases:
            if mount == "cold":
                pipe = Pipeline(engine, FanOut([]), cold_start_engine=lambda: cold)
            else:
                pipe = Pipeline(engine, FanOut([]), mount=mount)
            alerts, made = [], []  # made: the windows decided after each frame
            for a in range(0, len(tt), frame):
                alerts += pipe.process(SampleChunk(name, tt[a : a + frame], xx[a : a + frame], 0.0))
                made.append(pipe.stats.windows)
            alerts += pipe.finish()
            key = [(a.type, a.label, a.t, a.t_event, a.p, a.confirmed_by, a.extra) for a in alerts]
            out[name] = key, made, pipe.stats.latency["chain"].total
        return out

    held, each = run(True), run(False)
    for name in held:
        assert held[name][:2] == each[name][:2], name
        # a frame in 2.5 completes a window; ties leave some frames unheld (their samples'
        # times are not known yet); a calibrating mounting near its goal holds none
        assert held[name][2] < {"phone": 0.65, "phone-cold": 0.7}.get(name, 0.6) * each[name][2]
    kinds = {k[0].value for name in held for k in held[name][0]}
    assert kinds >= {"activity", "fall"}


def test_listen_with_several_devices_scores_each_tick_in_one_call(hapt_experiment):
    """The stream loop (``runner.Tick``, what ``stream_many`` runs): three real streams of
    small chunks, the chunks that arrive together scored together, and each device's alerts
    those of the device streamed alone."""
    import asyncio

    from gaitedge.pipeline import Pipeline
    from gaitedge.recording import Recording
    from gaitedge.runner import Tick, stream
    from gaitedge.sinks import FanOut, ListSink
    from gaitedge.sources import ReplaySource

    t, x, _ = hapt_experiment
    recs = {f"dev{i}": Recording(t[:1000], x[a : a + 1000]) for i, a in enumerate((0, 9000, 12000))}
    engine = load_engine()

    def sources():
        return [ReplaySource(recording=r, fast=True, fast_chunk_samples=10, device=d)
                for d, r in recs.items()]  # fmt: skip

    alone = {}
    for source in sources():
        sink = ListSink()
        asyncio.run(stream(Pipeline(engine, FanOut([sink]), mount="none"), source))
        alone[source.device] = sink.alerts
    sink = ListSink()
    pipe = Pipeline(engine, FanOut([sink]), mount="none")
    tick = Tick(pipe)

    async def together():
        await asyncio.gather(*(stream(pipe, s, tick=tick) for s in sources()))

    asyncio.run(together())
    for device, want in alone.items():
        got = [a for a in sink.alerts if a.device == device]
        assert [(a.type, a.label, a.t, a.t_event) for a in got] == [
            (a.type, a.label, a.t, a.t_event) for a in want
        ]
        assert len(want) >= 2
    assert tick.passes <= pipe.stats.chunks / 2  # three devices' chunks share most passes
