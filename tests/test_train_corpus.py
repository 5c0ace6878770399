"""The pretraining corpus: MobiFall's windows and split, corpus hours and subjects, random
mountings, users' folders beside the real datasets."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gaitedge import datasets as ds
from gaitedge.datasets import HAPT_LABELS
from gaitedge.preprocess import ChainConfig
from train import pretrain
from train.augment import AugmentConfig, Augmenter, random_rotations, uniform_rotations
from train.data import load_windows, prepare

AUTO = ChainConfig(mounting="auto")


@pytest.fixture(scope="session")
def corpus_prepared(hapt_dir: Path, mobifall_dir: Path, data_root: Path, train_cache_dir: Path):
    return prepare(["hapt", "mobifall", "mobifall@20"], ChainConfig(), data_root, train_cache_dir)


def _trial_seconds(root: Path, subjects) -> float:
    rows = ds.csv_rows(root / "mobifall" / "trials.csv")
    return sum(int(r["n_samples"]) for r in rows if f"mobifall:{r['subject']}" in subjects) / 100


def test_mobifall_split_keeps_test_subjects_out_of_fitting_and_validation(
    corpus_prepared, data_root: Path
) -> None:
    split = ds.mobifall_split(data_root)
    assert len(split.test) == 7 and len(split.val) == 3 and len(split.train) == 14
    assert set(split.subjects("all")) == {f"mobifall:{s}" for s in ds.mobifall_subjects(data_root)}
    # Both kinds of subject are held out and validated on: with walking and with falls only.
    adl = set(ds.mobifall_adl_subjects(data_root))
    for part in (split.test, split.val, split.train):
        assert set(part) & adl and set(part) - adl
    p = corpus_prepared
    mobi = lambda ws: {s for s in ws.subject.tolist() if s.startswith("mobifall:")}  # noqa: E731
    assert mobi(p.train) == set(split.train) and mobi(p.val) == set(split.val)
    assert mobi(p.test) == set(split.test)
    assert not mobi(p.train) & set(split.test) and not mobi(p.val) & set(split.test)


def test_mobifall_windows_per_trial_with_trial_labels(
    mobifall_dir: Path, data_root: Path, train_cache_dir: Path
):
    ws = load_windows("mobifall", ChainConfig(), data_root, train_cache_dir)
    assert ws.labels == {} and len(set(ws.subject.tolist())) == 24
    assert len(np.unique(ws.group)) == 630  # every trial (>= 5.9 s) gives windows
    # 100 Hz in, the chain's 50 Hz out: a 10-s fall trial (987 samples) gives 6 windows.
    rows = {int(r["trial"]): r for r in ds.csv_rows(mobifall_dir / "trials.csv")}
    assert (ws.group == 0).sum() == (int(rows[0]["n_samples"]) // 2 - 128) // 64 + 1 == 6
    is_fall = np.array([int(rows[int(g)]["is_fall"]) for g in ws.group])
    np.testing.assert_array_equal(ws.trial_is_fall, is_fall)
    rerendered = load_windows("mobifall@20", ChainConfig(), data_root, train_cache_dir)
    assert set(rerendered.subject.tolist()) == set(ws.subject.tolist())
    assert abs(len(rerendered) - len(ws)) <= 630 and not np.allclose(
        rerendered.data[:100], ws.data[:100], atol=1e-3
    )


def test_mobifall_under_auto_mounting_keeps_the_subjects_that_calibrate(
    mobifall_dir: Path, data_root: Path, train_cache_dir: Path
) -> None:
    ws = load_windows("mobifall", AUTO, data_root, train_cache_dir)
    assert set(ws.subject.tolist()) == set(ds.mobifall_adl_subjects(data_root))
    # Aligned: gravity (channels 3-5) lies on body +x, up, in most windows of a standing
    # or walking phone; in the phone's own frame it lies on +y.
    mean_gravity = ws.data[..., 3:6].mean(axis=(0, 1))
    assert mean_gravity[0] > 6.0 and abs(mean_gravity[1]) < 3.0


def test_corpus_states_hours_and_subjects_of_the_fitting_recordings(
    corpus_prepared, data_root: Path
) -> None:
    c = corpus_prepared.corpus
    hapt, mobi, mobi20 = c["datasets"]
    fitting = set(corpus_prepared.split.train)
    hapt_fit = {s for s in fitting if s.startswith("hapt:")}
    mobi_fit = {s for s in fitting if s.startswith("mobifall:")}
    assert (hapt["name"], hapt["subjects"], hapt["new_subjects"]) == ("hapt", 17, 17)
    experiments = ds.csv_rows(data_root / "hapt" / "experiments.csv")
    hapt_s = sum(int(r["n_samples"]) for r in experiments if f"hapt:{r['subject']}" in hapt_fit)
    assert hapt["hours"] == pytest.approx(hapt_s / 50 / 3600, abs=1e-3)
    assert mobi["hours"] == pytest.approx(_trial_seconds(data_root, mobi_fit) / 3600, abs=1e-3)
    trials = ds.csv_rows(data_root / "mobifall" / "trials.csv")
    n_trials = sum(f"mobifall:{r['subject']}" in mobi_fit for r in trials)
    assert mobi["subjects"] == mobi["new_subjects"] == 14 and mobi["recordings"] == n_trials
    # A re-rendered copy: the same recordings and hours again, no new subject.
    assert mobi20["hours"] == mobi["hours"] and mobi20["subjects"] == 14
    assert mobi20["new_subjects"] == 0
    assert c["subjects"] == 17 + 14
    assert c["hours"] == pytest.approx(hapt["hours"] + 2 * mobi["hours"], abs=2e-3)
    fitting_windows = int(np.isin(corpus_prepared.train.subject, list(mobi_fit)).sum())
    assert mobi["windows"] + mobi20["windows"] == fitting_windows


def test_uniform_rotations_are_proper_and_cover_every_orientation() -> None:
    torch.manual_seed(0)
    r = uniform_rotations(20000).double()  # [N, 3, 3]
    eye = torch.eye(3, dtype=torch.float64).expand(len(r), 3, 3)
    assert torch.allclose(r @ r.transpose(1, 2), eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(r), torch.ones(len(r), dtype=torch.float64), atol=1e-5)
    # Uniform over SO(3): R e_z uniform on the sphere (mean 0, each component's square 1/3) and
    # the rotation angle has the Haar law P(angle <= a) = (a - sin a) / pi.
    up = r[:, :, 2]
    assert up.mean(0).abs().max() < 0.02
    assert torch.allclose((up**2).mean(0), torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.01)
    angle = torch.arccos(((r.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1))
    for a in (math.pi / 4, math.pi / 2, 3 * math.pi / 4):
        assert (angle <= a).double().mean() == pytest.approx((a - math.sin(a)) / math.pi, abs=0.01)
    small = random_rotations(2000, 15.0).double()[:, :, 2]
    assert small[:, 2].min() > math.cos(math.radians(15)) - 1e-6  # the small ones stay near


@pytest.mark.parametrize("mount_prob", [0.0, 0.3, 1.0], ids=["off", "30pct", "always"])
def test_mount_prob_turns_that_share_of_windows_anywhere(mount_prob: float) -> None:
    chain = ChainConfig().with_normalization(np.zeros(9), np.ones(9))
    torch.manual_seed(1)
    n = 4000
    x = torch.zeros(n, 128, 9)
    x[:, :, 3] = 9.8  # gravity on +x, as an aligned upright window
    y = Augmenter(chain, AugmentConfig(rotate_max_deg=10.0, mount_prob=mount_prob))(x)
    g = y[:, 0, 3:6] / y[:, 0, 3:6].norm(dim=1, keepdim=True)
    turned = torch.rad2deg(torch.arccos(g[:, 0].clamp(-1, 1))) > 10.0 + 1e-3
    # A uniform rotation leaves gravity within 10 degrees of where it was with probability
    # (1 - cos 10 deg) / 2 = 0.8 %.
    expect = mount_prob * (1 - (1 - math.cos(math.radians(10))) / 2)
    assert turned.double().mean() == pytest.approx(expect, abs=0.03)
    assert torch.allclose(y[:, :, 3:6].norm(dim=2), torch.full((n, 128), 9.8), atol=1e-3)
    if mount_prob == 1.0:
        assert g.mean(0).abs().max() < 0.05


def test_mount_prob_is_a_probability_and_off_by_default() -> None:
    assert AugmentConfig().mount_prob == 0.0 and not AugmentConfig().enabled
    with pytest.raises(ValueError, match="probability"):
        AugmentConfig(mount_prob=1.5)


def _write_folder(hapt_dir: Path, folder: Path) -> float:
    """Three subjects' CSVs in the seed's format from real HAPT rows; seconds per file."""
    sample = np.genfromtxt(hapt_dir / "sample_exp01_first3000.csv", delimiter=",", names=True)
    folder.mkdir(parents=True)
    for i, subject in enumerate(("s1", "s2", "s3")):
        with (folder / f"{subject}_1.csv").open("w") as f:
            f.write("acc_x_g,acc_y_g,acc_z_g,gyro_x,gyro_y,gyro_z,label\n")
            for r in sample[i * 1000 : (i + 1) * 1000]:
                name = "" if r["label"] == 0 else HAPT_LABELS[int(r["label"]) - 1]
                values = [r[c] for c in ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")]
                f.write(",".join(map(str, [*values, name])) + "\n")
    return 1000 / 50.0


def test_pretraining_on_mobifall_and_a_users_folder_states_the_corpus(
    hapt_dir: Path, mobifall_dir: Path, data_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "mobifall").symlink_to(mobifall_dir.resolve())
    per_file_s = _write_folder(hapt_dir, root / "mydata")
    out = tmp_path / "run"
    pretrain.main(["--preset", "tiny", "--data", "mobifall,mydata", "--max-steps", "2",
                   "--batch-size", "32", "--data-root", str(root), "--cache-dir",
                   str(tmp_path / "cache"), "--mount-prob", "0.5", "--out", str(out)])  # fmt: skip
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    corpus = ckpt["corpus"]
    mobi, mine = corpus["datasets"]
    assert mine["name"] == "mydata" and mine["subjects"] == mine["recordings"] == 2
    assert mine["hours"] == pytest.approx(2 * per_file_s / 3600, abs=1e-3)
    assert {s for s in ckpt["split"]["train"] if s.startswith("mydata:")} <= {
        "mydata:s1", "mydata:s2", "mydata:s3"
    }  # fmt: skip
    mobi_fit = {s for s in ckpt["split"]["train"] if s.startswith("mobifall:")}
    assert mobi["hours"] == pytest.approx(_trial_seconds(data_root, mobi_fit) / 3600, abs=1e-3)
    assert corpus["subjects"] == 14 + 2
    assert ckpt["augment"]["mount_prob"] == 0.5
