"""FLOP and parameter counting over ONNX graphs, and the release's INT8-or-FP32 choice."""

from __future__ import annotations

import numpy as np
import pytest

from export.flops import count_cost
from export.release import int8_is_good_enough
from export.student import STUDENT_PRESETS, StudentConfig, count_macs
from tests.bundles import TINY, make_bundle


def test_graph_count_matches_the_architecture(tmp_path):
    windows = np.random.default_rng(0).standard_normal((8, 128, 9)).astype(np.float32)
    path = make_bundle(tmp_path / "t.onnx", windows)
    cost = count_cost(path)
    cfg = StudentConfig(widths=TINY.widths, kernels=TINY.kernels, strides=TINY.strides)
    # conv1: 64 outputs x 8 channels x (9 x 5) taps; conv2: 32 x 16 x (8 x 3); heads 16 x (6 + 2)
    assert count_macs(cfg) == 64 * 8 * 45 + 32 * 16 * 24 + 16 * 8
    assert cost.flops == 2 * count_macs(cfg)
    assert cost.params == 8 * 9 * 5 + 8 + 16 * 8 * 3 + 16 + 16 * 8 + 8


@pytest.mark.parametrize("preset", sorted(STUDENT_PRESETS))
def test_every_student_preset_is_under_one_percent_of_the_seed(preset):
    assert 2 * count_macs(StudentConfig(**STUDENT_PRESETS[preset])) < 0.01 * 16e9


def _report(hapt_int8: float, sens_int8: float) -> dict:
    fp32 = {"hapt": {"macro_f1": 0.94}, "sisfall": {"macro_f1": 0.98, "sensitivity": 0.99,
                                                    "specificity": 0.97}}  # fmt: skip
    int8 = {
        "hapt": {"macro_f1": hapt_int8},
        "sisfall": dict(fp32["sisfall"], sensitivity=sens_int8),
    }
    return {"fp32": {"validation": fp32}, "int8": {"validation": int8}}  # chosen on val


@pytest.mark.parametrize(
    ("hapt", "sens", "ok"),
    [(0.935, 0.99, True), (0.925, 0.99, False), (0.94, 0.975, False), (0.95, 1.0, True)],
    ids=["within-1-point", "hapt-drop", "sensitivity-drop", "better"],
)
def test_int8_ships_only_within_one_point_of_fp32(hapt, sens, ok):
    assert int8_is_good_enough(_report(hapt, sens)) is ok
