"""Labelled windows from real datasets, every one cut by the runtime's causal signal chain.

Datasets (``--data`` names) and how their windows are labelled:

* ``hapt`` (UCI HAPT raw signals): the chain runs per experiment. A window takes the label that
  covers at least ``MIN_LABEL_FRACTION`` of its samples, else it has none (-1). The head
  ``activity`` has the 6 basic activities or all 12 labels (transitions included).
* ``sisfall``: the chain runs per trial (ADXL345 accel, ITG3200 gyro). Labels come per trial, so
  window labels for the head ``fall`` are derived from the impact, the sample of peak |acc| of
  the trial (:func:`fall_window_labels`): in a fall trial the window whose central half holds
  the impact is ``fall``; windows that end before the impact (walking, sitting, getting up
  before the fall) are ``no_fall``; the other windows of a fall trial (the impact near an edge,
  lying after the fall) have no label, because a person lying still looks like a person lying
  in bed and the runtime's alert logic, not the window classifier, confirms a fall by the
  stillness after the impact. Every window of an ADL trial is ``no_fall``.
  SisFall's axes are turned into HAPT's convention (+x up when upright) by a fixed rotation
  (``SISFALL_TO_BODY_FRAME``) before the chain, so both datasets share one frame.
* ``mobifall`` (a phone in a trouser pocket, 100 Hz): the chain runs per trial; no head labels,
  as it serves pretraining (``trial_is_fall`` is kept). Under automatic mounting only the 9
  subjects with walking (a device that calibrates) are used (:func:`build_mobifall`).
* ``<name>@<rate>`` (``hapt@20``, ``mobifall@25``): the dataset re-rendered at that rate first,
  as a device at that rate would send it; the same subjects, more hours.
* a folder of recording CSVs (``<root>/<dataset>/<subject>_<session>.csv``, the canonical
  format or the seed's ``acc_x..gyro_z`` files with the sample rate given): the chain runs per
  file; a ``label`` column gives head ``activity`` labels by the same majority rule as HAPT.

Splits are by subject, never by window or file: HAPT's official UCI split, SisFall k-fold by
subject or the fixed split of the shipped model (``SISFALL_TEST_SUBJECTS``), MobiFall's fixed
test subjects (``MOBIFALL_TEST_SUBJECTS``). Each split sets a
fixed few of its training subjects apart for validation (``gaitedge.datasets.validation_subjects``):
models and normalisation are fitted on the rest, choices are made on them, and the test subjects
are only scored.

Chain output is cached under ``cache_dir`` as ``.npz`` keyed by a hash of the chain config.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from gaitedge.datasets import (  # the one reader of each dataset, shared with `evaluate`
    FALL_CLASSES,
    HAPT_LABELS,
    IGNORE,
    LABELLING_VERSION,
    LabelledRecording,
    SubjectSplit,
    default_data_root,
    hapt_recordings,
    hapt_split,
    mobifall_adl_subjects,
    mobifall_recordings,
    mobifall_split,
    render_rate,
    sisfall_recordings,
    sisfall_split,
    sisfall_window_labels,
    subject_mountings,
    window_labels,
    window_starts,
)
from gaitedge.mounting import ESTIMATOR_VERSION, VERTICAL_VERSION
from gaitedge.preprocess import ChainConfig, Mounting, fit_normalization, run_offline
from gaitedge.recording import read_recording

log = logging.getLogger(__name__)


@dataclass
class WindowSet:
    """Windows with their subject, recording and per-head labels.

    Attributes:
        data: [K, W, C] float32 chain output.
        subject: [K] subject ids prefixed by dataset (``hapt:1``, ``sisfall:SA01``).
        group: [K] recording (experiment / trial / file) id, unique within the set.
        t_start_s: [K] window start within its recording.
        labels: head name -> [K] int64 class index, ``IGNORE`` where the window has none.
        classes: head name -> class names.
        trial_is_fall: [K] int8, 1/0 for SisFall and MobiFall windows' trial label, -1
            elsewhere.
        recording_s: [K] duration of the recording each window comes from (seconds), for the
            corpus figures (:func:`corpus`).
    """

    data: np.ndarray
    subject: np.ndarray
    group: np.ndarray
    t_start_s: np.ndarray
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    classes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    trial_is_fall: np.ndarray | None = None
    recording_s: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.data)

    def take(self, index: np.ndarray) -> WindowSet:
        """The windows at ``index`` (a boolean mask or integer indices)."""
        return WindowSet(
            data=self.data[index],
            subject=self.subject[index],
            group=self.group[index],
            t_start_s=self.t_start_s[index],
            labels={k: v[index] for k, v in self.labels.items()},
            classes=dict(self.classes),
            trial_is_fall=self.fall_trials()[index],
            recording_s=None if self.recording_s is None else self.recording_s[index],
        )

    def fall_trials(self) -> np.ndarray:
        if self.trial_is_fall is None:
            return np.full(len(self), -1, np.int8)
        return self.trial_is_fall

    def with_data(self, data: np.ndarray) -> WindowSet:
        return replace(self, data=data)

    def durations_s(self) -> np.ndarray:
        if self.recording_s is None:
            return np.full(len(self), np.nan)
        return self.recording_s


def concat(sets: Sequence[WindowSet]) -> WindowSet:
    """Join window sets; a head a set lacks is ``IGNORE`` there; classes are merged by name."""
    heads: dict[str, list[str]] = {}
    for s in sets:
        for head, names in s.classes.items():
            merged = heads.setdefault(head, [])
            merged.extend(n for n in names if n not in merged)
    labels = {}
    for head, names in heads.items():
        parts = []
        for s in sets:
            if head not in s.labels:
                parts.append(np.full(len(s), IGNORE, np.int64))
                continue
            remap = np.array([names.index(n) for n in s.classes[head]] + [IGNORE])
            parts.append(remap[s.labels[head]])  # IGNORE (-1) indexes the appended -1
        labels[head] = np.concatenate(parts)
    offsets = np.cumsum([0] + [int(s.group.max()) + 1 if len(s) else 0 for s in sets[:-1]])
    return WindowSet(
        data=np.concatenate([s.data for s in sets]),
        subject=np.concatenate([s.subject for s in sets]),
        group=np.concatenate([s.group + o for s, o in zip(sets, offsets, strict=True)]),
        t_start_s=np.concatenate([s.t_start_s for s in sets]),
        labels=labels,
        classes={k: tuple(v) for k, v in heads.items()},
        trial_is_fall=np.concatenate([s.fall_trials() for s in sets]),
        recording_s=np.concatenate([s.durations_s() for s in sets]),
    )


def _windows_of(
    cfg: ChainConfig, rec: LabelledRecording, mounting=None, render_hz: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Chain windows of one recording: ([K, W, C], [K] first sample index in the recording).

    ``mounting``: the subject's sensor-to-body rotation (``cfg.mounting == "auto"``); with
    ``cfg.mounting == "vertical"`` the chain estimates up online from the recording's first
    sample, as a device does from a cold start.
    ``render_hz``: first re-render the recording at that rate (a device at another rate); the
    chain brings it back to its own rate, on the same grid, so the labels still line up.
    """
    t, x = rec.timestamp_s, rec.imu
    if render_hz is not None:
        x = render_rate(rec.imu, rec.rate_hz, render_hz)
        t = np.arange(len(x)) / render_hz
    if mounting is None and cfg.mounting != "vertical":
        mounting = _IDENTITY  # "vertical": a fresh estimate, from a cold start per recording
    w = run_offline(cfg, t, x, mounting=mounting)
    return w.data, window_starts(w.t_start_s, rec.rate_hz)


