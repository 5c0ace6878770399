"""Training-time augmentation of normalised chain windows, applied in physical units.

A phone in a pocket or a belt clip at another angle sees the same motion in a rotated sensor
frame. The augmenter un-normalises a batch, turns every 3-axis group (total acc, body acc,
gravity, gyro) by the same random rotation, scales acceleration (body and gravity alike) and
angular rate, warps time, adds jitter, and normalises again with the chain's statistics, so the
model is trained on windows the chain could have produced from a differently worn device.
The rotation is small (``rotate_max_deg``: a calibrated device's residual error), or with
probability ``mount_prob`` uniformly random (a device worn any way, never calibrated); with
``spin_deg`` it first turns about the vertical (body x), for chains that know up but not the
heading (``mounting="vertical"``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from gaitedge.preprocess import ChainConfig

_VECTORS = ("acc", "body_acc", "gravity", "gyro")


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; zero turns an augmentation off."""

    rotate_max_deg: float = 0.0  # about a random axis, angle uniform in [-max, max]
    scale_fraction: float = 0.0  # acc and gyro factors uniform in [1 - f, 1 + f]
    jitter_std: float = 0.0  # Gaussian noise in units of each channel's dataset std
    time_warp_fraction: float = 0.0  # local speed varies by up to +-f over the window
    # Probability that a window is instead turned by a uniformly random rotation (any
    # orientation: a device worn any way and not calibrated); for pretraining, 0 to fine-tune.
    mount_prob: float = 0.0
    # Rotation about body x (up) by an angle uniform in [-spin, spin] degrees, before the small
    # rotation: a heading the chain does not know (``mounting="vertical"``); 180 = any heading.
    spin_deg: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.mount_prob <= 1.0:
            raise ValueError(f"mount_prob is a probability, not {self.mount_prob}")

    @property
    def enabled(self) -> bool:
        return any(v > 0 for v in asdict(self).values())

    def to_dict(self) -> dict:
        return asdict(self)


def random_rotations(n: int, max_deg: float, device: torch.device | None = None) -> torch.Tensor:
    """[n, 3, 3] rotations about uniformly random axes by angles uniform in [-max, max] degrees."""
    axis = torch.randn(n, 3, device=device)
    axis = axis / axis.norm(dim=1, keepdim=True).clamp(min=1e-12)  # [n, 3]
    angle = (torch.rand(n, device=device) * 2 - 1) * math.radians(max_deg)  # [n]
    kx, ky, kz = axis.unbind(1)
    zero = torch.zeros_like(kx)
    k = torch.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], dim=1).reshape(n, 3, 3)
    eye = torch.eye(3, device=device).expand(n, 3, 3)
    s, c = torch.sin(angle)[:, None, None], torch.cos(angle)[:, None, None]
    return eye + s * k + (1 - c) * (k @ k)  # Rodrigues


def uniform_rotations(n: int, device: torch.device | None = None) -> torch.Tensor:
    """[n, 3, 3] rotations uniform over SO(3) (Haar): from unit quaternions uniform on the
    3-sphere (normalised Gaussian 4-vectors), so every orientation is equally likely."""
    q = torch.randn(n, 4, device=device)
    q = q / q.norm(dim=1, keepdim=True).clamp(min=1e-12)  # [n, 4]
    w, x, y, z = q.unbind(1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=1,
    ).reshape(n, 3, 3)  # fmt: skip


def vertical_spins(n: int, max_deg: float, device: torch.device | None = None) -> torch.Tensor:
    """[n, 3, 3] rotations about +x (body up) by angles uniform in [-max, max] degrees."""
    angle = (torch.rand(n, device=device) * 2 - 1) * math.radians(max_deg)
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(c), torch.zeros_like(c)
    return torch.stack([one, zero, zero, zero, c, -s, zero, s, c], dim=1).reshape(n, 3, 3)


def time_warp(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """Resample [N, W, C] along a smooth random monotone time axis (ends kept in place)."""
    n, w, _ = x.shape
    knots = 1 + fraction * (torch.rand(n, 1, 4, device=x.device) * 2 - 1)  # [N, 1, 4]
    speed = torch.nn.functional.interpolate(knots, size=w - 1, mode="linear", align_corners=True)
    pos = torch.cat([torch.zeros(n, 1, device=x.device), speed[:, 0].cumsum(1)], dim=1)  # [N, W]
    pos = pos / pos[:, -1:] * (w - 1)
    lo = pos.floor().long().clamp(0, w - 2)
    frac = (pos - lo)[..., None]  # [N, W, 1]
    gather = lambda i: torch.gather(x, 1, i[..., None].expand(-1, -1, x.shape[2]))  # noqa: E731
    return gather(lo) * (1 - frac) + gather(lo + 1) * frac


class Augmenter:
    """Augment normalised [N, W, C] batches of a chain's windows (uses torch's global RNG)."""

    def __init__(self, chain: ChainConfig, cfg: AugmentConfig) -> None:
        if chain.norm_mean is None:
            raise ValueError("augmentation needs the chain's normalisation statistics")
        self.cfg = cfg
        self.mean = torch.tensor(chain.norm_mean, dtype=torch.float32)  # [C]
        self.std = torch.tensor(chain.norm_std, dtype=torch.float32)  # [C]
        ch = list(chain.channels)
        self.groups = [
            [ch.index(f"{v}_{a}") for a in "xyz"]
            for v in _VECTORS
            if all(f"{v}_{a}" in ch for a in "xyz")
        ]
        self.acc_channels = [i for i, c in enumerate(ch) if c.startswith(("acc", "body", "grav"))]
        self.gyro_channels = [i for i, c in enumerate(ch) if c.startswith("gyro")]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.cfg.enabled:
            return x
        cfg = self.cfg
        n = x.shape[0]
        y = x * self.std + self.mean  # physical units, [N, W, C]
        if cfg.rotate_max_deg > 0 or cfg.mount_prob > 0 or cfg.spin_deg > 0:
            rot = random_rotations(n, cfg.rotate_max_deg, x.device)  # [N, 3, 3]
            if cfg.spin_deg > 0:  # another heading, then the up estimate's tilt error
                rot = rot @ vertical_spins(n, cfg.spin_deg, x.device)
            mounted = torch.rand(n, device=x.device) < cfg.mount_prob  # [N]
            rot[mounted] = uniform_rotations(int(mounted.sum()), x.device)
            y = y.clone()
            for idx in self.groups:
                y[:, :, idx] = y[:, :, idx] @ rot.transpose(1, 2)
        if cfg.scale_fraction > 0:
            factor = torch.ones(n, 1, x.shape[2], device=x.device)
            f = cfg.scale_fraction
            factor[:, :, self.acc_channels] = 1 + f * (torch.rand(n, 1, 1) * 2 - 1)
            factor[:, :, self.gyro_channels] = 1 + f * (torch.rand(n, 1, 1) * 2 - 1)
            y = y * factor
        if cfg.time_warp_fraction > 0:
            y = time_warp(y, cfg.time_warp_fraction)
        out = (y - self.mean) / self.std
        if cfg.jitter_std > 0:
            out = out + cfg.jitter_std * torch.randn_like(out)
        return out
