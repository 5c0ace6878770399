"""The MAE model: patching, masking, loss on masked samples only, presets, checkpoints."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from export.onnx import ProbabilityWrapper
from train.engine import lr_at
from train.model import (
    PRESETS,
    IMUMaskedAutoencoder,
    MaskMode,
    ModelConfig,
    count_parameters,
    preset_config,
    with_heads,
)


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


@pytest.mark.parametrize("mode", list(MaskMode), ids=lambda m: m.value)
def test_masking_hides_the_configured_share(mode: MaskMode) -> None:
    model = _model(mask_mode=mode)
    _, mask, _ = model.forward_encoder(torch.randn(4, 128, 9))  # [4, L, P*C]
    share = mask.mean(dim=(1, 2))
    if mode is MaskMode.CHANNEL:  # 2 of the 3 sensor triplets
        assert torch.allclose(share, torch.full((4,), 2 / 3))
        per_channel = model.unpatchify(mask)[:, 0, :]  # [4, C]
        assert torch.equal(per_channel.reshape(4, 3, 3).std(dim=2), torch.zeros(4, 3))
    else:
        assert torch.allclose(share, torch.full((4,), 0.75))


def test_span_masking_masks_contiguous_runs() -> None:
    model = _model(mask_mode=MaskMode.SPAN, mask_span_patches=4)
    torch.manual_seed(1)
    _, mask, _ = model.forward_encoder(torch.randn(8, 128, 9))
    token_mask = mask[..., 0]  # [8, 32]
    changes = (token_mask[:, 1:] != token_mask[:, :-1]).sum(dim=1)
    random_model = _model()
    _, rmask, _ = random_model.forward_encoder(torch.randn(8, 128, 9))
    random_changes = (rmask[:, 1:, 0] != rmask[:, :-1, 0]).sum(dim=1)
    assert changes.float().mean() < random_changes.float().mean()
    assert (changes <= 2 * 32 // 4).all()


def test_loss_counts_masked_samples_only() -> None:
    model = _model()
    x = torch.randn(3, 128, 9)
    target = model.patchify(x)
    mask = torch.zeros_like(target)
    mask[:, :8] = 1
    pred = target.clone()
    pred[:, 8:] += 100.0  # wrong where visible: must not count
    assert model.forward_loss(x, pred, mask).item() == 0.0
    pred[:, :8] += 1.0
    assert model.forward_loss(x, pred, mask).item() == pytest.approx(1.0)


def test_reconstruction_shapes_and_gradients() -> None:
    model = _model()
    loss, pred, mask = model(torch.randn(2, 128, 9))
    assert pred.shape == mask.shape == (2, 32, 36)
    loss.backward()
    assert model.patch_embed.weight.grad is not None
    assert model.decoder_pred.weight.grad is not None


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


def test_config_round_trips_through_a_dict() -> None:
    cfg = preset_config("small", mask_mode="span", heads=(("activity", 12),))
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_lr_schedule_warms_up_then_decays_to_min() -> None:
    kw = dict(base_lr=1e-3, min_lr=1e-5, warmup_steps=10, total_steps=100)
    lrs = [lr_at(s, **kw) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in itertools.pairwise(lrs[9:]))
    assert lr_at(100, **kw) == pytest.approx(1e-5)
    assert lr_at(55, **kw) == pytest.approx(
        1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi / 2))
    )