_IDENTITY = Mounting()


def _assemble(parts: list[dict], classes: dict[str, tuple[str, ...]]) -> WindowSet:
    def cat(key: str) -> np.ndarray:
        return np.concatenate([p[key] for p in parts])

    heads = [k[len("label_") :] for k in parts[0] if k.startswith("label_")]
    return WindowSet(
        data=cat("data"),
        subject=cat("subject"),
        group=cat("group"),
        t_start_s=cat("t_start_s"),
        labels={h: cat(f"label_{h}") for h in heads},
        classes=classes,
        trial_is_fall=cat("trial_is_fall") if "trial_is_fall" in parts[0] else None,
        recording_s=cat("recording_s"),
    )


def _part(
    data: np.ndarray, start: np.ndarray, subject: str, group: int, rate_hz: float, duration_s: float
) -> dict:
    k = len(data)
    return {
        "data": data,
        "subject": np.full(k, subject, dtype=object).astype(str),
        "group": np.full(k, group, np.int64),
        "t_start_s": start / rate_hz,
        "recording_s": np.full(k, duration_s),
    }


def build_hapt(root: Path, cfg: ChainConfig, render_hz: float | None = None) -> WindowSet:
    """All HAPT windows; head ``activity`` with the 12 labels (see :func:`activity_subset`).

    With ``cfg.mounting == "auto"`` each subject's recordings are aligned with that subject's
    mounting estimate (:func:`gaitedge.datasets.subject_mountings`)."""
    parts = []
    recs = list(hapt_recordings(root))
    mountings = subject_mountings(cfg, recs)
    for rec in recs:
        data, start = _windows_of(cfg, rec, mountings.get(rec.subject), render_hz)
        part = _part(data, start, rec.subject, rec.group, rec.rate_hz, _duration_s(rec))
        part["label_activity"] = window_labels(rec.sample_label, start, cfg.window_samples)
        parts.append(part)
    return _assemble(parts, {"activity": HAPT_LABELS})


