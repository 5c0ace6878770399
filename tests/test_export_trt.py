"""export.trt: a clear refusal without TensorRT, and the TensorRT 10 / 11 dispatch.

TensorRT cannot be installed on CI machines (no NVIDIA GPU), so the version dispatch is tested
against a thin fake ``tensorrt`` module object standing in at the import boundary only; the
real build runs where the device tool lends a GPU.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import SimpleNamespace

import pytest

from export.trt import EXIT_NO_TENSORRT, BuildPlan, TrtOptions, network_flags, plan_build

no_tensorrt = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here"
)


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
