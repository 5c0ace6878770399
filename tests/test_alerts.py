"""Activity smoothing and fall confirmation, on synthetic streams and real SisFall trials."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaitedge import datasets as ds
from gaitedge.alerts import (
    ActivityConfig,
    ActivitySmoother,
    Alert,
    AlertType,
    Confirmation,
    FallConfig,
    FallDetector,
    denormalize,
)
from gaitedge.preprocess import ChainConfig, run_offline
from gaitedge.units import STANDARD_GRAVITY_M_S2

G = STANDARD_GRAVITY_M_S2
CHAIN = ChainConfig(hop_samples=10)
RATE_HZ = CHAIN.sample_rate_hz
LABELS = ("walking", "sitting", "lying")
WALK, SIT, LIE = range(3)


def onehot(labels: list[int], p: float = 0.9) -> np.ndarray:
    """[K, 3] probabilities with ``p`` on each window's label."""
    probs = np.full((len(labels), len(LABELS)), (1 - p) / (len(LABELS) - 1))
    probs[np.arange(len(labels)), labels] = p
    return probs


def window_times(k: int, hop_s: float = 0.2, window_s: float = 2.56) -> tuple:
    t_start = np.arange(k) * hop_s
    return t_start, t_start + window_s


def test_alert_json_has_the_checked_keys() -> None:
    alert = Alert(12.4, 11.6, AlertType.FALL, "fall", 0.97, "waist", (Confirmation.STILLNESS,))
    line = alert.to_json()
    data = json.loads(line)
    assert "\n" not in line
    assert {"t", "t_event", "type", "label", "p", "device"} <= set(data)
    assert data["type"] == "fall" and data["device"] == "waist"
    assert data["t"] == 12.4 and data["t_event"] == 11.6
    assert data["latency_s"] == pytest.approx(0.8)
    assert data["confirmed_by"] == ["stillness"]


def test_activity_flicker_is_suppressed_and_a_change_reported_once() -> None:
    smoother = ActivitySmoother(LABELS, ActivityConfig(k=3, n=4))
    labels = [WALK] * 6 + [SIT] + [WALK] * 3 + [SIT] * 6
    t_start, t_end = window_times(len(labels))
    alerts = [
        smoother.update(a, b, p) for a, b, p in zip(t_start, t_end, onehot(labels), strict=False)
    ]
    raised = [(i, a) for i, a in enumerate(alerts) if a is not None]
    assert [a.label for _, a in raised] == ["walking", "sitting"]
    (i_walk, _walk), (i_sit, sit) = raised
    assert i_walk == 2  # the third walking window completes 3 of 4
    assert i_sit == 12  # windows 10, 11, 12 are the first three sitting votes in a row
    assert sit.t == t_end[12]
    assert sit.t_event == pytest.approx((t_start[10] + t_end[10]) / 2)
    assert sit.t_event <= sit.t
    assert sit.p == pytest.approx(0.9)


def test_unconfident_windows_abstain() -> None:
    smoother = ActivitySmoother(LABELS, ActivityConfig(k=2, n=3, min_prob=0.6))
    t_start, t_end = window_times(6)
    probs = onehot([LIE] * 6, p=0.5)
    assert smoother.update_batch(t_start, t_end, probs) == []


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, len(LABELS) - 1), min_size=1, max_size=60),
    confidence=st.lists(st.floats(0.3, 1.0), min_size=60, max_size=60),
    k_n=st.tuples(st.integers(1, 5), st.integers(0, 4)),
    cuts=st.lists(st.integers(0, 60), max_size=5),
)
def test_activity_batch_equals_loop(labels, confidence, k_n, cuts) -> None:
    cfg = ActivityConfig(k=k_n[0], n=k_n[0] + k_n[1], min_prob=0.6)
    probs = onehot(labels) * np.array(confidence[: len(labels)])[:, None]
    t_start, t_end = window_times(len(labels))
    looped = ActivitySmoother(LABELS, cfg)
    expected = [looped.update(a, b, p) for a, b, p in zip(t_start, t_end, probs, strict=False)]
    expected = [a for a in expected if a is not None]
    batched = ActivitySmoother(LABELS, cfg)
    edges = [0, *sorted(c for c in cuts if c < len(labels)), len(labels)]
    got = []
    for a, b in itertools.pairwise(edges):
        got += batched.update_batch(t_start[a:b], t_end[a:b], probs[a:b])
    assert got == expected


