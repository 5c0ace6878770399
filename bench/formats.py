"""App exports: held-out recordings written as each app exports them, read back and replayed.

    python bench/formats.py --json [--model M.onnx] [--quick] [--only sensorlogger,phyphox]

Held-out HAPT experiments (activity), held-out SisFall trials (falls and daily activities) and
the falls of MobiFall's held-out subjects (a phone in a trouser pocket, ±2 g) are written by
every variant of every emulated app (``firmware_bridge.exports``: each writes the canonical
recording as that app exports it, to a zip, a folder or a file), read back through
``gaitedge.formats.read(path)`` (the path a user gives, the format detected) and replayed with
the shipped model exactly as ``gaitedge replay --fast`` does, by ``bench/devices.py``'s pieces:
the pipeline fed by a ``ReplaySource``, the mounting from a cold start (nothing stored,
calibrated online, no look-ahead) with the shipped cold-start model beside the device until it
has calibrated (``--no-cold-start``: the default model alone), the sample-level activity
macro-F1 over the 6 basic HAPT activities, fall trials scored by whether they raise a fall
alert. The ``gaitedge`` row is the canonical CSV of the same recordings
(``gaitedge convert``'s output) read the same way; every drop is against it.

How much: :data:`FULL` (45 min of recordings per variant) or :data:`QUICK` (``--quick``);
``--only`` picks apps or variants; ``--jobs`` variants run side by side (default: one per core).

Labels stay the canonical recording's, mapped by time: an app's clock (epoch, time since the
experiment started) is its own, so the read-back's first sample is placed on the recording's
clock by lining up |acc| (the shift is a renderer's resampling offset or the join's trim, reported
as ``align_s``). Fall sensitivity = fall trials with a fall alert / fall trials (SisFall and
MobiFall together, and each under ``by_dataset``); specificity = daily-activity trials without one
/ daily-activity trials.

``parse_vs_pandas``: seconds for ``gaitedge.formats.read`` of a one-hour Sensor Logger export
(the ``sensorlogger`` emulated app's Android folder: ``Accelerometer.csv`` and
``TotalAcceleration.csv`` at 100 Hz, ``Gyroscope.csv`` at 400 Hz) over seconds for pandas'
``read_csv`` of the same files, best of 5 interleaved rounds each, in the same run; the peak
resident memory of each (a fresh process), of the streamed read (``stream_peak_rss_mib``:
``open_chunks``, as replay, summarize and convert read it) and both libraries' versions.

Per variant, besides the answers, what tells a file's fault from the chain's: ``signal_rmse``
(the read-back against the recording at its own instants, m/s² and rad/s: a unit, sign, axis or
gravity error shows here first), ``mount_deg_max`` (per dataset, the largest angle between a
subject's mounting calibrated from the read-back and from the recording: the estimate's heading
can flip on a few subjects when the samples move by a resampling), ``align_s_max``,
``rates_hz``, ``detected_as``, ``parse_s`` and ``render_s``.

Last line: one JSON object with ``formats`` (per variant: ``activity_f1``, ``fall_sensitivity``,
``fall_specificity``, their drops, ``parse_s`` ...), ``canonical``, ``worst_activity_f1_drop``,
``worst_fall_sensitivity_drop``, ``parse_vs_pandas``, ``missing`` (an app or reader module not
there: never a silent pass) and ``failed`` (a variant that did not render or read, with why).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import devices
from bench._data import data_root, hapt_signal
from bench.devices import Condition, activity_f1, fall_scores
from firmware_bridge import exports
from gaitedge import datasets as ds
from gaitedge import formats
from gaitedge.engine import cold_start_model, load_engine
from gaitedge.mounting import rotation_angle_deg
from gaitedge.recording import Recording, write_recording

log = logging.getLogger("bench.formats")

REPO = Path(__file__).resolve().parents[1]
CANONICAL = "gaitedge"
Renderer = Callable[[Recording, Path], Path]

# The read-back's first sample is searched on the recording's clock within ±ALIGN_RANGE_S, on a
# coarse grid, then finely around the best point (an app's resampling offset is well under this).
ALIGN_RANGE_S = 1.0
ALIGN_COARSE_S = 0.005
ALIGN_FINE_S = 0.0002
ALIGN_POINTS = 4000


@dataclass(frozen=True)
class ReadBack(Condition):
    """A ``bench.devices`` condition whose rendering of a recording is its export read back:
    ``render(imu, rate_hz, seed)`` returns the (timestamps, samples) read for recording
    ``group == seed`` (the scorers ask with ``seed + rec.group``; this bench passes seed 0)."""

    signals: dict[int, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, compare=False, hash=False
    )

    def render(self, imu: np.ndarray, rate_hz: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        return self.signals[seed]


@dataclass(frozen=True)
class Subset:
    """How much of the held-out data every variant renders (each variant re-renders all of it:
    the apps' writers dominate the run's time). Falls set the sensitivity's step: one trial of
    ``sisfall_falls + mobifall_falls`` (60: 0.017, under the 0.02 target)."""

    hapt_experiments: tuple[tuple[str, int], ...] | None  # (subject, experiment); None: see below
    hapt_subjects: int  # with ``hapt_experiments`` None: the first experiment of every other one
    sisfall_falls: int
    sisfall_adls: int
    mobifall_falls: int
    mobifall_adls: int


# The full run: 4 of the 9 HAPT test subjects (24 min), 40 + 20 SisFall trials (18 min), 20
# MobiFall falls (3 min); 45 min of recordings per variant. 39 variants: 6.5 min on 2 cores
# (10.8 min of CPU; 13-20 min while other jobs shared the machine).
FULL = Subset(None, 4, 40, 20, 20, 0)
# The quick run: one HAPT experiment whose mounting estimate moves under 1 deg when its start
# moves by up to 0.5 s (hapt:2's experiment 3 turns 15 deg, hapt:10's 20 by 170 deg: see
# ``mount_deg_max``), so a smoke test of the read-back's clock is not a test of the calibration.
QUICK = Subset((("hapt:20", 41),), 1, 6, 6, 4, 0)


@dataclass(frozen=True)
class HeldOut:
    """The recordings every variant renders: HAPT (activity), SisFall and MobiFall (falls)."""

    hapt: list
    sisfall: list
    mobifall: list

    def by_dataset(self) -> dict[str, list]:
        return {"hapt": self.hapt, "sisfall": self.sisfall, "mobifall": self.mobifall}


def held_out(root: Path, quick: bool) -> HeldOut:
    """The held-out subjects' recordings (the bundles' splits: ``datasets.dataset_split``, the
    shipped model's SisFall subjects, MobiFall's test subjects), thinned to :data:`FULL` or
    :data:`QUICK`."""
    subset = QUICK if quick else FULL
    hapt_test = ds.dataset_split("hapt", root).test
    hapt = list(ds.hapt_recordings(root, hapt_test))
    if subset.hapt_experiments is not None:
        hapt = [r for r in hapt if (r.subject, r.group) in subset.hapt_experiments]
    else:
        first = {r.subject: r for r in reversed(hapt)}  # each subject's first experiment
        hapt = [first[s] for s in hapt_test[::2][: subset.hapt_subjects]]
    sisfall = list(ds.sisfall_recordings(root, [f"sisfall:{s}" for s in ds.SISFALL_TEST_SUBJECTS]))
    mobifall = list(ds.mobifall_recordings(root, ds.mobifall_split(root).test))
    return HeldOut(
        hapt,
        _thin(sisfall, subset.sisfall_falls, subset.sisfall_adls),
        _thin(mobifall, subset.mobifall_falls, subset.mobifall_adls),
    )


def _thin(recs: list, n_falls: int, n_adls: int) -> list:
    """``n_falls`` fall and ``n_adls`` daily-activity trials, each evenly spread through
    ``recs`` (so through its subjects), in trial order."""
    out = []
    for is_fall, n in ((1, n_falls), (0, n_adls)):
        part = [r for r in recs if r.is_fall == is_fall]
        if n:
            out += part[:: max(1, len(part) // n)][:n]
    return sorted(out, key=lambda r: r.group)


# --- the variants -------------------------------------------------------------------------------


def canonical_csv(recording: Recording, out_dir: Path) -> Path:
    """gaitedge's own CSV of a recording (what ``gaitedge convert`` writes)."""
    path = out_dir / "recording.csv"
    write_recording(path, recording)
    return path


