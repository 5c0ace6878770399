"""Numpy-only readers of the real datasets, their subject splits and window-labelling rules.

The runtime evaluates bundles on held-out subjects without torch (``gaitedge evaluate``), so the
rules that turn raw recordings into labelled windows live here, in the installed package, and
training uses the same ones:

* **HAPT** (UCI, CC BY 4.0): one recording per experiment, per-sample labels 1-12 (0 =
  unlabelled). A window takes the label that covers at least ``MIN_LABEL_FRACTION`` of its
  samples, else none (:data:`IGNORE`). The head ``activity`` has the 6 basic activities (the
  transitions are then ignored) or all 12 labels. Split: the official UCI subject split.
* **SisFall** (research use): one recording per trial, ADXL345 acceleration and ITG3200 rate,
  turned into HAPT's body frame (+x up when upright) by :data:`SISFALL_TO_BODY_FRAME`. Labels come
  per trial; window labels for the head ``fall`` come from the impact, the sample of peak |acc|
  (:func:`fall_window_labels`). A trial is *detected* when any of its windows has a fall
  probability at or above the threshold. Split: :data:`SISFALL_TEST_SUBJECTS` held out.
* **MobiFall** (research use): a phone in a trouser pocket, 100 Hz, in the phone's own frame
  (+y up when standing); labels per trial, no head (used unlabelled for pretraining). Only 9 of
  its 24 subjects have daily activities (walking, so a device can be calibrated); the other 15
  have falls only. Split: :data:`MOBIFALL_TEST_SUBJECTS` held out.

Every split has three disjoint parts: ``train`` (the subjects a model is fitted on, normalisation
and INT8 calibration included), ``val`` (validation subjects drawn from the training side by
:func:`validation_subjects`: every choice — checkpoint, hyper-parameters, student, INT8 vs FP32,
thresholds — is made on them) and ``test`` (scored once, for the model card).

Subjects are named with their dataset as prefix (``hapt:2``, ``sisfall:SA03``).
"""

from __future__ import annotations

import csv
import enum
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaitedge.units import STANDARD_GRAVITY_M_S2, AccelUnit, GyroUnit, accel_to_m_s2, gyro_to_rad_s

# Bump when a labelling rule changes, so cached windows are rebuilt.
LABELLING_VERSION = 1
MIN_LABEL_FRACTION = 0.5
IGNORE = -1

HAPT_LABELS = (
    "WALKING",
    "WALKING_UPSTAIRS",
    "WALKING_DOWNSTAIRS",
    "SITTING",
    "STANDING",
    "LAYING",
    "STAND_TO_SIT",
    "SIT_TO_STAND",
    "SIT_TO_LIE",
    "LIE_TO_SIT",
    "STAND_TO_LIE",
    "LIE_TO_STAND",
)
HAPT_BASIC_LABELS = HAPT_LABELS[:6]
FALL_CLASSES = ("no_fall", "fall")
# Held out from the shipped model: five adults with falls, SE06 (the one elderly subject who
# fell) and two elderly subjects with ADLs only.
SISFALL_TEST_SUBJECTS = ("SA03", "SA08", "SA13", "SA18", "SA23", "SE03", "SE06", "SE12")
# SisFall upright reads gravity on -y; HAPT on +x. Rotation by 90 degrees about z: x' = -y, y' = x.
# Share of a split's training side set aside as validation subjects (rounded down: 4 of HAPT's
# 21 official training subjects, 6 of SisFall's 30).
VAL_FRACTION = 0.2
SISFALL_TO_BODY_FRAME = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


class DatasetName(str, enum.Enum):
    """The real datasets a bundle can be scored on."""

    HAPT = "hapt"
    SISFALL = "sisfall"


class SplitPart(str, enum.Enum):
    """Which subjects of a split: held-out, training (fitting), validation, or everyone."""

    TEST = "test"
    TRAIN = "train"
    VAL = "val"
    ALL = "all"