def build_sisfall(
    root: Path,
    cfg: ChainConfig,
    subjects: Sequence[str] | None = None,
    render_hz: float | None = None,
) -> WindowSet:
    """SisFall windows (all subjects, or ``subjects`` like ``SA01``); head ``fall`` labelled
    from the impact (module docstring); aligned per subject like HAPT."""
    wanted = None if subjects is None else [f"sisfall:{s}" for s in subjects]
    parts = []
    recs = list(sisfall_recordings(root, wanted))
    mountings = subject_mountings(cfg, recs)
    for rec in recs:
        data, start = _windows_of(cfg, rec, mountings.get(rec.subject), render_hz)
        part = _part(data, start, rec.subject, rec.group, rec.rate_hz, _duration_s(rec))
        part["label_fall"] = sisfall_window_labels(rec, start, cfg.window_samples)
        part["trial_is_fall"] = np.full(len(data), rec.is_fall, np.int8)
        parts.append(part)
    return _assemble(parts, {"fall": FALL_CLASSES})


def build_mobifall(root: Path, cfg: ChainConfig, render_hz: float | None = None) -> WindowSet:
    """MobiFall windows, per trial (100 Hz in, the chain's rate out), with no head labels (the
    corpus is for pretraining); ``trial_is_fall`` is kept.

    With ``cfg.mounting == "auto"`` each subject is aligned like HAPT's, and only the 9 subjects
    with daily activities are kept: the other 15 recorded falls only, no walking, so the
    estimator never calibrates for them, and the runtime never lets the model of an
    uncalibrated device decide anything (activity is withheld and falls rest on impact and
    stillness alone); training on their unaligned windows would teach frames the model is never
    used on. Without automatic mounting all 24 subjects are kept, in the phone's own frame.
    """
    recs = list(mobifall_recordings(root))
    if cfg.mounting == "auto":
        calibratable = set(mobifall_adl_subjects(root))
        recs = [r for r in recs if r.subject in calibratable]
    mountings = subject_mountings(cfg, recs)
    parts = []
    for rec in recs:
        data, start = _windows_of(cfg, rec, mountings.get(rec.subject), render_hz)
        part = _part(data, start, rec.subject, rec.group, rec.rate_hz, _duration_s(rec))
        part["trial_is_fall"] = np.full(len(data), rec.is_fall, np.int8)
        parts.append(part)
    return _assemble(parts, {})


def _duration_s(rec: LabelledRecording) -> float:
    return len(rec.imu) / rec.rate_hz


def _span_s(t: np.ndarray) -> float:
    """Duration of a recording with timestamps ``t``: its span plus one typical interval."""
    return float(t[-1] - t[0] + np.median(np.diff(t))) if len(t) > 1 else 0.0


def build_folder(folder: Path, cfg: ChainConfig, rate_hz: float | None = None) -> WindowSet:
    """Recording CSVs ``<folder>/<subject>_<session>.csv`` (canonical or the seed's format).

    Files without a ``timestamp_s`` column need ``rate_hz``. A ``label`` column gives the head
    ``activity`` (class names sorted; empty strings are unlabelled).
    """
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no recording CSVs in {folder}")
    recordings = []
    for path in files:
        header = path.open(encoding="utf-8-sig").readline().lower()
        timed = "timestamp_s" in header or "timestamp_ms" in header
        recordings.append((path, read_recording(path, None if timed else rate_hz)))
    names = sorted({str(x) for _, r in recordings if r.label is not None for x in r.label} - {""})
    parts = []
    for group, (path, rec) in enumerate(recordings):
        w = run_offline(cfg, rec.timestamp_s, rec.imu)
        start = np.searchsorted(rec.timestamp_s, w.t_start_s - 1e-9)
        subject = f"{folder.name}:{path.stem.split('_')[0]}"
        part = _part(w.data, start, subject, group, 1.0, _span_s(rec.timestamp_s))
        part["t_start_s"] = w.t_start_s - rec.timestamp_s[0]
        sample_label = np.zeros(len(rec), np.int64)
        if rec.label is not None:
            lookup = {n: i + 1 for i, n in enumerate(names)}
            sample_label = np.array([lookup.get(str(x), 0) for x in rec.label], np.int64)
        part["label_activity"] = window_labels(sample_label, start, cfg.window_samples)
        parts.append(part)
    return _assemble(parts, {"activity": tuple(names)})


