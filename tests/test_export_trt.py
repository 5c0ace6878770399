"""export.trt: a clear refusal without TensorRT, the TensorRT 10 / 11 dispatch, and build ->
parity -> latency as one JSON line.

TensorRT cannot be installed on CI machines (no NVIDIA GPU), so the version dispatch is tested
against a thin fake ``tensorrt`` module object, and the command end to end against the fakes of
``tests/fake_gpu.py``, standing in at the import boundary only; the real build runs in
``deploy/gpu_check.sh`` where a GPU is lent.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from export.trt import (
    EXIT_NO_TENSORRT,
    EXIT_PARITY,
    PACKAGED_WINDOWS,
    BuildPlan,
    TrtOptions,
    main,
    network_flags,
    plan_build,
    reference_onnx,
)
from tests import fake_gpu
from tests.bundles import make_bundle

no_tensorrt = fake_gpu.no_tensorrt


def fake_trt(version: str, *, has_fp16_flag: bool) -> SimpleNamespace:
    flags = SimpleNamespace(INT8=1, **({"FP16": 0} if has_fp16_flag else {}))
    return SimpleNamespace(
        __version__=version,
        BuilderFlag=flags,
        NetworkDefinitionCreationFlag=SimpleNamespace(STRONGLY_TYPED=5),
    )


@no_tensorrt
def test_without_tensorrt_the_command_exits_2_with_a_clear_message(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "export.trt", "--onnx", "m.onnx", "--fp16", "--out",
         str(tmp_path / "m.engine")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == EXIT_NO_TENSORRT
    assert "TensorRT is not installed" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "m.engine").exists()


@pytest.mark.parametrize(
    ("version", "has_fp16_flag", "opts", "expected"),
    [
        ("10.3.0", True, TrtOptions(fp16=True), BuildPlan(10, False, ("FP16",), False)),
        (
            "10.3.0",
            True,
            TrtOptions(fp16=True, int8=True),
            BuildPlan(10, False, ("FP16", "INT8"), False),
        ),
        ("11.0.0", False, TrtOptions(fp16=True), BuildPlan(11, True, (), True)),
        ("11.0.0", False, TrtOptions(fp16=False, int8=True), BuildPlan(11, True, (), False)),
        ("10.9.0", False, TrtOptions(fp16=True), BuildPlan(10, True, (), True)),
    ],
    ids=["trt10-fp16", "trt10-int8", "trt11-fp16", "trt11-int8", "flagless-10.x"],
)
def test_precision_dispatch(version, has_fp16_flag, opts, expected):
    trt = fake_trt(version, has_fp16_flag=has_fp16_flag)
    plan = plan_build(trt, opts)
    assert plan == expected
    assert network_flags(trt, plan) == (1 << 5 if plan.strongly_typed else 0)


def test_tensorrt_9_is_refused():
    from export.trt import TrtBuildError

    with pytest.raises(TrtBuildError, match="too old"):
        plan_build(fake_trt("8.6.1", has_fp16_flag=True), TrtOptions())


def test_help_needs_neither_torch_nor_tensorrt():
    code = (
        "import runpy; sys.argv = ['export.trt', '--help']\n"
        "try:\n    runpy.run_module('export.trt', run_name='__main__')\n"
        "except SystemExit as e:\n    assert e.code == 0\n"
        "assert not {'torch', 'tensorrt'} & set(sys.modules)\n"
    )
    done = fake_gpu.run_blocked(code, ("torch", "tensorrt"))
    assert done.returncode == 0, done.stderr
    assert "--fp16" in done.stdout and "--reference" in done.stdout


def test_default_profile_covers_replay_fast_and_the_falls_bench():
    assert TrtOptions().max_batch >= 256  # replay --fast ~164 windows per chunk, falls 256


JSON_KEYS = {"tensorrt", "precision", "parity_windows", "engine", "max_batch", "n_windows",
             "max_abs_diff", "argmax_agreement", "ok", "batch1_p50_ms", "batch1_p99_ms",
             "batch64_p50_ms", "batch64_p99_ms"}  # fmt: skip


@pytest.fixture
def fake_stack(monkeypatch):
    """The fake ``tensorrt`` importable, and a fake CUDA runtime (only where TensorRT is absent)."""
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here: deploy/gpu_check.sh runs the real one")
    monkeypatch.setitem(sys.modules, "tensorrt", fake_gpu)
    return fake_gpu.FakeCudart()


def _main(args: list[str], cudart, capsys) -> tuple[int, dict | None, str]:
    code = main([*args, "--windows", "64", "--calls", "8"], cudart=cudart)
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return code, json.loads(lines[-1]) if lines else None, err


def test_build_parity_latency_as_one_json_line(tmp_path, data_root, fake_stack, capsys):
    onnx_path = make_bundle(tmp_path / "m.onnx")
    engine = tmp_path / "m.engine"
    code, result, _ = _main(["--onnx", str(onnx_path), "--fp16", "--out", str(engine),
                             "--data-root", str(data_root)], fake_stack, capsys)  # fmt: skip
    assert code == 0
    assert set(result) == JSON_KEYS
    assert result["ok"] and result["argmax_agreement"] == 1.0 and result["max_batch"] == 256
    assert result["precision"] == "fp16" and result["n_windows"] == 64
    assert result["parity_windows"] == "datasets"
    assert 0 < result["batch1_p50_ms"] <= result["batch1_p99_ms"]
    assert engine.exists() and engine.with_name("m.engine.json").exists()
    assert fake_stack.live == {}  # the check's engine freed its buffers


def test_parity_below_099_exits_non_zero(tmp_path, data_root, fake_stack, capsys):
    onnx_path = make_bundle(tmp_path / "m.onnx")
    other = make_bundle(tmp_path / "other.onnx", seed=1)  # a different model as the reference
    code, result, _ = _main(["--onnx", str(onnx_path), "--fp16", "--out", str(tmp_path / "e"),
                             "--reference", str(other), "--data-root", str(data_root)],
                            fake_stack, capsys)  # fmt: skip
    assert code == EXIT_PARITY
    assert result["argmax_agreement"] < 0.99 and not result["ok"]


@pytest.fixture(scope="module")
def int8_pair(tmp_path_factory, hapt_dir):
    """A tiny FP32 bundle as ``x-fp32.onnx`` and its symmetric and asymmetric INT8 next to it."""
    from export.parity import real_windows
    from export.quantize import QuantScheme, quantize_int8_static
    from tests.bundles import make_bundle, tiny_contract

    root = tmp_path_factory.mktemp("int8")
    windows = real_windows(tiny_contract(), hapt_dir.parent, n=64, max_subjects=1)
    fp32 = make_bundle(root / "x-fp32.onnx", windows)
    sym = quantize_int8_static(fp32, root / "x.onnx", windows)
    asym = quantize_int8_static(fp32, root / "a.onnx", windows, scheme=QuantScheme.ASYMMETRIC)
    return fp32, sym, asym


def test_int8_from_the_symmetric_bundle_builds_and_the_asymmetric_is_refused(
    int8_pair, tmp_path, data_root, fake_stack, capsys
):
    fp32, sym, asym = int8_pair
    assert reference_onnx(sym, None) == fp32  # the -fp32 sibling is the parity reference
    base = ["--int8", "--data-root", str(data_root)]
    # Against its own QDQ graph in ONNX Runtime (this tiny untrained net's INT8 is not 99 %
    # faithful to its FP32): the engine path must then agree exactly.
    args = [*base, "--onnx", str(sym), "--reference", str(sym), "--out", str(tmp_path / "s")]
    code, result, _ = _main(args, fake_stack, capsys)
    assert code == 0 and result["precision"] == "int8" and result["argmax_agreement"] == 1.0
    args = [*base, "--onnx", str(asym), "--reference", str(fp32), "--out", str(tmp_path / "a")]
    code, result, err = _main(args, fake_stack, capsys)
    assert code == 1 and result is None
    assert err.startswith("error: TensorRT could not parse") and "not INT8" in err
    assert err.count("\n") == 1


def test_int8_bundle_without_an_fp32_reference_is_a_clear_error(int8_pair, tmp_path):
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(int8_pair[1].read_bytes())
    with pytest.raises(ValueError, match="give its FP32 bundle with --reference"):
        reference_onnx(lone, None)


def test_jetson_step_2_without_datasets_checks_parity_on_the_packaged_recording(
    tmp_path, fake_stack, capsys, monkeypatch, caplog
):
    """README "Deploying on a Jetson", step 2, as the container runs it: the shipped INT8 bundle
    (its FP32 sibling the reference), no datasets mounted, no --data-root."""
    from gaitedge.engine import DEFAULT_MODEL

    monkeypatch.setenv("GAITEDGE_DATA_ROOT", str(tmp_path / "no-datasets"))
    engine = tmp_path / "model.engine"
    args = ["--onnx", str(DEFAULT_MODEL), "--int8", "--fp16", "--out", str(engine)]
    code, result, err = _main(args, fake_stack, capsys)
    assert code == 0, err
    assert set(result) == JSON_KEYS and result["parity_windows"] == PACKAGED_WINDOWS
    assert result["ok"] and result["n_windows"] == 64 and result["argmax_agreement"] >= 0.99
    assert engine.exists() and engine.with_name("model.engine.json").exists()
    assert "parity on the recording the package carries instead" in caplog.text


def test_a_data_root_asked_for_and_missing_is_still_an_error(tmp_path, fake_stack, capsys):
    onnx_path = make_bundle(tmp_path / "m.onnx")
    missing_root = tmp_path / "typo"
    args = ["--onnx", str(onnx_path), "--fp16", "--out", str(tmp_path / "e"),
            "--data-root", str(missing_root)]  # fmt: skip
    code, result, err = _main(args, fake_stack, capsys)
    assert code == 1 and result is None
    assert err.startswith("error: ") and str(missing_root) in err
