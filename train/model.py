"""A masked autoencoder over IMU windows, with classification heads on the pooled encoder.

A window [N, W, C] of normalised chain output is cut into L = W / P patches of P samples
(all channels); each patch is one token. Pretraining masks 75 % of the patches (random or
contiguous spans) or whole sensor channels, encodes the visible tokens with a ViT, and a light
decoder reconstructs the normalised samples of the masked part; the loss counts masked samples
only. There is no upsampling of the window, so a masked patch cannot be copied from its
neighbours' interpolation.

The inference path (``forward_features`` -> ``classify``) has no masking and no data-dependent
control flow, so it exports to ONNX as is.
"""

from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


class MaskMode(str, enum.Enum):
    RANDOM = "random"  # independent patches (MAE)
    SPAN = "span"  # contiguous runs of ``mask_span_patches`` patches
    CHANNEL = "channel"  # whole sensor triplets over the full window


class PosEmbed(str, enum.Enum):
    SINUSOIDAL = "sinusoidal"
    LEARNED = "learned"


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the MAE and its heads; saved in every checkpoint."""

    window_samples: int = 128
    n_channels: int = 9
    patch_samples: int = 4
    embed_dim: int = 128
    depth: int = 4
    num_heads: int = 4
    decoder_embed_dim: int = 64
    decoder_depth: int = 2
    decoder_num_heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    mask_ratio: float = 0.75
    mask_mode: MaskMode = MaskMode.RANDOM
    mask_span_patches: int = 4
    pos_embed: PosEmbed = PosEmbed.SINUSOIDAL
    # Head name -> number of classes, as (name, n) pairs so the config stays hashable.
    heads: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask_mode", MaskMode(self.mask_mode))
        object.__setattr__(self, "pos_embed", PosEmbed(self.pos_embed))
        object.__setattr__(self, "heads", tuple((str(h), int(n)) for h, n in self.heads))
        if self.window_samples % self.patch_samples:
            raise ValueError("window_samples must be a multiple of patch_samples")
        if self.embed_dim % self.num_heads or self.decoder_embed_dim % self.decoder_num_heads:
            raise ValueError("embedding dims must be multiples of their head counts")
        if not 0 <= self.mask_ratio < 1:
            raise ValueError("mask_ratio must lie in [0, 1)")

    @property
    def n_patches(self) -> int:
        return self.window_samples // self.patch_samples

    def to_dict(self) -> dict:
        data = asdict(self)
        data["mask_mode"] = self.mask_mode.value
        data["pos_embed"] = self.pos_embed.value
        data["heads"] = [list(h) for h in self.heads]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


PRESETS: dict[str, dict[str, int]] = {
    # ~0.9 M parameters: trains on two CPU cores in minutes.
    "tiny": dict(embed_dim=128, depth=4, num_heads=4, decoder_embed_dim=64, decoder_depth=2),
    "small": dict(embed_dim=256, depth=6, num_heads=8, decoder_embed_dim=128, decoder_depth=2),
    "base": dict(embed_dim=512, depth=8, num_heads=8, decoder_embed_dim=256, decoder_depth=4),
    # The seed's size.
    "large": dict(
        embed_dim=1024,
        depth=24,
        num_heads=16,
        decoder_embed_dim=512,
        decoder_depth=8,
        decoder_num_heads=16,
    ),
}


def preset_config(name: str, **overrides: object) -> ModelConfig:
    """The named preset with ``overrides`` (e.g. ``n_channels``, ``patch_samples``, ``heads``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return replace(ModelConfig(**PRESETS[name]), **overrides)


def sinusoidal_embedding(length: int, dim: int) -> torch.Tensor:
    """[1, length, dim] fixed sine/cosine position codes (Transformer style)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]  # [L, 1]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    emb = torch.zeros(length, dim)
    emb[:, 0::2] = torch.sin(pos * freq)
    emb[:, 1::2] = torch.cos(pos * freq)
    return emb[None]


class Attention(nn.Module):
    def __init__(self, dim: int, *, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        qkv = self.qkv(x).reshape(n, length, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # 3 x [N, H, L, D/H]
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # [N, H, L, D/H]
        return self.proj(y.transpose(1, 2).reshape(n, length, dim))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(
        self, dim: int, *, num_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0
    ) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads=num_heads, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class IMUMaskedAutoencoder(nn.Module):
    """MAE over patch tokens of IMU windows, plus classification heads.

    Args:
        cfg: sizes, masking and heads (``ModelConfig``).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        patch_dim = cfg.patch_samples * cfg.n_channels
        length = cfg.n_patches
        # Encoder
        self.patch_embed = nn.Linear(patch_dim, cfg.embed_dim)
        self.pos_embed = self._position(length, cfg.embed_dim)
        self.blocks = nn.ModuleList(
            Block(
                cfg.embed_dim, num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio, dropout=cfg.dropout
            )
            for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.embed_dim)
        # Decoder
        self.decoder_embed = nn.Linear(cfg.embed_dim, cfg.decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.decoder_embed_dim))
        self.decoder_pos_embed = self._position(length, cfg.decoder_embed_dim)
        self.decoder_blocks = nn.ModuleList(
            Block(cfg.decoder_embed_dim, num_heads=cfg.decoder_num_heads, mlp_ratio=cfg.mlp_ratio)
            for _ in range(cfg.decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(cfg.decoder_embed_dim)
        self.decoder_pred = nn.Linear(cfg.decoder_embed_dim, patch_dim)
        # Heads on the mean-pooled encoder output
        self.fc_norm = nn.LayerNorm(cfg.embed_dim)
        self.head_dropout = nn.Dropout(cfg.dropout)
        self.heads = nn.ModuleDict({name: nn.Linear(cfg.embed_dim, n) for name, n in cfg.heads})
        self._init_weights()

    def _position(self, length: int, dim: int) -> nn.Parameter:
        if self.cfg.pos_embed is PosEmbed.SINUSOIDAL:
            return nn.Parameter(sinusoidal_embedding(length, dim), requires_grad=False)
        return nn.Parameter(torch.randn(1, length, dim) * 0.02)

    def _init_weights(self) -> None:
        nn.init.normal_(self.mask_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def head_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.cfg.heads)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """[N, W, C] -> [N, L, P*C] (time-major inside each patch)."""
        n, w, c = x.shape
        return x.reshape(n, w // self.cfg.patch_samples, self.cfg.patch_samples * c)

    def unpatchify(self, patches: torch.Tensor) -> torch.Tensor:
        """[N, L, P*C] -> [N, W, C]."""
        n, length, _ = patches.shape
        return patches.reshape(n, length * self.cfg.patch_samples, self.cfg.n_channels)

    def random_masking(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keep a random subset of tokens.

        Args:
            x: [N, L, D] embedded tokens.
        Returns:
            visible tokens [N, L_keep, D], mask [N, L] (1 = masked), ids_restore [N, L].
        """
        n, length, dim = x.shape
        keep = int(length * (1 - self.cfg.mask_ratio))
        noise = torch.rand(n, length, device=x.device)  # [N, L]
        if self.cfg.mask_mode is MaskMode.SPAN:
            span = self.cfg.mask_span_patches
            per_span = torch.rand(n, -(-length // span), device=x.device)
            # Spans sort together; the small per-patch noise only breaks ties inside a span.
            noise = per_span.repeat_interleave(span, dim=1)[:, :length] + 1e-3 * noise
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :keep]  # [N, L_keep]
        visible = torch.gather(x, 1, ids_keep[..., None].expand(-1, -1, dim))
        mask = torch.ones(n, length, device=x.device)
        mask[:, :keep] = 0
        return visible, torch.gather(mask, 1, ids_restore), ids_restore

    def channel_mask(self, n: int, device: torch.device) -> torch.Tensor:
        """[N, C] channel mask (1 = masked): whole sensor triplets, at least one kept."""
        c = self.cfg.n_channels
        groups = torch.arange(c, device=device) // 3  # [C]
        n_groups = int(groups.max()) + 1
        n_masked = max(1, min(n_groups - 1, round(self.cfg.mask_ratio * n_groups)))
        order = torch.argsort(torch.rand(n, n_groups, device=device), dim=1)
        masked_groups = order[:, :n_masked]  # [N, G_masked]
        return (groups[None, :, None] == masked_groups[:, None, :]).any(-1).float()  # [N, C]

    def forward_encoder(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Encode a masked window.

        Args:
            x: [N, W, C] normalised windows.
        Returns:
            latent [N, L_keep, D]; sample mask [N, L, P*C] (1 = masked, counted in the loss);
            ids_restore [N, L] or None when no token was dropped (channel masking).
        """
        cfg = self.cfg
        if cfg.mask_mode is MaskMode.CHANNEL:
            cmask = self.channel_mask(x.shape[0], x.device)  # [N, C]
            x = x * (1 - cmask[:, None, :])  # masked channels read as the dataset mean (0)
            tokens = self.patch_embed(self.patchify(x)) + self.pos_embed  # [N, L, D]
            sample_mask = cmask[:, None, :].expand(-1, cfg.patch_samples, -1)  # [N, P, C]
            sample_mask = sample_mask.reshape(x.shape[0], 1, -1).expand(-1, cfg.n_patches, -1)
            ids_restore = None
        else:
            tokens = self.patch_embed(self.patchify(x)) + self.pos_embed  # [N, L, D]
            tokens, mask, ids_restore = self.random_masking(tokens)
            sample_mask = mask[..., None].expand(-1, -1, cfg.patch_samples * cfg.n_channels)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens), sample_mask, ids_restore

    def forward_decoder(
        self, latent: torch.Tensor, ids_restore: torch.Tensor | None
    ) -> torch.Tensor:
        """[N, L_keep, D] latent -> [N, L, P*C] predicted patches."""
        x = self.decoder_embed(latent)  # [N, L_keep, Dd]
        if ids_restore is not None:
            n, length = ids_restore.shape
            fill = self.mask_token.expand(n, length - x.shape[1], -1)
            x = torch.cat([x, fill], dim=1)  # [N, L, Dd] in shuffled order
            x = torch.gather(x, 1, ids_restore[..., None].expand(-1, -1, x.shape[2]))
        x = x + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))

    def forward_loss(self, x: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error on the masked samples only ([N, W, C], [N, L, P*C] x2)."""
        err = (pred - self.patchify(x)) ** 2  # [N, L, P*C]
        return (err * mask).sum() / mask.sum().clamp(min=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """MAE pretraining pass on [N, W, C]: (loss, predicted patches [N, L, P*C], mask)."""
        latent, mask, ids_restore = self.forward_encoder(x)
        pred = self.forward_decoder(latent, ids_restore)
        return self.forward_loss(x, pred, mask), pred, mask

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Unmasked encoding for classification: [N, W, C] -> pooled [N, D]."""
        tokens = self.patch_embed(self.patchify(x)) + self.pos_embed  # [N, L, D]
        for block in self.blocks:
            tokens = block(tokens)
        return self.fc_norm(self.norm(tokens).mean(dim=1))

    def classify(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """[N, W, C] -> {head: logits [N, n_classes]} for every head."""
        feats = self.head_dropout(self.forward_features(x))
        return {name: head(feats) for name, head in self.heads.items()}

    def encoder_parameters(self) -> list[nn.Parameter]:
        """Parameters used by ``forward_features`` (frozen in a linear probe)."""
        modules = [self.patch_embed, self.blocks, self.norm]
        return [p for m in modules for p in m.parameters()]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def with_heads(model: IMUMaskedAutoencoder, heads: dict[str, int]) -> IMUMaskedAutoencoder:
    """A copy of ``model`` whose heads are ``heads`` (encoder and decoder weights kept)."""
    cfg = replace(model.cfg, heads=tuple(heads.items()))
    new = IMUMaskedAutoencoder(cfg)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("heads.")}
    new.load_state_dict(state, strict=False)
    return new


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[IMUMaskedAutoencoder, dict]:
    """Rebuild the model of a checkpoint written by ``train.engine``.

    Returns:
        (model in eval mode, the checkpoint dict: ``model_config``, ``chain``, ``heads``,
        ``state_dict``, ``metrics``, ``split``, ``train_config``, ``step``, ...).
    """
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    model = IMUMaskedAutoencoder(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt
