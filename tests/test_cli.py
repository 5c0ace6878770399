"""The CLI: in-process with CliRunner, and the console script once as a real subprocess."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from gaitedge.cli import app
from gaitedge.recording import Recording, write_recording

runner = CliRunner()


def test_help_does_not_import_torch_or_tensorrt():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from gaitedge.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "bad = [m for m in ('torch', 'tensorrt') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_and_version_stay_light():
    """``--help`` and ``--version`` import neither numpy, scipy, onnxruntime nor rich."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from gaitedge.cli import app\n"
        "for args in (['--help'], ['--version']):\n"
        "    r = CliRunner().invoke(app, args)\n"
        "    assert r.exit_code == 0, r.output\n"
        "heavy = ('numpy', 'scipy', 'onnxruntime', 'rich', 'serial', 'bleak')\n"
        "bad = [m for m in heavy if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_shows_flags_without_a_value():
    top = runner.invoke(app, ["--help"])
    replay = runner.invoke(app, ["replay", "--help"])
    assert re.search(r"--help +Show this message", top.output)
    assert "<bool>" not in top.output + replay.output
    assert "--fast " in replay.output and "--speed <float>" in replay.output


def test_version_is_one_line():
    from gaitedge import __version__

    for args in (["--version"], ["version"]):  # and the shipped model's (tests/test_version.py)
        out = runner.invoke(app, args).output
        assert out.startswith(f"gaitedge {__version__} (model ") and out.count("\n") == 1


def test_evaluate_refuses_an_unknown_dataset_before_loading_anything():
    result = runner.invoke(app, ["evaluate", "--dataset", "mnist"])
    assert result.exit_code == 2
    assert "'mnist' is not one of hapt, sisfall" in result.output


def test_console_script_runs_as_a_subprocess():
    exe = __import__("shutil").which("gaitedge") or str(
        __import__("pathlib").Path(sys.executable).with_name("gaitedge")
    )
    done = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True)
    assert "inspect" in done.stdout


def _recording(tmp_path):
    t = np.arange(600) / 50.0
    x = np.column_stack([np.sin(t), np.cos(t), 9.8 + 0 * t, 0 * t, 0 * t, 0.1 + 0 * t])
    path = tmp_path / "r.csv"
    write_recording(path, Recording(t, x))
    return path


def test_inspect_prints_a_summary(tmp_path):
    result = runner.invoke(app, ["inspect", str(_recording(tmp_path))])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["samples"] == 600


