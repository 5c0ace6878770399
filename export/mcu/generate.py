"""Write a bundle as dependency-free C99: its numbers into ``gaitedge_params.{h,c}``, next to
the fixed sources in ``export/mcu/c`` (chain, kernels, network, rules, entry point).

The device samples at a fixed output data rate (ODR): an integer multiple of the chain's rate.
At the chain's own rate the samples are the grid; faster, they pass the Python chain's
anti-aliasing Butterworth (designed here exactly as ``gaitedge.preprocess.AntiAlias`` designs it)
and the resampler's grid falls at a fixed phase between two samples (``GE_INTERP_*``).
"""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import signal

from export.mcu.graph import QuantNet, read_quant_net
from gaitedge.alerts import ActivityConfig, Confirmation, FallConfig, impact_peak_ratio
from gaitedge.preprocess import AVAILABLE_CHANNELS, AntiAlias, ChainConfig
from gaitedge.units import STANDARD_GRAVITY_M_S2

log = logging.getLogger(__name__)

C_DIR = Path(__file__).resolve().parent / "c"
LIBRARY_SOURCES = ("gaitedge_mcu.c", "gaitedge_net.c", "gaitedge_nn.c", "gaitedge_params.c")
HEADERS = ("gaitedge_mcu.h", "gaitedge_nn.h", "gaitedge_params.h")


@dataclass(frozen=True)
class DeviceConfig:
    """What the generated code fixes about the device."""

    odr_hz: float | None = None  # None: the chain's own rate
    mounting: np.ndarray | None = None  # body-from-sensor rotation; None: identity
    fall: FallConfig = field(default_factory=FallConfig)
    activity: ActivityConfig = field(default_factory=ActivityConfig)


@dataclass(frozen=True)
class Decimation:
    factor: int  # input samples per chain sample
    antialias: np.ndarray | None  # SOS at the input rate, or None
    first: int  # input index at which the first chain sample is due
    frac: float  # interpolation weight of that sample against the previous one (0: none)


def decimation(chain: ChainConfig, odr_hz: float) -> Decimation:
    """The fixed-phase resampling the Python chain does for a device at exactly ``odr_hz``."""
    ratio = odr_hz / chain.sample_rate_hz
    factor = round(ratio)
    if factor < 1 or abs(ratio - factor) > 1e-9:
        raise ValueError(
            f"the device's rate {odr_hz:g} Hz must be a whole multiple of the chain's "
            f"{chain.sample_rate_hz:g} Hz"
        )
    aa = AntiAlias(chain.sample_rate_hz, chain.max_gap_s)
    aa._design(1.0 / odr_hz)  # the Python chain's own design, at this rate
    if aa._filter is None:
        return Decimation(factor, None, 0, 0.0)
    # Grid point k sits at input position k * factor + delay (the filter's group delay).
    phase = aa.group_delay_s * odr_hz
    whole = math.floor(phase)
    frac = phase - whole
    return Decimation(factor, aa._filter.sos, whole + (frac > 0), float(frac))


def _f(value) -> str:
    """A float32 as the shortest C literal that reads back to the same float32."""
    text = np.format_float_positional(np.float32(value), unique=True, trim="0")
    return f"{text}f"


def _floats(values) -> str:
    return ", ".join(_f(v) for v in np.asarray(values, np.float32).ravel())


def _ints(values) -> str:
    return ", ".join(str(int(v)) for v in np.ravel(values))


def _rows(items: list[str]) -> str:
    return ",\n    ".join(items)


def _doubles(values) -> str:
    return ", ".join(repr(float(v)) for v in np.ravel(values))


