"""The training commands' bad input: one line naming what is wrong, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from gaitedge.entry import run
from train.config import TrainConfig
from train.pretrain import main as pretrain


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # Before: --max-steps 0 read as "no limit" (a full 390-step run), --epochs -1 as one
        # step, --batch-size 0 a ValueError traceback, --lr nan taken.
        (["--max-steps", "0"], "argument --max-steps: must be at least 1, not 0"),
        (["--epochs", "-1"], "argument --epochs: must be a positive number, not -1"),
        (["--batch-size", "0"], "argument --batch-size: must be at least 1, not 0"),
        (["--lr", "nan"], "argument --lr: must be a positive number, not nan"),
        (["--warmup-steps", "-5"], "argument --warmup-steps: must be at least 0, not -5"),
    ],
)
def test_a_number_no_option_can_take_is_refused(tmp_path, capsys, args, message) -> None:
    with pytest.raises(SystemExit) as exit_:
        pretrain(["--data", "hapt", "--out", str(tmp_path / "out"), *args])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(message)
    assert not (tmp_path / "out").exists()


def test_the_library_refuses_them_too() -> None:
    with pytest.raises(ValueError, match="max_steps >= 1"):
        TrainConfig(max_steps=0)
    with pytest.raises(ValueError, match="epochs > 0"):
        TrainConfig(epochs=float("nan"))


def test_data_that_is_not_there_is_one_line(tmp_path, capsys) -> None:
    # Before: a FileNotFoundError traceback for a --data name that is neither a shared dataset
    # nor a folder of recordings under --data-root.
    argv = ["--data", "nosuch", "--data-root", str(tmp_path), "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit_:
        run(lambda: pretrain(argv))
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: no recording CSVs in {Path(tmp_path) / 'nosuch'}"]


@pytest.fixture(scope="module")
def not_checkpoints(tmp_path_factory) -> dict[str, Path]:
    import torch

    d = tmp_path_factory.mktemp("ckpt")
    (d / "junk.pt").write_bytes(bytes(range(256)) * 4)
    torch.save({"weights": [1, 2, 3]}, d / "other.pt")
    torch.save({"state_dict": {}}, d / "student_less.pt")
    return {"dir": d}


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("nosuch.pt", "No such file or directory"),
        ("junk.pt", "junk.pt: not a checkpoint torch can load (UnpicklingError"),
        ("other.pt", "other.pt: not a gaitedge checkpoint (no state_dict in it)"),
        ("student_less.pt", "student_less.pt: not a checkpoint of train.pretrain or"),
    ],
)
def test_evaluate_of_what_is_no_checkpoint_is_one_line(not_checkpoints, capsys, name, says):
    # Each was a traceback: FileNotFoundError, UnpicklingError/MemoryError, KeyError.
    from train.evaluate import main as evaluate

    path = not_checkpoints["dir"] / name
    with pytest.raises(SystemExit) as exit_:
        run(lambda: evaluate(["--checkpoint", str(path)]))
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and says in err[0], err


def test_finetune_from_what_is_no_pretrained_checkpoint_is_one_line(not_checkpoints, capsys):
    from train.finetune import main as finetune

    path = not_checkpoints["dir"] / "student_less.pt"
    argv = ["--from", str(path), "--out", str(not_checkpoints["dir"] / "ft"), "--max-steps", "1"]
    with pytest.raises(SystemExit) as exit_:
        run(lambda: finetune(argv))
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {path}: not a train.pretrain checkpoint (no chain or split)"]


def test_the_report_scripts_name_what_is_not_there(tmp_path, capsys) -> None:
    """recipe_report of a folder with no recipe run, and coldstart of a model not there, were
    tracebacks."""
    from train.coldstart import main as coldstart
    from train.recipe_report import main as recipe_report

    missing = tmp_path / "nosuch.onnx"
    cases = [
        (lambda: recipe_report(["--out", str(tmp_path)]), f"{tmp_path}: no recipe run here"),
        (lambda: coldstart(["--model", str(missing)]), f"{missing}: no such model file"),
    ]
    for call, says in cases:
        with pytest.raises(SystemExit) as exit_:
            run(call)
        assert exit_.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {says}"), err


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("train.evaluate", ["--fall-threshold", "2"], "must be a probability from 0 to 1, not 2"),
        ("train.coldstart", ["--mountings", "0"], "must be at least 1, not 0"),
    ],
)
def test_the_report_scripts_refuse_numbers_they_cannot_take(
    tmp_path, capsys, script, args, message
):
    import importlib

    main = importlib.import_module(script).main
    first = ["--checkpoint", "x.pt"] if script == "train.evaluate" else ["--model", "x.onnx"]
    with pytest.raises(SystemExit) as exit_:
        main([*first, *args])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(message)
