"""The bundle as C99 for a Cortex-M4F (``export.mcu``), against its references on real data.

* host build (the system cc, strict warnings) vs ONNX Runtime: int8 logits bit for bit;
* host build vs the Python chain and alert rules: windows within 1e-4, decisions identical;
* ARM build (arm-none-eabi-gcc) on QEMU's mps2-an386 vs the host build: identical outputs;
  instruction counts in unicorn, cross-checked against capstone's disassembly.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from export.mcu.generate import DeviceConfig, generate
from export.mcu.graph import read_quant_net
from export.mcu.host import HostBuild
from export.mcu.parity import NetParity, OrtReference, estimate_rotation, head_slices, stream_parity
from gaitedge import datasets as ds
from gaitedge.engine import DEFAULT_MODEL
from gaitedge.recording import read_recording
from tests.conftest import ORT_AVX512, REPO, missing

DEMO = REPO / "gaitedge" / "assets" / "demo_hapt.csv"
# Normalised chain output, C (float32 filters, the gravity split in double) vs Python (float64).
CHAIN_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def ort_ref() -> OrtReference:
    return OrtReference(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> HostBuild:
    src = generate(DEFAULT_MODEL, tmp_path_factory.mktemp("mcu50"))
    return HostBuild(src)


@pytest.fixture(scope="module")
def demo() -> tuple[np.ndarray, np.ndarray]:
    rec = read_recording(DEMO)
    return rec.timestamp_s, rec.imu


def test_bias_quantisation_is_onnxruntimes(tmp_path: Path) -> None:
    """The int32 biases the C network adds are the ones ORT's optimiser writes into its graph."""
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(str(DEFAULT_MODEL), options, providers=["CPUExecutionProvider"])
    graph = onnx.load(str(tmp_path / "optimised.onnx")).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    net = read_quant_net(DEFAULT_MODEL)
    qconvs = [n for n in graph.node if n.op_type == "QLinearConv"]
    assert len(qconvs) == len(net.convs)
    for node, conv in zip(qconvs, net.convs, strict=True):
        assert np.array_equal(inits[node.input[8]], conv.bias)
    gemm_biases = [inits[producer[n.input[2]].input[0]] for n in graph.node if n.op_type == "Gemm"]
    ours = sorted(h.bias.tolist() for h in net.heads)
    assert sorted(b.tolist() for b in gemm_biases) == ours


def test_logits_bit_exact_on_the_demo_recording(host, ort_ref, demo) -> None:
    from gaitedge.preprocess import Mounting, run_offline

    t, imu = demo
    windows = run_offline(ort_ref.contract.chain, t, imu, mounting=Mounting(rotation=np.eye(3)))
    parity = NetParity()
    parity.add(*host.net(windows.data), *ort_ref.run(windows.data), head_slices(ort_ref.contract))
    assert parity.n_windows == len(windows) > 800
    if not ORT_AVX512:  # ORT's AVX2 float kernels round otherwise (tests/conftest.py)
        assert parity.argmax_agreement >= 0.995 and parity.logit_max_lsb <= 8, parity
        return
    assert parity.logits_identical == parity.n_windows, parity
    assert parity.argmax_agreement == 1.0
    assert parity.prob_max_abs_diff < 1e-6


def test_logits_bit_exact_on_held_out_subjects(host, ort_ref, hapt_dir, sisfall_dir) -> None:
    from export.parity import real_windows

    windows = real_windows(ort_ref.contract, hapt_dir.parent, n=1024, part="test", max_subjects=1)
    parity = NetParity()
    parity.add(*host.net(windows), *ort_ref.run(windows), head_slices(ort_ref.contract))
    assert parity.n_windows == 1024
    if not ORT_AVX512:  # ORT's AVX2 float kernels round otherwise (tests/conftest.py)
        assert parity.argmax_agreement >= 0.995 and parity.logit_max_lsb <= 8, parity
        return
    assert parity.logits_identical == parity.n_windows, parity


