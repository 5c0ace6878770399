"""The recording CSV format: formats read, malformed input refused with line numbers, writer."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from gaitedge.recording import (
    RecordingError,
    RecordingWriter,
    describe_recording,
    read_recording,
    write_recording,
)
from gaitedge.units import STANDARD_GRAVITY_M_S2, AccelUnit, GyroUnit, accel_to_m_s2, gyro_to_rad_s

HEADER = "timestamp_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z"


def write(tmp_path, text: str, name: str = "rec.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_the_shipped_hapt_sample_in_si_units(hapt_dir, tmp_path):
    """HAPT's sample file is in g (acc) and rad/s; declared as acc_x_g it reads as m/s²."""
    src = hapt_dir / "sample_exp01_first3000.csv"
    lines = src.read_text().splitlines()
    assert lines[0] == HEADER + ",label"
    lines[0] = "timestamp_s,acc_x_g,acc_y_g,acc_z_g,gyro_x,gyro_y,gyro_z,label"
    path = write(tmp_path, "\n".join(lines) + "\n")
    rec = read_recording(path)
    assert len(rec) == 3000 and rec.median_rate_hz == pytest.approx(50.0)
    assert np.median(np.linalg.norm(rec.imu[:, :3], axis=1)) == pytest.approx(9.9, abs=0.4)
    assert set(rec.label) >= {"0", "5"}


def test_seed_format_without_timestamps_needs_a_rate(tmp_path):
    path = write(tmp_path, "acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z\n" + "0,0,9.8,0,0,0\n" * 5)
    with pytest.raises(RecordingError, match="give the sample rate"):
        read_recording(path)
    rec = read_recording(path, rate_hz=25.0)
    np.testing.assert_allclose(rec.timestamp_s, np.arange(5) / 25.0)


@pytest.mark.parametrize(
    ("acc_suffix", "gyro_suffix", "acc_factor", "gyro_factor"),
    [
        ("_g", "_dps", STANDARD_GRAVITY_M_S2, np.pi / 180),
        ("_mg", "_rads", STANDARD_GRAVITY_M_S2 / 1000, 1.0),
        ("_ms2", "", 1.0, 1.0),
    ],
    ids=["g-dps", "mg-rads", "ms2-plain"],
)
def test_unit_suffixed_headers(tmp_path, acc_suffix, gyro_suffix, acc_factor, gyro_factor):
    cols = [f"acc_{a}{acc_suffix}" for a in "xyz"] + [f"gyro_{a}{gyro_suffix}" for a in "xyz"]
    path = write(tmp_path, "timestamp_ms," + ",".join(cols) + "\n0,1,2,3,4,5,6\n20,1,2,3,4,5,6\n")
    rec = read_recording(path)
    np.testing.assert_allclose(rec.timestamp_s, [0.0, 0.02])
    np.testing.assert_allclose(rec.imu[0, :3], np.array([1, 2, 3]) * acc_factor)
    np.testing.assert_allclose(rec.imu[0, 3:], np.array([4, 5, 6]) * gyro_factor)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("0,1,2,3,4,5,6\n0.02,1,2,x,4,5,6\n", r"rec.csv:3: not a number"),
        ("0,1,2,3,4,5,6\n0.02,1,2,3,4,5\n", r"rec.csv:3: expected 7 fields, got 6"),
        ("0,1,2,3,4,5,6\n0.02,1,nan,3,4,5,6\n", r"rec.csv:3: non-finite"),
        ("0,1,2,3,4,5,6\n0.04,1,2,3,4,5,6\n0.02,1,2,3,4,5,6\n", r"rec.csv:4: timestamp"),
        ("0,1,2,3,4,5,6\n0,1,2,3,4,5,6\n", r"rec.csv:3: timestamp"),
        ("", "no samples"),
    ],
    ids=["not-a-number", "short-row", "nan", "backwards", "duplicate", "header-only"],
)
def test_malformed_files_are_refused_with_the_line(tmp_path, body, message):
    path = write(tmp_path, HEADER + "\n" + body)
    with pytest.raises(RecordingError, match=message):
        read_recording(path, strict="timestamp" in message)