def available_variants(
    only: frozenset[str] | None, warn: bool = True
) -> tuple[dict[str, tuple[Renderer, str]], list]:
    """Every emulated app's variants whose modules are there, as ``module-variant`` ->
    (renderer, the reader it should be detected as) (the names ``exports.variants()`` gives), and
    what is missing: an app module, or the reader of a module's format. ``only``: app modules
    (``sensorlogger``) or variants (``sensorlogger-ios-zip``)."""
    found: dict[str, tuple[Renderer, str]] = {}
    missing = []
    for module in exports.MODULES:
        short = module.rsplit(".", 1)[1]
        if only and short not in only and not any(o.startswith(f"{short}-") for o in only):
            continue
        try:
            mod = importlib.import_module(module)
        except Exception as exc:  # not there yet, or broken: listed, never a silent pass
            absent = isinstance(exc, ModuleNotFoundError) and exc.name == module
            why = module if absent else f"{module} ({type(exc).__name__}: {exc})"
            if warn:
                log.warning("%s: its variants are skipped", why)
            missing.append(why)
            continue
        reader = formats.FORMATS.get(short)
        if reader is None or importlib.util.find_spec(reader) is None:
            if warn:
                log.warning("no reader %s for %s: its variants are skipped", reader, module)
            missing.append(reader or f"gaitedge.formats.{short}")
            continue
        for variant, fn in mod.VARIANTS.items():
            name = f"{short}-{variant}"  # as exports.variants() names it
            if not only or short in only or name in only:
                found[name] = (fn, short)
    return found, missing


