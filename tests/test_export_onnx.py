"""ONNX export: graph check, parity with PyTorch on real windows, contract round trip."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from export.onnx import FP32_TOLERANCE, ParityError, export_onnx
from export.parity import real_windows
from export.student import fold_batchnorm
from gaitedge.bundle import CONTRACT_KEY, ContractError, ModelContract, read_contract
from gaitedge.engine import OnnxEngine
from tests.bundles import make_bundle, tiny_contract, tiny_student

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def windows(hapt_dir) -> np.ndarray:
    """Real held-out HAPT windows from the test contract's chain."""
    return real_windows(tiny_contract({"activity": ("WALKING",) * 1}), hapt_dir.parent, n=96,
                        max_subjects=1)  # fmt: skip


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, windows):
    return make_bundle(tmp_path_factory.mktemp("onnx") / "tiny.onnx", windows)


def test_bundle_passes_the_checker_and_carries_the_contract(bundle):
    model = onnx.load(str(bundle))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 17
    meta = {p.key: p.value for p in model.metadata_props}
    assert ModelContract.from_json(meta[CONTRACT_KEY]) == tiny_contract()
    assert read_contract(bundle) == tiny_contract()


def test_graph_io_and_dynamic_batch(bundle, windows):
    engine = OnnxEngine(bundle)
    assert [i.name for i in engine.session.get_inputs()] == ["windows"]
    assert {o.name for o in engine.session.get_outputs()} == {"activity_probs", "fall_probs"}
    for batch in (1, 7):
        out = engine.predict(windows[:batch])
        assert out["activity"].shape == (batch, 6) and out["fall"].shape == (batch, 2)
        np.testing.assert_allclose(out["activity"].sum(axis=1), 1.0, atol=1e-5)


def test_onnx_matches_torch_on_real_windows(bundle, windows):
    contract = tiny_contract()
    model = tiny_student(contract)
    with torch.no_grad():
        logits = model.classify(torch.from_numpy(windows))  # BatchNorm not folded here
    expected = torch.softmax(logits["activity"], dim=1).numpy()
    got = OnnxEngine(bundle).predict(windows)["activity"]
    assert np.abs(got - expected).max() <= FP32_TOLERANCE


def test_engine_refuses_windows_of_the_wrong_shape(bundle, windows):
    engine = OnnxEngine(bundle)
    with pytest.raises(ContractError, match="expects windows of 128 samples x 9 channels"):
        engine.predict(windows[:, :100])
    with pytest.raises(ContractError, match="9 channels"):
        engine.predict(windows[:, :, :6])


def test_a_mismatch_with_torch_is_refused(tmp_path, windows):
    contract = tiny_contract()
    with pytest.raises(ParityError, match="differs from PyTorch"):
        export_onnx(fold_batchnorm(tiny_student(contract)), contract, tmp_path / "m.onnx",
                    windows, tolerance=0.0 - 1.0)  # fmt: skip


def test_mae_teacher_exports_with_parity(tmp_path, windows):
    model_mod = pytest.importorskip("train.model")
    cfg = model_mod.preset_config(
        "tiny", embed_dim=32, depth=1, num_heads=2, decoder_depth=1, heads=(("activity", 6),)
    )
    mae = model_mod.IMUMaskedAutoencoder(cfg).eval()
    contract = tiny_contract({"activity": tiny_contract().heads["activity"]})
    report = export_onnx(mae, contract, tmp_path / "mae.onnx", windows)
    assert report.ok and report.max_abs_diff <= FP32_TOLERANCE


def test_entry_point_exports_a_student_checkpoint(tmp_path, hapt_dir, capsys):
    """``python -m export.onnx``'s main, in this process (torch is imported already)."""
    from export.distill import save_student
    from export.onnx import main

    contract = tiny_contract()
    path = save_student(tmp_path / "s.pt", tiny_student(contract), contract.chain,
                        dict(contract.heads), {"metrics": {"note": "test"}})  # fmt: skip
    out = tmp_path / "s.onnx"
    main(["--checkpoint", str(path), "--out", str(out), "--data-root", str(hapt_dir.parent),
          "--parity-windows", "64", "--version", "9.9.9"])  # fmt: skip
    assert "parity vs PyTorch" in capsys.readouterr().out
    assert read_contract(out).model_version == "9.9.9"