def test_the_fast_parse_reads_what_the_row_by_row_parse_reads(tmp_path):
    """Numbers as writers print them (exponents, a sign, 17 digits, integers, CRLF, spaces
    around a cell): the one-call parse (polars) gives Python's own float() of each cell, in
    the whole read and in chunks; rows it cannot take (an empty cell, a blank line, a cell
    past the header) go to the row-by-row parse, which names the line."""
    from gaitedge.recording import CsvChunks, _parse_numeric_body

    rows = [
        "0,1.5e-3,-2.25E+1,+3,9.80665,0.017453292519943295,-0",
        "0.02,1e5,2,3.000000000000001,4, 5 ,6",
        "0.04,-0.0,1.7976931348623157e308,2.2250738585072014e-308,1,2,3",
    ]
    path = write(tmp_path, HEADER + "\r\n" + "\r\n".join(rows) + "\r\n")
    want = np.array([[float(c) for c in r.split(",")] for r in rows])
    np.testing.assert_array_equal(
        _parse_numeric_body("\n".join(rows[:1] + rows[2:]), 7), want[[0, 2]]
    )
    rec = read_recording(path)
    np.testing.assert_array_equal(rec.timestamp_s, want[:, 0])
    np.testing.assert_array_equal(rec.imu, want[:, 1:])
    chunks = list(CsvChunks(path, chunk_bytes=40))
    np.testing.assert_array_equal(np.concatenate([c.imu for c in chunks]), want[:, 1:])
    for bad in ("0,1,,3,4,5,6", "0,1,2,3,4,5,6\n\n0.02,1,2,3,4,5,6", "0,1,2,3,4,5,6,7", "0,1,2"):
        assert _parse_numeric_body(bad, 7) is None, bad
    path = write(tmp_path, HEADER + "\n" + rows[0] + "\n0.02,1,2,3,4,5,6,7\n")
    with pytest.raises(RecordingError, match=r"rec.csv:3: expected 7 fields, got 8"):
        read_recording(path)


def test_tied_and_backward_stamps_are_repaired_unless_strict(tmp_path):
    body = "0,1,2,3,4,5,6\n0.04,1,2,3,4,5,6\n0.04,2,2,3,4,5,6\n0.03,3,2,3,4,5,6\n0.1,1,2,3,4,5,6\n"
    path = write(tmp_path, HEADER + "\n" + body)
    rec = read_recording(path)
    np.testing.assert_allclose(rec.timestamp_s, [0.0, 0.04 / 3, 0.08 / 3, 0.04, 0.1])
    np.testing.assert_array_equal(rec.imu[:, 0], [1, 1, 2, 3, 1])  # order and values kept
    assert (rec.repair.tied, rec.repair.backward_jitter) == (1, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("timestamp_s,acc_x,acc_y,gyro_x,gyro_y,gyro_z\n0,1,2,3,4,5\n", "acc_z"),
        ("timestamp_s,acc_x_g,acc_y,acc_z,gyro_x,gyro_y,gyro_z\n0,1,2,3,4,5,6\n", "share one unit"),
        (HEADER + "\n\xff", "cannot read"),
    ],
    ids=["empty", "missing-column", "mixed-units", "not-utf8"],
)
def test_bad_headers_are_refused(tmp_path, text, message):
    path = tmp_path / "rec.csv"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(RecordingError, match=message):
        read_recording(path)