DATASETS = tuple(d.value for d in DatasetName)
# Which model head each dataset scores.
DATASET_HEAD = {"hapt": "activity", "sisfall": "fall"}


class DatasetError(ValueError):
    """A dataset that is missing or not in the expected layout."""


def default_data_root() -> Path:
    """``$GAITEDGE_DATA_ROOT``, else ``../shared/data`` from the working directory, else the
    ``shared/data`` folder next to a source checkout."""
    if "GAITEDGE_DATA_ROOT" in os.environ:
        return Path(os.environ["GAITEDGE_DATA_ROOT"])
    here = Path("..") / "shared" / "data"
    if here.exists():
        return here
    return Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass(frozen=True)
class LabelledRecording:
    """One recording of a dataset in the chain's input units.

    Attributes:
        dataset: ``hapt`` or ``sisfall``.
        subject: subject id with the dataset prefix (``hapt:2``).
        group: experiment id (HAPT) or trial index (SisFall), unique within the dataset.
        rate_hz: sample rate of ``imu`` (samples are evenly spaced from t = 0).
        imu: [N, 6] acc (m/s²) and gyro (rad/s).
        sample_label: [N] int labels 1..12, 0 = unlabelled (HAPT), else None.
        is_fall: 1/0 trial label (SisFall), else None.
        activity: SisFall / MobiFall activity code (``D01``, ``FOL``), else ``""``.
        acc_range_g: the accelerometer's full scale in g where it is small enough to clip
            falls (MobiFall's phone: 2), else None.
    """

    dataset: str
    subject: str
    group: int
    rate_hz: float
    imu: np.ndarray
    sample_label: np.ndarray | None = None
    is_fall: int | None = None
    activity: str = ""
    acc_range_g: float | None = None  # the accelerometer's full scale, where it clips

    @property
    def timestamp_s(self) -> np.ndarray:
        return np.arange(len(self.imu)) / self.rate_hz

    def impact_index(self) -> int:
        """The sample of peak |acc|: the impact of a fall trial."""
        return int(np.argmax(np.linalg.norm(self.imu[:, :3], axis=1)))


@dataclass(frozen=True)
class SubjectSplit:
    """Subjects for fitting (``train``), for choices (``val``) and for the card (``test``).

    The three parts are disjoint. ``val`` is empty for splits made before there was one.
    """

    train: tuple[str, ...]
    test: tuple[str, ...]
    description: str
    val: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        parts = {"train": self.train, "val": self.val, "test": self.test}
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            overlap = set(parts[a]) & set(parts[b])
            if overlap:
                raise ValueError(f"subjects in both {a} and {b}: {sorted(overlap)}")

    def subjects(self, part: str) -> tuple[str, ...]:
        """``train`` (fitting), ``val``, ``test`` or ``all`` subjects."""
        if part == "all":
            return self.train + self.val + self.test
        if part not in ("train", "val", "test"):
            raise ValueError(f"split part must be train, val, test or all, not {part!r}")
        return getattr(self, part)

    def with_validation(self, fraction: float = VAL_FRACTION) -> SubjectSplit:
        """This split with :func:`validation_subjects` of its training side moved to ``val``."""
        side = self.train + self.val
        val = validation_subjects(side, fraction)
        train = tuple(s for s in side if s not in val)
        return SubjectSplit(train, self.test, f"{self.description}; validation {len(val)} "
                            f"of {len(side)} training subjects", val)  # fmt: skip

    def to_dict(self) -> dict:
        return {"train": list(self.train), "val": list(self.val), "test": list(self.test),
                "description": self.description}  # fmt: skip


def validation_subjects(
    training_side: Sequence[str], fraction: float = VAL_FRACTION
) -> tuple[str, ...]:
    """The validation subjects of a split's training side, by a fixed rule (never by scores):
    ``floor(fraction * n)`` subjects evenly spaced through the side in its given (sorted)
    order, the i-th at position ``floor((i + 0.5) * n / k)``. Under five subjects: none."""
    n = len(training_side)
    k = int(fraction * n + 1e-9)
    return tuple(training_side[int((i + 0.5) * n / k)] for i in range(k))


