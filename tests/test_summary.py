"""`gaitedge summarize` on an hour of held-out HAPT subjects: the minutes per activity are the
timeline `replay` prints, a DST night keeps 24 wall-clock rows, and non-wear is found in the
raw signal (none in worn HAPT and SisFall data; an inserted still stretch to within an epoch
at each end)."""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from gaitedge import datasets as ds
from gaitedge.cli import app
from gaitedge.recording import Recording, write_recording
from gaitedge.summary import NonWearConfig, NonWearDetector, SummaryError, WallClock
from gaitedge.units import STANDARD_GRAVITY_M_S2 as G

runner = CliRunner()
# 2024-03-31 00:30 UTC = 01:30 in Berlin, half an hour before the clocks go from 02:00 to 03:00.
START_UTC = dt.datetime(2024, 3, 31, 0, 30, tzinfo=dt.timezone.utc)


def held_out_hapt(root, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Held-out HAPT experiments back to back, ``seconds`` long: (t [N], imu [N, 6])."""
    parts, n = [], 0
    for rec in ds.hapt_recordings(root, ds.hapt_split(root).test):
        parts.append(rec.imu)
        n += len(rec.imu)
        if n >= seconds * rec.rate_hz:
            x = np.concatenate(parts)[: int(seconds * rec.rate_hz)]
            return np.arange(len(x)) / rec.rate_hz, x
    raise AssertionError("not enough held-out HAPT data")


@pytest.fixture(scope="module")
def hour(hapt_dir, tmp_path_factory):
    """An hour of held-out HAPT as gaitedge's CSV, stamped in UTC across a DST change."""
    t, x = held_out_hapt(hapt_dir.parent, 3600.0)
    path = tmp_path_factory.mktemp("hour") / "hour.csv"
    write_recording(path, Recording(t + START_UTC.timestamp(), x))
    return path


@pytest.fixture(scope="module")
def summary(hour, tmp_path_factory):
    out = tmp_path_factory.mktemp("summary")
    result = runner.invoke(
        app, ["summarize", str(hour), "--tz", "Europe/Berlin", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout.strip().splitlines()[-1])


def test_minutes_per_activity_are_the_timeline_replay_prints(hour, summary):
    out, _ = summary
    printed = runner.invoke(app, ["replay", str(hour), "--fast"])
    assert printed.exit_code == 0, printed.output
    changes = re.findall(r"activity \[hour\.csv\]: (\w+) since ([\d.]+) s", printed.stdout)
    assert len(changes) >= 20  # a real hour of changing activities
    ends = [float(t) for _, t in changes[1:]] + [3600.0]
    timeline: dict[str, float] = {}
    for (label, since), end in zip(changes, ends, strict=True):
        timeline[label] = timeline.get(label, 0.0) + (end - float(since)) / 60.0
    got = json.loads((out / "hour-summary.json").read_text())["minutes_by_label"]
    # Each change is placed on whole seconds by the summary: half a second either way.
    for label, minutes in timeline.items():
        assert got[label] == pytest.approx(minutes, abs=len(changes) * 0.5 / 60), label
    assert sum(got.values()) == pytest.approx(sum(timeline.values()), abs=0.02)


def test_a_dst_night_keeps_24_wall_clock_rows(summary):
    out, totals = summary
    rows = (out / "hour-hourly.csv").read_text().splitlines()
    assert rows[0].startswith("day,hour,walking_min")
    hours = [r.split(",") for r in rows[1:]]
    assert [int(h[1]) for h in hours] == list(range(24))  # one day, 24 rows
    assert {h[0] for h in hours} == {"2024-03-31"}
    wear = {int(h[1]): float(h[rows[0].split(",").index("wear_min")]) for h in hours}
    # 01:30-02:00 CET, then 03:00-03:30 CEST: the hour 02:00 does not exist that night.
    assert wear[1] == pytest.approx(30.0, abs=0.02) and wear[3] == pytest.approx(30.0, abs=0.02)
    assert wear[2] == 0.0 and sum(wear.values()) == pytest.approx(60.0, abs=0.05)
    assert totals["totals_min"]["nonwear"] == 0.0 and totals["totals_min"]["no_data"] == 0.0
    doc = json.loads((out / "hour-summary.json").read_text())
    assert doc["tz"] == "Europe/Berlin" and doc["start"] == "2024-03-31T01:30:00"
    assert (out / "hour-week.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_wall_clock_of_each_kind_of_recording():
    utc = WallClock.of(START_UTC.timestamp(), tz="Europe/Berlin")
    assert utc.local(3600.0) == dt.datetime(2024, 3, 31, 3, 30)  # over the DST jump
    local = WallClock.of(
        (dt.datetime(2024, 3, 4, 9, 15) - dt.datetime(1970, 1, 1)).total_seconds(), local_clock=True
    )
    assert local.local(60.0) == dt.datetime(2024, 3, 4, 9, 16)
    relative = WallClock.of(0.0)
    assert relative.day(relative.local(86400.0 + 5)) == "day 2"
    with pytest.raises(SummaryError, match="device's local clock"):
        WallClock.of(1.7e9, local_clock=True, tz="Europe/Berlin")
    with pytest.raises(SummaryError, match="unknown time zone"):
        WallClock.of(1.7e9, tz="Mars/Olympus")


def test_bad_options_are_one_line(hour, tmp_path):
    result = runner.invoke(
        app, ["summarize", str(hour), "--tz", "Nowhere/City", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and result.output.strip().startswith("error: unknown time zone")
    assert "Traceback" not in result.output


def test_a_recording_of_one_instant_is_summarised(hapt_dir, tmp_path):
    """One sample, or samples all at one stamp, have no rate of their own: the last sample's
    interval is the model's (was 1 / 1e-9 s: a billion-second timeline that never ended)."""
    t, x = held_out_hapt(hapt_dir.parent, 10.0)
    for name, stamps, imu in (("one", t[:1], x[:1]), ("tied", np.full(3, 5.0), x[:3])):
        path = tmp_path / f"{name}.csv"
        write_recording(path, Recording(stamps, imu))
        result = runner.invoke(app, ["summarize", str(path), "--no-plot", "--out", str(tmp_path)])
        assert result.exit_code == 0, result.output
        summary = json.loads((tmp_path / f"{name}-summary.json").read_text())
        # the last stamp (ties spread by the repair) plus one interval at the model's 50 Hz
        expected = 0.02 if name == "one" else summary["duration_s"]
        assert summary["duration_s"] == pytest.approx(expected) and summary["duration_s"] < 0.1


def test_a_clock_that_jumps_years_is_refused_before_it_is_counted(hapt_dir, tmp_path):
    """Stamps that jump decades into the future (a device clock reset, ns read as s) would be
    a per-second timeline of billions of seconds: refused in one line as soon as they come."""
    t, x = held_out_hapt(hapt_dir.parent, 120.0)
    t = np.where(t < 60.0, t, t + 1.7e9)
    path = tmp_path / "jump.csv"
    write_recording(path, Recording(t, x))
    result = runner.invoke(app, ["summarize", str(path), "--no-plot", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert line.count("\n") == 0 and line.startswith("error: jump.csv: its stamps reach"), line


def _table(n: int, rng: np.random.Generator) -> np.ndarray:
    """[n, 3] a device resting on a table (1 g along a tilt, ~1.3 mg noise), m/s²."""
    up = np.array([0.3, -0.2, 0.93]) / np.linalg.norm([0.3, -0.2, 0.93])
    return G * (up + rng.normal(0.0, 0.0013, (n, 3)))


def test_nonwear_is_found_to_an_epoch_and_never_in_worn_data(hapt_dir, sisfall_dir):
    root = hapt_dir.parent
    _, worn = held_out_hapt(root, 3600.0)
    rate = 50.0
    # Worn, real: an hour of HAPT and every held-out SisFall trial, back to back: no non-wear.
    sis = np.concatenate([r.imu for r in ds.sisfall_recordings(root, ds.sisfall_split(root).test)])
    for x in (worn, sis):
        det = NonWearDetector()
        det.process(np.arange(len(x)) / rate, x[:, :3])
        assert det.finish() == []
    # 10 min worn, 75 min on a table, 10 min worn: 75 min found, to an epoch at each end.
    rng = np.random.default_rng(0)
    acc = np.concatenate([worn[:30000, :3], _table(225000, rng), worn[30000:60000, :3]])
    t = np.arange(len(acc)) / rate
    whole = NonWearDetector()
    whole.process(t, acc)
    stretches = whole.finish()
    assert len(stretches) == 1
    a, b = stretches[0]
    assert abs(a - 600.0) <= 10.0 and abs(b - 5100.0) <= 10.0
    # Any chunking gives the same epochs.
    chunked, cuts = NonWearDetector(), np.sort(rng.integers(0, len(t), 40))
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(t)], strict=True):
        chunked.process(t[lo:hi], acc[lo:hi])
    assert chunked.finish() == stretches and chunked.stationary == whole.stationary
    # A shorter still stretch is not non-wear (60 min is the rule).
    det = NonWearDetector(NonWearConfig())
    short = np.concatenate([worn[:30000, :3], _table(150000, rng), worn[30000:60000, :3]])
    det.process(np.arange(len(short)) / rate, short)
    assert det.finish() == []


def test_a_clock_without_a_date_or_in_another_unit_is_said_so():
    """--tz on a recording without a date did nothing (exit 0); epoch ms under timestamp_s
    gave 'year 56387 is out of range'."""
    with pytest.raises(SummaryError, match=r"holds no date.*give --start"):
        WallClock.of(0.0, tz="Europe/Berlin")
    with pytest.raises(SummaryError, match="epoch milliseconds or nanoseconds read as seconds"):
        WallClock.of(1.717e12)
    # an offset on --start was dropped in silence (the hours moved by it, or not, unsaid)
    with pytest.raises(SummaryError, match=r"without an offset .*give 2024-03-04T09:15:00\)"):
        WallClock.of(0.0, start=dt.datetime.fromisoformat("2024-03-04T09:15+02:00"))
    assert WallClock.of(0.0, start=dt.datetime(2024, 3, 4, 9, 15)).local(60.0) == dt.datetime(
        2024, 3, 4, 9, 16
    )


def test_minutes_are_the_wall_clocks_and_each_device_has_its_own_files(hapt_dir, tmp_path):
    """Six minutes from 23:59:30 UTC: half a minute on the first day (the minutes were 60-s
    blocks from the first sample: a whole one). Two devices of one file summarised one after
    the other into one folder: each its own files (the second overwrote the first's)."""
    t, x = held_out_hapt(hapt_dir.parent, 360.0)
    start = dt.datetime(2024, 3, 30, 23, 59, 30, tzinfo=dt.timezone.utc).timestamp()
    path = tmp_path / "two.csv"
    from gaitedge.recording import RecordingWriter

    writer = RecordingWriter(path, with_device_id=True)
    for device in ("belt/1", "belt/2"):
        writer.write(t + start, x, device_id=device)
    writer.close()
    for device in ("belt/1", "belt/2"):
        args = ["summarize", str(path), "--device", device, "--no-plot", "--out", str(tmp_path)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    for stem in ("two-belt_1", "two-belt_2"):
        rows = (tmp_path / f"{stem}-daily.csv").read_text().splitlines()
        wear = [float(r.split(",")[rows[0].split(",").index("wear_min")]) for r in rows[1:]]
        assert wear == pytest.approx([0.5, 5.5], abs=0.03)
        doc = json.loads((tmp_path / f"{stem}-summary.json").read_text())
        assert doc["recording"] == f"two.csv ({stem[4:].replace('_', '/')})"


def test_summarize_says_what_replay_says_and_falls_carry_no_1970_date(
    hapt_dir, sisfall_dir, tmp_path
):
    """A time column in ms read as seconds: replay says no window was made, summarize wrote a
    5-day summary without a word. A fall on a clock without a date was dated 1970-01-01."""
    t, x = held_out_hapt(hapt_dir.parent, 60.0)
    path = tmp_path / "ms.csv"
    write_recording(path, Recording(t * 1000.0, x))
    result = runner.invoke(app, ["summarize", str(path), "--no-plot", "--out", str(tmp_path)])
    assert (
        "ms.csv: no window was made" in result.stderr and "in ms read as seconds?" in result.stderr
    )
    fall = next(r for r in ds.sisfall_recordings(sisfall_dir.parent) if r.is_fall)
    path = tmp_path / "fall.csv"
    write_recording(path, Recording(np.arange(len(fall.imu)) / fall.rate_hz, fall.imu))
    result = runner.invoke(app, ["summarize", str(path), "--no-plot", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    falls = json.loads((tmp_path / "fall-summary.json").read_text())["falls"]
    assert falls and all(re.fullmatch(r"day 1 00:00:\d\d", f["local"]) for f in falls)
