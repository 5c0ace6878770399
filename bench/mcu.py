"""The bundle on a Cortex-M4F: footprint, instructions per decision, parity with the host.

    python bench/mcu.py --json

Per INT8 bundle in ``gaitedge/models`` (FP32 references are skipped: the device runs INT8):

* ``flash_bytes``, ``ram_bytes``: ``arm-none-eabi-size`` of the library's objects
  (``-O2 -mcpu=cortex-m4 -mfloat-abi=hard -mfpu=fpv4-sp-d16``): flash = text (with rodata) +
  data; RAM = data + bss + the peak stack of one decision (painted stack, unicorn).
* ``instructions_per_decision``: instructions (unicorn, counted per executed block) of the
  ``ge_push`` calls of one hop, the last of which runs the network and the rules; the median
  over several hops of the demo recording. ``instructions_per_inference`` is ``ge_net_run``
  alone; ``instructions_per_mac`` divides it by the network's multiply-accumulates.
  ``cycles_estimate_per_decision`` multiplies by ``export.mcu.arm.CYCLES_PER_INSTRUCTION``:
  an estimate, nothing here counts cycles.
* ``argmax_agreement``, ``logit_max_lsb``, ``logits_identical``: the host build against ONNX
  Runtime on real windows (the demo recording, plus held-out HAPT and SisFall windows where the
  data is present); ``arm_equals_host``: the QEMU ``mps2-an386`` run against the host build.
* ``chain_max_abs_diff``, ``decisions_identical_to_replay``: the C chain and rules against the
  Python chain + ONNX Runtime + ``gaitedge.alerts`` on the whole demo recording.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from export.mcu.arm import CYCLES_PER_INSTRUCTION, ArmBuild, Emulator
from export.mcu.generate import generate
from export.mcu.graph import GraphError, read_quant_net
from export.mcu.host import HostBuild
from export.mcu.parity import NetParity, OrtReference, estimate_rotation, head_slices, stream_parity
from gaitedge.demo import DEMO_RECORDING
from gaitedge.engine import MODELS_DIR
from gaitedge.preprocess import Mounting, run_offline
from gaitedge.recording import read_recording

HOPS_MEASURED = 5


def _net_parity(host: HostBuild, ref: OrtReference, windows: np.ndarray) -> NetParity:
    parity = NetParity()
    parity.add(*host.net(windows), *ref.run(windows), head_slices(ref.contract))
    return parity


def _held_out(ref: OrtReference, n: int) -> np.ndarray | None:
    from export.parity import real_windows
    from gaitedge.datasets import DatasetError

    try:
        return real_windows(ref.contract, None, n=n, part="test", max_subjects=3)
    except (DatasetError, OSError):
        return None


def _decision_instructions(emu: Emulator, imu: np.ndarray) -> tuple[int, int]:
    """Median instructions of one hop's ge_push calls, and the peak stack of any of them."""
    sample, out = emu.sym["window"], emu.sym["window"] + 64
    emu.call("ge_init")
    per_hop, hop, peak, decided = [], 0, 0, 0
    # The window buffer of the application serves as scratch: one sample in, the decision out.
    for row in np.asarray(imu, "<f4"):
        emu.write("window", row.tobytes())
        count = emu.call("ge_push", sample, out)
        hop += count.instructions
        peak = max(peak, count.peak_stack_bytes)
        if count.instructions > 100_000:  # this call ran the network
            decided += 1
            if decided > 1:  # the first hop also holds the window's start-up
                per_hop.append(hop)
            hop = 0
            if len(per_hop) == HOPS_MEASURED:
                break
    return int(np.median(per_hop)), peak


def bench_bundle(bundle: Path, n_held_out: int) -> dict:
    ref = OrtReference(bundle)
    net = read_quant_net(bundle)
    rec = read_recording(DEMO_RECORDING)
    with tempfile.TemporaryDirectory() as tmp:
        src = generate(bundle, Path(tmp) / "c")
        host = HostBuild(src)
        arm = ArmBuild(src)
        rotation = estimate_rotation(ref.contract, [(rec.timestamp_s, rec.imu)])
        stream = stream_parity(host, ref, rec.timestamp_s, rec.imu, rotation)
        demo = run_offline(ref.contract.chain, rec.timestamp_s, rec.imu,
                           mounting=Mounting(rotation=rotation)).data  # fmt: skip
        parity = _net_parity(host, ref, demo)
        held_out = _held_out(ref, n_held_out)
        if held_out is not None:
            parity.add(*host.net(held_out), *ref.run(held_out), head_slices(ref.contract))
        part = rec.imu[:1200]
        host_decisions, host_windows = host.stream(part, rotation)
        decisions, (logits, probs) = arm.run_qemu(
            imu=part, mounting=rotation, windows=host_windows[:16], n_logits=host.n_logits
        )
        host_logits, host_probs = host.net(host_windows[:16])
        arm_equals_host = (
            all(np.array_equal(decisions[f], host_decisions[f]) for f in host_decisions.dtype.names)
            and np.array_equal(logits, host_logits) and np.array_equal(probs, host_probs)
        )  # fmt: skip
        emu = Emulator(arm)
        emu.write("window", host_windows[0].astype("<f4").tobytes())
        inference = emu.call("ge_net_run", emu.sym["window"], emu.sym["window"] + 64,
                             emu.sym["window"] + 128)  # fmt: skip
        per_decision, peak_stack = _decision_instructions(emu, rec.imu)
        size = arm.footprint()
    return {
        "bundle": bundle.name,
        "flash_bytes": size.flash_bytes,
        "ram_bytes": size.static_ram_bytes + peak_stack,
        "static_ram_bytes": size.static_ram_bytes,
        "peak_stack_bytes": peak_stack,
        "macs": net.macs,
        "instructions_per_inference": inference.instructions,
        "instructions_per_decision": per_decision,
        "instructions_per_mac": round(inference.instructions / net.macs, 3),
        "cycles_estimate_per_decision": round(per_decision * CYCLES_PER_INSTRUCTION),
        "argmax_agreement": round(parity.argmax_agreement, 6),
        "logit_max_lsb": parity.logit_max_lsb,
        "logits_identical": parity.logits_identical,
        "n_windows": parity.n_windows,
        "held_out_windows": 0 if held_out is None else len(held_out),
        "prob_max_abs_diff": parity.prob_max_abs_diff,
        "chain_max_abs_diff": stream.chain_max_abs_diff,
        "decisions_identical_to_replay": stream.decisions_identical,
        "activity_changes": len(stream.activity_c),
        "arm_equals_host": bool(arm_equals_host),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON line per bundle")
    p.add_argument("--held-out", type=int, default=2048, help="held-out windows (0: none)")
    p.add_argument(
        "--bundle", action="append", default=None, metavar="NAME",
        help="only this shipped bundle (file name; repeatable). Default: every INT8 one",
    )  # fmt: skip
    args = p.parse_args()
    results = []
    for bundle in sorted(MODELS_DIR.glob("*.onnx")):
        if args.bundle and bundle.name not in args.bundle:
            continue
        try:
            read_quant_net(bundle)
        except GraphError as exc:
            print(f"skipped {bundle.name}: {exc}", file=sys.stderr)
            continue
        results.append(bench_bundle(bundle, args.held_out))
    for r in results:
        if args.json:
            print(json.dumps(r))
        else:
            print("\n".join(f"{k:32} {v}" for k, v in r.items()) + "\n")


if __name__ == "__main__":
    main()