# Bump when the cached arrays change (2: recording_s).
_CACHE_VERSION = 2


def cache_key(name: str, cfg: ChainConfig) -> str:
    text = f"{name}|{cfg.to_json()}|labels-v{LABELLING_VERSION}|cache-v{_CACHE_VERSION}"
    if cfg.mounting in ("auto", "vertical"):  # aligned by the estimator: its version matters
        text += f"|mounting-v{ESTIMATOR_VERSION}"
    if cfg.mounting == "vertical":
        text += f"|vertical-v{VERTICAL_VERSION}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def load_windows(
    name: str, cfg: ChainConfig, root: Path | None = None, cache_dir: Path | None = None
) -> WindowSet:
    """Windows of dataset ``name`` (``hapt``, ``sisfall`` or a folder under ``root``), cached."""
    root = Path(root) if root is not None else default_data_root()
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"{name.replace('/', '_')}-{cache_key(name, cfg)}.npz"
        if cache.exists():
            return _read_cache(cache)
    base, _, rate = name.partition("@")  # "hapt@20": HAPT re-rendered at 20 Hz
    render_hz = float(rate) if rate else None
    if base == "hapt":
        ws = build_hapt(root, cfg, render_hz)
    elif base == "sisfall":
        ws = build_sisfall(root, cfg, render_hz=render_hz)
    elif base == "mobifall":
        ws = build_mobifall(root, cfg, render_hz)
    else:
        ws = build_folder(root / name, cfg, rate_hz=cfg.sample_rate_hz)
    log.info("%s: %d windows from the chain", name, len(ws))
    if cache is not None:
        _write_cache(cache, ws)
    return ws


def _write_cache(path: Path, ws: WindowSet) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"data": ws.data, "subject": ws.subject, "group": ws.group, "t_start_s": ws.t_start_s}
    arrays |= {f"label_{h}": v for h, v in ws.labels.items()}
    arrays |= {f"classes_{h}": np.array(v) for h, v in ws.classes.items()}
    arrays["trial_is_fall"] = ws.fall_trials()
    arrays["recording_s"] = ws.durations_s()
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")  # ranks may race
    np.savez(tmp, **arrays)
    tmp.replace(path)


def _read_cache(path: Path) -> WindowSet:
    with np.load(path) as z:
        heads = [k[len("label_") :] for k in z.files if k.startswith("label_")]
        return WindowSet(
            data=z["data"],
            subject=z["subject"],
            group=z["group"],
            t_start_s=z["t_start_s"],
            labels={h: z[f"label_{h}"] for h in heads},
            classes={h: tuple(str(c) for c in z[f"classes_{h}"]) for h in heads},
            trial_is_fall=z["trial_is_fall"],
            recording_s=z["recording_s"],
        )


def activity_subset(ws: WindowSet, n_classes: int) -> WindowSet:
    """Keep HAPT's 6 basic activities (``n_classes=6``) or all 12 labels for head ``activity``."""
    if n_classes not in (6, 12) or "activity" not in ws.labels:
        raise ValueError("activity labels: 6 (basic) or 12 (with transitions)")
    if ws.classes["activity"] != HAPT_LABELS:
        return ws
    labels = dict(ws.labels)
    labels["activity"] = np.where(ws.labels["activity"] < n_classes, ws.labels["activity"], -1)
    classes = dict(ws.classes) | {"activity": HAPT_LABELS[:n_classes]}
    return replace(ws, labels=labels, classes=classes)


def folder_split(ws: WindowSet, test_fraction: float = 0.3, seed: int = 0) -> SubjectSplit:
    """A seeded subject split for a folder dataset (no official split exists)."""
    subjects = sorted(set(ws.subject.tolist()))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(subjects))
    n_test = max(1, round(test_fraction * len(subjects))) if len(subjects) > 1 else 0
    test = {subjects[i] for i in order[:n_test]}
    train = tuple(s for s in subjects if s not in test)
    split = SubjectSplit(train, tuple(sorted(test)), f"folder subjects, seed {seed}")
    return split.with_validation()


