"""GPU engines up to the hardware boundary: ONNX Runtime provider choice, and the TensorRT
engine's buffers, batching and contract checks against thin fakes of TensorRT and cuda-python
(``tests/fake_gpu.py``; used only where the real libraries are absent). No torch anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from export.trt import TrtOptions, build_engine
from gaitedge.bundle import ContractError, read_contract
from gaitedge.engine import (
    EngineUnavailableError,
    OnnxEngine,
    Provider,
    TensorRTEngine,
    check_engine_io,
    load_engine,
    ort_providers,
)
from tests import fake_gpu
from tests.bundles import make_bundle

no_tensorrt = fake_gpu.no_tensorrt
CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"


@pytest.mark.parametrize(
    ("provider", "available", "expected"),
    [
        ("auto", [CPU], [CPU]),
        ("auto", [TRT, CUDA, CPU], [CUDA, CPU]),
        ("cpu", [TRT, CUDA, CPU], [CPU]),
        ("cuda", [CUDA, CPU], [CUDA, CPU]),
        ("tensorrt", [TRT, CUDA, CPU], [TRT, CUDA, CPU]),
    ],
    ids=["auto-cpu-wheel", "auto-gpu-wheel", "cpu", "cuda", "tensorrt"],
)
def test_provider_lists(provider, available, expected):
    assert ort_providers(provider, available) == expected


@pytest.mark.parametrize("provider", [Provider.CUDA, Provider.TENSORRT], ids=str)
def test_gpu_provider_on_a_cpu_wheel_is_refused_in_one_line(provider):
    with pytest.raises(EngineUnavailableError, match="install onnxruntime-gpu") as info:
        ort_providers(provider, ["AzureExecutionProvider", CPU])
    assert "\n" not in str(info.value)


def test_onnx_engine_on_this_machine_runs_on_the_cpu_with_auto(tmp_path):
    engine = load_engine(make_bundle(tmp_path / "m.onnx"), provider="auto")
    assert engine.providers == [CPU]


@pytest.fixture
def cudart():
    return fake_gpu.FakeCudart()


@pytest.fixture
def built(tmp_path):
    """A bundle and its (fake) TensorRT engine, profile up to batch 8."""
    onnx_path = make_bundle(tmp_path / "m.onnx")
    out = build_engine(onnx_path, tmp_path / "m.engine", TrtOptions(max_batch=8), fake_gpu)
    return onnx_path, out


def _windows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 128, 9)).astype(np.float32)


@no_tensorrt
@pytest.mark.parametrize("batch", [1, 8, 21], ids=["one", "profile-max", "split-in-3"])
def test_tensorrt_engine_matches_onnx_runtime_with_buffers_allocated_once(built, cudart, batch):
    onnx_path, engine_path = built
    engine = TensorRTEngine(engine_path, trt=fake_gpu, cudart=cudart)
    assert engine.max_batch == 8 and engine.contract == read_contract(engine_path)
    allocated = set(cudart.live)
    assert len(allocated) == 2 * 3  # device + pinned host for the input and two outputs
    reference = OnnxEngine(onnx_path)
    for seed in range(2):
        x = _windows(batch, seed)
        got, want = engine.predict(x), reference.predict(x)
        for head in want:
            np.testing.assert_allclose(got[head], want[head], rtol=1e-6, atol=1e-7)
    assert set(cudart.live) == allocated  # no allocation per call
    assert engine.predict(_windows(0))["fall"].shape == (0, 2)
    assert cudart.copies == 2 * 3 * -(-batch // 8)  # per slice: one copy in, two out
    engine.close()
    assert cudart.live == {} and cudart.streams == set()


@no_tensorrt
def test_engine_whose_io_differs_from_its_contract_is_refused(built, cudart):
    _, engine_path = built
    sidecar = engine_path.with_name(engine_path.name + ".json")
    contract = read_contract(engine_path)
    wrong = replace(contract, heads=contract.heads | {"fall": ("a", "b", "c")})
    sidecar.write_text(wrong.to_json())
    with pytest.raises(ContractError, match=r"'fall_probs' has shape \[-1, 2\]"):
        TensorRTEngine(engine_path, trt=fake_gpu, cudart=cudart)
    assert cudart.live == {}  # refused before anything was allocated


@pytest.mark.parametrize(
    ("io", "message"),
    [
        ({"x": ("input", "float", (-1, 128, 9))}, "'windows' only in the contract"),
        ({"windows": ("input", "half", (-1, 128, 9))}, "is input half"),
        ({"windows": ("input", "float", (-1, 64, 9))}, r"has shape \[-1, 64, 9\]"),
        ({"windows": ("output", "float", (-1, 128, 9))}, "is output float"),
    ],
    ids=["renamed-input", "fp16-input", "window-length", "input-as-output"],
)
def test_engine_io_check_names_what_differs(tmp_path, io, message):
    contract = read_contract(make_bundle(tmp_path / "m.onnx"))
    outputs = {"activity_probs": ("output", "float", (-1, 6)),
               "fall_probs": ("output", "float", (-1, 2))}  # fmt: skip
    with pytest.raises(ContractError, match=message):
        check_engine_io(contract, outputs | io)
    check_engine_io(contract, outputs | {"windows": ("input", "float", (-1, 128, 9))})


@no_tensorrt
def test_no_gpu_is_one_clear_error(built):
    with pytest.raises(EngineUnavailableError, match="CUDA sees no GPU"):
        TensorRTEngine(built[1], trt=fake_gpu, cudart=fake_gpu.FakeCudart(devices=0))


@no_tensorrt
def test_info_on_an_engine_needs_neither_torch_nor_tensorrt(built):
    code = (
        "from gaitedge.cli import app\n"
        f"app(['info', {str(built[1])!r}, '--json'], standalone_mode=False)\n"
        "assert not {'torch', 'tensorrt', 'onnxruntime'} & set(sys.modules)\n"
    )
    done = fake_gpu.run_blocked(code, ("torch", "tensorrt", "onnxruntime"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["heads"]["fall"] == ["no_fall", "fall"]


@no_tensorrt
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "{engine}"], "error: TensorRT is not installed"),
        (["--model", "{onnx}", "--provider", "cuda"], "error: ONNX Runtime here has no CUDA"),
    ],
    ids=["engine-without-tensorrt", "cuda-provider-on-cpu-wheel"],
)
def test_replay_on_a_gpu_model_without_the_gpu_stack_is_one_line(built, args, message):
    from gaitedge.demo import DEMO_RECORDING

    onnx_path, engine_path = built
    argv = [a.format(engine=engine_path, onnx=onnx_path) for a in args]
    cli = [sys.executable, "-c", "from gaitedge.cli import main; main()"]
    done = subprocess.run(
        [*cli, "replay", str(DEMO_RECORDING), "--fast", *argv],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
