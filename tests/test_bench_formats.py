"""bench/formats.py: app exports read back and replayed against the canonical CSV.

A --quick run on one emulated variant: the JSON keys, and the canonical row equal to what
``bench/devices.py`` gives for the same recordings replayed as they are (the canonical CSV is
lossless: ``repr`` floats). The read-back's placement on the recording's clock (labels mapped by
time) is pinned with a CSV on a clock of its own, 0.5 s late and at 100 Hz.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from bench import formats as bench
from bench.devices import Condition, activity_f1, fall_scores
from firmware_bridge.exports._common import resample
from gaitedge import datasets as ds
from gaitedge.engine import load_engine
from gaitedge.recording import Recording, write_recording

ONE_VARIANT = "sensorlogger-watch-wristmotion"


@pytest.fixture(scope="module")
def quick(data_root: Path, mobifall_dir: Path) -> bench.HeldOut:
    return bench.held_out(data_root, quick=True)


def late_csv(recording: Recording, out_dir: Path) -> Path:
    """gaitedge's CSV at 100 Hz on a clock of its own (1000 s on), its first sample 0.5 s into
    the recording: the read-back starts 0.5 s late."""
    t, x = resample(recording.timestamp_s, recording.imu, 100.0, offset_s=0.5)
    path = out_dir / "late.csv"
    write_recording(path, Recording(t + 1000.0, x))
    return path


def test_alignment_finds_where_the_read_back_starts(quick):
    rec = quick.hapt[0]
    t, x = resample(rec.timestamp_s, rec.imu, 100.0, offset_s=0.137)
    assert bench.alignment_s(rec, t + 1.7e9, x) == pytest.approx(0.137, abs=5e-4)
    t, x = resample(rec.timestamp_s, rec.imu, 400.0, offset_s=0.0)
    assert bench.alignment_s(rec, t, x[:, [2, 0, 1, 5, 3, 4]]) == pytest.approx(0.0, abs=5e-4)


def test_labels_move_onto_the_read_back_clock(quick):
    rec = quick.hapt[0]
    moved = bench.labels_on_read_clock(rec, 0.1)  # 5 samples at 50 Hz
    assert rec.rate_hz == 50.0
    np.testing.assert_array_equal(moved.sample_label[:-5], rec.sample_label[5:])
    np.testing.assert_array_equal(moved.sample_label[-5:], 0)
    assert bench.labels_on_read_clock(rec, 0.0) is rec


def test_thin_keeps_falls_and_daily_activities_evenly(quick, data_root: Path):
    sis = list(ds.sisfall_recordings(data_root, ["sisfall:SA03"]))
    got = bench._thin(sis, 3, 2)
    assert [r.is_fall for r in got].count(1) == 3
    assert [r.is_fall for r in got].count(0) == 2
    assert [r.group for r in got] == sorted(r.group for r in got)
    assert len({r.activity for r in got if r.is_fall}) == 3  # spread, not the first three
    assert all(r.is_fall for r in bench._thin(sis, 4, 0))


def test_a_late_export_on_its_own_clock_scores_as_the_canonical_csv(quick, tmp_path):
    engine = load_engine(None)
    canon = bench.score(engine, "gaitedge", bench.canonical_csv, "gaitedge", quick, tmp_path)
    late = bench.score(engine, "late", late_csv, "gaitedge", quick, tmp_path)
    assert canon["align_s_max"] == 0.0
    assert late["align_s_max"] == pytest.approx(0.5, abs=1e-3)
    assert late["activity_f1"] == pytest.approx(canon["activity_f1"], abs=0.005)
    assert late["by_dataset"]["sisfall"] == canon["by_dataset"]["sisfall"]


def test_quick_run_prints_the_json_the_issue_asks_for(quick, data_root, monkeypatch, capsys):
    from bench import devices

    monkeypatch.setenv("GAITEDGE_DATA_ROOT", str(data_root))
    # One process (--jobs 1): the run sets the cold-start model here; put back afterwards.
    monkeypatch.setattr(devices, "COLD_START", None)
    bench.main(["--quick", "--json", "--only", ONE_VARIANT, "--jobs", "1"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # Scored as `replay` runs the shipped model: the shipped cold-start model beside it.
    assert out["cold_start_model"] == "gaitedge-vertical.onnx" == devices.COLD_START.name
    for key in ("formats", "worst_activity_f1_drop", "worst_fall_sensitivity_drop",
                "parse_vs_pandas", "canonical", "missing", "failed", "machine"):  # fmt: skip
        assert key in out
    assert set(out["formats"]) | set(out["failed"]) == {ONE_VARIANT} or out["missing"]
    for row in out["formats"].values():
        assert {"activity_f1", "fall_sensitivity", "fall_specificity"} <= set(row)
        assert row["detected_as"] == ["sensorlogger"]
    if out["parse"] is not None:
        assert out["parse_vs_pandas"] == out["parse"]["ratio"] > 0
        assert out["parse"]["rows"]["Gyroscope.csv"] > 3 * out["parse"]["rows"]["Accelerometer.csv"]

    # The canonical row is bench/devices.py's canonical condition on the same recordings.
    engine, plain = load_engine(None), Condition("canonical")
    canon = out["canonical"]
    assert canon["detected_as"] == ["gaitedge"]
    assert canon["activity_f1"] == round(activity_f1(engine, plain, quick.hapt, 0), 4)
    for name in ("sisfall", "mobifall"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # MobiFall: falls only, no ADLs
            want = fall_scores(engine, plain, quick.by_dataset()[name], 0)
        got = canon["by_dataset"][name]
        assert got["sensitivity"] == want["sensitivity"]
        assert (got["fall_trials"], got["adl_trials"]) == (want["fall_trials"], want["adl_trials"])
        assert got["specificity"] == (want["specificity"] if want["adl_trials"] else None)
    n_fall = sum(r.is_fall for r in quick.sisfall + quick.mobifall)
    hits = sum(round(d["sensitivity"] * d["fall_trials"]) for d in canon["by_dataset"].values())
    assert canon["fall_sensitivity"] == round(hits / n_fall, 4)