def test_activity_config_is_validated() -> None:
    with pytest.raises(ValueError, match="k <= n"):
        ActivityConfig(k=4, n=3)


def synthetic_fall(
    lie_s: float = 4.0, stand_s: float = 5.0, impact_g: float = 4.0
) -> tuple[np.ndarray, np.ndarray, float]:
    """Standing still, a 2-sample impact, then lying still on the side: times, [N, 6], impact t."""
    n_stand, n_lie = int(stand_s * RATE_HZ), int(lie_s * RATE_HZ)
    acc = np.concatenate([np.tile([0, 0, G], (n_stand, 1)), np.tile([G, 0, 0], (n_lie, 1))])
    acc[n_stand : n_stand + 2] = [impact_g * G, 0, 0]
    imu = np.concatenate([acc, np.zeros_like(acc)], axis=1)
    return np.arange(len(imu)) / RATE_HZ, imu, n_stand / RATE_HZ


def detect(t: np.ndarray, imu: np.ndarray, p_fall: float = 1.0, **cfg) -> list[Alert]:
    windows = run_offline(CHAIN, t, imu)
    detector = FallDetector(CHAIN.channels, FallConfig(**cfg), device="test")
    return detector.update_windows(windows, np.full(len(windows), p_fall), CHAIN)


@pytest.mark.parametrize(
    "rules",
    [
        (Confirmation.ORIENTATION,),
        (Confirmation.STILLNESS,),
        (Confirmation.STILLNESS, Confirmation.ORIENTATION),
    ],
    ids=["orientation", "stillness", "both"],
)
def test_synthetic_fall_is_confirmed_within_a_second(rules) -> None:
    t, imu, t_impact = synthetic_fall()
    (alert,) = detect(t, imu, confirmations=rules, require_all=True)
    assert alert.type is AlertType.FALL and alert.device == "test"
    assert abs(alert.t_event - t_impact) <= 1.5 / RATE_HZ  # the chain's low-pass delays a little
    assert 0 < alert.latency_s <= 1.0
    assert set(alert.confirmed_by) == set(rules)


def test_no_confirmation_no_alert() -> None:
    """An impact that ends upright and moving (a stumble, a jump) is not a fall."""
    t, imu, t_impact = synthetic_fall()
    after = t > t_impact + 0.05
    rng = np.random.default_rng(0)
    imu[after, :3] = np.array([0, 0, G]) + rng.normal(0, 0.5 * G, (int(after.sum()), 3))
    assert detect(t, imu, confirmations=(Confirmation.STILLNESS, Confirmation.ORIENTATION)) == []


def test_model_probability_gates_the_alert() -> None:
    t, imu, _ = synthetic_fall()
    assert detect(t, imu, p_fall=0.2) == []
    assert len(detect(t, imu, p_fall=0.2, prob_threshold=0.1)) == 1


def test_refractory_period_keeps_one_alert_per_fall() -> None:
    _t1, imu1, _ = synthetic_fall(lie_s=1.5)
    _, imu2, _ = synthetic_fall(lie_s=4.0, stand_s=4.0)
    imu = np.concatenate([imu1, imu2])
    t = np.arange(len(imu)) / RATE_HZ
    assert len(detect(t, imu, refractory_s=10.0)) == 1
    assert len(detect(t, imu, refractory_s=1.0)) == 2


def test_new_segment_drops_a_pending_impact() -> None:
    t, imu, t_impact = synthetic_fall()
    t = t + np.where(t > t_impact + 0.1, 1.0, 0.0)  # the stream breaks just after the impact
    # A confirmation window long enough to reach into the next segment: only the reset at the
    # segment break keeps the old impact from being confirmed there.
    cfg = {"confirm_window_s": 10.0, "pre_impact_s": 0.5}
    assert len(np.unique(run_offline(CHAIN, t, imu).segment)) == 2
    assert detect(t, imu, **cfg) == []
    t_joined, _, _ = synthetic_fall()
    assert len(detect(t_joined, imu, **cfg)) == 1


def test_fall_detector_needs_gravity_and_acceleration_channels() -> None:
    with pytest.raises(ValueError, match="gravity_x/y/z"):
        FallDetector(("body_acc_x", "body_acc_y", "body_acc_z", "gyro_x", "gyro_y", "gyro_z"))


