"""Distillation as an objective in train's one loop, on real windows with a few steps.

Pins the loss's semantics (T²·KL on soft targets per head + ``hard_weight`` x class-weighted
cross-entropy on labelled windows, or the labels alone), that it learns through ``fit`` with
weighted sampling, that ``--resume`` repeats an uninterrupted run bit for bit, and that the
student checkpoint still builds a release bundle.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from export import distill
from export.distill import DistillConfig, sampling_weights, teacher_logits, train_student
from export.student import STUDENT_PRESETS, CNNStudent, StudentConfig
from gaitedge.preprocess import ChainConfig
from train.config import TrainConfig
from train.data import IGNORE, PreparedData, prepare
from train.engine import Dist, _WeightedBatches, parameter_digest
from train.model import IMUMaskedAutoencoder, preset_config
from train.objectives import DistillObjective, class_weights, teacher_key

HEADS = {"activity": 6, "fall": 2}


@pytest.fixture(scope="module")
def data(hapt_dir: Path, sisfall_dir: Path, data_root: Path, train_cache_dir: Path) -> PreparedData:
    return prepare(["hapt", "sisfall"], ChainConfig(), data_root, train_cache_dir)


@pytest.fixture(scope="module")
def common(data_root: Path, train_cache_dir: Path) -> list[str]:
    return ["--data-root", str(data_root), "--cache-dir", str(train_cache_dir),
            "--batch-size", "32", "--log-every", "1", "--threads", "2"]  # fmt: skip


def _student(seed: int = 0) -> CNNStudent:
    torch.manual_seed(seed)
    return CNNStudent(StudentConfig(heads=tuple(HEADS.items()), **STUDENT_PRESETS["nano"]))


def _batch(data: PreparedData, n: int = 96) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Real windows: half HAPT (activity labels), half SisFall (fall labels, some -1)."""
    ws = data.train
    hapt = np.flatnonzero(ws.labels["activity"] >= 0)[: n // 2]
    sis = np.flatnonzero(np.char.startswith(ws.subject.astype(str), "sisfall:"))[: n // 2]
    idx = np.concatenate([hapt, sis])
    return torch.from_numpy(ws.data[idx]), {h: torch.from_numpy(ws.labels[h][idx]) for h in HEADS}


def _weights(data: PreparedData) -> dict[str, torch.Tensor]:
    return {h: class_weights(data.train.labels[h], n) for h, n in HEADS.items()}


def test_loss_is_t2_kl_plus_weighted_cross_entropy(data: PreparedData) -> None:
    """The terms agree with their textbook forms (cross-entropy as the old distillation loss
    computed it: weighted mean over the labelled windows only)."""
    x, labels = _batch(data)
    student, teacher = _student(0).eval(), _student(1).eval()
    with torch.no_grad():
        soft = {teacher_key(h): v for h, v in teacher.classify(x).items()}
        own = student.classify(x)
    weights, t = _weights(data), 3.0
    expected_kd, expected_ce = {}, {}
    for h in HEADS:
        p_t = torch.softmax(soft[teacher_key(h)] / t, 1)
        kl = (p_t * (p_t.log() - torch.log_softmax(own[h] / t, 1))).sum(1).mean()
        valid = labels[h] != IGNORE
        ce = F.cross_entropy(own[h][valid], labels[h][valid], weight=weights[h])
        expected_kd[h], expected_ce[h] = kl, ce
    assert (labels["activity"] == IGNORE).any() and (labels["fall"] == IGNORE).any()

    def loss(hard_weight: float, targets: dict) -> tuple[float, dict]:
        objective = DistillObjective(student, weights, temperature=t, hard_weight=hard_weight)
        with torch.no_grad():
            value, metrics = objective(x, **targets)
        return float(value), {k: float(v) for k, v in metrics.items()}

    both, parts = loss(4.0, labels | soft)
    kd = sum(t * t * float(expected_kd[h]) for h in HEADS)
    ce = sum(float(expected_ce[h]) for h in HEADS)
    assert both == pytest.approx(kd + 4.0 * ce, rel=1e-5)
    assert parts["kd_fall"] == pytest.approx(float(expected_kd["fall"]), rel=1e-5)
    assert parts["ce_activity"] == pytest.approx(float(expected_ce["activity"]), rel=1e-5)
    soft_only, parts = loss(0.0, labels | soft)
    assert soft_only == pytest.approx(kd, rel=1e-5) and not any(k.startswith("ce") for k in parts)
    hard_only, parts = loss(4.0, labels)  # no teacher: labels alone, weight 1
    assert hard_only == pytest.approx(ce, rel=1e-5) and not any(k.startswith("kd") for k in parts)
    # A student that is its own teacher has nothing to learn from the soft targets.
    self_taught, _ = loss(0.0, labels | {teacher_key(h): v for h, v in own.items()})
    assert abs(self_taught) < 1e-5


def test_class_weights_are_sqrt_inverse_frequency() -> None:
    y = np.array([0] * 400 + [1] * 100 + [2] * 25 + [IGNORE] * 50)
    w = class_weights(y, 3).numpy()
    np.testing.assert_allclose(w / w[0], [1, 2, 4], rtol=1e-6)
    assert w.mean() == pytest.approx(1.0)


def test_weighted_batches_follow_the_weights_and_the_step(data: PreparedData) -> None:
    ws = data.train
    fall = ws.labels["fall"]
    p = sampling_weights(ws.subject, fall, oversample=8.0)
    batches = _WeightedBatches(p, 512, seed=0, ctx=Dist())
    _, _, a = batches.indices(7)
    np.testing.assert_array_equal(a, batches.indices(7)[2])  # seeded by the step alone
    draws = np.concatenate([batches.indices(s)[2] for s in range(40)])
    is_sis = np.char.startswith(ws.subject[draws].astype(str), "sisfall:")
    assert 0.45 < is_sis.mean() < 0.55  # half the mass on each dataset
    sis = np.char.startswith(ws.subject.astype(str), "sisfall:")
    share_in_data = (fall[sis] == 1).mean()
    share_drawn = (fall[draws][is_sis] == 1).mean()
    assert share_drawn > 4 * share_in_data  # falls oversampled 8x


def test_distillation_through_fit_learns_the_teacher(data: PreparedData, tmp_path: Path) -> None:
    """A labels-only student, then a soft-targets-only student of it: both losses fall."""
    cfg = DistillConfig(preset="nano")
    train_cfg = TrainConfig(max_steps=24, batch_size=64, warmup_steps=2, lr=3e-3,
                            log_every_steps=1, weight_decay=1e-4)  # fmt: skip
    heads = {h: tuple(c) for h, c in data.train.classes.items()}
    teacher, first = train_student(cfg, train_cfg, data, heads, None, tmp_path / "t", meta={})
    losses = [r["loss"] for r in first.history]
    assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:4])
    assert {"ce_activity", "ce_fall"} <= set(first.history[0])
    # Measured after 24 steps: validation macro-F1 0.61 (activity), 0.78 (fall).
    assert first.metrics["val"]["activity"]["macro_f1"] > 0.4

    soft = teacher_logits(teacher, data.train.data, tuple(heads))
    soft_only = DistillConfig(preset="nano", hard_weight=0.0)
    _, second = train_student(soft_only, train_cfg, data, heads, soft, tmp_path / "s", meta={})
    kd = [r["kd_activity"] + r["kd_fall"] for r in second.history]
    assert np.mean(kd[-4:]) < 0.7 * np.mean(kd[:4])
    assert not any(k.startswith("ce_") for k in second.history[0])