def read_export(path: Path, expected: str) -> tuple[Recording, bool]:
    """``gaitedge.formats.read(path)``, the format detected, and True; while a reader module of
    another format is missing, detection cannot run: then read as ``expected``, and False."""
    try:
        return formats.read(path), True
    except ModuleNotFoundError as exc:
        if exc.name not in _WARNED:
            _WARNED.add(exc.name)
            log.warning("detection needs %s, which is missing: exports read as their own format "
                        "(--format) meanwhile", exc.name)  # fmt: skip
        return formats.read(path, format=expected), False


_WARNED: set[str] = set()


# --- read back ----------------------------------------------------------------------------------


def alignment_s(rec, t: np.ndarray, x: np.ndarray) -> float:
    """Where the read-back's first sample lies on the recording's clock: the shift that lines up
    its |acc| with the recording's best (|acc| is blind to axis order and sign, so a renderer
    that swaps axes is still placed right, and scored for the swap)."""
    pick = np.unique(np.linspace(0, len(t) - 1, min(len(t), ALIGN_POINTS)).astype(int))
    u, a = t[pick] - t[0], np.linalg.norm(x[pick, :3], axis=1)
    tc, acc = rec.timestamp_s, rec.imu[:, :3]

    def norm_at(v: np.ndarray) -> np.ndarray:  # |the recording's acc interpolated at v|
        return np.linalg.norm([np.interp(v, tc, acc[:, c]) for c in range(3)], axis=0)

    def best(shifts: np.ndarray) -> float:
        cost = [np.mean((norm_at(u + d) - a) ** 2) for d in shifts]
        return float(shifts[int(np.argmin(cost))])

    n = round(ALIGN_RANGE_S / ALIGN_COARSE_S)
    coarse = best(np.arange(-n, n + 1) * ALIGN_COARSE_S)
    m = round(ALIGN_COARSE_S / ALIGN_FINE_S)
    return best(coarse + np.arange(-m, m + 1) * ALIGN_FINE_S)