def test_stream_matches_the_python_chain_and_rules_on_the_demo(host, ort_ref, demo) -> None:
    t, imu = demo
    rotation = estimate_rotation(ort_ref.contract, [(t, imu)])
    result = stream_parity(host, ort_ref, t, imu, rotation)
    assert result.n_windows > 800
    assert result.chain_max_abs_diff < CHAIN_TOLERANCE
    assert len(result.activity_py) >= 10  # all six activities and their changes
    assert result.decisions_identical, (result.activity_py, result.activity_c)


def test_fall_decisions_match_on_held_out_sisfall(host, ort_ref, sisfall_dir) -> None:
    recs = list(ds.sisfall_recordings(sisfall_dir.parent, ["sisfall:SA08"]))
    picked = [r for r in recs if r.is_fall][:5] + [r for r in recs if not r.is_fall][:2]
    rotation = estimate_rotation(ort_ref.contract, [(r.timestamp_s, r.imu) for r in picked])
    falls = 0
    for rec in picked:
        result = stream_parity(host, ort_ref, rec.timestamp_s, rec.imu, rotation)
        assert result.chain_max_abs_diff < CHAIN_TOLERANCE
        assert result.decisions_identical, (rec.activity, result.falls_py, result.falls_c)
        falls += len(result.falls_c)
    assert falls >= 3


def test_a_200_hz_device_decimates_like_the_python_chain(ort_ref, sisfall_dir, tmp_path) -> None:
    host200 = HostBuild(generate(DEFAULT_MODEL, tmp_path / "c", DeviceConfig(odr_hz=200.0)))
    names = ["SA01/F01_SA01_R01.txt", "SA10/F05_SA10_R02.txt", "SE10/D11_SE10_R04.txt"]
    recs = [ds.sisfall_raw_trial(sisfall_dir.parent, n) for n in names]
    assert {r.rate_hz for r in recs} == {200.0}
    rotation = estimate_rotation(ort_ref.contract, [(r.timestamp_s, r.imu) for r in recs])
    falls = 0
    for rec in recs:
        result = stream_parity(host200, ort_ref, rec.timestamp_s, rec.imu, rotation)
        assert result.chain_max_abs_diff < CHAIN_TOLERANCE
        assert result.decisions_identical
        falls += len(result.falls_c)
    assert falls >= 1


