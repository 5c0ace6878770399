"""The gradient-boosting baseline: its features on a signal of known content, and a small run
on real HAPT windows with the same label subset as ``train.finetune`` and a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from train import baseline, finetune, options
from train.baseline import BaselineConfig, window_features
from train.data import prepare

CHANNELS = ("body_acc_x", "body_acc_y", "body_acc_z", "gravity_x", "gravity_y", "gravity_z")
CHANNELS += ("gyro_x", "gyro_y", "gyro_z")
RESULT_KEYS = {"init", "labels", "seed", "val_macro_f1", "test_macro_f1", "train_windows"}
RESULT_KEYS |= {"per_class_f1"}


def test_features_of_a_known_signal() -> None:
    rate_hz, w = 50.0, 128
    t = np.arange(w) / rate_hz
    # Frequencies on FFT bins (k * rate / W), so no energy leaks into neighbouring bands.
    step_hz, spin_hz = 7 * rate_hz / w, 15 * rate_hz / w  # 2.73 Hz, a brisk cadence; 5.86 Hz
    wave = np.sin(2 * np.pi * step_hz * t)
    x = np.zeros((2, w, 9), np.float32)
    x[:, :, 0], x[:, :, 1], x[:, :, 2] = wave, 2 * wave, -wave  # body acc: one axis, scaled
    x[:, :, 3] = 9.81  # gravity along x: upright
    x[1, :, 6] = 0.5 * np.sin(2 * np.pi * spin_hz * t)  # gyro: in the second window only
    f, names = window_features(x, CHANNELS, rate_hz)
    assert f.shape == (2, len(names)) and len(set(names)) == len(names)
    v = dict(zip(names, f[0], strict=True))
    assert v["body_acc_x.dominant_hz"] == pytest.approx(step_hz)
    bands = {n: v[n] for n in names if n.startswith("body_acc_x.band_")}
    assert max(bands, key=bands.get) == "body_acc_x.band_2_3hz"
    assert v["body_acc.corr_xy"] == pytest.approx(1.0, abs=1e-5)
    assert v["body_acc.corr_xz"] == pytest.approx(-1.0, abs=1e-5)
    assert v["gravity_x.mean"] == pytest.approx(9.81) and v["gravity_x.std"] < 1e-4
    assert v["body_acc_x.energy"] == pytest.approx(0.5, abs=1e-5)  # mean of sin²
    assert v["body_acc_y.p90"] == pytest.approx(2 * np.percentile(wave, 90), rel=1e-4)
    assert v["body_acc_mag.mean"] == pytest.approx(np.sqrt(6) * np.abs(wave).mean(), rel=1e-4)
    assert v["gyro.corr_xy"] == 0.0 and v["gyro_mag.max"] == 0.0  # flat: no NaN
    g = dict(zip(names, f[1], strict=True))
    assert g["gyro_x.dominant_hz"] == pytest.approx(spin_hz)
    assert max((n for n in names if n.startswith("gyro_x.band_")), key=g.get) == "gyro_x.band_5_8hz"
    assert g["gyro_mag.max"] == pytest.approx(0.5, abs=0.01)


@pytest.fixture(scope="module")
def common(hapt_dir: Path, data_root: Path, train_cache_dir: Path) -> list[str]:
    return ["--data-root", str(data_root), "--cache-dir", str(train_cache_dir)]


def test_small_run_on_real_hapt(
    common: list[str], data_root: Path, train_cache_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "gbm"
    subset = ["--label-fraction", "0.2", "--label-subjects", "3", "--seed", "1"]
    args = baseline.parse_args([*subset, "--out", str(out), *common])
    cfg = BaselineConfig(learning_rates=(0.1, 0.3), trees=((7, 5),), max_rounds=40)
    result = baseline.run(args, cfg)
    assert set(result) == RESULT_KEYS
    assert json.loads((out / "result.json").read_text()) == result
    # The same windows train.finetune would train on: its own subset functions, same seed.
    train = prepare(["hapt"], options.base_chain(args), data_root, train_cache_dir).train
    expected = finetune.label_subset(finetune.subject_subset(train, 3, 1), ["activity"], 0.2, 1)
    assert result["train_windows"] == len(expected)
    search = json.loads((out / "search.json").read_text())
    assert len(search["trials"]) == 2
    assert search["label_subjects"] == sorted(set(expected.subject.tolist()))
    assert search["chosen"]["val_macro_f1"] == max(t["val_macro_f1"] for t in search["trials"])
    assert result["val_macro_f1"] == pytest.approx(search["chosen"]["val_macro_f1"], abs=1e-4)
    report = json.loads((out / "report.json").read_text())["activity"]
    assert report["macro_f1"] == pytest.approx(result["test_macro_f1"], abs=1e-4)
    assert list(result["per_class_f1"]) == report["classes"] and len(report["classes"]) == 6
    # A few hundred windows of three subjects: far above chance (1/6), short of the full data.
    assert 0.6 < result["test_macro_f1"] < 0.98
    assert (out / "confusion_activity.png").stat().st_size > 0


def test_bad_label_subjects_is_one_line_error(
    common: list[str], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exc:
        baseline.main(["--label-subjects", "40", "--out", str(tmp_path / "x"), *common])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "error: --label-subjects must lie in 1..17", err
    assert "Traceback" not in err
    assert not (tmp_path / "x" / "result.json").exists()