def _sos_arrays(name: str, sos: np.ndarray, *, double: bool = False) -> str:
    zi = signal.sosfilt_zi(sos)
    kind, fmt = ("double", _doubles) if double else ("float", _floats)
    rows = ",\n    ".join("{" + fmt(r) + "}" for r in sos)
    zrows = ",\n    ".join("{" + fmt(r) + "}" for r in zi)
    return (
        f"const {kind} ge_{name}_sos[{len(sos)}][6] = {{\n    {rows}\n}};\n"
        f"const {kind} ge_{name}_zi[{len(sos)}][2] = {{\n    {zrows}\n}};\n"
    )


def _samples(seconds: float, rate_hz: float, what: str) -> int:
    n = seconds * rate_hz
    if abs(n - round(n)) > 1e-6:
        raise ValueError(f"{what} = {seconds} s is not a whole number of samples at {rate_hz} Hz")
    return round(n)


def _params_h(net: QuantNet, dev: DeviceConfig, dec: Decimation, odr_hz: float) -> str:
    cfg = net.contract.chain
    heads = list(net.contract.heads)
    offsets = np.cumsum([0] + [len(net.contract.heads[h]) for h in heads])
    has_act = "activity" in heads
    has_fall = (
        "fall" in heads
        and "fall" in net.contract.heads["fall"]
        and all(f"gravity_{a}" in cfg.channels for a in "xyz")
    )
    fall, act = dev.fall, dev.activity
    rate = cfg.sample_rate_hz
    # One int8 activation buffer (every layer's output) and one scratch buffer for a layer's
    # zero-padded input: float for the first layer, int16 for the others, then the pooling.
    t, act_bytes, scratch_bytes = cfg.window_samples, [], []
    for i, layer in enumerate((net.first, *net.convs)):
        o, c, k = layer.weight.shape
        scratch_bytes.append((t + 2 * layer.pad) * c * (4 if i == 0 else 2))
        t = (t + 2 * layer.pad - k) // layer.stride + 1
        act_bytes.append(t * o)
    pool_t = t
    scratch_bytes.append(net.convs[-1].weight.shape[0])
    scratch = -(-max(scratch_bytes) // 4) * 4
    sections = [len(signal.butter(cfg.lowpass_order, 1, fs=4, output="sos"))]
    sections.append(len(signal.butter(cfg.gravity_order, 1, fs=4, output="sos")))
    if dec.antialias is not None:
        sections.append(len(dec.antialias))
    pre_n = _samples(fall.pre_impact_s, rate, "pre_impact_s")
    still_n = _samples(fall.stillness_s, rate, "stillness_s")
    lines = [
        "/* Generated by `python -m export.mcu` from the bundle "
        f"{net.contract.name} {net.contract.model_version}: do not edit. */",
        "#ifndef GAITEDGE_PARAMS_H",
        "#define GAITEDGE_PARAMS_H",
        "",
        "#include <stdint.h>",
        "",
        '#include "gaitedge_nn.h"',
        "",
        f"#define GE_ODR_HZ {_f(odr_hz)}",
        f"#define GE_RATE_HZ {_f(rate)}",
        f"#define GE_DECIMATION {dec.factor}",
        f"#define GE_ANTIALIAS {int(dec.antialias is not None)}",
        f"#define GE_AA_SECTIONS {0 if dec.antialias is None else len(dec.antialias)}",
        f"#define GE_INTERP_FIRST {dec.first}",
        f"#define GE_INTERP_LAGGED {int(dec.frac > 0)}",
        f"#define GE_INTERP_FRAC {_f(dec.frac)}",
        f"#define GE_LP_SECTIONS {sections[0]}",
        f"#define GE_GRAV_SECTIONS {sections[1]}",
        f"#define GE_MAX_SECTIONS {max(sections)}",
        f"#define GE_WINDOW {cfg.window_samples}",
        f"#define GE_HOP {cfg.hop_samples}",
        f"#define GE_CHANNELS {cfg.n_channels}",
        f"#define GE_N_SOURCES {len(AVAILABLE_CHANNELS)}",
        f"#define GE_STANDARD_GRAVITY {_f(STANDARD_GRAVITY_M_S2)}",
        f"#define GE_N_CONVS {len(net.convs)}",
        f"#define GE_ACT_BYTES {max(act_bytes)}",
        f"#define GE_SCRATCH_BYTES {scratch}",
        f"#define GE_MAX_POOL_T {pool_t}",
        f"#define GE_MAX_HEAD_K {net.convs[-1].weight.shape[0]}",
        f"#define GE_POOL_IN_SCALE {_f(net.pool.in_scale)}",
        f"#define GE_POOL_OUT_SCALE {_f(net.pool.out_scale)}",
        f"#define GE_N_HEADS {len(heads)}",
        f"#define GE_N_LOGITS {offsets[-1]}",
        f"#define GE_HAS_ACTIVITY {int(has_act)}",
        f"#define GE_HAS_FALL {int(has_fall)}",
    ]
    for i, h in enumerate(heads):
        lines.append(f"#define GE_HEAD_{h.upper()} {offsets[i]}")
    if has_act:
        lines += [
            f"#define GE_N_ACTIVITY {len(net.contract.heads['activity'])}",
            f"#define GE_ACT_K {act.k}",
            f"#define GE_ACT_N {act.n}",
            f"#define GE_ACT_MIN_PROB {_f(act.min_prob)}",
        ]
    else:
        lines.append("#define GE_ACT_N 1")
    if has_fall:
        threshold = fall.impact_threshold_g * impact_peak_ratio(odr_hz)
        # Samples the rules look back from a window's end: a first window's impact and the
        # gravity before it, or a later hop's impact and its pre-impact gravity.
        history_n = max(cfg.window_samples, cfg.hop_samples + pre_n, still_n) + 1
        cos_change = math.cos(math.radians(fall.orientation_change_deg))
        rules = fall.confirmations
        lines += [
            f"#define GE_FALL_CLASS {net.contract.heads['fall'].index('fall')}",
            f"#define GE_FALL_PROB {_f(fall.prob_threshold)}",
            f"#define GE_FALL_IMPACT_G {_f(threshold)}",
            f"#define GE_FALL_PRE_N {pre_n}",
            f"#define GE_FALL_STILL_N {still_n}",
            f"#define GE_FALL_SETTLE_STILL_N "
            f"{_samples(fall.settle_s + fall.stillness_s, rate, 'settle_s + stillness_s')}",
            f"#define GE_FALL_CONFIRM_N {_samples(fall.confirm_window_s, rate, 'confirm')}",
            f"#define GE_FALL_REFRACTORY_N {_samples(fall.refractory_s, rate, 'refractory_s')}",
            f"#define GE_FALL_HISTORY_N {history_n}",
            f"#define GE_FALL_STILLNESS_G {_f(fall.stillness_threshold_g)}",
            f"#define GE_FALL_ORIENTATION_COS {_f(cos_change)}",
            f"#define GE_FALL_USE_STILLNESS {int(Confirmation.STILLNESS in rules)}",
            f"#define GE_FALL_USE_ORIENTATION {int(Confirmation.ORIENTATION in rules)}",
            f"#define GE_FALL_REQUIRE_ALL {int(fall.require_all)}",
        ]  # fmt: skip
    lines += [
        "",
        "extern const float ge_lp_sos[GE_LP_SECTIONS][6], ge_lp_zi[GE_LP_SECTIONS][2];",
        "extern const double ge_grav_sos[GE_GRAV_SECTIONS][6], ge_grav_zi[GE_GRAV_SECTIONS][2];",
    ]
    if dec.antialias is not None:
        lines.append(
            "extern const float ge_aa_sos[GE_AA_SECTIONS][6], ge_aa_zi[GE_AA_SECTIONS][2];"
        )
    lines += [
        "extern const uint8_t ge_channel_source[GE_CHANNELS];",
        "extern const float ge_norm_mean[GE_CHANNELS], ge_norm_inv_std[GE_CHANNELS];",
        "extern const float ge_default_mounting[9];",
        "extern const ge_conv_float_t ge_first;",
        "extern const ge_conv_int8_t ge_convs[GE_N_CONVS];",
        "extern const ge_head_t ge_heads[GE_N_HEADS];",
        "",
        "#endif",
        "",
    ]
    return "\n".join(lines)


def float_conv_blocks(weight: np.ndarray, block: int = 4) -> np.ndarray:
    """[O, C, K] float weights as ``ge_conv_float_t`` reads them: [ceil(O / 4), C, K, 4], the
    four output channels a block computes side by side (zeros pad a last partial block)."""
    o, c, k = weight.shape
    padded = np.zeros((-(-o // block) * block, c, k), np.float32)
    padded[:o] = weight
    return padded.reshape(-1, block, c, k).transpose(0, 2, 3, 1)


def smlad_pairs(weight: np.ndarray) -> np.ndarray:
    """[O, C, K] int8 weights as ``ge_conv_int8_t`` reads them: rows in the receptive field's
    order ([K, C]), output channels in pairs (an odd last one with itself), the pair's rows
    alternating four values at a time, each four as (0, 2, 1, 3) so that SXTB16 and SXTB16 ROR 8
    widen them into the halfword pairs (0, 1) and (2, 3) the int16 input words hold; each row's
    last ``n % 4`` values follow in order. Returns [ceil(O / 2), 2 * K * C]."""
    o = weight.shape[0]
    rows = np.transpose(weight, (0, 2, 1)).reshape(o, -1)  # [O, K * C]
    n = rows.shape[1]
    whole = n // 4 * 4
    pairs = []
    for first in range(0, o, 2):
        pair = rows[[first, min(first + 1, o - 1)]]  # [2, n]
        groups = pair[:, :whole].reshape(2, -1, 4)[:, :, [0, 2, 1, 3]]  # [2, n / 4, 4]
        pairs.append(np.concatenate([groups.transpose(1, 0, 2).ravel(), pair[:, whole:].ravel()]))
    return np.stack(pairs)


def _params_c(net: QuantNet, dev: DeviceConfig, dec: Decimation) -> str:
    cfg = net.contract.chain
    rate = cfg.sample_rate_hz
    out = [
        "/* Generated by `python -m export.mcu`: do not edit. */",
        '#include "gaitedge_params.h"',
        "",
    ]
    out.append(
        _sos_arrays(
            "lp", signal.butter(cfg.lowpass_order, cfg.lowpass_cutoff_hz, fs=rate, output="sos")
        )
    )
    out.append(
        _sos_arrays(
            "grav",
            signal.butter(cfg.gravity_order, cfg.gravity_cutoff_hz, fs=rate, output="sos"),
            double=True,
        )
    )
    if dec.antialias is not None:
        out.append(_sos_arrays("aa", dec.antialias))
    # The chain's 14 candidate channels, in the order gaitedge_mcu.c computes them.
    computed = [*(f"acc_{a}" for a in "xyz"), *(f"body_acc_{a}" for a in "xyz"),
                *(f"gravity_{a}" for a in "xyz"), *(f"gyro_{a}" for a in "xyz"),
                "acc_norm", "gyro_norm"]  # fmt: skip
    mean = np.zeros(cfg.n_channels) if cfg.norm_mean is None else np.asarray(cfg.norm_mean)
    std = np.ones(cfg.n_channels) if cfg.norm_std is None else np.asarray(cfg.norm_std)
    rotation = np.eye(3) if dev.mounting is None else np.asarray(dev.mounting, np.float64)
    sources = [computed.index(c) for c in cfg.channels]
    out += [
        f"const uint8_t ge_channel_source[GE_CHANNELS] = {{{_ints(sources)}}};",
        f"const float ge_norm_mean[GE_CHANNELS] = {{{_floats(mean)}}};",
        f"const float ge_norm_inv_std[GE_CHANNELS] = {{{_floats(1.0 / std)}}};",
        f"const float ge_default_mounting[9] = {{{_floats(rotation)}}};",
        "",
    ]  # fmt: skip
    first = net.first
    blocks = float_conv_blocks(first.weight)
    out += [
        f"static const float first_weight[{blocks.size}] = {{{_floats(blocks)}}};",
        f"static const float first_bias[{first.bias.size}] = {{{_floats(first.bias)}}};",
        "const ge_conv_float_t ge_first = {first_weight, first_bias, "
        f"{first.weight.shape[0]}, {first.weight.shape[2]}, {first.stride}, {first.pad}, "
        f"{int(first.relu)}, {_f(first.out_scale)}}};",
        "",
    ]
    descs = []
    for i, conv in enumerate(net.convs):
        o, _, k = conv.weight.shape
        w = smlad_pairs(conv.weight)
        out += [
            f"static const int8_t conv{i}_weight[{w.size}] = {{{_ints(w)}}};",
            f"static const int32_t conv{i}_bias[{o}] = {{{_ints(conv.bias)}}};",
            f"static const float conv{i}_requant[{o}] = {{{_floats(conv.requant)}}};",
        ]
        descs.append(
            f"{{conv{i}_weight, conv{i}_bias, conv{i}_requant, {o}, {k}, {conv.stride}, "
            f"{conv.pad}, {int(conv.relu)}}}"
        )
    out += [
        f"const ge_conv_int8_t ge_convs[GE_N_CONVS] = {{\n    {_rows(descs)}\n}};",
        "",
    ]
    descs = []
    for h in net.heads:
        table = np.exp(-np.arange(256) * np.float64(h.out_scale))
        out += [
            f"static const int8_t {h.name}_weight[{h.weight.size}] = {{{_ints(h.weight)}}};",
            f"static const float {h.name}_w_scale[{len(h.w_scale)}] = {{{_floats(h.w_scale)}}};",
            f"static const int32_t {h.name}_bias[{len(h.bias)}] = {{{_ints(h.bias)}}};",
            f"static const float {h.name}_bias_scale[{len(h.bias)}] = {{{_floats(h.bias_scale)}}};",
            f"static const float {h.name}_exp[256] = {{{_floats(table)}}};",
        ]
        descs.append(
            f"{{{h.name}_weight, {h.name}_w_scale, {h.name}_bias, {h.name}_bias_scale, "
            f"{h.name}_exp, {h.weight.shape[0]}, {_f(h.in_scale)}, {_f(h.out_scale)}}}"
        )
    out += [
        f"const ge_head_t ge_heads[GE_N_HEADS] = {{\n    {_rows(descs)}\n}};",
        "",
    ]
    return "\n".join(out)


def generate(bundle: str | Path, out_dir: str | Path, device: DeviceConfig | None = None) -> Path:
    """Write the C library for ``bundle`` into ``out_dir``; returns ``out_dir``."""
    dev = device or DeviceConfig()
    net = read_quant_net(bundle)
    cfg = net.contract.chain
    odr = dev.odr_hz or cfg.sample_rate_hz
    dec = decimation(cfg, odr)
    if cfg.mounting == "auto" and dev.mounting is None:
        log.warning(
            "the bundle's chain aligns the mounting online: the device starts with the identity "
            "rotation until the board calls ge_set_mounting() with a stored estimate"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in (
        "gaitedge_mcu.h",
        "gaitedge_nn.h",
        "gaitedge_mcu.c",
        "gaitedge_net.c",
        "gaitedge_nn.c",
    ):
        shutil.copyfile(C_DIR / name, out / name)
    (out / "gaitedge_params.h").write_text(_params_h(net, dev, dec, odr))
    (out / "gaitedge_params.c").write_text(_params_c(net, dev, dec))
    log.info("%s -> %s (%d MACs per window, input at %g Hz)", bundle, out, net.macs, odr)
    return out