def labels_on_read_clock(rec, shift_s: float):
    """``rec`` with its per-sample labels moved onto the read-back's stream clock: stream time
    ``k / rate`` (0 = the read-back's first sample) is the recording's time ``k / rate +
    shift_s``, labelled as the recording's sample nearest to it (0, unlabelled, past its ends)."""
    if rec.sample_label is None or shift_s == 0:
        return rec
    n = len(rec.sample_label)
    src = np.rint(np.arange(n) + shift_s * rec.rate_hz).astype(int)
    ok = (src >= 0) & (src < n)
    label = np.zeros_like(rec.sample_label)
    label[ok] = rec.sample_label[src[ok]]
    return replace(rec, sample_label=label)


def signal_error(rec, t: np.ndarray, x: np.ndarray, shift_s: float) -> tuple[np.ndarray, int]:
    """Squared differences summed ([acc, gyro]) between the read-back and the recording at the
    read-back's instants inside the recording, and how many instants: units, signs, axes and
    gravity wrong show here before they show in any answer."""
    u = t - t[0] + shift_s
    inside = (u >= rec.timestamp_s[0]) & (u <= rec.timestamp_s[-1])
    ref = np.stack([np.interp(u[inside], rec.timestamp_s, rec.imu[:, c]) for c in range(6)], 1)
    d = (x[inside] - ref) ** 2  # [M, 6]
    return np.array([d[:, :3].sum(), d[:, 3:].sum()]), int(inside.sum())


@dataclass
class Rendered:
    """One variant's read-back of one dataset's recordings."""

    condition: ReadBack
    recs: list = field(default_factory=list)  # the recordings, labels on the read-back's clock
    parse_s: float = 0.0
    render_s: float = 0.0
    align_s: list[float] = field(default_factory=list)
    formats_seen: set[str] = field(default_factory=set)
    detected: bool = True  # False: read with --format while a reader detection needs is missing
    rates_hz: dict[str, list[float]] = field(default_factory=dict)
    square_error: np.ndarray = field(default_factory=lambda: np.zeros(2))  # [acc, gyro]
    n_compared: int = 0

    def rmse(self) -> dict[str, float]:
        acc, gyro = np.sqrt(self.square_error / max(3 * self.n_compared, 1))
        return {"acc_m_s2": round(float(acc), 5), "gyro_rad_s": round(float(gyro), 6)}


class VariantError(RuntimeError):
    """A variant that did not render or read one recording: which, and where it broke."""

    def __init__(self, name: str, rec, exc: Exception) -> None:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{os.path.relpath(frame.filename, REPO)}:{frame.lineno}"
        super().__init__(
            f"{rec.subject} {rec.dataset} recording {rec.group}: {type(exc).__name__}: {exc} "
            f"(at {where})"
        )


def read_back(name: str, renderer: Renderer, expected: str, recs: list, work: Path) -> Rendered:
    """Render each recording as ``name``, read it back and place it on the recording's clock."""
    out = Rendered(ReadBack(name))
    for rec in recs:
        folder = work / name / f"{rec.dataset}-{rec.group}"
        folder.mkdir(parents=True)
        t0 = time.perf_counter()
        try:
            path = renderer(Recording(rec.timestamp_s, rec.imu), folder)
            t1 = time.perf_counter()
            got, detected = read_export(path, expected)
        except Exception as exc:
            raise VariantError(name, rec, exc) from exc
        out.parse_s += time.perf_counter() - t1
        out.render_s += t1 - t0
        out.detected &= detected
        shutil.rmtree(folder)
        if got.source is not None:
            out.formats_seen.add(got.source.format)
            for sensor in got.source.sensors:
                out.rates_hz.setdefault(sensor.kind, []).append(sensor.rate_hz)
        t, x = got.timestamp_s, got.imu
        shift = 0.0 if name == CANONICAL else alignment_s(rec, t, x)
        out.condition.signals[rec.group] = (t, x)
        out.recs.append(labels_on_read_clock(rec, shift))
        out.align_s.append(shift)
        err, n = signal_error(rec, t, x, shift)
        out.square_error += err
        out.n_compared += n
    return out


# --- score --------------------------------------------------------------------------------------