class _Interrupting(DistillObjective):
    """Stops the run (like a killed job) when step ``at`` begins."""

    at = 4

    def forward(self, x: torch.Tensor, **targets: torch.Tensor):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls > self.at:
            raise KeyboardInterrupt
        return super().forward(x, **targets)


def _mae_teacher(path: Path, data: PreparedData) -> Path:
    """A tiny MAE checkpoint with both heads, in the format ``train.engine`` writes."""
    torch.manual_seed(0)
    cfg = preset_config("tiny", embed_dim=32, depth=1, num_heads=2, decoder_depth=1,
                        patch_samples=16, heads=tuple(HEADS.items()))  # fmt: skip
    mae = IMUMaskedAutoencoder(cfg)
    ckpt = {"model_config": mae.cfg.to_dict(), "state_dict": mae.state_dict(),
            "chain": data.chain.to_dict(), "metrics": {},
            "heads": {h: list(c) for h, c in data.train.classes.items()}}  # fmt: skip
    torch.save(ckpt, path)
    return path


def test_resume_repeats_the_uninterrupted_distill_run(
    data: PreparedData, common: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    teacher = _mae_teacher(tmp_path / "teacher.pt", data)
    args = ["--teacher", str(teacher), "--steps", "8", "--checkpoint-every", "4",
            "--preset", "nano", *common]  # fmt: skip
    distill.main([*args, "--out", str(tmp_path / "straight")])
    with monkeypatch.context() as m:
        m.setattr(distill, "DistillObjective", _Interrupting)
        with pytest.raises(KeyboardInterrupt):
            distill.main([*args, "--out", str(tmp_path / "cut")])
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)["step"] == 4
    distill.main([*args, "--out", str(tmp_path / "cut"), "--resume"])
    a = torch.load(tmp_path / "straight" / "student.pt", weights_only=False)
    b = torch.load(tmp_path / "cut" / "student.pt", weights_only=False)
    assert a["train_config"]["max_steps"] == 8 and a["train_config"]["warmup_steps"] == 1
    assert a["teacher"] == str(teacher) and a["distill_config"]["preset"] == "nano"

    def digest(ckpt: dict) -> str:
        model = CNNStudent(StudentConfig.from_dict(ckpt["student_config"]))
        model.load_state_dict(ckpt["state_dict"])
        return parameter_digest(model)

    assert digest(a) == digest(b)
    rows = [json.loads(r) for r in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert {"kd_activity", "kd_fall", "ce_activity", "ce_fall"} <= set(rows[0])


def test_release_builds_a_bundle_from_the_distilled_student(
    data_root: Path, common: list[str], tmp_path: Path
) -> None:
    from export.release import build_artifacts
    from gaitedge.bundle import read_contract

    distill.main(["--steps", "4", "--preset", "nano", "--out", str(tmp_path / "s"), *common])
    paths = build_artifacts(tmp_path / "s" / "student.pt", tmp_path / "b", data_root, "9.9.9", "t")
    contract = read_contract(paths["int8"])
    assert contract.model_version == "9.9.9" and set(contract.heads) == set(HEADS)
    training = contract.training
    assert training["student_training"] == "trained on the labels alone (no teacher)"
    assert training["augmentation"]["rotate_max_deg"] == 15.0
    assert training["train_config"]["max_steps"] == 4
