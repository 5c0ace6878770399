"""Augmentation: the same rotation for every 3-axis group, in physical units."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gaitedge.preprocess import ChainConfig
from train.augment import AugmentConfig, Augmenter, random_rotations, time_warp

CHAIN = ChainConfig().with_normalization(
    mean=np.array([0.1, -0.2, 0.0, 7.0, 0.5, -1.0, 0.0, 0.0, 0.0]),
    std=np.array([2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 0.5, 0.5, 0.5]),
)


def _physical(x: torch.Tensor) -> torch.Tensor:
    return x * torch.tensor(CHAIN.norm_std) + torch.tensor(CHAIN.norm_mean)


@settings(max_examples=25, deadline=None)
@given(max_deg=st.floats(1.0, 180.0), seed=st.integers(0, 2**16))
def test_rotations_are_proper(max_deg: float, seed: int) -> None:
    torch.manual_seed(seed)
    r = random_rotations(16, max_deg).double()
    eye = torch.eye(3, dtype=torch.float64).expand(16, 3, 3)
    assert torch.allclose(r @ r.transpose(1, 2), eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(r), torch.ones(16, dtype=torch.float64), atol=1e-5)
    angle = torch.rad2deg(torch.arccos(((r.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)))
    assert (angle <= max_deg + 1e-3).all()


def test_rotation_turns_body_gravity_and_gyro_alike() -> None:
    torch.manual_seed(0)
    x = torch.randn(32, 128, 9)
    y = Augmenter(CHAIN, AugmentConfig(rotate_max_deg=90.0))(x)
    before, after = _physical(x), _physical(y)
    groups = [slice(0, 3), slice(3, 6), slice(6, 9)]
    for g in groups:  # every vector keeps its length
        assert torch.allclose(before[..., g].norm(dim=-1), after[..., g].norm(dim=-1), atol=1e-3)
    # The same rotation for body and gravity: their dot product (angle) is unchanged ...
    dot_before = (before[..., 0:3] * before[..., 3:6]).sum(-1)
    dot_after = (after[..., 0:3] * after[..., 3:6]).sum(-1)
    assert torch.allclose(dot_before, dot_after, atol=1e-2)
    # ... while the vectors themselves did move.
    assert (after[..., 3:6] - before[..., 3:6]).abs().mean() > 0.1


def test_scaling_multiplies_body_and_gravity_by_one_factor() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 128, 9)
    after = _physical(Augmenter(CHAIN, AugmentConfig(scale_fraction=0.2))(x))
    ratio = after / _physical(x)
    acc_ratio = ratio[..., :6].reshape(8, -1)
    assert torch.allclose(acc_ratio, acc_ratio[:, :1].expand_as(acc_ratio), atol=1e-3)
    assert ((acc_ratio[:, 0] - 1).abs() <= 0.2 + 1e-4).all()


def test_time_warp_keeps_ends_and_constants() -> None:
    torch.manual_seed(0)
    ramp = torch.linspace(0, 1, 128)[None, :, None].repeat(4, 1, 2)
    warped = time_warp(ramp, 0.3)
    assert torch.allclose(warped[:, 0], ramp[:, 0]) and torch.allclose(warped[:, -1], ramp[:, -1])
    assert (warped.diff(dim=1) >= -1e-6).all()  # still monotone
    assert not torch.allclose(warped, ramp)
    flat = torch.full((2, 128, 3), 2.5)
    assert torch.allclose(time_warp(flat, 0.3), flat)


def test_disabled_augmentation_is_identity_and_needs_norm_stats() -> None:
    x = torch.randn(2, 128, 9)
    assert Augmenter(CHAIN, AugmentConfig())(x) is x
    with pytest.raises(ValueError, match="normalisation"):
        Augmenter(ChainConfig(), AugmentConfig(rotate_max_deg=10))
