"""A masked autoencoder over IMU windows, with classification heads on the pooled encoder.

A window [N, W, C] of normalised chain output is cut into L = W / P patches of P samples.
Tokens (``TokenMode``): ``mixed`` makes one token of each patch, all channels together;
``sensor`` makes one token of each (patch, sensor triplet) - body acc, gravity, gyro - so
L * 3 tokens, each with the time code of its patch plus a learned code of its sensor, and
masking picks among all of them (a masked gyro patch may keep its acc patch visible).

Pretraining masks 75 % of the tokens (random or contiguous spans) or whole sensor triplets,
encodes the visible tokens with a ViT, and a light decoder reconstructs the masked part; the loss
counts masked samples only. There is no upsampling of the window, so a masked patch cannot be
copied from its neighbours' interpolation.

What is reconstructed (``Target``): ``chain``, the normalised channels the encoder reads, or
``raw``, what the IMU measured: the total acceleration (body + gravity, un-normalised with the
chain's statistics, then normalised as in :func:`raw_target_normalization`) and the gyro, 6
channels. The encoder reads the 9 chain channels either way.

Gravity is the 0.3 Hz low-pass of the acceleration: over a 2.56 s window it barely moves, so a
decoder rebuilds a masked gravity patch by copying any visible one and the loss it earns there
teaches nothing (on 6000 HAPT windows with 24 of 32 patches masked, copying the mean of the
visible patches leaves 4 % of a gravity channel's variance, 100 % of body acc's and 86 % of the
gyro's: ``bench/mae_variants.py``). ``gravity_loss=False`` keeps gravity in the input and in the
masking (the encoder must carry posture across the window from the few gravity tokens it sees)
but out of the loss; ``train.pretrain`` chooses it for sensor tokens, where a gravity token is a
separate copy task, and keeps today's scoring for mixed tokens. The ``raw`` target has no
gravity channels: its acceleration is scored where the body-acc input is masked, since the body
part is what the encoder cannot copy.

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

from gaitedge.entry import ScriptError


class MaskMode(str, enum.Enum):
    RANDOM = "random"  # independent tokens (MAE)
    SPAN = "span"  # contiguous runs of ``mask_span_patches`` patches
    CHANNEL = "channel"  # whole sensor triplets over the full window


class PosEmbed(str, enum.Enum):
    SINUSOIDAL = "sinusoidal"
    LEARNED = "learned"


class TokenMode(str, enum.Enum):
    MIXED = "mixed"  # one token per patch, every channel
    SENSOR = "sensor"  # one token per (patch, sensor triplet)


class Target(str, enum.Enum):
    CHAIN = "chain"  # the normalised chain channels (the encoder's input)
    RAW = "raw"  # normalised total acceleration and gyro: what the IMU measured


# Sensor tokens, the raw target and an unscored gravity read the chain's default layout
# (gaitedge.preprocess.DEFAULT_CHANNELS): three triplets in this order.
SENSORS = ("body_acc", "gravity", "gyro")
AXES = 3
GRAVITY_CHANNELS = slice(3, 6)
RAW_TARGET_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
# The input channel each raw target channel is scored on: acc on body acc, gyro on gyro.
RAW_TARGET_SOURCES = (0, 1, 2, 6, 7, 8)


def raw_target_normalization(
    norm_mean: tuple[float, ...], norm_std: tuple[float, ...]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std of the 6 ``raw`` target channels, from the chain's 9-channel statistics.

    acc = body + gravity, so its mean is the sum of theirs; its scale is sqrt(std_body² +
    std_gravity²), the std of the sum of two uncorrelated parts (body acc is what the gravity
    low-pass removes), which keeps each acc axis near unit variance like the gyro's. The gyro
    keeps the chain's own statistics. ``target * std + mean`` is m/s² and rad/s.
    """
    mean = [norm_mean[i] + norm_mean[i + 3] for i in range(AXES)] + list(norm_mean[6:9])
    std = [math.hypot(norm_std[i], norm_std[i + 3]) for i in range(AXES)] + list(norm_std[6:9])
    return tuple(mean), tuple(std)


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
    token_mode: TokenMode = TokenMode.MIXED
    target: Target = Target.CHAIN
    # Score the gravity channels of a ``chain`` target (see the module docstring).
    gravity_loss: bool = True
    # The chain's normalisation, which the ``raw`` target undoes (None for ``chain``).
    norm_mean: tuple[float, ...] | None = None
    norm_std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask_mode", MaskMode(self.mask_mode))
        object.__setattr__(self, "pos_embed", PosEmbed(self.pos_embed))
        object.__setattr__(self, "token_mode", TokenMode(self.token_mode))
        object.__setattr__(self, "target", Target(self.target))
        object.__setattr__(self, "gravity_loss", bool(self.gravity_loss))
        object.__setattr__(self, "heads", tuple((str(h), int(n)) for h, n in self.heads))
        for name in ("norm_mean", "norm_std"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if self.window_samples % self.patch_samples:
            raise ValueError("window_samples must be a multiple of patch_samples")
        if self.embed_dim % self.num_heads or self.decoder_embed_dim % self.decoder_num_heads:
            raise ValueError("embedding dims must be multiples of their head counts")
        if not 0 <= self.mask_ratio < 1:
            raise ValueError("mask_ratio must lie in [0, 1)")
        if self.reads_sensor_triplets and self.n_channels != len(SENSORS) * AXES:
            raise ValueError(
                "sensor tokens, the raw target and an unscored gravity need the chain's "
                f"{len(SENSORS) * AXES} default channels ({', '.join(SENSORS)} triplets)"
            )
        if self.target is Target.RAW:
            if self.norm_mean is None or self.norm_std is None:
                raise ValueError("the raw target needs the chain's norm_mean and norm_std")
            if len(self.norm_mean) != self.n_channels or len(self.norm_std) != self.n_channels:
                raise ValueError(f"norm_mean and norm_std need {self.n_channels} values")
            if not self.gravity_loss:
                raise ValueError("gravity_loss=False applies to the chain target only")

    @property
    def n_patches(self) -> int:
        return self.window_samples // self.patch_samples

    @property
    def n_sensors(self) -> int:
        """Tokens per patch: 3 sensor triplets, or 1 token of every channel."""
        return len(SENSORS) if self.token_mode is TokenMode.SENSOR else 1

    @property
    def n_tokens(self) -> int:
        return self.n_patches * self.n_sensors

    @property
    def n_target_channels(self) -> int:
        return len(RAW_TARGET_CHANNELS) if self.target is Target.RAW else self.n_channels

    @property
    def reads_sensor_triplets(self) -> bool:
        """Whether the model relies on the body acc / gravity / gyro channel layout."""
        return (
            self.token_mode is TokenMode.SENSOR
            or self.target is Target.RAW
            or not self.gravity_loss
        )

    def target_channels(self, chain_channels: tuple[str, ...]) -> tuple[str, ...]:
        """Names of the reconstructed channels, given the chain's."""
        return RAW_TARGET_CHANNELS if self.target is Target.RAW else tuple(chain_channels)

    def to_dict(self) -> dict:
        data = asdict(self)
        for name in ("mask_mode", "pos_embed", "token_mode", "target"):
            data[name] = getattr(self, name).value
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
        cfg: sizes, tokens, masking, target and heads (``ModelConfig``).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        sensor_tokens = cfg.token_mode is TokenMode.SENSOR
        token_channels = AXES if sensor_tokens else cfg.n_channels
        pred_channels = AXES if sensor_tokens else cfg.n_target_channels
        # Encoder
        self.patch_embed = nn.Linear(cfg.patch_samples * token_channels, cfg.embed_dim)
        self.pos_embed = self._position(cfg.n_patches, cfg.embed_dim)
        self.sensor_embed = self._sensor(cfg.embed_dim)
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
        self.decoder_pos_embed = self._position(cfg.n_patches, cfg.decoder_embed_dim)
        self.decoder_sensor_embed = self._sensor(cfg.decoder_embed_dim)
        self.decoder_blocks = nn.ModuleList(
            Block(cfg.decoder_embed_dim, num_heads=cfg.decoder_num_heads, mlp_ratio=cfg.mlp_ratio)
            for _ in range(cfg.decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(cfg.decoder_embed_dim)
        self.decoder_pred = nn.Linear(cfg.decoder_embed_dim, cfg.patch_samples * pred_channels)
        # Reconstruction target: which input channel scores each target channel, and its weight.
        sources = RAW_TARGET_SOURCES if cfg.target is Target.RAW else range(cfg.n_channels)
        self.register_buffer("target_sources", torch.tensor(sources), persistent=False)
        weight = torch.ones(cfg.n_target_channels)
        if not cfg.gravity_loss:
            weight[GRAVITY_CHANNELS] = 0.0
        self.register_buffer("target_weight", weight, persistent=False)
        if cfg.target is Target.RAW:
            _, raw_std = raw_target_normalization(cfg.norm_mean, cfg.norm_std)
            std = torch.tensor(cfg.norm_std)
            # (acc - acc_mean) / acc_std = (x_body * std_body + x_gravity * std_gravity) / acc_std
            scale = torch.stack([std[:AXES], std[GRAVITY_CHANNELS]]) / torch.tensor(raw_std[:AXES])
            self.register_buffer("raw_acc_scale", scale, persistent=False)  # [2, 3]
        # Heads on the mean-pooled encoder output
        self.fc_norm = nn.LayerNorm(cfg.embed_dim)
        self.head_dropout = nn.Dropout(cfg.dropout)
        self.heads = nn.ModuleDict({name: nn.Linear(cfg.embed_dim, n) for name, n in cfg.heads})
        self._init_weights()

    def _position(self, length: int, dim: int) -> nn.Parameter:
        if self.cfg.pos_embed is PosEmbed.SINUSOIDAL:
            return nn.Parameter(sinusoidal_embedding(length, dim), requires_grad=False)
        return nn.Parameter(torch.randn(1, length, dim) * 0.02)

    def _sensor(self, dim: int) -> nn.Parameter | None:
        """[1, 1, S, D] learned sensor codes for sensor tokens; None for mixed tokens."""
        if self.cfg.token_mode is not TokenMode.SENSOR:
            return None
        return nn.Parameter(torch.zeros(1, 1, self.cfg.n_sensors, dim))

    def _init_weights(self) -> None:
        nn.init.normal_(self.mask_token, std=0.02)
        for code in (self.sensor_embed, self.decoder_sensor_embed):
            if code is not None:
                nn.init.normal_(code, std=0.02)
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

    @staticmethod
    def token_codes(pos: torch.Tensor, sensor: torch.Tensor | None) -> torch.Tensor:
        """[1, L, D] time codes (+ [1, 1, S, D] sensor codes) -> [1, L*S, D], patch-major."""
        if sensor is None:
            return pos
        return (pos[:, :, None, :] + sensor).flatten(1, 2)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """[N, W, C] -> tokens (time-major inside each token).

        Mixed: [N, L, P*C]. Sensor: [N, L*S, P*3], token l*S + s holding sensor s of patch l.
        """
        n, w, c = x.shape
        p, s = self.cfg.patch_samples, self.cfg.n_sensors
        if s == 1:
            return x.reshape(n, w // p, p * c)
        x = x.reshape(n, w // p, p, s, c // s).transpose(2, 3)  # [N, L, S, P, 3]
        return x.reshape(n, (w // p) * s, p * (c // s))

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        """Decoder tokens -> [N, W, T] samples of the target channels.

        Mixed: [N, L, P*T] -> [N, W, T]. Sensor: [N, L*S, P*3]; each target triplet is read from
        the token of its source sensor (raw acc from the body-acc token; the gravity token's
        prediction has no raw target and is dropped). For the chain target this inverts
        ``patchify``.
        """
        n = tokens.shape[0]
        length, p, s = self.cfg.n_patches, self.cfg.patch_samples, self.cfg.n_sensors
        if s == 1:
            return tokens.reshape(n, length * p, -1)
        tokens = tokens.reshape(n, length, s, p, AXES)
        owners = self.target_sources[::AXES] // AXES  # [T/3] sensor of each target triplet
        return tokens[:, :, owners].transpose(2, 3).reshape(n, length * p, -1)  # [N, W, T]

    def reconstruction_target(self, x: torch.Tensor) -> torch.Tensor:
        """[N, W, C] normalised chain windows -> [N, W, T] the normalised target."""
        if self.cfg.target is Target.CHAIN:
            return x
        body, gravity = x[..., :AXES], x[..., GRAVITY_CHANNELS]
        acc = body * self.raw_acc_scale[0] + gravity * self.raw_acc_scale[1]  # [N, W, 3]
        return torch.cat([acc, x[..., 6:9]], dim=-1)  # [N, W, 6]

    def _n_masked_groups(self, n_groups: int) -> int:
        """Sensor triplets hidden by channel masking: at least one, never all."""
        return max(1, min(n_groups - 1, round(self.cfg.mask_ratio * n_groups)))

    def masking_noise(self, n: int, device: torch.device) -> tuple[torch.Tensor, int]:
        """([N, L*S] sort keys, tokens kept): the ``keep`` lowest keys stay visible."""
        cfg = self.cfg
        length, s = cfg.n_patches, cfg.n_sensors
        noise = torch.rand(n, length * s, device=device)  # [N, L*S]
        if cfg.mask_mode is MaskMode.SPAN:
            span = cfg.mask_span_patches
            per_span = torch.rand(n, -(-length // span), s, device=device)
            # Spans sort together; the small per-token noise only breaks ties inside a span.
            spans = per_span.repeat_interleave(span, dim=1)[:, :length].flatten(1)  # [N, L*S]
            noise = spans + 1e-3 * noise
        elif cfg.mask_mode is MaskMode.CHANNEL:  # sensor tokens: whole sensors over the window
            rank = torch.argsort(torch.argsort(torch.rand(n, 1, s, device=device), dim=2), dim=2)
            noise = (rank + 0.5 * noise.reshape(n, length, s)).flatten(1)  # sensors sort apart
            return noise, length * (s - self._n_masked_groups(s))
        return noise, int(length * s * (1 - cfg.mask_ratio))

    def random_masking(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keep a random subset of tokens (``mask_mode`` decides which).

        Args:
            x: [N, L*S, D] embedded tokens.
        Returns:
            visible tokens [N, L_keep, D], mask [N, L*S] (1 = masked), ids_restore [N, L*S].
        """
        n, length, dim = x.shape
        noise, keep = self.masking_noise(n, x.device)
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
        groups = torch.arange(c, device=device) // AXES  # [C]
        n_groups = int(groups.max()) + 1
        order = torch.argsort(torch.rand(n, n_groups, device=device), dim=1)
        masked_groups = order[:, : self._n_masked_groups(n_groups)]  # [N, G_masked]
        return (groups[None, :, None] == masked_groups[:, None, :]).any(-1).float()  # [N, C]

    def forward_encoder(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Encode a masked window.

        Args:
            x: [N, W, C] normalised windows.
        Returns:
            latent [N, L_keep, D]; input mask [N, W, C] (1 = masked sample); ids_restore
            [N, L*S] or None when no token was dropped (channel masking of mixed tokens).
        """
        cfg = self.cfg
        n, w, c = x.shape
        codes = self.token_codes(self.pos_embed, self.sensor_embed)  # [1, L*S, D]
        if cfg.mask_mode is MaskMode.CHANNEL and cfg.token_mode is TokenMode.MIXED:
            cmask = self.channel_mask(n, x.device)  # [N, C]
            x = x * (1 - cmask[:, None, :])  # masked channels read as the dataset mean (0)
            tokens = self.patch_embed(self.patchify(x)) + codes  # [N, L, D]
            input_mask = cmask[:, None, :].expand(-1, w, -1)
            ids_restore = None
        else:
            tokens = self.patch_embed(self.patchify(x)) + codes  # [N, L*S, D]
            tokens, mask, ids_restore = self.random_masking(tokens)
            s = cfg.n_sensors
            input_mask = mask.reshape(n, cfg.n_patches, 1, s, 1)
            input_mask = input_mask.expand(-1, -1, cfg.patch_samples, -1, c // s).reshape(n, w, c)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens), input_mask, ids_restore

    def forward_decoder(
        self, latent: torch.Tensor, ids_restore: torch.Tensor | None
    ) -> torch.Tensor:
        """[N, L_keep, D] latent -> [N, L*S, P*k] predicted tokens (k target channels each)."""
        x = self.decoder_embed(latent)  # [N, L_keep, Dd]
        if ids_restore is not None:
            n, length = ids_restore.shape
            fill = self.mask_token.expand(n, length - x.shape[1], -1)
            x = torch.cat([x, fill], dim=1)  # [N, L*S, Dd] in shuffled order
            x = torch.gather(x, 1, ids_restore[..., None].expand(-1, -1, x.shape[2]))
        x = x + self.token_codes(self.decoder_pos_embed, self.decoder_sensor_embed)
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))

    def loss_mask(self, input_mask: torch.Tensor) -> torch.Tensor:
        """[N, W, C] input mask -> [N, W, T] weights of the target samples in the loss.

        A target channel counts where its source input channel was masked, times its weight
        (0 for gravity when ``gravity_loss`` is off).
        """
        return input_mask[..., self.target_sources] * self.target_weight

    def forward_loss(self, x: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error on the masked samples only.

        Args:
            x: [N, W, C] input windows; pred, mask: [N, W, T] (``unpatchify``, ``loss_mask``).
        """
        err = (pred - self.reconstruction_target(x)) ** 2  # [N, W, T]
        return (err * mask).sum() / mask.sum().clamp(min=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """MAE pretraining pass on [N, W, C]: (loss, prediction [N, W, T], loss mask [N, W, T])."""
        latent, input_mask, ids_restore = self.forward_encoder(x)
        pred = self.unpatchify(self.forward_decoder(latent, ids_restore))
        mask = self.loss_mask(input_mask)
        return self.forward_loss(x, pred, mask), pred, mask

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Unmasked encoding for classification: [N, W, C] -> pooled [N, D]."""
        codes = self.token_codes(self.pos_embed, self.sensor_embed)  # [1, L*S, D]
        tokens = self.patch_embed(self.patchify(x)) + codes  # [N, L*S, D]
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
        codes = [c for c in (self.pos_embed, self.sensor_embed) if c is not None]
        return [p for m in modules for p in m.parameters()] + codes


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def with_heads(model: IMUMaskedAutoencoder, heads: dict[str, int]) -> IMUMaskedAutoencoder:
    """A copy of ``model`` whose heads are ``heads`` (encoder and decoder weights kept)."""
    cfg = replace(model.cfg, heads=tuple(heads.items()))
    new = IMUMaskedAutoencoder(cfg)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("heads.")}
    new.load_state_dict(state, strict=False)
    return new


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """A checkpoint file's dict (``torch.load``); ScriptError naming the file when it holds no
    checkpoint (a junk file was a MemoryError or unpickling traceback). A file that is not
    there is the OSError it is."""
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except OSError:
        raise
    except Exception as exc:  # whatever torch and pickle raise for bytes that are no checkpoint
        said = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise ScriptError(f"{path}: not a checkpoint torch can load ({said})") from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ScriptError(f"{path}: not a gaitedge checkpoint (no state_dict in it)")
    return ckpt


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[IMUMaskedAutoencoder, dict]:
    """Rebuild the model of a checkpoint written by ``train.engine``.

    Returns:
        (model in eval mode, the checkpoint dict: ``model_config``, ``chain``, ``heads``,
        ``state_dict``, ``metrics``, ``split``, ``train_config``, ``step``, ...).
    """
    ckpt = read_checkpoint(path, map_location)
    return model_from_checkpoint(ckpt, path), ckpt


def model_from_checkpoint(ckpt: dict, path: str | Path) -> IMUMaskedAutoencoder:
    """The model (eval mode) of a checkpoint dict :func:`read_checkpoint` read from ``path``;
    ScriptError naming ``path`` when it holds no train.pretrain / train.finetune model."""
    if "model_config" not in ckpt:
        raise ScriptError(f"{path}: not a checkpoint of train.pretrain or train.finetune")
    model = IMUMaskedAutoencoder(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model
