"""Data: subject-disjoint splits, window labels, chain-made normalised windows, CSV folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gaitedge import datasets as ds
from gaitedge.datasets import HAPT_LABELS, hapt_split
from gaitedge.preprocess import ChainConfig, fit_normalization, run_offline
from gaitedge.units import STANDARD_GRAVITY_M_S2
from train.data import (
    activity_subset,
    build_folder,
    build_sisfall,
    concat,
    load_windows,
    prepare,
)


@pytest.fixture(scope="session")
def cache_dir(train_cache_dir: Path) -> Path:
    return train_cache_dir


@pytest.fixture(scope="session")
def hapt_prepared(hapt_dir: Path, data_root: Path, cache_dir: Path):
    return prepare(["hapt"], ChainConfig(), data_root, cache_dir)


def test_prepared_windows_are_subject_disjoint_and_normalised_by_the_chain(
    hapt_prepared, data_root: Path
) -> None:
    p = hapt_prepared
    assert not set(p.train.subject) & set(p.test.subject)
    assert set(p.test.subject) == set(hapt_split(data_root).test)
    # Statistics come from training subjects only: train windows are centred, unit std.
    flat = p.train.data.reshape(-1, p.train.data.shape[-1]).astype(np.float64)
    assert np.allclose(flat.mean(0), 0, atol=1e-3) and np.allclose(flat.std(0), 1, atol=1e-3)
    assert not np.allclose(p.test.data.reshape(-1, 9).mean(0), 0, atol=1e-3)
    assert p.train.classes["activity"] == HAPT_LABELS[:6]
    assert p.train.labels["activity"].max() == 5


def test_windows_equal_the_runtime_chain(hapt_experiment, hapt_prepared, data_root: Path) -> None:
    t, imu, _ = hapt_experiment  # experiment 1, subject 1 (a training subject)
    windows = run_offline(hapt_prepared.chain, t, imu)
    first = hapt_prepared.train.group == 1
    np.testing.assert_array_equal(hapt_prepared.train.data[first], windows.data)


def test_training_labels_are_the_runtimes(hapt_dir: Path, data_root: Path, cache_dir: Path):
    """Training windows carry the labels `gaitedge evaluate` scores against: the same reader,
    chain geometry and rule (gaitedge.datasets), on a real recording of each dataset."""
    ws = load_windows("hapt", ChainConfig(), data_root, cache_dir)
    rec = next(ds.hapt_recordings(data_root, ["hapt:2"]))
    w = run_offline(ChainConfig(), rec.timestamp_s, rec.imu)
    start = ds.window_starts(w.t_start_s, rec.rate_hz)
    mine = ws.group == rec.group
    want = ds.activity_window_labels(rec.sample_label, start, ChainConfig().window_samples, 12)
    np.testing.assert_array_equal(ws.labels["activity"][mine], want)
    assert (want >= 0).sum() > 100 and len(set(want.tolist())) > 6  # transitions included


def test_twelve_labels_include_transitions(
    hapt_dir: Path, data_root: Path, cache_dir: Path
) -> None:
    ws = load_windows("hapt", ChainConfig(), data_root, cache_dir)
    six, twelve = activity_subset(ws, 6), activity_subset(ws, 12)
    assert (twelve.labels["activity"] >= 6).sum() > 500
    assert (six.labels["activity"] >= 6).sum() == 0
    assert (twelve.labels["activity"] >= 0).sum() > (six.labels["activity"] >= 0).sum()


def test_sisfall_one_impact_window_per_fall_trial(sisfall_dir: Path, data_root: Path) -> None:
    ws = build_sisfall(data_root, ChainConfig(), subjects=("SA01", "SE03", "SE06"))
    assert set(ws.subject) == {"sisfall:SA01", "sisfall:SE03", "sisfall:SE06"}
    fall = ws.labels["fall"]
    assert ws.classes["fall"] == ("no_fall", "fall")
    assert (fall[ws.trial_is_fall == 0] == 0).all()
    impact_trials = ws.group[fall == 1]
    n_fall_trials = len(np.unique(ws.group[ws.trial_is_fall == 1]))
    assert len(impact_trials) == len(np.unique(impact_trials)) == n_fall_trials > 100
    # Upright, SisFall's gravity is turned onto +x like HAPT's: mean gravity_x is positive.
    assert ws.data[..., 3].mean() > 5.0


def test_recording_folder_in_the_seeds_format(hapt_dir: Path, tmp_path: Path) -> None:
    sample = np.genfromtxt(hapt_dir / "sample_exp01_first3000.csv", delimiter=",", names=True)
    folder = tmp_path / "mydata"
    folder.mkdir()
    for subject, rows in (("s1", slice(0, 1500)), ("s2", slice(1500, 3000))):
        part = sample[rows]
        with (folder / f"{subject}_1.csv").open("w") as f:
            f.write("acc_x_g,acc_y_g,acc_z_g,gyro_x,gyro_y,gyro_z,label\n")
            for r in part:
                name = "" if r["label"] == 0 else HAPT_LABELS[int(r["label"]) - 1]
                acc = [r["acc_x"], r["acc_y"], r["acc_z"]]
                f.write(",".join(map(str, [*acc, r["gyro_x"], r["gyro_y"], r["gyro_z"], name])))
                f.write("\n")
    ws = build_folder(folder, ChainConfig(), rate_hz=50.0)
    assert set(ws.subject) == {"mydata:s1", "mydata:s2"}
    assert "STANDING" in ws.classes["activity"] and (ws.labels["activity"] >= 0).any()
    imu = np.stack(
        [sample[c] for c in ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")], 1
    )
    imu[:, :3] *= STANDARD_GRAVITY_M_S2
    direct = run_offline(ChainConfig(), np.arange(1500) / 50.0, imu[:1500])
    np.testing.assert_allclose(ws.data[ws.group == 0], direct.data, atol=1e-4)
    merged = concat([ws, activity_subset(ws, 6)])
    assert merged.classes["activity"] == ws.classes["activity"]


def test_no_test_subject_reaches_fitting_selection_or_normalisation(
    hapt_dir: Path, sisfall_dir: Path, data_root: Path, cache_dir: Path
) -> None:
    """On the real datasets the shipped model trains on: the windows that fit a model (train),
    make its choices (val) and fit its normalisation come from no test subject."""
    p = prepare(["hapt", "sisfall"], ChainConfig(), data_root, cache_dir)
    test = set(p.split.test)
    train, val = set(p.train.subject.tolist()), set(p.val.subject.tolist())
    assert set(p.test.subject.tolist()) == test and len(test) == 9 + 8
    assert not train & test and not val & test and not train & val
    assert val == set(p.split.val) and len(val) == 4 + 6
    assert {s.split(":")[0] for s in val} == {"hapt", "sisfall"}
    # The statistics in the chain are those of the fitting subjects' raw windows alone ...
    raw = [load_windows(n, ChainConfig(), data_root, cache_dir) for n in ("hapt", "sisfall")]
    fitting = np.concatenate([w.data[np.isin(w.subject, p.split.train)] for w in raw])
    mean, std = fit_normalization(fitting)
    np.testing.assert_allclose(p.chain.norm_mean, mean, rtol=1e-9)
    np.testing.assert_allclose(p.chain.norm_std, std, rtol=1e-9)
    # ... and differ from those of any other choice of windows (validation or test ones added).
    for extra in (p.split.val, p.split.test):
        wider = np.concatenate([w.data[np.isin(w.subject, p.split.train + extra)] for w in raw])
        assert not np.allclose(fit_normalization(wider)[0], mean, rtol=1e-4, atol=0)
