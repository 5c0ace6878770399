"""The MAE model: tokens, masking, loss on masked samples only, targets, presets, checkpoints."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from export.onnx import FP32_TOLERANCE, ProbabilityWrapper, export_onnx
from export.parity import real_windows
from gaitedge.preprocess import DEFAULT_CHANNELS, ChainConfig, fit_normalization, run_offline
from tests.bundles import tiny_contract
from train.engine import lr_at
from train.model import (
    PRESETS,
    RAW_TARGET_CHANNELS,
    IMUMaskedAutoencoder,
    MaskMode,
    ModelConfig,
    Target,
    TokenMode,
    count_parameters,
    load_checkpoint,
    preset_config,
    raw_target_normalization,
    with_heads,
)
from train.pretrain import check_channels, model_config, parse_args

# Chain statistics of the shape HAPT gives (m/s², rad/s), for configs that need some.
NORM_MEAN = (0.0, 0.0, 0.0, 9.6, -0.3, 0.4, 0.0, 0.0, 0.0)
NORM_STD = (1.8, 1.0, 1.2, 0.6, 2.1, 2.3, 0.6, 0.5, 0.4)
RAW = dict(target="raw", norm_mean=NORM_MEAN, norm_std=NORM_STD)
VARIANTS = {
    "mixed-chain": {},
    "mixed-raw": RAW,
    "sensor-chain": dict(token_mode="sensor"),
    "sensor-chain-unscored-gravity": dict(token_mode="sensor", gravity_loss=False),
    "sensor-raw": dict(token_mode="sensor") | RAW,
}


def _model(**overrides: object) -> IMUMaskedAutoencoder:
    torch.manual_seed(0)
    return IMUMaskedAutoencoder(preset_config("tiny", **overrides))


def test_patchify_round_trip_keeps_samples_in_place() -> None:
    model = _model(patch_samples=8)
    x = torch.randn(2, 128, 9)
    patches = model.patchify(x)  # [2, 16, 72]
    assert patches.shape == (2, 16, 72)
    assert torch.equal(patches[1, 3, :9], x[1, 24])  # patch 3 starts at sample 24
    assert torch.equal(model.unpatchify(patches), x)


def test_sensor_tokens_hold_one_triplet_of_one_patch() -> None:
    model = _model(patch_samples=8, token_mode="sensor")
    x = torch.randn(2, 128, 9)
    tokens = model.patchify(x)  # [2, 16 * 3, 24]
    assert tokens.shape == (2, 48, 24)
    # token l*3 + s: sensor s (0 body acc, 1 gravity, 2 gyro) of patch l, time-major
    assert torch.equal(tokens[1, 3 * 3 + 1], x[1, 24:32, 3:6].reshape(-1))
    assert torch.equal(tokens[0, 15 * 3 + 2], x[0, 120:128, 6:9].reshape(-1))
    assert torch.equal(model.unpatchify(tokens), x)


@pytest.mark.parametrize("tokens", list(TokenMode), ids=lambda m: m.value)
@pytest.mark.parametrize("mode", list(MaskMode), ids=lambda m: m.value)
def test_masking_hides_the_configured_share(mode: MaskMode, tokens: TokenMode) -> None:
    model = _model(mask_mode=mode, token_mode=tokens)
    _, mask, _ = model.forward_encoder(torch.randn(4, 128, 9))  # [4, W, C]
    share = mask.mean(dim=(1, 2))
    if mode is MaskMode.CHANNEL:  # 2 of the 3 sensor triplets, over the whole window
        assert torch.allclose(share, torch.full((4,), 2 / 3))
        per_channel = mask[:, 0, :]  # [4, C]
        assert torch.equal(mask, per_channel[:, None, :].expand_as(mask))
        assert torch.equal(per_channel.reshape(4, 3, 3).std(dim=2), torch.zeros(4, 3))
    else:
        assert torch.allclose(share, torch.full((4,), 0.75))


def _patch_masks(mask: torch.Tensor, patch_samples: int) -> torch.Tensor:
    """[N, W, C] input mask -> [N, L, 3] masked-or-not per patch and sensor triplet."""
    return mask[:, ::patch_samples, ::3]


def test_sensor_tokens_mask_acc_and_gyro_of_a_patch_independently() -> None:
    torch.manual_seed(2)
    sensor = _patch_masks(
        _model(token_mode="sensor").forward_encoder(torch.randn(64, 128, 9))[1], 4
    )
    mixed = _patch_masks(_model().forward_encoder(torch.randn(64, 128, 9))[1], 4)
    assert torch.equal(mixed[..., 0], mixed[..., 2])  # one token: all sensors masked together
    gyro_hidden_acc_seen = (sensor[..., 2] == 1) & (sensor[..., 0] == 0)
    # independent choices at 75 %: ~0.75 * 0.25 of the patches
    assert 0.12 < gyro_hidden_acc_seen.float().mean() < 0.25


@pytest.mark.parametrize("tokens", list(TokenMode), ids=lambda m: m.value)
def test_span_masking_masks_contiguous_runs(tokens: TokenMode) -> None:
    model = _model(mask_mode=MaskMode.SPAN, mask_span_patches=4, token_mode=tokens)
    torch.manual_seed(1)
    token_mask = _patch_masks(model.forward_encoder(torch.randn(8, 128, 9))[1], 4)  # [8, 32, 3]
    changes = (token_mask[:, 1:] != token_mask[:, :-1]).sum(dim=1)  # [8, 3] per sensor
    rmask = _patch_masks(_model(token_mode=tokens).forward_encoder(torch.randn(8, 128, 9))[1], 4)
    random_changes = (rmask[:, 1:] != rmask[:, :-1]).sum(dim=1)
    assert changes.float().mean() < random_changes.float().mean()
    assert (changes <= 2 * 32 // 4).all()


@pytest.mark.parametrize("overrides", VARIANTS.values(), ids=VARIANTS.keys())
def test_loss_counts_masked_samples_only(overrides: dict) -> None:
    model = _model(**overrides)
    x = torch.randn(3, 128, 9)
    target = model.reconstruction_target(x)  # [3, W, T]
    mask = torch.zeros_like(target)
    mask[:, :32] = 1
    pred = target.clone()
    pred[:, 32:] += 100.0  # wrong where visible: must not count
    assert model.forward_loss(x, pred, mask).item() == 0.0
    pred[:, :32] += 1.0
    assert model.forward_loss(x, pred, mask).item() == pytest.approx(1.0)


@pytest.mark.parametrize("overrides", VARIANTS.values(), ids=VARIANTS.keys())
def test_the_loss_mask_follows_the_masked_input(overrides: dict) -> None:
    model = _model(**overrides)
    _, input_mask, _ = model.forward_encoder(torch.randn(8, 128, 9))  # [8, W, 9]
    mask = model.loss_mask(input_mask)  # [8, W, T]
    cfg = model.cfg
    if cfg.target is Target.RAW:  # acc scored where body acc is hidden, gyro where gyro is
        assert mask.shape[-1] == 6
        assert torch.equal(mask, input_mask[..., [0, 1, 2, 6, 7, 8]])
    elif cfg.gravity_loss:
        assert torch.equal(mask, input_mask)
    else:  # gravity masked in the input but never scored
        assert input_mask[..., 3:6].mean() == pytest.approx(0.75, abs=0.05)
        assert torch.equal(mask[..., 3:6], torch.zeros_like(mask[..., 3:6]))
        assert torch.equal(mask[..., [0, 1, 2, 6, 7, 8]], input_mask[..., [0, 1, 2, 6, 7, 8]])


@pytest.mark.parametrize("overrides", VARIANTS.values(), ids=VARIANTS.keys())
def test_reconstruction_shapes_and_gradients(overrides: dict) -> None:
    model = _model(**overrides)
    loss, pred, mask = model(torch.randn(2, 128, 9))
    n_target = 6 if model.cfg.target is Target.RAW else 9
    assert pred.shape == mask.shape == (2, 128, n_target)
    loss.backward()
    assert model.patch_embed.weight.grad is not None
    assert model.decoder_pred.weight.grad is not None
    if model.cfg.token_mode is TokenMode.SENSOR:
        assert model.sensor_embed.grad.abs().sum() > 0
        assert model.decoder_sensor_embed.grad.abs().sum() > 0


@pytest.mark.parametrize("tokens", list(TokenMode), ids=lambda m: m.value)
def test_a_linear_probe_freezes_everything_the_encoder_uses(tokens: TokenMode) -> None:
    model = _model(token_mode=tokens, pos_embed="learned", heads=(("activity", 6),))
    model.classify(torch.randn(2, 128, 9))["activity"].sum().backward()
    used = {id(p) for p in model.parameters() if p.grad is not None}
    after_encoder = {id(p) for m in (model.fc_norm, model.heads) for p in m.parameters()}
    assert {id(p) for p in model.encoder_parameters()} == used - after_encoder


def test_sensor_raw_reads_acc_from_the_body_token() -> None:
    model = _model(token_mode="sensor", **RAW)
    x = torch.randn(2, 128, 9)
    target = model.reconstruction_target(x)  # [2, W, 6]
    slots = torch.cat([target[..., :3], torch.randn(2, 128, 3), target[..., 3:]], dim=-1)
    assert torch.equal(model.unpatchify(model.patchify(slots)), target)


def test_raw_target_is_body_plus_gravity_in_physical_units(hapt_experiment) -> None:
    """On a real HAPT window, the raw target un-normalised is the chain's own total acc and gyro
    (its ``acc_*`` channels, computed without the body/gravity split)."""
    t, imu, _ = hapt_experiment
    chain = ChainConfig()
    physical = run_offline(chain, t, imu).data  # [K, W, 9] m/s², rad/s
    normed = chain.with_normalization(*fit_normalization(physical))
    x = torch.from_numpy(run_offline(normed, t, imu).data[20:28])  # real walking/standing windows
    measured = ChainConfig(channels=RAW_TARGET_CHANNELS)
    expected = run_offline(measured, t, imu).data[20:28]  # [8, W, 6]
    model = _model(token_mode="sensor", target="raw",
                   norm_mean=normed.norm_mean, norm_std=normed.norm_std)  # fmt: skip
    mean, std = raw_target_normalization(normed.norm_mean, normed.norm_std)
    got = model.reconstruction_target(x).numpy() * np.array(std) + np.array(mean)
    np.testing.assert_allclose(got, expected, atol=2e-5 * np.abs(expected).max())
    assert np.abs(expected[..., 0]).mean() > 5.0  # gravity is in it (HAPT's x is up)
    scaled = model.reconstruction_target(x).numpy()
    assert 0.2 < scaled[..., :3].std() < 3.0  # near unit scale, like the gyro


def test_sensor_token_model_exports_to_onnx_with_parity(tmp_path, hapt_dir) -> None:
    contract = tiny_contract({"activity": tiny_contract().heads["activity"]})
    windows = real_windows(contract, hapt_dir.parent, n=64, max_subjects=1)
    mae = _model(embed_dim=32, depth=1, num_heads=2, decoder_depth=1, token_mode="sensor",
                 mask_mode="channel", heads=(("activity", 6),)).eval()  # fmt: skip
    report = export_onnx(mae, contract, tmp_path / "sensor.onnx", windows)
    assert report.ok and report.max_abs_diff <= FP32_TOLERANCE
    assert report.n_windows == 64 and report.argmax_agreement == 1.0


def test_tiny_preset_is_cpu_sized_and_large_is_the_seeds() -> None:
    assert 0.5e6 <= count_parameters(_model()) <= 1.0e6
    large = preset_config("large")
    assert (large.embed_dim, large.depth, large.num_heads) == (1024, 24, 16)
    assert (large.decoder_embed_dim, large.decoder_depth) == (512, 8)
    assert set(PRESETS) == {"tiny", "small", "base", "large"}


def test_classification_path_is_deterministic_and_softmax_heads() -> None:
    model = with_heads(_model(), {"activity": 6, "fall": 2}).eval()
    x = torch.randn(5, 128, 9)
    a, b = model.classify(x), model.classify(x)
    assert torch.equal(a["activity"], b["activity"])
    probs = ProbabilityWrapper(model)(x)  # the export wrapper
    assert [p.shape for p in probs] == [(5, 6), (5, 2)]
    assert torch.allclose(probs[1].sum(-1), torch.ones(5))


def test_with_heads_keeps_the_encoder() -> None:
    model = _model()
    tuned = with_heads(model, {"fall": 2})
    assert torch.equal(tuned.blocks[0].attn.qkv.weight, model.blocks[0].attn.qkv.weight)
    assert tuned.cfg.heads == (("fall", 2),)


@pytest.mark.parametrize("overrides", VARIANTS.values(), ids=VARIANTS.keys())
def test_config_round_trips_through_a_dict(overrides: dict) -> None:
    cfg = preset_config("small", mask_mode="span", heads=(("activity", 12),), **overrides)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_a_checkpoint_from_before_the_variants_loads_as_mixed_chain(tmp_path) -> None:
    model = with_heads(_model(), {"fall": 2})
    old_fields = {"token_mode", "target", "gravity_loss", "norm_mean", "norm_std"}
    config = {k: v for k, v in model.cfg.to_dict().items() if k not in old_fields}
    torch.save({"model_config": config, "state_dict": model.state_dict()}, tmp_path / "old.pt")
    loaded, _ = load_checkpoint(tmp_path / "old.pt")  # strict: no new weights expected
    assert loaded.cfg == model.cfg
    assert (loaded.cfg.token_mode, loaded.cfg.target) == (TokenMode.MIXED, Target.CHAIN)
    x = torch.randn(2, 128, 9)
    assert torch.equal(loaded.classify(x)["fall"], model.eval().classify(x)["fall"])


def test_invalid_variants_are_refused() -> None:
    with pytest.raises(ValueError, match="norm_mean and norm_std"):
        preset_config("tiny", target="raw")
    with pytest.raises(ValueError, match="default channels"):
        preset_config("tiny", token_mode="sensor", n_channels=6)
    with pytest.raises(ValueError, match="chain target only"):
        preset_config("tiny", gravity_loss=False, **RAW)


def _normalised_chain() -> ChainConfig:
    return ChainConfig().with_normalization(np.array(NORM_MEAN), np.array(NORM_STD))


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], ("mixed", "chain", True, None)),
        (["--token-mode", "sensor"], ("sensor", "chain", False, None)),
        (["--token-mode", "sensor", "--gravity-loss"], ("sensor", "chain", True, None)),
        (["--no-gravity-loss"], ("mixed", "chain", False, None)),
        (["--token-mode", "sensor", "--target", "raw"], ("sensor", "raw", True, NORM_STD)),
    ],
    ids=["default", "sensor", "sensor-scored-gravity", "mixed-unscored-gravity", "sensor-raw"],
)
def test_pretrain_flags_reach_the_model_config(flags: list[str], expected: tuple) -> None:
    args = parse_args(["--out", "unused", *flags])
    cfg = model_config(args, _normalised_chain())
    assert (cfg.token_mode.value, cfg.target.value, cfg.gravity_loss, cfg.norm_std) == expected
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg  # what the checkpoint stores


def test_pretrain_refuses_sensor_tokens_on_other_channels() -> None:
    args = parse_args(["--out", "unused", "--token-mode", "sensor"])
    check_channels(args, ChainConfig())
    other = ChainConfig(channels=("acc_x", "acc_y", "acc_z", *DEFAULT_CHANNELS[6:]))
    with pytest.raises(SystemExit, match="need the chain channels"):
        check_channels(args, other)
    check_channels(parse_args(["--out", "unused"]), other)  # mixed chain reads any channels


def test_lr_schedule_warms_up_then_decays_to_min() -> None:
    kw = dict(base_lr=1e-3, min_lr=1e-5, warmup_steps=10, total_steps=100)
    lrs = [lr_at(s, **kw) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in itertools.pairwise(lrs[9:]))
    assert lr_at(100, **kw) == pytest.approx(1e-5)
    assert lr_at(55, **kw) == pytest.approx(
        1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi / 2))
    )
