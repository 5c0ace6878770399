"""A model bundle's contract in readable form (``gaitedge info``)."""

from __future__ import annotations

import json

from gaitedge.bundle import ModelContract

_UNITS = {"acc": "m/s²", "body_acc": "m/s²", "gravity": "m/s²", "gyro": "rad/s"}


def channel_unit(channel: str) -> str:
    """Physical unit of a chain channel before normalisation."""
    if channel == "acc_norm":
        return "m/s²"
    if channel == "gyro_norm":
        return "rad/s"
    return _UNITS.get(channel.rsplit("_", 1)[0], "?")


def _value(value: object) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def describe_contract(contract: ModelContract) -> list[str]:
    """Lines describing the model: chain, windows, normalisation, heads, training, metrics."""
    c = contract.chain
    lines = [
        f"model            {contract.name} {contract.model_version} (contract format "
        f"{contract.format})",
        f"input            {contract.input_name!r} float32 [batch, {c.window_samples}, "
        f"{c.n_channels}]",
        f"sample rate      {c.sample_rate_hz:g} Hz (inputs resampled from their timestamps)",
        f"low-pass         Butterworth order {c.lowpass_order}, {c.lowpass_cutoff_hz:g} Hz, causal",
        f"gravity split    Butterworth order {c.gravity_order}, {c.gravity_cutoff_hz:g} Hz low-pass"
        " of acc = gravity; body_acc = acc - gravity",
        f"window / hop     {c.window_samples} / {c.hop_samples} samples ({c.window_s:g} s / "
        f"{c.hop_s:g} s); a gap > {c.max_gap_s:g} s starts a new segment",
        "mounting         "
        + (
            "auto: rotated into the body frame estimated from walking (gaitedge calibrate)"
            if c.mounting == "auto"
            else "none: the sensor frame is the model's"
        ),
        "channels         (name, unit, normalisation mean, std)",
    ]
    for i, ch in enumerate(c.channels):
        norm = "not normalised"
        if c.norm_mean is not None:
            norm = f"{c.norm_mean[i]:+.4g} {c.norm_std[i]:.4g}"
        lines.append(f"  {i:2d} {ch:<12} {channel_unit(ch):<6} {norm}")
    lines.append("heads            (output <head>_probs: softmax [batch, n_classes])")
    for head, classes in contract.heads.items():
        lines.append(f"  {head}: {', '.join(classes)}")
    for title, record in (("training", contract.training), ("metrics", contract.metrics)):
        lines.append(f"{title:<17}" + ("" if record else "(none recorded)"))
        lines += [f"  {k}: {_value(v)}" for k, v in record.items()]
    return lines
