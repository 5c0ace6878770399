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