def _require(path: Path) -> Path:
    if not path.exists():
        raise DatasetError(f"{path} not found: is --data-root (or GAITEDGE_DATA_ROOT) right?")
    return path


def csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file with a header; lines starting with ``#`` are comments."""
    with _require(path).open(newline="") as f:
        return list(csv.DictReader(row for row in f if not row.startswith("#")))


def hapt_split(root: Path) -> SubjectSplit:
    """The official UCI HAR / HAPT split (21 train, 9 test subjects); 4 of the 21 (subjects
    at positions 2, 7, 13, 18 in file order) are validation subjects, 17 fit the model."""
    rows = [
        line.split()
        for line in _require(root / "hapt" / "uci_har_subject_split.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    train = tuple(f"hapt:{s}" for s, part in rows if part == "train")
    test = tuple(f"hapt:{s}" for s, part in rows if part == "test")
    return SubjectSplit(train, test, "HAPT official UCI split").with_validation()


def sisfall_subjects(root: Path) -> list[str]:
    return sorted({r["subject"] for r in csv_rows(root / "sisfall" / "trials.csv")})


def sisfall_split(root: Path, fold: int | None = None, n_folds: int = 5) -> SubjectSplit:
    """SisFall by subject: fold ``fold`` of ``n_folds`` (subjects dealt round-robin in sorted
    order), or the fixed split of the shipped model (``fold=None``); validation subjects are
    drawn inside the training side of the fold (:func:`validation_subjects`)."""
    subjects = sisfall_subjects(root)
    if fold is None:
        test = set(SISFALL_TEST_SUBJECTS)
        desc = "SisFall fixed test subjects " + ",".join(SISFALL_TEST_SUBJECTS)
    else:
        if not 0 <= fold < n_folds:
            raise ValueError(f"fold must lie in [0, {n_folds})")
        test = {s for i, s in enumerate(subjects) if i % n_folds == fold}
        desc = f"SisFall subject fold {fold} of {n_folds}"
    return SubjectSplit(
        tuple(f"sisfall:{s}" for s in subjects if s not in test),
        tuple(f"sisfall:{s}" for s in subjects if s in test),
        desc,
    ).with_validation()


def dataset_split(name: str, root: Path) -> SubjectSplit:
    """The default subject split of dataset ``name``."""
    if name == "hapt":
        return hapt_split(root)
    if name == "sisfall":
        return sisfall_split(root)
    if name == "mobifall":
        return mobifall_split(root)
    raise DatasetError(f"unknown dataset {name!r}; choose from {DATASETS}")


def _selected_rows(root: Path, name: str, index: str, subjects: Sequence[str] | None):
    """Rows of ``<root>/<name>/<index>`` for ``subjects`` (all if None), with the subject id
    prefixed by the dataset: (row, subject, (start_row, n_samples))."""
    wanted = None if subjects is None else set(subjects)
    for row in csv_rows(root / name / index):
        subject = f"{name}:{row['subject']}"
        if wanted is None or subject in wanted:
            yield row, subject, (int(row["start_row"]), int(row["n_samples"]))


def hapt_recordings(
    root: Path, subjects: Sequence[str] | None = None
) -> Iterator[LabelledRecording]:
    """HAPT experiments (of ``subjects`` if given), acc converted from g to m/s²."""
    with np.load(_require(root / "hapt" / "hapt_raw_50hz.npz")) as d:
        imu, label = d["imu"], d["label"]
        rate_hz = float(d["sample_rate_hz"])
    for row, subject, (s, n) in _selected_rows(root, "hapt", "experiments.csv", subjects):
        x = imu[s : s + n].astype(np.float64)
        x[:, :3] *= STANDARD_GRAVITY_M_S2
        lab = label[s : s + n].astype(np.int64)
        yield LabelledRecording("hapt", subject, int(row["exp_id"]), rate_hz, x, sample_label=lab)


def sisfall_trial_imu(counts: np.ndarray, scales: dict[str, float]) -> np.ndarray:
    """[N, 9] SisFall counts -> [N, 6] acc (m/s², ADXL345) and gyro (rad/s, ITG3200), body frame."""
    acc = accel_to_m_s2(counts[:, 0:3], AccelUnit.COUNTS, g_per_count=scales["acc_g"])
    gyro = gyro_to_rad_s(counts[:, 3:6] * scales["gyro_dps"], GyroUnit.DEG_S)
    return np.concatenate([acc @ SISFALL_TO_BODY_FRAME.T, gyro @ SISFALL_TO_BODY_FRAME.T], axis=1)


def _sisfall_scales(archive) -> dict[str, float]:
    """The ADXL345 (g per count) and ITG3200 (deg/s per count) scales stored in the archive."""
    return {
        "acc_g": float(archive["scale_adxl345_g_per_count"][0]),
        "gyro_dps": float(archive["scale_itg3200_dps_per_count"][0]),
    }


def sisfall_recordings(
    root: Path, subjects: Sequence[str] | None = None
) -> Iterator[LabelledRecording]:
    """SisFall trials (of ``subjects`` if given) in m/s² and rad/s, in HAPT's body frame."""
    with np.load(_require(root / "sisfall" / "sisfall_50hz_counts_int16.npz")) as z:
        counts = z["counts"]
        rate_hz = float(z["sample_rate_hz"])
        scales = _sisfall_scales(z)
    for row, subject, (s, n) in _selected_rows(root, "sisfall", "trials.csv", subjects):
        imu = sisfall_trial_imu(counts[s : s + n].astype(np.float64), scales)
        yield LabelledRecording(
            "sisfall", subject, int(row["trial"]), rate_hz, imu,
            is_fall=int(row["is_fall"]), activity=row["activity"],
        )  # fmt: skip


def recordings(
    name: str, root: Path, subjects: Sequence[str] | None = None
) -> Iterator[LabelledRecording]:
    """The recordings of dataset ``name`` (``hapt`` or ``sisfall``)."""
    if name == "hapt":
        return hapt_recordings(root, subjects)
    if name == "sisfall":
        return sisfall_recordings(root, subjects)
    raise DatasetError(f"unknown dataset {name!r}; choose from {DATASETS}")


def window_starts(t_start_s: np.ndarray, rate_hz: float) -> np.ndarray:
    """[K] first-sample index of windows cut from a recording sampled from t = 0."""
    return np.rint(np.asarray(t_start_s) * rate_hz).astype(np.int64)


def majority_labels(
    label: np.ndarray, start: np.ndarray, window_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per window the most frequent sample label and the fraction of the window it covers.

    Args:
        label: [N] int sample labels, 0 = unlabelled.
        start: [K] first sample index of each window.
    Returns:
        ([K] label, 0 where the winner is unlabelled; [K] fraction in [0, 1]).
    """
    idx = start[:, None] + np.arange(window_samples)  # [K, W]
    lab = label[np.clip(idx, 0, len(label) - 1)]  # [K, W]
    n_classes = int(label.max()) + 1
    counts = np.stack([(lab == c).sum(axis=1) for c in range(n_classes)], axis=1)  # [K, n]
    winner = counts.argmax(axis=1)
    return winner, counts[np.arange(len(start)), winner] / window_samples


def window_labels(label: np.ndarray, start: np.ndarray, window_samples: int) -> np.ndarray:
    """The window-labelling rule: the majority sample label (1-based, 0 = unlabelled) as a class
    index from 0 when it covers at least ``MIN_LABEL_FRACTION`` of the window, else IGNORE."""
    lab, frac = majority_labels(label, start, window_samples)
    return np.where((lab > 0) & (frac >= MIN_LABEL_FRACTION), lab - 1, IGNORE).astype(np.int64)


def activity_window_labels(
    label: np.ndarray, start: np.ndarray, window_samples: int, n_classes: int = 12
) -> np.ndarray:
    """HAPT window labels: class index 0..n_classes-1 of the majority label, else IGNORE.

    A window is labelled when one label covers at least ``MIN_LABEL_FRACTION`` of it; with
    ``n_classes=6`` the transitions (labels 7-12) are ignored.
    """
    if n_classes not in (6, 12):
        raise ValueError("HAPT activity labels: 6 (basic) or 12 (with transitions)")
    out = window_labels(label, start, window_samples)
    return np.where(out < n_classes, out, IGNORE).astype(np.int64)


def fall_window_labels(start: np.ndarray, window_samples: int, impact: int) -> np.ndarray:
    """Labels of a fall trial's windows from the impact sample.

    In a fall trial the window whose central half holds the impact is ``fall`` (1); windows
    that end before the impact are ``no_fall`` (0); the others (impact near an edge, lying
    after the fall) have no label (``IGNORE``): lying still after a fall looks like lying in
    bed, and the runtime's alert logic confirms a fall by the stillness after the impact.
    Every window of an ADL trial is ``no_fall``.
    """
    quarter = window_samples // 4
    central = (impact >= start + quarter) & (impact < start + window_samples - quarter)
    before = start + window_samples <= impact
    return np.where(central, 1, np.where(before, 0, IGNORE)).astype(np.int64)


def sisfall_window_labels(rec: LabelledRecording, start: np.ndarray, window_samples: int):
    """[K] ``fall`` head labels of a SisFall trial's windows (see :func:`fall_window_labels`)."""
    if rec.is_fall:
        return fall_window_labels(start, window_samples, rec.impact_index())
    return np.zeros(len(start), np.int64)


def peak_window(start: np.ndarray, window_samples: int, peak: int) -> int:
    """Index of the window whose centre is nearest to sample ``peak`` (-1 when none)."""
    if not len(start):
        return -1
    return int(np.argmin(np.abs(start + window_samples // 2 - peak)))


SISFALL_RAW_RATE_HZ = 200.0


def sisfall_raw_trial(root: Path, name: str) -> LabelledRecording:
    """One of SisFall's original 200 Hz files (``SA01/F01_SA01_R01.txt`` under
    ``sisfall/raw_txt_samples``), in the chain's units and HAPT's body frame like the 50 Hz data."""
    path = _require(root / "sisfall" / "raw_txt_samples" / name)
    text = path.read_text().replace(";", "")
    counts = np.array(
        [[float(v) for v in line.split(",")] for line in text.splitlines() if line.strip()]
    )
    with np.load(_require(root / "sisfall" / "sisfall_50hz_counts_int16.npz")) as z:
        scales = _sisfall_scales(z)
    activity, subject, _ = Path(name).stem.split("_")
    return LabelledRecording(
        "sisfall", f"sisfall:{subject}", -1, SISFALL_RAW_RATE_HZ,
        sisfall_trial_imu(counts, scales), is_fall=int(activity.startswith("F")),
        activity=activity,
    )  # fmt: skip


def render_rate(imu: np.ndarray, from_hz: float, to_hz: float) -> np.ndarray:
    """[N, 6] evenly sampled at ``from_hz`` re-rendered at ``to_hz`` (a device at another rate):
    a zero-phase polyphase FIR, as the datasets' own rate conversions were made."""
    from fractions import Fraction

    from scipy import signal

    if to_hz == from_hz:
        return imu
    ratio = Fraction(to_hz / from_hz).limit_denominator(100)
    return signal.resample_poly(imu, ratio.numerator, ratio.denominator, axis=0, padtype="line")


def subject_estimates(cfg, recs: Sequence[LabelledRecording], render=None) -> dict:
    """Per subject, the mounting estimate (``gaitedge.mounting.MountingEstimator``) a device
    worn by that subject settles on, from all of the subject's recordings; ``render(rec)`` gives
    the (timestamps, imu) a device sends for a recording (default: the recording as it is)."""
    from gaitedge.preprocess import calibrate

    by_subject: dict[str, list[LabelledRecording]] = {}
    for rec in recs:
        by_subject.setdefault(rec.subject, []).append(rec)
    render = render or (lambda rec: (rec.timestamp_s, rec.imu))
    return {
        subject: calibrate(cfg, [render(r) for r in items]) for subject, items in by_subject.items()
    }


def subject_mountings(cfg, recs: Sequence[LabelledRecording]) -> dict:
    """Per subject, :func:`subject_estimates` applied fixed (as a stored estimate is). Empty
    when the chain has no automatic mounting."""
    from gaitedge.preprocess import Mounting

    if cfg.mounting != "auto":
        return {}
    return {
        subject: Mounting(rotation=est.rotation.copy())
        for subject, est in subject_estimates(cfg, recs).items()
    }


MOBIFALL_ACC_RANGE_G = 2.0


def mobifall_recordings(
    root: Path, subjects: Sequence[str] | None = None
) -> Iterator[LabelledRecording]:
    """MobiFall v2.0 trials (phone in a trouser pocket, +y up when standing, 100 Hz, research
    use): acc in m/s² (it saturates at +2 g), gyro in rad/s, in the phone's own frame; labels
    per trial (``is_fall``, ``activity`` = the 3-letter code). Subjects ``mobifall:<id>``."""
    with np.load(_require(root / "mobifall" / "mobifall_100hz_counts_int16.npz")) as z:
        counts = z["counts"]
        rate_hz = float(z["sample_rate_hz"])
        acc_scale = float(z["scale_acc_ms2_per_count"][0])
        gyro_scale = float(z["scale_gyro_rads_per_count"][0])
    for row, subject, (s, n) in _selected_rows(root, "mobifall", "trials.csv", subjects):
        c = counts[s : s + n].astype(np.float64)
        imu = np.concatenate([c[:, :3] * acc_scale, c[:, 3:] * gyro_scale], axis=1)
        yield LabelledRecording(
            "mobifall", subject, int(row["trial"]), rate_hz, imu,
            is_fall=int(row["is_fall"]), activity=row["activity"],
            acc_range_g=MOBIFALL_ACC_RANGE_G,
        )  # fmt: skip


# Held out: 3 of the 9 subjects with daily activities (2 among them: the pocket-phone runtime
# test's subject) and 4 of the 15 with falls only, spread through the ids.
MOBIFALL_TEST_SUBJECTS = ("2", "5", "9", "6", "14", "19", "30")


def mobifall_subjects(root: Path) -> list[str]:
    """MobiFall's subject ids in numeric order (``1``, ``2``, ..., ``31``)."""
    return sorted({r["subject"] for r in csv_rows(root / "mobifall" / "subjects.csv")}, key=int)


def mobifall_split(root: Path) -> SubjectSplit:
    """MobiFall by subject: :data:`MOBIFALL_TEST_SUBJECTS` held out; validation subjects drawn
    from the other 17 in numeric order (:func:`validation_subjects`: ``4``, ``13``, ``21``, one
    of them with daily activities)."""
    subjects = mobifall_subjects(root)
    test = set(MOBIFALL_TEST_SUBJECTS)
    return SubjectSplit(
        tuple(f"mobifall:{s}" for s in subjects if s not in test),
        tuple(f"mobifall:{s}" for s in subjects if s in test),
        "MobiFall fixed test subjects " + ",".join(MOBIFALL_TEST_SUBJECTS),
    ).with_validation()


def mobifall_adl_subjects(root: Path) -> list[str]:
    """MobiFall subjects with daily activities too (walking: their device can be calibrated)."""
    return [
        f"mobifall:{r['subject']}"
        for r in csv_rows(root / "mobifall" / "subjects.csv")
        if r["has_adl_trials"] == "1"
    ]
