"""The model card is written from the release report: every figure in it comes from there."""

from __future__ import annotations

from export.model_card import render
from export.release import int8_is_good_enough
from gaitedge import datasets as ds
from gaitedge.evaluate import held_out_subjects
from tests.bundles import tiny_contract


def _entry(hapt: float, spec: float) -> dict:
    return {
        "bytes": 81920,
        "parity_vs_fp32": {"max_abs_diff": 0.12, "argmax_agreement": 0.987},
        "held_out": {
            "hapt": {"macro_f1": hapt, "per_class_f1": {"SITTING": 0.81, "STANDING": 0.86}},
            "sisfall": {"macro_f1": 0.98, "sensitivity": 0.996, "specificity": spec,
                        "peak_window_sensitivity": 0.98, "peak_window_specificity": 0.99},
        },
    }  # fmt: skip


def test_card_carries_the_measured_figures():
    report = {k: _entry(0.951, 0.977) for k in ("fp32", "int8", "int8_dynamic", "fp16")}
    report |= {"chosen": "int8", "teacher_held_out": {"hapt": {"macro_f1": 0.913}}}
    report["variants"] = {"labels only": report["int8"]["held_out"]}
    bench = {"int8_p50_ms": 0.03, "int8_p99_ms": 0.06, "fp32_p50_ms": 0.06, "fp32_p99_ms": 0.09,
             "int8_speedup": 2.0, "params": 51624, "mflops": 3.58}  # fmt: skip
    card = render(report, tiny_contract(), bench)
    assert "| int8 | 80 KiB | 0.951 | 0.98 | 0.996 | 0.977 | 0.98 / 0.99 | 0.12 / 0.987 |" in card
    assert "| teacher (MAE, FP32) | - | 0.913 |" in card
    assert "INT8 p50 0.03 ms / p99 0.06 ms" in card and "51624 parameters" in card
    assert "| labels only | 0.951 | 0.81 / 0.86 | 0.996 / 0.977 |" in card
    flat = " ".join(card.split())
    assert "hapt:2, hapt:4" in flat and "CC BY 4.0" in flat
    assert "No SisFall data ships in this package" in flat
    assert "No validation figures in this release" in flat  # this report has none


def test_card_says_how_the_choice_was_made_on_validation_subjects():
    report = {k: _entry(0.951, 0.977) for k in ("fp32", "int8", "int8_dynamic", "fp16")}
    report["chosen"] = "int8"
    for kind, hapt in (("fp32", 0.9431), ("int8", 0.9407)):
        report[kind]["validation"] = _entry(hapt, 0.9612)["held_out"]
    contract = tiny_contract()
    contract.training["datasets"]["hapt"]["val_subjects"] = ["hapt:5", "hapt:14"]
    card = render(report, contract)
    assert "| INT8 | 0.9407 | 0.9960 | 0.9612 | 0.9800 | 0.9900 |" in card
    assert "| FP32 | 0.9431 |" in card
    flat = " ".join(card.split())
    assert "(HAPT hapt:5, hapt:14;" in flat and "chosen: INT8" in flat


def test_int8_choice_is_made_on_validation_subjects_alone():
    """The test figures play no part: INT8 worse on test but fine on validation is chosen, and
    INT8 fine on test but 2 points worse on validation is not."""
    fp32 = {"hapt": {"macro_f1": 0.95}, "sisfall": {"macro_f1": 0.98, "sensitivity": 0.99,
                                                     "specificity": 0.99}}  # fmt: skip
    worse = {"hapt": {"macro_f1": 0.93}, "sisfall": fp32["sisfall"]}
    report = {"fp32": {"validation": fp32, "held_out": fp32},
              "int8": {"validation": fp32, "held_out": worse}}  # fmt: skip
    assert int8_is_good_enough(report)
    report["int8"] = {"validation": worse, "held_out": fp32}
    assert not int8_is_good_enough(report)


def test_val_subjects_of_a_bundle_exclude_its_test_subjects(data_root, hapt_dir):
    contract = tiny_contract()  # records test subjects hapt:2, hapt:4
    val = held_out_subjects(contract, "hapt", data_root, "val")
    test = held_out_subjects(contract, "hapt", data_root, "test")
    train = held_out_subjects(contract, "hapt", data_root, "train")
    assert val == list(ds.hapt_split(data_root).val) and test == ["hapt:2", "hapt:4"]
    assert not set(train) & (set(val) | set(test)) and len(train) == 30 - 4 - 2


def test_card_says_how_the_students_were_compared():
    report = {k: _entry(0.951, 0.977) for k in ("fp32", "int8", "int8_dynamic", "fp16")}
    report |= {"chosen": "int8", "variants": {"labels only": report["int8"]["held_out"]}}
    flat = " ".join(render(report, tiny_contract()).split())
    assert "mild selection on the test subjects" in flat
    report["variants_validation"] = {"labels only": report["int8"]["held_out"]}
    flat = " ".join(render(report, tiny_contract()).split())
    assert "compared on their validation subjects" in flat and "mild selection" not in flat
