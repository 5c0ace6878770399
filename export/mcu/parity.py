"""The generated C against its references, on real recordings.

* **Network**: int8 logits against ONNX Runtime's (the heads' QuantizeLinear outputs, exposed
  as extra graph outputs: nothing upstream changes, so ORT fuses and rounds as it always does),
  the softmax probabilities, and the arg-max per head.
* **Chain**: the C chain's windows against ``gaitedge.preprocess.run_offline`` with the same
  fixed mounting, at the device's rate.
* **Decisions**: activity changes and fall alerts against ``gaitedge.alerts`` fed the Python
  chain's windows and ONNX Runtime's probabilities (what ``gaitedge replay`` runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from export.mcu.graph import read_quant_net
from gaitedge.alerts import ActivitySmoother, AlertType, FallDetector
from gaitedge.bundle import ModelContract
from gaitedge.preprocess import Mounting, run_offline


class OrtReference:
    """ONNX Runtime on ``bundle`` with the heads' int8 logits as extra outputs."""

    def __init__(self, bundle: str | Path) -> None:
        import onnxruntime as ort

        net = read_quant_net(bundle)
        self.contract: ModelContract = net.contract
        model = onnx.load(str(bundle))
        self.heads = [h.name for h in net.heads]
        self._names = [h.output for h in net.heads] + [h.logits for h in net.heads]
        for h in net.heads:
            model.graph.output.append(
                onnx.helper.make_tensor_value_info(h.logits, onnx.TensorProto.INT8, None)
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )

    def run(self, windows: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """[K, W, C] -> (int8 logits [K, L], probabilities [K, L]), heads concatenated."""
        logits, probs = [], []
        name = self.contract.input_name
        for i in range(0, len(windows), batch):
            out = self.session.run(self._names, {name: windows[i : i + batch].astype(np.float32)})
            n = len(self.heads)
            probs.append(np.concatenate(out[:n], axis=1))
            logits.append(np.concatenate(out[n:], axis=1))
        if not logits:
            width = sum(len(c) for c in self.contract.heads.values())
            return np.zeros((0, width), np.int8), np.zeros((0, width), np.float32)
        return np.concatenate(logits), np.concatenate(probs)


@dataclass
class NetParity:
    n_windows: int = 0
    logits_identical: int = 0  # windows whose every logit equals ORT's
    logit_max_lsb: int = 0
    argmax_identical: int = 0  # windows whose arg-max agrees in every head
    prob_max_abs_diff: float = 0.0

    def add(self, c_logits, c_probs, ref_logits, ref_probs, head_slices) -> None:
        diff = np.abs(c_logits.astype(np.int32) - ref_logits.astype(np.int32))
        self.n_windows += len(c_logits)
        self.logits_identical += int((diff == 0).all(axis=1).sum())
        self.logit_max_lsb = max(self.logit_max_lsb, int(diff.max(initial=0)))
        same = np.ones(len(c_logits), bool)
        for s in head_slices:
            same &= c_probs[:, s].argmax(axis=1) == ref_probs[:, s].argmax(axis=1)
        self.argmax_identical += int(same.sum())
        gap = float(np.abs(c_probs - ref_probs).max(initial=0.0))
        self.prob_max_abs_diff = max(self.prob_max_abs_diff, gap)

    @property
    def argmax_agreement(self) -> float:
        return self.argmax_identical / max(self.n_windows, 1)


def head_slices(contract: ModelContract) -> list[slice]:
    out, start = [], 0
    for classes in contract.heads.values():
        out.append(slice(start, start + len(classes)))
        start += len(classes)
    return out


@dataclass
class StreamParity:
    """One recording through the C library against the Python chain, ORT and alerts."""

    n_windows: int = 0
    chain_max_abs_diff: float = 0.0
    activity_py: list = field(default_factory=list)  # (t_end sample, label) per change
    activity_c: list = field(default_factory=list)
    falls_py: list = field(default_factory=list)  # (t sample, impact sample) per alert
    falls_c: list = field(default_factory=list)

    @property
    def decisions_identical(self) -> bool:
        return self.activity_py == self.activity_c and self.falls_py == self.falls_c


def python_decisions(
    contract: ModelContract, windows, probs: np.ndarray, slices: list[slice]
) -> tuple[list, list]:
    """Activity changes and fall alerts of ``gaitedge.alerts`` as (chain sample, ...) tuples."""
    rate = contract.chain.sample_rate_hz
    t0 = float(windows.t_end_s[0])
    first_end = contract.chain.window_samples - 1

    def sample(t: float) -> int:
        return first_end + round((t - t0) * rate)

    heads = list(contract.heads)
    activity, falls = [], []
    if "activity" in heads:
        smoother = ActivitySmoother(contract.heads["activity"])
        p = probs[:, slices[heads.index("activity")]]
        for alert in smoother.update_batch(windows.t_start_s, windows.t_end_s, p):
            activity.append((sample(alert.t), contract.heads["activity"].index(alert.label)))
    if "fall" in heads:
        detector = FallDetector(contract.chain.channels)
        p_fall = probs[:, slices[heads.index("fall")]][:, contract.heads["fall"].index("fall")]
        for alert in detector.update_windows(windows, p_fall, contract.chain):
            assert alert.type is AlertType.FALL
            falls.append((sample(alert.t), sample(alert.t_event)))
    return activity, falls


def stream_parity(
    host, ort: OrtReference, timestamp_s: np.ndarray, imu: np.ndarray, rotation: np.ndarray
) -> StreamParity:
    """A whole recording at the device's rate: C ``ge_push`` vs Python chain + ORT + alerts."""
    contract = ort.contract
    result = StreamParity()
    windows = run_offline(contract.chain, timestamp_s, imu, mounting=Mounting(rotation=rotation))
    decisions, c_windows = host.stream(imu, rotation)
    k = min(len(windows), len(decisions))
    result.n_windows = len(decisions)
    if len(windows) != len(decisions):
        raise AssertionError(f"C made {len(decisions)} windows, Python {len(windows)}")
    if not k:
        return result
    result.chain_max_abs_diff = float(np.abs(c_windows - windows.data).max())
    _, probs = ort.run(windows.data)
    slices = head_slices(contract)
    result.activity_py, result.falls_py = python_decisions(contract, windows, probs, slices)
    first_end = contract.chain.window_samples - 1
    t_end = decisions["t_end"].astype(np.int64)
    if not np.array_equal(t_end - t_end[0], np.arange(k) * contract.chain.hop_samples):
        raise AssertionError("C windows are not one hop apart")
    shift = first_end - int(t_end[0])
    for d in decisions:
        if d["activity_change"] >= 0:
            result.activity_c.append((int(d["t_end"]) + shift, int(d["activity_change"])))
        if d["fall"]:
            result.falls_c.append((int(d["t_end"]) + shift, int(d["fall_t_event"]) + shift))
    return result


def estimate_rotation(contract: ModelContract, recordings: list[tuple[np.ndarray, np.ndarray]]):
    """The stored mounting a device would carry: ``gaitedge.preprocess.calibrate`` over the
    wearer's recordings (identity for a chain without automatic mounting)."""
    from gaitedge.preprocess import calibrate

    if contract.chain.mounting != "auto":
        return np.eye(3)
    return calibrate(contract.chain, recordings).rotation.copy()