def score(engine, name: str, renderer: Renderer, expected: str, data: HeldOut, work: Path) -> dict:
    """One variant's row: activity macro-F1, fall sensitivity and specificity, parse time."""
    t0 = time.perf_counter()
    rendered = {k: read_back(name, renderer, expected, recs, work)
                for k, recs in data.by_dataset().items() if recs}  # fmt: skip
    row: dict = {}
    if "hapt" in rendered:
        r = rendered["hapt"]
        row["activity_f1"] = round(activity_f1(engine, r.condition, r.recs, 0), 4)
    by_dataset = {}
    for key in ("sisfall", "mobifall"):
        if key in rendered:
            r = rendered[key]
            by_dataset[key] = trial_scores(engine, r.condition, r.recs)
    row |= _pooled(by_dataset)
    row["by_dataset"] = by_dataset
    row["parse_s"] = round(sum(r.parse_s for r in rendered.values()), 3)
    row["render_s"] = round(sum(r.render_s for r in rendered.values()), 3)
    row["align_s_max"] = round(max(abs(s) for r in rendered.values() for s in r.align_s), 4)
    row["mount_deg_max"] = {
        k: mount_deg_max(engine.contract.chain, r, data.by_dataset()[k])
        for k, r in rendered.items()
    }
    row["detected_as"] = sorted(set().union(*(r.formats_seen for r in rendered.values())))
    row["detected"] = all(r.detected for r in rendered.values())
    row["signal_rmse"] = {k: r.rmse() for k, r in rendered.items()}
    rates = next(iter(rendered.values())).rates_hz
    row["rates_hz"] = {k: round(float(np.median(v)), 1) for k, v in rates.items()}
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def trial_scores(engine, cond: ReadBack, recs: list) -> dict:
    """``bench.devices.fall_scores`` of the read-back: sensitivity and specificity (None where
    there are no such trials), without the latency (alert time on the read-back's clock, impact
    on the recording's: they differ by ``align_s``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of no trials
        out = fall_scores(engine, cond, recs, 0)
    out.pop("latency_p95_s")
    if not out["fall_trials"]:
        out["sensitivity"] = None
    if not out["adl_trials"]:
        out["specificity"] = None
    return out


def mount_deg_max(cfg, rendered: Rendered, recs: list) -> float | None:
    """The largest angle, over subjects, between the mounting calibrated from the read-back and
    from the recordings themselves (None: no subject has the walking to calibrate, or the chain
    has no automatic mounting). A drop with a large angle is the calibration's, not the file's."""
    if cfg.mounting != "auto":
        return None
    ours = ds.subject_estimates(cfg, recs)
    theirs = ds.subject_estimates(
        cfg, rendered.recs, render=lambda rec: rendered.condition.signals[rec.group]
    )
    angles = [
        rotation_angle_deg(theirs[s].rotation @ ours[s].rotation.T)
        for s in ours
        if ours[s].calibrated and theirs[s].calibrated
    ]
    return round(max(angles), 2) if angles else None


def _pooled(by_dataset: dict[str, dict]) -> dict:
    """Fall sensitivity and specificity over every dataset's trials together."""
    if not by_dataset:
        return {}
    n_fall = sum(d["fall_trials"] for d in by_dataset.values())
    n_adl = sum(d["adl_trials"] for d in by_dataset.values())
    hits = sum(
        round(d["sensitivity"] * d["fall_trials"]) for d in by_dataset.values() if d["fall_trials"]
    )
    quiet = sum(
        round(d["specificity"] * d["adl_trials"]) for d in by_dataset.values() if d["adl_trials"]
    )
    return {
        "fall_sensitivity": round(hits / n_fall, 4) if n_fall else None,
        "fall_specificity": round(quiet / n_adl, 4) if n_adl else None,
    }


def _drop(canon: dict, row: dict, key: str) -> float | None:
    if canon.get(key) is None or row.get(key) is None:
        return None
    return round(canon[key] - row[key], 4)


# --- parse speed --------------------------------------------------------------------------------

SENSOR_LOGGER_FILES = ("Accelerometer.csv", "TotalAcceleration.csv", "Gyroscope.csv")


