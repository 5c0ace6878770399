"""Data: subject-disjoint splits, window labels, chain-made normalised windows, CSV folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gaitedge.preprocess import ChainConfig, run_offline
from gaitedge.units import STANDARD_GRAVITY_M_S2
from train.data import (
    HAPT_LABELS,
    IGNORE,
    SISFALL_TEST_SUBJECTS,
    activity_subset,
    build_folder,
    build_sisfall,
    concat,
    fall_window_labels,
    hapt_split,
    load_windows,
    majority_labels,
    prepare,
    sisfall_split,
    sisfall_subjects,
)


@pytest.fixture(scope="session")
def cache_dir(train_cache_dir: Path) -> Path:
    return train_cache_dir


@pytest.fixture(scope="session")
def hapt_prepared(hapt_dir: Path, data_root: Path, cache_dir: Path):
    return prepare(["hapt"], ChainConfig(), data_root, cache_dir)


def test_majority_label_needs_half_the_window() -> None:
    label = np.array([0] * 10 + [3] * 70 + [4] * 48 + [4] * 100)
    lab, frac = majority_labels(label, np.array([0, 64, 100]), 128)
    assert lab.tolist() == [3, 4, 4]
    assert frac[0] == pytest.approx(70 / 128)


def test_fall_labels_follow_the_impact() -> None:
    start = np.arange(0, 700, 64)
    labels = fall_window_labels(start, 128, impact=400)
    assert labels[start + 128 <= 400].tolist() == [0] * int((start + 128 <= 400).sum())
    assert (labels == 1).sum() == 1  # central halves tile the trial at hop = W / 2
    assert start[labels == 1][0] + 32 <= 400 < start[labels == 1][0] + 96
    assert (labels[start > 400] == IGNORE).all()  # lying after the fall: no label


def test_hapt_official_split_has_no_overlap(hapt_dir: Path, data_root: Path) -> None:
    split = hapt_split(data_root)
    assert len(split.train) == 21 and len(split.test) == 9
    assert not set(split.train) & set(split.test)
    assert {"hapt:2", "hapt:4", "hapt:24"} <= set(split.test)


def test_sisfall_folds_partition_subjects(sisfall_dir: Path, data_root: Path) -> None:
    subjects = {f"sisfall:{s}" for s in sisfall_subjects(data_root)}
    tests = [set(sisfall_split(data_root, k, 5).test) for k in range(5)]
    assert set().union(*tests) == subjects and sum(map(len, tests)) == len(subjects) == 38
    for k in range(5):
        split = sisfall_split(data_root, k, 5)
        assert not set(split.train) & set(split.test)
    fixed = sisfall_split(data_root)
    assert set(fixed.test) == {f"sisfall:{s}" for s in SISFALL_TEST_SUBJECTS}
    assert "sisfall:SE06" in fixed.test


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
