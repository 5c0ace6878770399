"""The ONNX Runtime engine and the model contract it reads and enforces."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest

from gaitedge.bundle import CONTRACT_KEY, ContractError, ModelContract, read_contract
from gaitedge.engine import OnnxEngine, load_engine
from gaitedge.preprocess import ChainConfig
from tests.bundles import make_bundle


@pytest.fixture
def bundle(tmp_path):
    return make_bundle(tmp_path / "m.onnx")


def test_engine_reads_the_contract_and_predicts_probabilities(bundle):
    engine = load_engine(bundle)
    assert engine.contract.chain.hop_samples == 25
    out = engine.predict(np.random.default_rng(0).standard_normal((5, 128, 9)))
    assert set(out) == {"activity", "fall"}
    assert out["activity"].shape == (5, 6) and out["fall"].shape == (5, 2)
    np.testing.assert_allclose(out["activity"].sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 64, 9), (2, 128, 6), (128,)], ids=str)
def test_windows_that_do_not_match_the_contract_are_refused(bundle, shape):
    with pytest.raises(ContractError, match="expects windows of 128 samples x 9 channels"):
        OnnxEngine(bundle).predict(np.zeros(shape, np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_windows_holding_a_nan_or_inf_are_refused(bundle, bad):
    """A window with a NaN scored as a confident fall (p 0.9995) for a library caller: refused,
    counting the windows that hold one."""
    windows = np.zeros((3, 128, 9), np.float32)
    windows[1, 5, 2] = bad
    with pytest.raises(ContractError, match="1 of 3 windows hold a NaN or infinite value"):
        OnnxEngine(bundle).predict(windows)
    windows[1, 5, 2] = 3e38  # finite, though the float32 sum of such overflows: scored
    windows[2, 5, 2] = 3e38
    assert OnnxEngine(bundle).predict(windows)["activity"].shape == (3, 6)


def test_model_without_contract_is_refused_with_how_to_fix(bundle, tmp_path):
    model = onnx.load(bundle)
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, bare)
    with pytest.raises(ContractError, match=r"no gaitedge contract.*export\.onnx"):
        load_engine(bare)


def test_a_contract_that_disagrees_with_its_graph_is_refused_at_load(tmp_path):
    """The shipped model with its contract's window edited to 64 samples: `info` took it and
    every engine call was an ONNX Runtime traceback. Refused when opened, naming both."""
    import json

    from gaitedge.engine import DEFAULT_MODEL

    model = onnx.load(DEFAULT_MODEL)
    prop = next(p for p in model.metadata_props if p.key == CONTRACT_KEY)
    contract = json.loads(prop.value)
    contract["chain"]["window_samples"] = 64
    prop.value = json.dumps(contract)
    edited = tmp_path / "win64.onnx"
    onnx.save(model, edited)
    assert read_contract(edited).chain.window_samples == 64  # a readable contract
    with pytest.raises(
        ContractError,
        match=r"graph takes windows of shape \[.*128, 9\], its contract says 64 samples x 9",
    ):
        load_engine(edited)
    with pytest.raises(ContractError, match="the model path is empty"):
        load_engine("")
    with pytest.raises(ContractError, match="no such model file"):
        load_engine(tmp_path / "missing.engine")


def test_newer_contract_format_is_refused():
    contract = ModelContract(chain=ChainConfig(), heads={"activity": ("a", "b")}, format=99)
    with pytest.raises(ContractError, match="newer"):
        ModelContract.from_json(contract.to_json())


def test_broken_files_give_clear_errors(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ContractError, match="not a loadable ONNX model"):
        read_contract(junk)
    with pytest.raises(ContractError, match="no such model file"):
        read_contract(tmp_path / "missing.onnx")
    with pytest.raises(ContractError, match="contract file"):
        read_contract(junk.with_suffix(".engine").resolve().parent)


def test_contract_round_trip(bundle):
    contract = read_contract(bundle)
    assert ModelContract.from_json(contract.to_json()) == contract
    assert CONTRACT_KEY == "gaitedge.contract"


def test_tensorrt_engine_without_tensorrt_fails_clearly(tmp_path):
    """TensorRT cannot run on this machine: the engine path must say so, not crash."""
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0")
    code = (
        "import sys; sys.modules['tensorrt'] = None\n"
        "from gaitedge.engine import load_engine\n"
        f"load_engine({str(engine)!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    assert "TensorRT is not installed" in done.stderr