def sensor_logger_export(hours: float, out: Path) -> tuple[Path, str]:
    """A Sensor Logger Android export of ``hours`` of HAPT as a folder, by the emulated app
    (its folder variant, or its zip unzipped), or, while the app is missing, written here in
    its documented layout. Returns (folder, how it was made)."""
    t, imu = hapt_signal(int(hours * 3600 * 50))
    rec = Recording(t, imu)
    out.mkdir(parents=True)
    try:
        app = importlib.import_module("firmware_bridge.exports.sensorlogger").VARIANTS
    except ModuleNotFoundError:
        log.warning(
            "firmware_bridge.exports.sensorlogger missing: Sensor Logger files written here"
        )
        return _write_sensor_logger(rec, out / "export"), "written by bench/formats.py"
    folder = [v for v in app if "android" in v and "zip" not in v]
    zipped = [v for v in app if "android" in v and "zip" in v]
    name = (folder or zipped or [None])[0]
    if name is None:
        raise SystemExit(f"sensorlogger has no Android variant ({', '.join(app)})")
    path = app[name](rec, out)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            z.extractall(out / "unzipped")
        path = _csv_folder(out / "unzipped")
    return path, f"sensorlogger-{name}"


def _csv_folder(root: Path) -> Path:
    """The folder in an unzipped export that holds its CSVs (a zip may wrap them in one)."""
    return next(p.parent for p in sorted(root.rglob("Gyroscope.csv")))


def _write_sensor_logger(rec: Recording, folder: Path) -> Path:
    """Accelerometer.csv (without gravity) and TotalAcceleration.csv at 100 Hz, Gyroscope.csv at
    400 Hz: ``time,seconds_elapsed,z,y,x``, epoch ns (the documented Android layout)."""
    from firmware_bridge.exports._common import gravity_split, resample

    folder.mkdir(parents=True)
    start_ns = 1_700_000_000_000_000_000
    linear, _ = gravity_split(rec.timestamp_s, rec.imu[:, :3])
    parts = {
        "Accelerometer.csv": resample(rec.timestamp_s, linear, 100.0),
        "TotalAcceleration.csv": resample(rec.timestamp_s, rec.imu[:, :3], 100.0),
        "Gyroscope.csv": resample(rec.timestamp_s, rec.imu[:, 3:], 400.0),
    }
    for name, (t, xyz) in parts.items():
        ns = start_ns + np.rint(t * 1e9).astype(np.int64)
        cols = np.column_stack([t, xyz[:, ::-1]])
        lines = [
            f"{a},{b!r},{z!r},{y!r},{x!r}"
            for a, (b, z, y, x) in zip(ns.tolist(), cols.tolist(), strict=True)
        ]
        (folder / name).write_text("time,seconds_elapsed,z,y,x\n" + "\n".join(lines) + "\n")
    return folder