def test_writer_round_trips_and_appends(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(100) / 50.0
    x = rng.standard_normal((100, 6)).astype(np.float32).astype(np.float64)
    path = tmp_path / "out.csv"
    with RecordingWriter(path, with_label=True, with_device_id=True) as w:
        w.write(t[:40], x[:40], label="walk", device_id="dev1")
    with RecordingWriter(path, with_label=True, with_device_id=True) as w:
        w.write(t[40:], x[40:], label=np.array(["sit"] * 60), device_id="dev1")
    rec = read_recording(path)
    np.testing.assert_allclose(rec.timestamp_s, t, atol=1e-6)
    np.testing.assert_array_equal(rec.imu, x)  # values are written losslessly
    assert list(rec.label[:40]) == ["walk"] * 40 and rec.label[-1] == "sit"
    with pytest.raises(RecordingError, match="cannot append"):
        RecordingWriter(path)


def test_writer_flushes_each_second_so_a_crash_loses_at_most_one(tmp_path):
    path = tmp_path / "live.csv"
    w = RecordingWriter(path)
    for i in range(0, 250, 5):  # 5 s at 50 Hz, in chunks of 5 samples
        w.write(np.arange(i, i + 5) / 50.0, np.zeros((5, 6)))
        # What is on disk now is what survives a crash (the file object is not closed).
        crash_copy = tmp_path / "crash.csv"
        shutil.copy(path, crash_copy)
        if i + 5 >= 100:
            on_disk = read_recording(crash_copy)
            assert (i + 5) / 50.0 - on_disk.timestamp_s[-1] <= 1.0 + 1e-9
    w.close()
    assert len(read_recording(path)) == 250


def test_write_recording_and_describe(tmp_path, hapt_experiment):
    t, x, label = hapt_experiment
    from gaitedge.recording import Recording

    rec = Recording(t[:500], x[:500], label=label[:500].astype(str))
    path = tmp_path / "r.csv"
    write_recording(path, rec)
    again = read_recording(path)
    summary = describe_recording(again)
    assert summary["samples"] == 500 and summary["median_rate_hz"] == pytest.approx(50.0)
    assert summary["gaps"] == []


def test_unit_converters_refuse_counts_without_scale():
    with pytest.raises(ValueError, match="scale"):
        accel_to_m_s2(np.ones(3), AccelUnit.COUNTS)
    with pytest.raises(ValueError, match="scale"):
        gyro_to_rad_s(np.ones(3), GyroUnit.COUNTS)
    # SisFall's ADXL345: 256 counts = 1 g
    assert accel_to_m_s2(256, "counts", g_per_count=1 / 256) == pytest.approx(9.80665)
    assert gyro_to_rad_s(1000, "counts", dps_per_count=0.061) == pytest.approx(np.deg2rad(61))


def test_rate_of_batched_stamps_is_the_mean_rate_without_a_warning(hapt_experiment):
    """A phone that stamps its samples in batches of five (most stamps tied): the rate replay
    reports is the span's mean rate, not a division by zero on stderr."""
    import warnings

    from gaitedge.recording import Recording

    t, imu, _ = hapt_experiment
    batched = np.repeat(t[::5], 5)[: len(t)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rate = Recording(batched, imu).median_rate_hz
        assert Recording(np.zeros(3), imu[:3]).median_rate_hz == 0.0  # no span
    assert rate == pytest.approx(50.0 * (len(t) - 1) / (len(t) - 5), rel=1e-3)
    assert Recording(t, imu).median_rate_hz == pytest.approx(50.0)


def test_the_writer_keeps_epoch_stamps_to_the_bit(tmp_path):
    """Epoch stamps with sub-microsecond parts (a device's clock interpolated within a block)
    read back bit for bit, as the values always did."""
    from gaitedge.demo import DEMO_RECORDING
    from gaitedge.recording import Recording, read_recording, write_recording

    imu = read_recording(DEMO_RECORDING).imu[:500]  # real HAPT samples
    t = 1572339786.3 + np.arange(500) * 0.0099999237 + 1e-7
    path = tmp_path / "epoch.csv"
    write_recording(path, Recording(t, imu))
    back = read_recording(path)
    np.testing.assert_array_equal(back.timestamp_s, t)
    np.testing.assert_array_equal(back.imu, imu)


@pytest.mark.parametrize(
    ("delimiter", "decimal"), [(";", ","), (";", "."), ("\t", "."), ("\t", ",")]
)
def test_a_spreadsheets_resaved_copy_reads_as_the_file(tmp_path, delimiter, decimal):
    """Opened in a spreadsheet and saved again in a locale whose list separator is a semicolon
    (decimal comma) or as tab-separated text: the same recording, labels included, in every
    command (it was 'not a format gaitedge knows'); a bad cell is named by its line."""
    from gaitedge.demo import DEMO_RECORDING
    from gaitedge.formats import open_chunks, read

    lines = DEMO_RECORDING.read_text().splitlines()[:1501]
    original = tmp_path / "walk.csv"
    original.write_text("\n".join(lines) + "\n")
    saved = tmp_path / "walk-saved.csv"
    text = "\n".join(line.replace(",", delimiter) for line in lines) + "\n"
    saved.write_text(text if decimal == "." else text.replace(".", ","))
    want, got = read(original), read(saved)
    np.testing.assert_array_equal(got.timestamp_s, want.timestamp_s)
    np.testing.assert_array_equal(got.imu, want.imu)
    np.testing.assert_array_equal(got.label, want.label)
    streamed = list(open_chunks(saved))
    np.testing.assert_array_equal(np.concatenate([c.imu for c in streamed]), want.imu)
    broken = text.splitlines()
    broken[700] = broken[700].replace(delimiter, delimiter + "x", 1)
    saved.write_text("\n".join(broken) + "\n")
    with pytest.raises(RecordingError, match=r"walk-saved\.csv:701: not a number"):
        read(saved)


@pytest.mark.parametrize("glitch_s", [1000.0, 3.0])
def test_one_glitched_stamp_is_put_back_not_read_as_a_clock_reset(tmp_path, glitch_s):
    """One row stamped far ahead (1000 s) or back (3 s, mid-recording) whose next row goes on
    from before it: the glitch is counted and the row stamped between its neighbours; the
    stamps after it are the file's own (read as a clock reset, every later time moved by
    ~28 s or ~970 s, and a gap cut the recording in two)."""
    from gaitedge.demo import DEMO_RECORDING

    lines = DEMO_RECORDING.read_text().splitlines()[:3001]
    clean = tmp_path / "clean.csv"
    clean.write_text("\n".join(lines) + "\n")
    cells = lines[1500].split(",")
    lines[1500] = ",".join([f"{glitch_s:.6f}", *cells[1:]])
    glitched = tmp_path / "glitched.csv"
    glitched.write_text("\n".join(lines) + "\n")
    want, got = read_recording(clean), read_recording(glitched)
    np.testing.assert_array_equal(got.imu, want.imu)
    assert got.repair.outliers == 1 and got.repair.clock_resets == 0
    t, w = got.timestamp_s, want.timestamp_s
    assert (np.diff(t) > 0).all()
    np.testing.assert_array_equal(t[1501:], w[1501:])
    assert np.abs(t - w).max() <= 0.02  # the glitched row and its neighbour's run, spread
    assert describe_recording(got)["timestamp_repair"]["outliers"] == 1


def test_listen_sessions_appended_to_one_recording_keep_their_gap_and_dates(tmp_path):
    """listen --record writes a device's stream time (counting from its start): a second
    session appended to the file restarted at 0, was read back as a clock reset and joined to
    the first, the time between them lost (a week of wear a service restarted in had no
    gaps and no dates). Written on the wall clock, each session keeps its place in time."""
    import time

    from gaitedge.engine import load_engine
    from gaitedge.pipeline import Pipeline
    from gaitedge.sinks import FanOut
    from gaitedge.sources import SampleChunk
    from gaitedge.summary import WallClock

    path = tmp_path / "live.csv"
    imu = np.zeros((100, 6))
    imu[:, 2] = 9.80665
    starts = []
    for session in range(2):
        if session:  # the first session's 2 s of stream time went by in a moment here
            time.sleep(2.5)
        starts.append(time.time())
        recorder = RecordingWriter(path, with_device_id=True, wall_clock=True)
        with Pipeline(load_engine(None), FanOut([]), recorder=recorder) as pipe:
            for k in range(0, 100, 10):  # stream time from 0, as a device's
                t = np.arange(k, k + 10) / 50.0
                pipe.process(SampleChunk("belt", t, imu[k : k + 10], time.monotonic()))
    rec = read_recording(path)
    assert len(rec) == 200 and rec.repair is None  # no clock reset: nothing to repair
    t = rec.timestamp_s
    assert t[0] == pytest.approx(starts[0], abs=0.5)  # the wall clock, UTC seconds
    # each session where it was: its first chunk's last sample at the time it was written
    assert t[109] - t[9] == pytest.approx(starts[1] - starts[0], abs=0.3)
    assert t[100] - t[99] > 0.3  # the gap between the sessions, not a clock reset
    np.testing.assert_allclose(np.diff(t[:100]), 0.02, atol=1e-6)  # the device's own steps
    assert WallClock.of(float(t[0])).start_s == t[0]  # summarize dates it