def merge_splits(splits: Sequence[SubjectSplit]) -> SubjectSplit:
    """One split of several datasets (a dataset re-rendered at another rate adds no subjects)."""

    def unique(items):
        return tuple(dict.fromkeys(items))

    return SubjectSplit(
        unique(s for sp in splits for s in sp.train),
        unique(s for sp in splits for s in sp.test),
        "; ".join(unique(sp.description for sp in splits)),
        unique(s for sp in splits for s in sp.val),
    )


@dataclass
class PreparedData:
    """Normalised windows of the split's three parts plus the chain that made them.

    ``train``: the fitting subjects (their windows alone fit the normalisation); ``val``: the
    validation subjects, for every choice; ``test``: the held-out subjects, scored for the card;
    ``corpus``: what ``train`` is made of in hours and subjects (:func:`corpus`).
    """

    chain: ChainConfig
    train: WindowSet
    test: WindowSet
    split: SubjectSplit
    val: WindowSet | None = None
    corpus: dict = field(default_factory=dict)


def prepare(
    names: Sequence[str],
    cfg: ChainConfig,
    root: Path | None = None,
    cache_dir: Path | None = None,
    *,
    sisfall_fold: int | None = None,
    sisfall_folds: int = 5,
    activity_classes: int = 6,
) -> PreparedData:
    """Load datasets, split by subject, fit normalisation on the fitting subjects (``train``,
    neither validation nor test), re-run the chain.

    If ``cfg`` already carries normalisation statistics (a pretrained checkpoint's chain), they
    are kept, so fine-tuning sees exactly the windows the pretrained encoder saw.
    """
    root = Path(root) if root is not None else default_data_root()
    sets, splits = [], []
    for name in names:
        ws = load_windows(name, cfg, root, cache_dir)
        base = name.partition("@")[0]  # "hapt@20": the same subjects at another rate
        if base == "hapt":
            splits.append(hapt_split(root))
            ws = activity_subset(ws, activity_classes)
        elif base == "sisfall":
            splits.append(sisfall_split(root, sisfall_fold, sisfall_folds))
        elif base == "mobifall":
            splits.append(mobifall_split(root))
        else:
            splits.append(folder_split(ws))
        sets.append(ws)
    split = merge_splits(splits)
    stated = corpus(names, sets, split.train)
    if cfg.norm_mean is None:
        train_raw = concat([s.take(np.isin(s.subject, split.train)) for s in sets])
        cfg = cfg.with_normalization(*fit_normalization(train_raw.data))
        del train_raw
        sets = [
            _renormalised(name, s, cfg, root, cache_dir)
            for name, s in zip(names, sets, strict=True)
        ]
    ws = concat(sets)
    return PreparedData(
        chain=cfg,
        train=ws.take(np.isin(ws.subject, split.train)),
        test=ws.take(np.isin(ws.subject, split.test)),
        split=split,
        val=ws.take(np.isin(ws.subject, split.val)),
        corpus=stated,
    )


def corpus(names: Sequence[str], sets: Sequence[WindowSet], fitting: Sequence[str]) -> dict:
    """The fitting subjects' share of each dataset and in total: hours of the recordings their
    windows come from, subjects, recordings and windows. A re-rendered copy (``hapt@20``) adds
    hours but no subjects: ``subjects`` counts a dataset's own, ``new_subjects`` those no
    earlier entry had, and the total counts each subject once."""
    rows, seen, total_s = [], set(), 0.0
    for name, ws in zip(names, sets, strict=True):
        mine = np.isin(ws.subject, fitting)
        groups, first = np.unique(ws.group[mine], return_index=True)
        seconds = float(ws.durations_s()[mine][first].sum())
        subjects = set(ws.subject[mine].tolist())
        rows.append({
            "name": name, "hours": round(seconds / 3600, 3), "subjects": len(subjects),
            "new_subjects": len(subjects - seen), "recordings": len(groups),
            "windows": int(mine.sum()),
        })  # fmt: skip
        seen |= subjects
        total_s += seconds
    return {"hours": round(total_s / 3600, 3), "subjects": len(seen), "datasets": rows}


def _renormalised(
    name: str, ws: WindowSet, cfg: ChainConfig, root: Path, cache_dir: Path | None
) -> WindowSet:
    """The same windows from the chain with normalisation on (labels kept from ``ws``)."""
    fresh = load_windows(name, cfg, root, cache_dir)
    if len(fresh) != len(ws):
        raise RuntimeError("normalisation changed the number of windows")
    return ws.with_data(fresh.data)
