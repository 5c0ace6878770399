"""The bundle as C99 for a Cortex-M4F (``export.mcu``), against its references on real data.

* host build (the system cc, strict warnings) vs ONNX Runtime: int8 logits bit for bit;
* host build vs the Python chain and alert rules: windows within 1e-4, decisions identical;
* ARM build (arm-none-eabi-gcc) on QEMU's mps2-an386 vs the host build: identical outputs;
  instruction counts in unicorn, cross-checked against capstone's disassembly.
"""

from __future__ import annotations

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
from tests.conftest import REPO, missing

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
    assert parity.logits_identical == parity.n_windows, parity
    assert parity.argmax_agreement == 1.0
    assert parity.prob_max_abs_diff < 1e-6


def test_logits_bit_exact_on_held_out_subjects(host, ort_ref, hapt_dir, sisfall_dir) -> None:
    from export.parity import real_windows

    windows = real_windows(ort_ref.contract, hapt_dir.parent, n=1024, part="test", max_subjects=1)
    parity = NetParity()
    parity.add(*host.net(windows), *ort_ref.run(windows), head_slices(ort_ref.contract))
    assert parity.n_windows == 1024
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
