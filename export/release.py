"""Build the shipped model: export, quantise, check and score every artifact, pick one, ship it.

    python -m export.release --student runs/student/student.pt \
        --teacher runs/default/finetune/checkpoint.pt \
        --out runs/release --ship gaitedge/models/gaitedge-default.onnx

Steps (each a library call; figures go to ``<out>/release.json``):

1. the student checkpoint -> ONNX FP32 bundle (``export.onnx``: checker + parity vs PyTorch);
   the teacher too, when given, so its held-out figures sit next to the student's;
2. FP32 -> INT8 static QDQ (calibrated on training-subject windows), INT8 dynamic, FP16
   (``export.quantize``), each compared with FP32 on held-out windows (``export.parity``);
3. every artifact scored through ``gaitedge.evaluate`` (no torch) on the validation subjects
   (``validation``: drawn from the training side of each split, for choices) and on the held-out
   test subjects (``held_out``: scored once, for the card);
4. the shipped artifact, chosen on the validation figures alone: INT8 static when its HAPT
   macro-F1 is within 1 point of FP32 and its SisFall macro-F1, sensitivity and specificity are no
   worse than 1 point below, else FP32; its held-out figures and parity are written into its
   contract's ``metrics`` and it is copied to ``--ship``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import onnx
import torch

from export import model_card
from export.flops import count_cost
from export.onnx import contract_from_checkpoint, export_onnx, load_for_export, save_bundle
from export.parity import ArtifactKind, compare_artifacts, held_out_scores, real_windows
from export.quantize import convert_fp16, quantize_int8_dynamic, quantize_int8_static
from gaitedge import datasets as ds
from gaitedge.bundle import read_contract
from gaitedge.entry import run

log = logging.getLogger(__name__)

STREAMING_HOP_SAMPLES = 10  # 0.2 s between decisions (fall alert p95 <= 1 s); training: every 64
MAX_DROP = 0.01  # INT8 may lose at most 1 point against FP32
CHOSEN_ON = "validation subjects (training side of each split); test subjects only scored"


def training_record(ckpt: dict, root: Path) -> dict:
    """What the bundle says about its training: data, held-out subjects, teacher, student."""
    hapt, sisfall = ds.hapt_split(root), ds.sisfall_split(root)
    distill = ckpt.get("distill_config", {})
    return {
        "datasets": {
            "hapt": {
                "licence": "CC BY 4.0",
                "description": "UCI HAPT raw waist smartphone IMU, 6 basic activities",
                "split": hapt.description,
                "val_subjects": list(hapt.val),
                "test_subjects": list(hapt.test),
            },
            "sisfall": {
                "licence": "research use (not redistributed)",
                "description": "SisFall waist IMU (ADXL345 + ITG3200), falls and ADLs",
                "split": sisfall.description,
                "val_subjects": list(sisfall.val),
                "test_subjects": list(sisfall.test),
            },
        },
        "window_labels": "HAPT: label covering >= 50 % of the window; SisFall: impact (peak "
        "|acc|) in the window's central half = fall, windows before it = no_fall",
        "training_hop_samples": 64,
        "render_rates_hz": ckpt.get("render_rates_hz"),
        "augmentation": {
            k: distill.get(k)
            for k in ("rotate_max_deg", "scale_fraction", "jitter_std", "spin_deg")
            if k != "spin_deg" or k in distill  # heading spin: "vertical" students
        },
        "teacher": {
            "checkpoint": ckpt.get("teacher"),
            "model_config": ckpt.get("teacher_model_config"),
        },
        "student": {"architecture": "1-D CNN (export.student)", **ckpt.get("student_config", {})},
        "distillation": distill if ckpt.get("teacher") else None,
        "train_config": ckpt.get("train_config"),  # steps, batch, LR schedule (train.engine.fit)
        "student_training": "distilled (soft targets on both heads + labels)"
        if ckpt.get("teacher")
        else "trained on the labels alone (no teacher)",
    }


def build_artifacts(
    student_ckpt: Path, out: Path, root: Path, version: str, name: str
) -> dict[str, Path]:
    """Export FP32 and its quantised variants into ``out``; returns kind -> path."""
    model, ckpt = load_for_export(student_ckpt)
    contract = contract_from_checkpoint(
        ckpt, name=name, version=version, hop_samples=STREAMING_HOP_SAMPLES,
        training=training_record(ckpt, root), metrics={},
    )  # fmt: skip
    held_out = real_windows(contract, root, n=1024)
    paths = {"fp32": out / "model.fp32.onnx"}
    export_onnx(model, contract, paths["fp32"], held_out)
    calib = real_windows(contract, root, n=2048, part="train", max_subjects=10)
    paths["int8"] = quantize_int8_static(paths["fp32"], out / "model.int8.onnx", calib)
    paths["int8_dynamic"] = quantize_int8_dynamic(paths["fp32"], out / "model.int8dyn.onnx")
    paths["fp16"] = convert_fp16(paths["fp32"], out / "model.fp16.onnx")
    return paths


def score_artifacts(paths: dict[str, Path], root: Path) -> dict[str, dict]:
    """Parity against FP32, validation figures (for the choice) and held-out test figures (for
    the card) of every artifact."""
    contract = read_contract(paths["fp32"])
    windows = real_windows(contract, root, n=2048, seed=1)
    kinds = {"fp32": ArtifactKind.FP32, "int8": ArtifactKind.INT8,
             "int8_dynamic": ArtifactKind.INT8, "fp16": ArtifactKind.FP16}  # fmt: skip
    report = {}
    for key, path in paths.items():
        report[key] = {
            "path": str(path),
            "bytes": path.stat().st_size,
            "parity_vs_fp32": compare_artifacts(paths["fp32"], path, windows, kinds[key]),
            "validation": held_out_scores(path, root, part="val"),
            "held_out": held_out_scores(path, root),
        }
        log.info("%s: %s", key, json.dumps(report[key]["held_out"]))
    return report


def int8_is_good_enough(report: dict) -> bool:
    """INT8 within 1 point of FP32 on every validation figure (test figures play no part)."""
    fp32, int8 = report["fp32"]["validation"], report["int8"]["validation"]
    checks = [("hapt", "macro_f1"), ("sisfall", "macro_f1"), ("sisfall", "sensitivity"),
              ("sisfall", "specificity")]  # fmt: skip
    return all(int8[d][k] >= fp32[d][k] - MAX_DROP for d, k in checks if d in fp32)


def ship(report: dict, kind: str, dest: Path, teacher_scores: dict | None) -> Path:
    """Write the held-out figures into the chosen artifact's contract and copy it to ``dest``;
    an INT8 choice also ships its FP32 reference as ``<dest stem>-fp32.onnx`` (the baseline
    that ``bench/engine.py`` times it against)."""
    if kind != "fp32":
        ship(report, "fp32", dest.with_name(f"{dest.stem}-fp32.onnx"), teacher_scores)
    path = Path(report[kind]["path"])
    contract = read_contract(path)
    metrics = {
        **report[kind]["held_out"],
        "parity_vs_fp32": {k: report[kind]["parity_vs_fp32"][k]
                           for k in ("max_abs_diff", "argmax_agreement", "n_windows")},
        "fp32_held_out": report["fp32"]["held_out"],
        "validation": report[kind]["validation"],
        "fp32_validation": report["fp32"]["validation"],
        "chosen_on": CHOSEN_ON,
        "teacher_held_out": teacher_scores,
        "evaluated_with": "gaitedge evaluate (bundle chain, hop as in the contract, ONNX Runtime)",
    }  # fmt: skip
    save_bundle(onnx.load(str(path)), replace(contract, metrics=metrics), dest)
    return dest


def compared_variants(specs: list[str], part: str = "held_out") -> dict:
    """``NAME=path/to/release.json`` -> {NAME: that release's INT8 figures}: ``held_out`` (test
    subjects, for the card) or ``validation`` (what students are compared on; None in releases
    made before there were validation subjects)."""
    out = {}
    for spec in specs:
        name, _, path = spec.rpartition("=")
        out[name] = json.loads(Path(path).read_text())["int8"].get(part)
    return out


def write_card(report: dict, shipped: Path, devices: dict | None = None) -> Path:
    """The card next to the shipped bundle (``model_card.card_name``), with its latency
    measured now."""
    from bench.engine import measure

    fp32 = shipped.with_name(f"{shipped.stem}-fp32.onnx")
    bench = None
    if report["chosen"] != "fp32":
        bench = measure(shipped, fp32, blocks=10, per_block=500)
        cost = count_cost(fp32)
        bench |= {"params": cost.params, "mflops": round(cost.mflops, 3)}
    contract = read_contract(shipped)
    card = shipped.parent / model_card.card_name(contract)
    return model_card.write(card, report, contract, bench, devices)


def teacher_scores(teacher_ckpt: Path | None, out: Path, root: Path) -> dict | None:
    """Held-out figures of the teacher, exported to ONNX the same way (streaming hop too)."""
    if teacher_ckpt is None:
        return None
    model, ckpt = load_for_export(teacher_ckpt)
    contract = contract_from_checkpoint(
        ckpt, name="teacher", hop_samples=STREAMING_HOP_SAMPLES,
        training=training_record({}, root), metrics={},
    )  # fmt: skip
    path = out / "teacher.fp32.onnx"
    export_onnx(model, contract, path, real_windows(contract, root, n=256))
    return held_out_scores(path, root)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m export.release", description=__doc__.split("\n")[0])
    p.add_argument("--student", type=Path, required=True)
    p.add_argument("--teacher", type=Path, default=None)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--ship", type=Path, default=None)
    p.add_argument("--data-root", type=Path, default=None)
    p.add_argument("--version", default="0.1.0")
    p.add_argument("--name", default="gaitedge-default")
    p.add_argument(
        "--devices", type=Path, default=None,
        help="bench/devices.py --json output (its last line) for the card's mounting/rate table",
    )  # fmt: skip
    p.add_argument(
        "--card-only", action="store_true",
        help="only rewrite the card of the bundle at --ship from <out>/release.json",
    )  # fmt: skip
    p.add_argument(
        "--compare", nargs="*", default=[], metavar="NAME=RELEASE_JSON",
        help="other students' release.json, listed in the model card",
    )  # fmt: skip
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    root = args.data_root or ds.default_data_root()
    args.out.mkdir(parents=True, exist_ok=True)
    devices = None
    if args.devices is not None:
        devices = json.loads(args.devices.read_text().strip().splitlines()[-1])
    if args.card_only:
        report = json.loads((args.out / "release.json").read_text())
        write_card(report, args.ship, devices)
        return
    variants = compared_variants(args.compare)  # fail early on a bad path
    paths = build_artifacts(args.student, args.out, root, args.version, args.name)
    report = score_artifacts(paths, root)
    report["teacher_held_out"] = teacher_scores(args.teacher, args.out, root)
    report["chosen"] = "int8" if int8_is_good_enough(report) else "fp32"
    report["chosen_on"] = CHOSEN_ON
    report["variants"] = variants
    report["variants_validation"] = compared_variants(args.compare, "validation")
    # The report first: a card that fails to render is rewritten from it (--card-only).
    (args.out / "release.json").write_text(json.dumps(report, indent=2))
    if args.ship is not None:
        ship(report, report["chosen"], args.ship, report["teacher_held_out"])
        shutil.copy(args.student, args.out / "student.pt")
        write_card(report, args.ship, devices)
    print(json.dumps({k: v["held_out"] for k, v in report.items() if isinstance(v, dict)
                      and "held_out" in v} | {"chosen": report["chosen"]}))  # fmt: skip


if __name__ == "__main__":
    run(main)