def _best_of(n: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _peak_rss_mib(call: str) -> float:
    """How far a fresh process's resident memory peaks (``VmHWM``) above what it held before
    ``call`` (``VmRSS``); polars and pandas allocate outside Python's allocator, where
    tracemalloc does not look."""
    script = (
        f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
        "from pathlib import Path\nimport pandas as pd\nfrom bench.formats import read_export\n"
        "def kib(key):\n"
        "    line = next(x for x in open('/proc/self/status') if x.startswith(key))\n"
        "    return int(line.split()[1])\n"
        f"before = kib('VmRSS')\n{call}\nprint((kib('VmHWM') - before) / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return round(float(out.stdout.strip().splitlines()[-1]), 1)


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def parse_vs_pandas(hours: float, work: Path) -> dict:
    """``gaitedge.formats.read`` of a Sensor Logger export against pandas' ``read_csv`` of the
    same files (best of 5 interleaved rounds each), and each one's peak memory."""
    import pandas as pd

    folder, made_by = sensor_logger_export(hours, work / "sensorlogger")
    files = [folder / f for f in SENSOR_LOGGER_FILES if (folder / f).exists()]
    rec, _ = read_export(folder, "sensorlogger")
    used = sorted({s.where.replace(str(folder), "").lstrip("/:") for s in rec.source.sensors})
    # Interleaved rounds (one of each per round, best of 5 each): a slow spell of a shared
    # machine falls on both sides, not on one block of repeats.
    reads, pandas = [], []
    for _ in range(5):
        reads.append(_best_of(1, lambda: read_export(folder, "sensorlogger")))
        pandas.append(_best_of(1, lambda: [pd.read_csv(f) for f in files]))
    read_s, pandas_s = min(reads), min(pandas)
    return {
        "ratio": round(read_s / pandas_s, 3),
        "read_s": round(read_s, 3),
        "pandas_s": round(pandas_s, 3),
        "read_peak_rss_mib": _peak_rss_mib(f"read_export(Path({str(folder)!r}), 'sensorlogger')"),
        "pandas_peak_rss_mib": _peak_rss_mib(
            f"[pd.read_csv(f) for f in {[str(f) for f in files]!r}]"
        ),
        # The same export as replay, summarize and convert read it: streamed, block by block
        # (bounded however long the recording; the whole read grows with it).
        "stream_peak_rss_mib": _peak_rss_mib(
            f"from gaitedge.formats import open_chunks\n"
            f"for _ in open_chunks(Path({str(folder)!r})): pass"
        ),
        "files_mib": round(sum(f.stat().st_size for f in files) / 2**20, 1),
        "rows": {f.name: sum(1 for _ in f.open()) - 1 for f in files},
        "files_read_by_gaitedge": used,
        "hours": hours,
        "export": made_by,
        "versions": {"pandas": pd.__version__, "polars": _version("polars")},
    }


# --- the run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What every worker process loads: the bundle, the subset, the apps."""

    model: Path | None
    quick: bool
    only: frozenset[str] | None
    log_level: int = logging.WARNING
    # As `gaitedge replay` runs the shipped model: the shipped cold-start model beside a device
    # whose mounting calibrates (none for a --model given, as replay).
    cold_start: bool = True


_WORKER: dict = {}


def _start(plan: Plan) -> None:
    """A worker's engine, recordings and variants, loaded once per process."""
    logging.basicConfig(level=plan.log_level)
    variants, _ = available_variants(plan.only, warn=False)
    devices.COLD_START = _cold_start(plan)
    _WORKER.update(
        engine=load_engine(plan.model),
        data=held_out(data_root(), plan.quick),
        variants={CANONICAL: (canonical_csv, CANONICAL), **variants},
    )


def _cold_start(plan: Plan) -> Path | None:
    return cold_start_model() if plan.cold_start and plan.model is None else None


def _job(name: str) -> tuple[str, dict | None, str | None]:
    """(name, its row, None) or (name, None, why it failed): one broken variant must not hide
    the others (the canonical row must not fail)."""
    renderer, expected = _WORKER["variants"][name]
    with tempfile.TemporaryDirectory(prefix="bench-formats-") as tmp:
        try:
            row = score(_WORKER["engine"], name, renderer, expected, _WORKER["data"], Path(tmp))
        except Exception as exc:
            if name == CANONICAL:
                raise
            log.error("%s failed: %s", name, exc)
            return name, None, str(exc) if isinstance(exc, VariantError) else repr(exc)
    log.info("%s %s", name, row)
    return name, row, None


def run(
    model: Path | None,
    quick: bool,
    only: set[str] | None = None,
    jobs: int = 1,
    cold_start: bool = True,
) -> dict:
    """Every variant scored (``jobs`` processes), then the parse speed measured alone."""
    level = logging.getLogger().level
    plan = Plan(model, quick, frozenset(only) if only else None, level, cold_start)
    variants, missing = available_variants(plan.only)
    names = [CANONICAL, *variants]
    if jobs <= 1:
        _start(plan)
        results = [_job(n) for n in names]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start,
                                 initargs=(plan,)) as pool:  # fmt: skip
            results = list(pool.map(_job, names))
    rows = {name: row for name, row, _ in results if row is not None}
    failed = {name: why for name, _, why in results if why is not None}
    parse = None
    if only is None or any(o.split("-")[0] == "sensorlogger" for o in only):
        with tempfile.TemporaryDirectory(prefix="bench-formats-") as tmp:
            try:
                parse = parse_vs_pandas(0.05 if quick else 1.0, Path(tmp))
            except ModuleNotFoundError as exc:
                log.warning("parse_vs_pandas not measured: %s", exc)
                missing.append(f"parse_vs_pandas: {exc.name}")
            except Exception as exc:  # the figures above must still be printed
                log.error("parse_vs_pandas failed: %s", exc)
                failed["parse_vs_pandas"] = f"{type(exc).__name__}: {exc}"
    engine = load_engine(model)
    data = held_out(data_root(), quick)
    result = _summary(engine, data, rows, missing, failed, parse)
    cold = _cold_start(plan)
    return result | {
        "quick": quick,
        "only": sorted(only) if only else None,
        "jobs": jobs,
        "cold_start_model": cold.name if cold is not None else None,
    }


def _summary(engine, data, rows, missing, failed, parse) -> dict:
    canon = rows.pop(CANONICAL)
    keys = ("activity_f1", "fall_sensitivity", "fall_specificity")
    for row in rows.values():
        for k in keys:
            row[f"{k}_drop"] = _drop(canon, row, k)

    def worst(key: str) -> float | None:
        drops = [r[key] for r in rows.values() if r.get(key) is not None]
        return max(drops) if drops else None

    by_dataset_drops = [
        round(canon["by_dataset"][k]["sensitivity"] - r["by_dataset"][k]["sensitivity"], 4)
        for r in rows.values() for k in r["by_dataset"] if r["by_dataset"][k]["fall_trials"]
    ]  # fmt: skip
    return {
        "formats": rows,
        "worst_activity_f1_drop": worst("activity_f1_drop"),
        "worst_fall_sensitivity_drop": worst("fall_sensitivity_drop"),
        "worst_fall_sensitivity_drop_by_dataset": max(by_dataset_drops, default=None),
        "worst_fall_specificity_drop": worst("fall_specificity_drop"),
        "parse_vs_pandas": parse["ratio"] if parse else None,
        "parse": parse,
        "canonical": canon,
        "missing": missing,
        "failed": failed,
        "not_rendered": not_rendered(),
        "complete": not missing and not failed,
        "model": engine.contract.name,
        "model_version": engine.contract.model_version,
        "recordings": {
            k: {
                "n": len(v),
                "hours": round(sum(len(r.imu) / r.rate_hz for r in v) / 3600, 3),
                "subjects": sorted({r.subject for r in v}),
            }
            for k, v in data.by_dataset().items()
        },
        "machine": _machine(),
    }


def not_rendered() -> list[str]:
    """Readers with no emulated app to render for them (``csv``: any CSV through a layout; a
    sensor without a gyroscope, refused): not measured here."""
    apps = {m.rsplit(".", 1)[1] for m in exports.MODULES}
    return [name for name in formats.FORMATS if name != CANONICAL and name not in apps]


def _machine() -> str:
    import onnxruntime

    gpu = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    return f"{os.cpu_count()} cores, {'a GPU (unused: replay runs on CPU)' if gpu else 'no GPU'}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=None, help="bundle (default: the shipped one)")
    p.add_argument("--quick", action="store_true", help="a few recordings, a 3-minute export")
    p.add_argument(
        "--only", default=None, help="comma-separated apps or variants (sensorlogger,phyphox-...)"
    )
    p.add_argument("--jobs", type=int, default=os.cpu_count(), help="processes (default: cores)")
    p.add_argument(
        "--no-cold-start",
        action="store_true",
        help="the default model alone (no cold-start model beside a calibrating device)",
    )
    p.add_argument("--json", action="store_true", help="only the JSON line")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO)
    only = set(args.only.split(",")) if args.only else None
    result = run(args.model, args.quick, only, args.jobs, not args.no_cold_start)
    if not args.json:
        for name, row in result["formats"].items():
            print(name, row)
    for what in result["missing"]:
        log.warning("missing: %s", what)
    for name, why in result["failed"].items():
        log.warning("failed: %s: %s", name, why)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
