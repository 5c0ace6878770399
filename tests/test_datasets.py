"""Dataset readers, splits and window-labelling rules (numpy only, shared with train/)."""

from __future__ import annotations

import numpy as np
import pytest

from gaitedge import datasets as ds


def test_majority_label_needs_half_the_window():
    label = np.array([0] * 60 + [4] * 68 + [5] * 64 + [0] * 64)
    start = np.array([0, 64, 128])
    # Ties go to the lower label id; exactly half a window is enough.
    assert ds.activity_window_labels(label, start, 128).tolist() == [3, 3, ds.IGNORE]
    lab, frac = ds.majority_labels(label, start, 128)
    assert lab.tolist() == [4, 4, 0] and frac.tolist() == [68 / 128, 64 / 128, 64 / 128]


def test_transitions_are_ignored_with_six_labels():
    label = np.full(256, 8)  # SIT_TO_STAND
    start = np.array([0, 64])
    assert ds.activity_window_labels(label, start, 128, 12).tolist() == [7, 7]
    assert ds.activity_window_labels(label, start, 128, 6).tolist() == [ds.IGNORE] * 2


def test_fall_windows_are_labelled_from_the_impact():
    start = np.arange(0, 640, 64)
    labels = ds.fall_window_labels(start, 128, impact=400)
    # Windows ending before the impact: no_fall; impact in the central half: fall; else none.
    assert labels.tolist() == [0, 0, 0, 0, 0, 1] + [ds.IGNORE] * 4
    assert ds.peak_window(start, 128, 400) == 5


def test_hapt_official_split(hapt_dir):
    split = ds.hapt_split(hapt_dir.parent)
    assert len(split.train) == 17 and len(split.val) == 4 and len(split.test) == 9
    assert {"hapt:2", "hapt:4", "hapt:9", "hapt:24"} <= set(split.test)
    # Validation: a fixed rule over the 21 official training subjects (positions 2, 7, 13, 18).
    assert split.val == ("hapt:5", "hapt:14", "hapt:22", "hapt:28")
    assert split.subjects("all") == split.train + split.val + split.test
    assert len(set(split.subjects("all"))) == 30


def test_sisfall_fixed_split_holds_out_the_stated_subjects(sisfall_dir):
    split = ds.sisfall_split(sisfall_dir.parent)
    assert split.test == tuple(f"sisfall:{s}" for s in ds.SISFALL_TEST_SUBJECTS)
    assert len(split.train) == 24 and len(split.val) == 6


def test_sisfall_validation_lies_inside_each_folds_training_side(sisfall_dir):
    everyone = set(ds.sisfall_split(sisfall_dir.parent).subjects("all"))
    for fold in range(5):
        split = ds.sisfall_split(sisfall_dir.parent, fold)
        train, val, test = set(split.train), set(split.val), set(split.test)
        assert not (train & val or train & test or val & test)
        assert train | val | test == everyone
        assert len(val) == int(ds.VAL_FRACTION * (len(train) + len(val)))
        assert any(s.startswith("sisfall:SA") for s in val)  # adults who fell: sensitivity


def test_split_parts_must_be_disjoint():
    with pytest.raises(ValueError, match="val and test"):
        ds.SubjectSplit(("a",), ("b",), "x", val=("b",))
    assert ds.validation_subjects(("a", "b", "c", "d")) == ()  # too few to spare one


def test_hapt_recordings_are_in_si_units(hapt_dir):
    rec = next(ds.hapt_recordings(hapt_dir.parent, ["hapt:2"]))
    assert rec.subject == "hapt:2" and rec.group == 3 and rec.rate_hz == 50
    assert np.median(np.linalg.norm(rec.imu[:, :3], axis=1)) == pytest.approx(9.9, abs=0.4)
    assert rec.sample_label.shape == (len(rec.imu),)


def test_sisfall_upright_gravity_points_along_plus_x(sisfall_dir):
    trials = ds.sisfall_recordings(sisfall_dir.parent, ["sisfall:SA03"])
    rec = next(r for r in trials if r.activity == "D15")  # standing, then bending at the knees
    first_s = rec.imu[: int(rec.rate_hz)].mean(axis=0)
    assert first_s[0] == pytest.approx(9.6, abs=0.6)  # +x up, as in HAPT
    assert rec.is_fall == 0


def test_unknown_dataset_and_missing_root_are_clear(tmp_path):
    with pytest.raises(ds.DatasetError, match="unknown dataset"):
        ds.recordings("mhealth", tmp_path)
    with pytest.raises(ds.DatasetError, match="not found"):
        ds.hapt_split(tmp_path)


def test_sisfall_folds_partition_subjects(sisfall_dir):
    root = sisfall_dir.parent
    subjects = {f"sisfall:{s}" for s in ds.sisfall_subjects(root)}
    tests = [set(ds.sisfall_split(root, k, 5).test) for k in range(5)]
    assert set().union(*tests) == subjects and sum(map(len, tests)) == len(subjects) == 38
    assert "sisfall:SE06" in ds.sisfall_split(root).test


def test_window_labels_rule():
    label = np.array([0] * 70 + [3] * 58 + [2] * 128 + [13] * 128)
    # Unlabelled majority: none; a label on >= half the window: its class index from 0.
    assert ds.window_labels(label, np.array([0, 128, 256]), 128).tolist() == [ds.IGNORE, 1, 12]


def test_ci_fails_instead_of_skipping_when_the_data_is_missing(pytester, monkeypatch, tmp_path):
    """Locally a missing dataset skips; with CI=true the same test fails, saying why. (A pytest
    session of its own, in this process: the fixtures read the environment when they run.)"""
    test = f"{__file__}::test_hapt_official_split"
    monkeypatch.setenv("GAITEDGE_DATA_ROOT", str(tmp_path))
    # Without hypothesis's plugin: each inner session would import hypothesis afresh (seconds).
    args = ["-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-rs", test]
    runs = {}
    for ci in ("", "true"):
        monkeypatch.setenv("CI", ci)
        runs[ci] = pytester.runpytest_inprocess(*args)
    assert runs[""].ret == 0 and "1 skipped" in runs[""].stdout.str()
    assert runs["true"].ret == 1
    assert "CI=true and real data hapt not found" in runs["true"].stdout.str()