def test_a_100_hz_phone_on_held_out_mobifall(ort_ref, mobifall_dir, tmp_path) -> None:
    """The third shared dataset: MobiFall's 100 Hz pocket phone (a held-out subject with daily
    activities), decimated on the device as the Python chain decimates it."""
    host100 = HostBuild(generate(DEFAULT_MODEL, tmp_path / "c", DeviceConfig(odr_hz=100.0)))
    recs = list(ds.mobifall_recordings(mobifall_dir.parent, ["mobifall:2"]))
    picked = [r for r in recs if r.is_fall][:3] + [r for r in recs if not r.is_fall][:3]
    assert {r.rate_hz for r in picked} == {100.0} and len(picked) == 6
    rotation = estimate_rotation(ort_ref.contract, [(r.timestamp_s, r.imu) for r in recs])
    windows = 0
    for rec in picked:
        result = stream_parity(host100, ort_ref, rec.timestamp_s, rec.imu, rotation)
        assert result.chain_max_abs_diff < CHAIN_TOLERANCE
        if ORT_AVX512:
            assert result.decisions_identical, (rec.activity, result.falls_py, result.falls_c)
        else:  # a borderline window may decide otherwise (tests/conftest.py)
            assert result.falls_py == result.falls_c, rec.activity
            agreement = _label_agreement(result.activity_py, result.activity_c)
            assert agreement >= 0.99, (rec.activity, agreement)
        windows += result.n_windows
    assert windows > 100


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.onnx"], "no such model file"),
        ([str(DEFAULT_MODEL.with_name("gaitedge-default-fp32.onnx"))], "not an INT8 QDQ bundle"),
        ([str(DEFAULT_MODEL), "--odr-hz", "75"], "whole multiple"),
    ],
    ids=["missing", "fp32", "odr"],
)
def test_cli_refuses_bad_input(tmp_path, capsys, args, message) -> None:
    from export.mcu.__main__ import main

    assert main([*args, "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_as_a_process(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "export.mcu", str(DEFAULT_MODEL), "--out", str(tmp_path / "c"),
         "--odr-hz", "100", "--mount=-y,x,z"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    params = (tmp_path / "c" / "gaitedge_params.h").read_text()
    assert "#define GE_DECIMATION 2" in params and "#define GE_ANTIALIAS 1" in params
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == sorted(
        ["gaitedge_mcu.c", "gaitedge_mcu.h", "gaitedge_net.c", "gaitedge_nn.c", "gaitedge_nn.h",
         "gaitedge_params.c", "gaitedge_params.h"]
    )  # fmt: skip


@pytest.fixture(scope="module")
def arm(host):
    from export.mcu.arm import ArmBuild

    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            missing(f"{tool} is not installed (apt-get install gcc-arm-none-eabi "
                    "libnewlib-arm-none-eabi qemu-system-arm)")  # fmt: skip
    return ArmBuild(host.path.parent.parent)


def test_cortex_m4_build_on_qemu_equals_the_host_build(arm, host, demo) -> None:
    _, imu = demo
    imu = imu[:700]  # 58 decisions
    rotation = np.eye(3)
    host_decisions, host_windows = host.stream(imu, rotation)
    decisions, (logits, probs) = arm.run_qemu(
        imu=imu, mounting=rotation, windows=host_windows[:8], n_logits=host.n_logits
    )
    assert len(decisions) == len(host_decisions) == 58
    for name in host_decisions.dtype.names:
        assert np.array_equal(decisions[name], host_decisions[name]), name
    host_logits, host_probs = host.net(host_windows[:8])
    assert np.array_equal(logits, host_logits) and np.array_equal(probs, host_probs)
    size = arm.footprint()
    assert size.flash_bytes <= 96 * 1024 and size.static_ram_bytes <= 24 * 1024


def test_instruction_counts_agree_with_capstone(arm, host, demo) -> None:
    """The C block hook's Thumb-2 length decoding against capstone's disassembly."""
    from capstone import CS_ARCH_ARM, CS_MODE_MCLASS, CS_MODE_THUMB, Cs
    from unicorn import UC_HOOK_BLOCK

    from export.mcu.arm import Emulator

    emu = Emulator(arm)
    cs = Cs(CS_ARCH_ARM, CS_MODE_THUMB | CS_MODE_MCLASS)
    seen = []

    def disassemble(uc, address: int, size: int, _user) -> None:
        seen.append(len(list(cs.disasm_lite(emu.read(address, size), address))))

    hook = emu.uc.hook_add(UC_HOOK_BLOCK, disassemble)
    sample = np.asarray(demo[1][0], "<f4").tobytes()
    emu.write("window", sample)  # the application's buffer, as scratch for one sample
    scratch = emu.sym["window"] + 64
    count = emu.call("ge_push", emu.sym["window"], scratch)
    assert count.instructions == sum(seen) > 200
    emu.uc.hook_del(hook)  # a Python hook per block is too slow for a whole inference
    _, windows = host.stream(demo[1][:200])
    emu.write("window", windows[0].astype("<f4").tobytes())
    count = emu.call("ge_net_run", emu.sym["window"], scratch, scratch + 16)
    logits = np.frombuffer(emu.read(scratch, host.n_logits), np.int8)
    assert np.array_equal(logits, host.net(windows[:1])[0][0])
    assert count.instructions > 1_000_000
    assert 0 < count.peak_stack_bytes < 2048


class _ConvFloat(ctypes.Structure):
    _fields_ = [("weight", ctypes.c_void_p), ("bias", ctypes.c_void_p),
                *((f, ctypes.c_int) for f in ("c_out", "k", "stride", "pad", "relu")),
                ("out_scale", ctypes.c_float)]  # fmt: skip


class _ConvInt8(ctypes.Structure):
    _fields_ = [("weight", ctypes.c_void_p), ("bias", ctypes.c_void_p),
                ("requant", ctypes.c_void_p),
                *((f, ctypes.c_int) for f in ("c_out", "k", "stride", "pad", "relu"))]  # fmt: skip


def _conv_call(host, name, desc, x, t_out, c_out, scratch_dtype):
    """Call a kernel of the host build; y has a guard tail the kernel must not touch."""
    t_in, c_in = x.shape
    scratch = np.zeros((t_in + 2 * desc.pad) * c_in + 8, scratch_dtype)
    y = np.full(t_out * c_out + 16, 99, np.int8)
    getattr(host.lib, name)(
        ctypes.c_void_p(x.ctypes.data), ctypes.c_int(t_in), ctypes.c_int(c_in),
        ctypes.byref(desc), ctypes.c_void_p(scratch.ctypes.data), ctypes.c_void_p(y.ctypes.data),
    )  # fmt: skip
    assert np.all(y[t_out * c_out :] == 99), "the kernel wrote past its output"
    return y[: t_out * c_out].reshape(t_out, c_out)


def _im2col(x: np.ndarray, k: int, stride: int, pad: int) -> np.ndarray:
    """[T', C * K] receptive fields of the zero-padded x [T, C], in ONNX's (channel, tap) order."""
    xp = np.pad(x, ((pad, pad), (0, 0)))
    t_out = (len(xp) - k) // stride + 1
    return np.stack([xp[t * stride : t * stride + k].T.ravel() for t in range(t_out)])


# Shapes the shipped bundle does not reach: odd output steps and channels, a receptive field
# that is not a whole number of SMLAD groups (n % 4 = 1, 2, 3), a partial float channel block.
@pytest.mark.parametrize(("t_in", "c_in", "c_out", "k", "stride", "pad"),
                         [(13, 7, 5, 3, 2, 1), (12, 6, 4, 3, 1, 1), (9, 5, 3, 3, 1, 0),
                          (16, 4, 6, 5, 2, 2)])  # fmt: skip
def test_int8_kernel_edges_are_exact(host, t_in, c_in, c_out, k, stride, pad) -> None:
    from export.mcu.generate import smlad_pairs

    rng = np.random.default_rng(t_in * c_in)
    x = rng.integers(-128, 128, (t_in, c_in), dtype=np.int8)
    w = rng.integers(-128, 128, (c_out, c_in, k), dtype=np.int8)
    w[0, 0, 0] = -128  # the extremes SXTB16 must sign-extend
    bias = rng.integers(-5000, 5000, c_out, dtype=np.int32)
    requant = rng.uniform(2e-4, 2e-3, c_out).astype(np.float32)
    pairs = smlad_pairs(w)
    desc = _ConvInt8(pairs.ctypes.data, bias.ctypes.data, requant.ctypes.data,
                     c_out, k, stride, pad, 1)  # fmt: skip
    cols = _im2col(x.astype(np.int64), k, stride, pad)
    acc = (cols @ w.reshape(c_out, -1).astype(np.int64).T + bias).astype(np.int32)
    scaled = acc.astype(np.float32) * requant  # float32, as QLinearConv's requantisation
    want = np.maximum(np.rint(np.clip(scaled, -128, 127)), 0).astype(np.int8)
    got = _conv_call(host, "ge_conv_int8", desc, x, len(cols), c_out, np.int16)
    assert np.array_equal(got, want)


@pytest.mark.parametrize(("t_in", "c_out", "stride"), [(11, 6, 1), (12, 9, 2)])
def test_float_kernel_edges(host, t_in, c_out, stride) -> None:
    """Partial blocks of output steps and channels land where they belong (a float64 reference:
    within 1 LSB, the FMA chain's rounding aside)."""
    from export.mcu.generate import float_conv_blocks

    rng = np.random.default_rng(t_in)
    c_in, k, pad = 3, 5, 2
    x = rng.normal(0, 1, (t_in, c_in)).astype(np.float32)
    w = rng.normal(0, 0.3, (c_out, c_in, k)).astype(np.float32)
    bias = rng.normal(0, 0.1, c_out).astype(np.float32)
    blocks = np.ascontiguousarray(float_conv_blocks(w))
    desc = _ConvFloat(blocks.ctypes.data, bias.ctypes.data, c_out, k, stride, pad, 1, 0.02)
    cols = _im2col(x.astype(np.float64), k, stride, pad)
    v = np.maximum(cols @ w.reshape(c_out, -1).T.astype(np.float64) + bias, 0) / np.float32(0.02)
    want = np.rint(np.clip(v, -128, 127)).astype(np.int32)
    got = _conv_call(host, "ge_conv_float", desc, x, len(cols), c_out, np.float32)
    assert np.abs(got.astype(np.int32) - want).max() <= 1
    assert (got == want).mean() > 0.95


@pytest.mark.parametrize("target", ["host", "cortex-m4"])
def test_generated_code_compiles_warning_free_with_clang(host, target, tmp_path) -> None:
    """The generated library under clang's -Werror too (gcc builds it in every other test)."""
    from export.mcu.arm import ARCH_FLAGS
    from export.mcu.host import STRICT_CFLAGS, compile_c

    clang = shutil.which("clang")
    if clang is None:
        missing("clang is not installed (apt-get install clang)")
    flags = [*STRICT_CFLAGS, "-O2"]
    if target == "cortex-m4":  # newlib's headers, as arm-none-eabi-gcc finds them
        flags += [
            "--target=arm-none-eabi",
            *ARCH_FLAGS,
            "-isystem",
            "/usr/lib/arm-none-eabi/include",
        ]
    src = host.path.parent.parent
    for c in sorted(src.glob("*.c")):
        compile_c([clang, *flags, "-c", str(c), "-o", str(tmp_path / f"{c.stem}.o")])
    assert len(list(tmp_path.glob("*.o"))) == len(list(src.glob("*.c"))) >= 4


def _label_agreement(a: list, b: list) -> float:
    """The fraction of chain samples, from the first activity change on, at which two lists
    of (sample, label) activity changes report the same label."""
    grid = np.arange(min(a[0][0], b[0][0]), max(a[-1][0], b[-1][0]) + 1)

    def labels(changes: list) -> np.ndarray:
        at = np.searchsorted([c[0] for c in changes], grid, side="right") - 1
        return np.where(at >= 0, np.array([c[1] for c in changes])[np.maximum(at, 0)], -1)

    return float((labels(a) == labels(b)).mean())


def test_the_tiny_bundle_runs_as_c_and_decides_as_replay(demo, tmp_path) -> None:
    """The microcontroller-sized bundle through the same generator: its C network agrees with
    ONNX Runtime on the demo's windows (on a CPU without AVX-512, tests/conftest.py: 2 346 of
    2 936 windows identical, argmax 0.9986, bench/mcu.py), and the C chain and rules make the
    decisions `replay` makes."""
    tiny = DEFAULT_MODEL.with_name("gaitedge-tiny.onnx")
    ref = OrtReference(tiny)
    build = HostBuild(generate(tiny, tmp_path / "c"))
    t, imu = demo
    from gaitedge.preprocess import Mounting, run_offline

    windows = run_offline(ref.contract.chain, t, imu, mounting=Mounting(rotation=np.eye(3)))
    parity = NetParity()
    parity.add(*build.net(windows.data), *ref.run(windows.data), head_slices(ref.contract))
    assert parity.n_windows == len(windows) > 800
    assert parity.argmax_agreement >= 0.995, parity
    result = stream_parity(build, ref, t, imu, estimate_rotation(ref.contract, [(t, imu)]))
    assert result.chain_max_abs_diff < CHAIN_TOLERANCE
    assert result.decisions_identical, (result.activity_py, result.activity_c)
