"""Figures saved as PNG: masked reconstructions, training curves, confusion matrices."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def plot_reconstruction(
    original: np.ndarray,
    reconstructed: np.ndarray,
    sample_mask: np.ndarray,
    channels: Sequence[str],
    path: Path,
    sample_rate_hz: float,
    max_channels: int = 9,
) -> Path:
    """Original vs reconstructed normalised window, masked samples shaded (the seed's figure).

    Args:
        original, reconstructed: [W, C]; sample_mask: [W, C], 1 where masked.
    """
    n = min(len(channels), max_channels)
    t = np.arange(original.shape[0]) / sample_rate_hz
    fig, axes = plt.subplots(n, 1, figsize=(9, 1.4 * n), sharex=True, squeeze=False)
    for c, ax in enumerate(axes[:, 0]):
        ax.fill_between(
            t,
            0,
            1,
            where=sample_mask[:, c] > 0,
            color="0.85",
            step="mid",
            transform=ax.get_xaxis_transform(),
            label="masked",
        )
        ax.plot(t, original[:, c], color="C0", lw=1, label="original")
        shown = np.where(sample_mask[:, c] > 0, reconstructed[:, c], np.nan)
        ax.plot(t, shown, color="C3", lw=1, label="reconstructed")
        ax.set_ylabel(channels[c], rotation=0, ha="right", fontsize=8)
    axes[0, 0].legend(loc="upper right", fontsize=7, ncol=3)
    axes[-1, 0].set_xlabel("time in window (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(metrics_jsonl: Path, path: Path) -> Path:
    """Loss and learning rate against step from a ``metrics.jsonl``."""
    rows = [json.loads(line) for line in Path(metrics_jsonl).read_text().splitlines()]
    rows = [r for r in rows if "loss" in r]
    step = [r["step"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    ax1.plot(step, [r["loss"] for r in rows])
    for key in sorted({k for r in rows for k in r if k.startswith("loss_")}):
        ax1.plot(step, [r.get(key, np.nan) for r in rows], lw=0.8, label=key)
    ax1.set_ylabel("training loss")
    ax1.set_yscale("log")
    if len(ax1.lines) > 1:
        ax1.legend(fontsize=7)
    ax2.plot(step, [r["lr"] for r in rows], color="C2")
    ax2.set_ylabel("learning rate")
    ax2.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], path: Path, title: str) -> Path:
    """Row-normalised confusion matrix (rows: true class) with counts in the cells."""
    m = np.asarray(matrix, dtype=float)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    size = 2 + 0.6 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            color = "white" if norm[i, j] > 0.6 else "black"
            ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_label_efficiency(results: dict[str, dict[float, float]], path: Path, ylabel: str) -> Path:
    """Score against labelled fraction, one line per initialisation (``{name: {frac: score}}``)."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, points in results.items():
        fr = sorted(points)
        ax.plot([100 * f for f in fr], [points[f] for f in fr], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training windows (%)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