@pytest.fixture(scope="module")
def sisfall(sisfall_dir: Path) -> dict[str, np.ndarray]:
    """A handful of real trials by file name: [N, 6] in m/s² and rad/s, read by
    gaitedge.datasets (in HAPT's body frame; the fall rules use only |acc| and angles)."""
    wanted = {
        "SA01/F01_SA01_R01.txt",
        "SA05/F05_SA05_R02.txt",
        "SA10/F09_SA10_R01.txt",
        "SA12/F14_SA12_R03.txt",
        "SA01/D01_SA01_R01.txt",
        "SA05/D07_SA05_R01.txt",
        "SA10/D12_SA10_R02.txt",
        "SE03/D15_SE03_R01.txt",
    }
    root = sisfall_dir.parent
    trial_file = {
        int(r["trial"]): r["file"]
        for r in ds.csv_rows(sisfall_dir / "trials.csv")
        if r["file"] in wanted
    }
    subjects = sorted({f"sisfall:{name.split('/')[0]}" for name in wanted})
    trials = {
        trial_file[rec.group]: rec.imu
        for rec in ds.sisfall_recordings(root, subjects)
        if rec.group in trial_file
    }
    assert len(trials) == len(wanted)
    return trials


@pytest.mark.parametrize(
    "name",
    [
        "SA01/F01_SA01_R01.txt",
        "SA05/F05_SA05_R02.txt",
        "SA10/F09_SA10_R01.txt",
        "SA12/F14_SA12_R03.txt",
    ],
    ids=["slip-forward", "trip-jogging", "lateral-getting-up", "backward-sitting"],
)
def test_real_falls_are_confirmed_within_a_second(sisfall, name) -> None:
    imu = sisfall[name]
    t = np.arange(len(imu)) / RATE_HZ
    alerts = detect(t, imu)
    assert len(alerts) == 1
    (alert,) = alerts
    assert 0 < alert.latency_s <= 1.0
    # The reported impact is the trial's hardest hit (within a sample or two of low-pass delay).
    peak_t = t[np.argmax(np.linalg.norm(imu[:, :3], axis=1))]
    assert abs(alert.t_event - peak_t) <= 0.1


@pytest.mark.parametrize(
    "name",
    [
        "SA01/D01_SA01_R01.txt",
        "SA05/D07_SA05_R01.txt",
        "SA10/D12_SA10_R02.txt",
        "SE03/D15_SE03_R01.txt",
    ],
    ids=["walking", "sit-slowly", "lie-down-slowly", "bend-knees"],
)
def test_real_daily_activities_raise_no_fall(sisfall, name) -> None:
    imu = sisfall[name]
    assert detect(np.arange(len(imu)) / RATE_HZ, imu) == []


def test_denormalize_undoes_the_chain_normalisation() -> None:
    t, imu, _ = synthetic_fall()
    n = CHAIN.n_channels
    normed = ChainConfig(hop_samples=10, norm_mean=(0.5,) * n, norm_std=(3.0,) * n)
    raw = denormalize(run_offline(normed, t, imu), normed)
    np.testing.assert_allclose(raw, run_offline(CHAIN, t, imu).data, atol=1e-5)


@settings(max_examples=300, deadline=None)
@given(
    w=st.integers(2, 300),
    t0=st.sampled_from([0.0, -12.34, 987.654321, 1.7e9 + 0.123]),
    dt=st.sampled_from([0.02, 0.01, 1 / 51.2, 0.3333]),
    stretch=st.floats(-1e-9, 1e-9),
    at=st.integers(0, 299),
    nudge=st.sampled_from([None, 0.0, 1e-12, -1e-12, 0.5, -0.5, 0.49999, 3.0]),
)
def test_a_windows_new_times_are_linspaces_after_the_history(w, t0, dt, stretch, at, nudge):
    """The fall detector makes only a window's new times: they must be np.linspace's, and
    the new ones those past the history's newest (half a sample of tolerance) as a search
    of the whole linspace finds them."""
    t1 = t0 + (w - 1) * dt * (1 + stretch)
    ref = np.linspace(t0, t1, w)
    det = FallDetector(CHAIN.channels)
    newest = None if nudge is None else float(ref[at % w]) + nudge * dt
    det._t = np.array([] if newest is None else [newest])
    last = -np.inf if newest is None else newest + 0.5 * (ref[1] - ref[0])
    j = int(np.searchsorted(ref, last, side="right"))
    t, first = det._new_times(t0, t1, w)
    assert first == j
    np.testing.assert_array_equal(t, ref[j:])