def test_windows_writes_the_chain_output(tmp_path):
    out = tmp_path / "w.npz"
    result = runner.invoke(app, ["windows", str(_recording(tmp_path)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with np.load(out) as d:
        assert d["data"].shape == (8, 128, 9)


def test_malformed_recording_is_a_clear_error_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z\n0,1,2,3,4,5\n")
    result = runner.invoke(app, ["inspect", str(bad)])
    assert result.exit_code == 2
    assert "bad.csv:2: expected 7 fields" in result.output
    assert "Traceback" not in result.output


def test_a_replay_that_makes_no_window_says_why(tmp_path):
    """The shipped demo recording (real HAPT) with its stamps in ms written as seconds, and
    cut to one sample: replay makes no window and says why in one line (it said the mounting
    had seen 0 s of walking)."""
    from gaitedge.demo import DEMO_RECORDING
    from gaitedge.recording import read_recording

    demo = read_recording(DEMO_RECORDING)
    cases = {
        "ms.csv": (demo.timestamp_s * 1000.0, demo.imu, "a time column in ms read as seconds"),
        "one.csv": (demo.timestamp_s[:1], demo.imu[:1], "span less than one window"),
    }
    for name, (t, x, why) in cases.items():
        path = tmp_path / name
        write_recording(path, Recording(t, x))
        result = runner.invoke(app, ["replay", "--fast", str(path)])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout.strip().splitlines()[-1])["windows"] == 0
        lines = [ln for ln in result.stderr.splitlines() if "no window was made" in ln]
        assert len(lines) == 1 and why in lines[0], result.stderr
        assert "mounting" not in result.stderr, result.stderr


def test_windows_refuses_an_unwritable_out_and_a_bad_chain_in_one_line(tmp_path):
    """`windows` with --out where nothing can be written, or a --chain that is not a chain
    configuration: one line, exit 2 (an OSError traceback before)."""
    recording = _recording(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")
    bad_chain = tmp_path / "chain.json"
    bad_chain.write_text('{"window_samples": 64, "bogus": 1}')
    cases = [
        (["--out", str(blocker / "w.npz")], "cannot write"),
        (["--out", str(tmp_path / "w.npz"), "--chain", str(bad_chain)], "bogus"),
    ]
    for args, says in cases:
        result = runner.invoke(app, ["windows", str(recording), *args])
        assert result.exit_code == 2, result.output
        line = result.output.strip()
        assert line.count("\n") == 0 and line.startswith("error: ") and says in line, line


def test_a_replay_slower_than_20_hz_says_so(tmp_path):
    """The shipped demo recording at 10 Hz (every fifth sample): replay goes on and says the
    model saw it interpolated, at a rate its figures do not hold for (it said nothing); at
    25 Hz nothing is said."""
    from gaitedge.demo import DEMO_RECORDING
    from gaitedge.recording import read_recording

    demo = read_recording(DEMO_RECORDING)
    for every, said in ((5, True), (2, False)):
        path = tmp_path / f"every{every}.csv"
        write_recording(path, Recording(demo.timestamp_s[::every], demo.imu[::every]))
        result = runner.invoke(app, ["replay", "--fast", str(path)])
        assert result.exit_code == 0, result.output
        lines = [ln for ln in result.stderr.splitlines() if "below 20 Hz" in ln]
        assert len(lines) == int(said), result.stderr
        assert not said or "its samples come at 10 Hz" in lines[0], lines


def test_windows_writes_the_path_it_names(tmp_path):
    """`--out` is the file written, whatever its name: a name without .npz is written as given
    (numpy wrote NAME.npz beside it and the line named the file not written), and a folder is
    refused (it wrote FOLDER.npz, exit 0)."""
    recording = _recording(tmp_path)
    out = tmp_path / "windows_of_walk"
    result = runner.invoke(app, ["windows", str(recording), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"-> {out}")
    with np.load(out) as d:
        assert d["data"].shape == (8, 128, 9)
    assert not out.with_suffix(".npz").exists()
    folder = tmp_path / "folder"
    folder.mkdir()
    result = runner.invoke(app, ["windows", str(recording), "--out", str(folder)])
    assert result.exit_code == 2 and "is a directory" in result.output, result.output
    assert not folder.with_suffix(".npz").exists()


def test_a_recording_file_that_cannot_be_written_is_named(tmp_path):
    """`listen --record FOLDER`: one line naming the recording file (it was the bare OSError,
    "[Errno 21] Is a directory: 'FOLDER'")."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    result = runner.invoke(
        app, ["listen", "--serial", "/dev/null", "--record", str(folder), "--duration", "1"]
    )
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"error: recording file {folder}: cannot write: Is a directory"


def test_bench_refuses_chunks_of_no_samples():
    """`bench --chunk-samples 0` was a ZeroDivisionError traceback (measure_live's frames)."""
    from gaitedge.runner import measure_live

    result = runner.invoke(app, ["bench", "--chunk-samples", "0"])
    assert result.exit_code == 2, result.output
    assert "--chunk-samples" in result.output and "Traceback" not in result.output
    with pytest.raises(ValueError, match="chunk_samples and devices must be >= 1"):
        measure_live(None, np.zeros(3), np.zeros((3, 6)), chunk_samples=0)


@pytest.mark.parametrize("case", ["too-short", "in-g"])
def test_bench_of_a_recording_it_cannot_time_is_one_line(tmp_path, case):
    """A recording that makes no window printed `NaN` latencies (not JSON) and a sensors-per-core
    figure of nothing, exit 0; data in g was a traceback: one line, exit 2."""
    from gaitedge.demo import DEMO_RECORDING
    from gaitedge.recording import read_recording

    rec = read_recording(DEMO_RECORDING)
    path = tmp_path / f"{case}.csv"
    if case == "too-short":
        write_recording(path, Recording(rec.timestamp_s[:90], rec.imu[:90]))
        says = f"error: {path}: no window was made of its 90 samples (1.8 s): nothing to time"
    else:
        imu = rec.imu.copy()
        imu[:, :3] /= 9.80665
        write_recording(path, Recording(rec.timestamp_s, imu))
        says = "error: bench: median |acceleration| is 1.0"
    result = runner.invoke(app, ["bench", str(path)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.strip().startswith(says), result.stderr
    assert "NaN" not in result.stdout


def test_bench_times_an_accelerometer_only_export_on_its_model(wild_exports):
    """`replay` runs an export without a gyroscope on the accelerometer-only bundle; `bench`
    refused it (the model needs both)."""
    folder = wild_exports / "metabase_ios-gait-lowback-acconly"
    result = runner.invoke(app, ["bench", str(folder)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["windows"] > 100 and report["sensors_per_core"] > 1


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"channels": []}, "channels is empty"),
        ({"window_samples": 128.5}, "window_samples must be a whole number, not 128.5"),
        ({"lowpass_order": -3}, "lowpass_order must be from 1 to 10, not -3"),
        ({"lowpass_order": 0}, "lowpass_order must be from 1 to 10, not 0"),
        ({"gravity_order": True}, "gravity_order must be a whole number, not True"),
        ({"sample_rate_hz": "50"}, "sample_rate_hz must be a positive number, not '50'"),
    ],
    ids=["no-channels", "half-sample", "negative-order", "order-0", "bool-order", "text-rate"],
)
def test_windows_refuses_a_chain_it_cannot_run_in_one_line(tmp_path, config, says):
    """Chain files that loaded and then failed deep in numpy or scipy (tracebacks, exit 1), or
    ran a filter of order 0 silently: ChainConfig refuses them, `windows --chain` in one line."""
    from gaitedge.demo import DEMO_RECORDING
    from gaitedge.preprocess import ChainConfig

    with pytest.raises(ValueError, match=re.escape(says)):
        ChainConfig(**config)
    chain = tmp_path / "chain.json"
    chain.write_text(json.dumps(config))
    args = ["windows", str(DEMO_RECORDING), "--chain", str(chain), "--out", str(tmp_path / "w.npz")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line.startswith(f"error: {chain}: not a readable chain configuration: {says}"), line
    assert "\n" not in line
    assert not (tmp_path / "w.npz").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["replay", "DEMO", "--fast", "--provider", "GPU"],
         "error: unknown provider 'GPU'; choose one of auto, cpu, cuda, tensorrt"),
        (["replay", "DEMO", "--fast", "--mqtt", "127.0.0.1:1", "--mqtt-topic", ""],
         "error: MQTT topic '': must be non-empty, without # or +"),
        (["formats", "--layout", "time=timestamp_s"], "error: layout: no acc="),
        (["formats", "--layout", "time=ts:ms acc=ax,ay,az:g gyro=gx,gy,gz:deg/s"],
         "error: --layout is remembered with --save-layout NAME"),
    ],
    ids=["provider-GPU", "empty-topic", "formats-bad-layout", "formats-layout-alone"],
)  # fmt: skip
def test_options_that_did_nothing_or_said_too_little_are_one_line(args, says):
    """`--provider GPU` did not list the choices; an empty --mqtt-topic published to the
    default topic; `formats --layout L` without --save-layout exited 0 ignoring L, valid or not."""
    from gaitedge.demo import DEMO_RECORDING

    args = [str(DEMO_RECORDING) if a == "DEMO" else a for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().startswith(says) and "\n" not in result.stderr.strip()


@pytest.mark.parametrize("command", ["replay", "summarize", "evaluate"])
def test_calibrate_first_beside_a_fixed_mounting_is_refused(tmp_path, command):
    """--calibrate-first with --mount none (or an axis map) was accepted and did nothing."""
    from gaitedge.demo import DEMO_RECORDING

    first = {"replay": [str(DEMO_RECORDING), "--fast"], "evaluate": ["--dataset", "hapt"]}
    first["summarize"] = [str(DEMO_RECORDING), "--out", str(tmp_path / "s"), "--no-plot"]
    args = [command, *first[command], "--calibrate-first", "--mount", "none"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        "error: --calibrate-first calibrates an automatic mounting; --mount none fixes it: "
        "give one of them"
    )


def test_inspect_warns_of_data_replay_refuses_and_calibrate_of_an_empty_id(tmp_path):
    """`inspect` of a recording in g described it without a word (replay refuses it): a
    warning says so, the description printed as ever; `calibrate --device-id ''` stored the
    mounting under the file's name."""
    from gaitedge.demo import DEMO_RECORDING
    from gaitedge.recording import read_recording

    rec = read_recording(DEMO_RECORDING)
    imu = rec.imu.copy()
    imu[:, :3] /= 9.80665
    in_g = tmp_path / "in_g.csv"
    write_recording(in_g, Recording(rec.timestamp_s, imu))
    result = runner.invoke(app, ["inspect", str(in_g)])
    assert result.exit_code == 0 and json.loads(result.stdout)["acc_norm_median_m_s2"] < 1.1
    assert result.stderr.strip().startswith(f"warning: {in_g}: median |acceleration| is 1.0")
    assert result.stderr.strip().endswith("replay refuses it")
    assert runner.invoke(app, ["inspect", str(DEMO_RECORDING)]).stderr == ""
    mount = tmp_path / "mount.json"
    args = ["calibrate", str(DEMO_RECORDING), "--device-id", "", "--mount-file", str(mount)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "--device-id is empty" in result.stderr
    assert not mount.exists()


def test_summarize_says_start_replaces_a_recording_s_own_clock(wild_exports, tmp_path):
    """`summarize --start` on an export with its own date (SensorLog's loggingTime) replaced
    that clock in silence: a warning names the clock it replaces; a recording with no date
    takes --start without one. `convert X -` wrote a file named '-': refused."""
    from gaitedge.demo import DEMO_RECORDING

    folder = wild_exports / "sensorlog_ios-steady-unitless"
    args = ["summarize", str(folder), "--out", str(tmp_path / "a"), "--no-plot"]
    result = runner.invoke(app, [*args, "--start", "2024-03-04T09:15"])
    assert result.exit_code == 0, result.output
    said = "warning: --start replaces sensorlog_ios-steady-unitless's own clock (it starts at "
    assert said + "2021-03-19 12:51:35 UTC)" in result.stderr, result.stderr
    args = ["summarize", str(DEMO_RECORDING), "--out", str(tmp_path / "b"), "--no-plot"]
    result = runner.invoke(app, [*args, "--start", "2024-03-04T09:15"])
    assert result.exit_code == 0 and "warning" not in result.stderr
    result = runner.invoke(app, ["convert", str(DEMO_RECORDING), "-"])
    assert result.exit_code == 2 and "give its path (not -)" in result.stderr
