"""Long recordings in bounded memory: the chunked readers give what the whole reads give (any
block size, refusals naming the same line), `convert` and `replay` stream, and the batched
fall detector equals the per-window one it skips work for."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from firmware_bridge.exports import axivity as ax6_app
from gaitedge import datasets as ds
from gaitedge.alerts import FallDetector
from gaitedge.cli import app
from gaitedge.formats import FormatError, open_chunks, read
from gaitedge.formats import axivity as ax6_reader
from gaitedge.preprocess import ChainConfig, run_offline
from gaitedge.recording import (
    CsvChunks,
    Recording,
    RecordingError,
    read_recording,
    write_chunks,
    write_recording,
)
from gaitedge.sources import ReplaySource
from tests.conftest import REPO

runner = CliRunner()
BLOCKS = [200, 4096, 1 << 22]


def _joined(chunks) -> Recording:
    chunks = list(chunks)
    cat = lambda xs: None if xs[0] is None else np.concatenate(xs)  # noqa: E731
    return Recording(
        np.concatenate([c.timestamp_s for c in chunks]),
        np.concatenate([c.imu for c in chunks]),
        cat([c.label for c in chunks]),
        cat([c.device_id for c in chunks]),
    )


def _assert_same(a: Recording, b: Recording) -> None:
    np.testing.assert_array_equal(a.timestamp_s, b.timestamp_s)
    np.testing.assert_array_equal(a.imu, b.imu)
    for x, y in ((a.label, b.label), (a.device_id, b.device_id)):
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_array_equal(x, y)


@pytest.fixture
def phone_csv(hapt_experiment, tmp_path):
    """Two minutes of HAPT as a phone writes it: 10 ms stamps (ties), a stamp back in time,
    labels and a device id, units in g and deg/s."""
    t, x, lab = hapt_experiment
    t = np.floor(t[:6000] * 100) / 100  # 10 ms resolution at 50 Hz: some stamps tie
    t[3001] = t[3000] - 0.004  # backward jitter
    acc_g, gyro_dps = (x[:6000, :3] / 9.80665).tolist(), np.degrees(x[:6000, 3:]).tolist()
    rows = [
        ",".join([f"{t[i] * 1000:.0f}", *map(repr, acc_g[i]), *map(repr, gyro_dps[i])])
        + f",L{lab[i]},phone"
        for i in range(len(t))
    ]
    path = tmp_path / "phone.csv"
    header = "timestamp_ms,acc_x_g,acc_y_g,acc_z_g,gyro_x_dps,gyro_y_dps,gyro_z_dps,label,device_id"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b}B" for b in BLOCKS])
def test_csv_chunks_are_the_whole_read(phone_csv, block):
    whole = read_recording(phone_csv)
    assert whole.repair.tied + whole.repair.backward_jitter > 0  # repair did something
    chunks = CsvChunks(phone_csv, chunk_bytes=block)
    _assert_same(_joined(chunks), whole)
    assert (chunks.repair.tied, chunks.repair.backward_jitter) == (
        whole.repair.tied,
        whole.repair.backward_jitter,
    )


def test_a_bad_row_far_into_the_file_names_the_same_line(phone_csv, tmp_path):
    lines = phone_csv.read_text().splitlines()
    lines[5000] = lines[5000].replace(",", ",x", 1)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordingError) as whole:
        read_recording(bad)
    with pytest.raises(RecordingError) as streamed:
        list(CsvChunks(bad, chunk_bytes=4096))
    assert str(streamed.value) == str(whole.value) and ":5001: not a number" in str(whole.value)
    # strict: the first stamp that does not increase, across blocks too
    with pytest.raises(RecordingError) as whole:
        read_recording(phone_csv, strict=True)
    with pytest.raises(RecordingError) as streamed:
        list(CsvChunks(phone_csv, strict=True, chunk_bytes=300))
    assert str(streamed.value) == str(whole.value)


def test_one_device_of_several(phone_csv, tmp_path):
    text = phone_csv.read_text().splitlines()
    two = tmp_path / "two.csv"
    two.write_text("\n".join(text[:4000] + [r.replace(",phone", ",watch") for r in text[4000:]]))
    with pytest.raises(RecordingError, match=r"holds 2 devices \(phone, watch\)"):
        list(CsvChunks(two, chunk_bytes=4096))
    _assert_same(
        _joined(CsvChunks(two, device="watch", chunk_bytes=4096)),
        read_recording(two, device="watch"),
    )


def test_the_ax6_streams_block_by_block(hapt_experiment, tmp_path, monkeypatch):
    t, x, _ = hapt_experiment
    path = ax6_app.render_ax6(Recording(t[:9000], x[:9000]), tmp_path)  # 3 min, 450 sectors
    whole = read(path)
    monkeypatch.setattr(ax6_reader, "BLOCK_SECTORS", 64)
    stream = open_chunks(path)
    assert (stream.format, stream.streamed, stream.local_clock) == ("axivity", True, True)
    chunks = list(stream)
    assert len(chunks) >= 7
    _assert_same(_joined(chunks), whole)


def test_an_export_a_reader_declines_to_stream_is_read_whole_and_cut(wild_exports, monkeypatch):
    """A reader may decline to stream an export (its ``read_chunks`` gives None: sensors whose
    first blocks cannot be joined, say): it is read whole and handed out in pieces."""
    from gaitedge.formats import movesense

    path = wild_exports / "movesense_imu9-json"
    monkeypatch.setattr(movesense, "read_chunks", lambda container, options: None)
    stream = open_chunks(path, chunk_samples=4000)
    assert not stream.streamed
    chunks = list(stream)
    assert [len(c) for c in chunks] == [4000, 4000, 2000]
    _assert_same(_joined(chunks), read(path))


MOVESENSE = ["wild-imu9", "wild-zip", "imu6-json", "csv-folder", "jsonl-folder"]


def _movesense(variant: str, wild_exports, tmp_path):
    import shutil

    from firmware_bridge.exports import movesense as app

    if variant == "wild-imu9":
        return wild_exports / "movesense_imu9-json" / "MovesenseLog_2_625.json"
    if variant == "wild-zip":
        return shutil.make_archive(
            str(tmp_path / "log"), "zip", wild_exports / "movesense_imu9-json"
        )
    render = {**app.VARIANTS, "jsonl-folder": app.render_showcase_jsonl}[variant]
    return render(_demo_excerpt(), tmp_path)


def _small_movesense_blocks(monkeypatch) -> None:
    """Blocks of 50 packets and 8 KiB: dozens per file, a packet cut by a block's edge."""
    from gaitedge.formats import movesense, table

    monkeypatch.setattr(movesense, "PACKETS_PER_BLOCK", 50)
    monkeypatch.setattr(movesense, "BLOCK_BYTES", 8192)
    monkeypatch.setattr(table, "BLOCK_BYTES", 8192)


@pytest.mark.parametrize("variant", MOVESENSE)
def test_movesense_streams_in_two_passes(variant, wild_exports, tmp_path, monkeypatch):
    """Every Movesense export (the Meas JSON, the Showcase CSVs and JSON lines) streams: a first
    pass checks every packet and finds the rate the whole file's stamps imply, the second hands
    out the samples; the whole read (default blocks), bit for bit, from blocks of 50 packets."""
    path = _movesense(variant, wild_exports, tmp_path)
    _small_movesense_blocks(monkeypatch)
    whole = _streams_as_read(path, "movesense", monkeypatch)
    assert len(whole) >= 2900


@pytest.mark.parametrize("variant", ["wild-imu9", "csv-folder", "jsonl-folder"])
def test_movesense_stream_refuses_as_the_whole_read(variant, wild_exports, tmp_path, monkeypatch):
    """A stamp back in time far into a file, and a file cut short: refused when the stream is
    opened (the first pass reads every packet), with the whole read's line."""
    import json
    import shutil

    src = Path(_movesense(variant, wild_exports, tmp_path / "src"))
    path = tmp_path / "export"
    if src.is_dir():
        shutil.copytree(src, path)
    else:
        path.mkdir()
        shutil.copy(src, path)
    _small_movesense_blocks(monkeypatch)
    target = sorted(path.iterdir(), key=lambda p: "gyro" not in p.name)[0]
    text = target.read_text()
    if variant == "wild-imu9":
        doc = json.loads(text)
        doc["Meas"]["IMU9"][700]["Timestamp"] = 100
        target.write_text(json.dumps(doc))
        expect = "Meas/IMU9 packet 701: Timestamp 100 ms is not after"
    else:
        lines = text.splitlines(keepends=True)
        k = next(i for i in range(len(lines) // 2, len(lines)) if not lines[i].startswith(","))
        stamp = "100" if variant == "csv-folder" else None
        if stamp:
            lines[k] = stamp + lines[k][lines[k].index(",") :]
        else:
            event = json.loads(lines[k])
            event["gyroscope"]["Timestamp"] = 100
            lines[k] = json.dumps(event, separators=(",", ":")) + "\n"
        target.write_text("".join(lines))
        expect = f"{target.name}:{k + 1}: Timestamp 100 ms is not after"
    with pytest.raises(FormatError) as opened:
        open_chunks(path)
    assert expect in str(opened.value)
    assert _refused_alike(path) == str(opened.value)
    if target.suffix == ".json":  # JSON cut inside a packet (a CSV cut at a row is a CSV)
        target.write_text(text[: len(text) * 2 // 3])
        assert f"{target.name}:" in _refused_alike(path)


def _streams_as_read(path, fmt: str, monkeypatch) -> Recording:
    """``path`` read whole, then streamed in blocks of 8 KiB (dozens per file, every join and
    check across their edges): the same samples bit for bit, and the same start."""
    from gaitedge.formats import table

    whole = read(path)
    monkeypatch.setattr(table, "BLOCK_BYTES", 8192)
    stream = open_chunks(path)
    assert (stream.format, stream.streamed) == (fmt, True)
    assert stream.start_epoch_s == whole.source.start_epoch_s
    chunks = list(stream)
    assert len(chunks) >= 10
    _assert_same(_joined(chunks), whole)
    return whole


def _refused_alike(path) -> str:
    """``path`` refused by the whole read and by the stream with the same one line: that line."""
    with pytest.raises(FormatError) as whole:
        read(path)
    with pytest.raises(FormatError) as streamed:
        list(open_chunks(path))  # refused on opening or while streaming
    assert str(streamed.value) == str(whole.value)
    return str(whole.value)


def _demo_excerpt(n: int = 3000) -> Recording:
    demo = read_recording(REPO / "gaitedge" / "assets" / "demo_hapt.csv")
    return Recording(demo.timestamp_s[:n], demo.imu[:n])


SENSOR_LOGGER_WILD = [
    "sensorlogger_android-walk-pixel6",  # TotalAcceleration 400 Hz + Gyroscope 400 Hz, own clocks
    "sensorlogger_ios-standing",  # Accelerometer + Gravity + Gyroscope, iOS sign
    "sensorlogger_ios-falldetector",  # no Metadata.csv: iOS inferred
    "sensorlogger_watch-swim-wristmotion",  # one wide file, three series
    "sensorlogger_ios-unlabelled-zip-tue",  # the zip as shared (members inflated as they stream)
]


def test_a_zip_member_is_never_inflated_whole_when_streamed(wild_exports, monkeypatch):
    """The shared zip streams: its sensor files are read block by block, the first block for
    the decisions included (a whole member in memory is what streaming exists to avoid)."""
    from gaitedge.formats.base import Container

    path = next((wild_exports / "sensorlogger_ios-unlabelled-zip-tue").glob("*.zip"))
    whole = read(path)

    read_bytes = Container.read_bytes

    def refuse(self, name):  # Metadata.csv (a header and one row) is read whole, as it may be
        assert name.endswith("Metadata.csv"), f"{name} inflated whole"
        return read_bytes(self, name)

    monkeypatch.setattr(Container, "read_bytes", refuse)
    stream = open_chunks(path)
    assert stream.streamed
    _assert_same(_joined(list(stream)), whole)


@pytest.mark.parametrize("name", SENSOR_LOGGER_WILD)
def test_sensor_logger_streams_file_by_file(wild_exports, name, monkeypatch):
    """Every file read block by block and joined as it streams: the whole read, bit for bit,
    from blocks of 8 KiB (dozens of blocks per file, each join across their edges)."""

    path = wild_exports / name
    zips = sorted(path.glob("*.zip"))
    path = zips[0] if zips else path
    _streams_as_read(path, "sensorlogger", monkeypatch)


def test_sensor_logger_stream_refuses_as_the_whole_read(wild_exports, tmp_path, monkeypatch):
    """A refusal is the whole read's (the streamed read decides on each file's first block, and
    leaves what it cannot decide there to the whole read); a bad row far into a file is named
    by its line."""
    import shutil

    from gaitedge.formats import table

    monkeypatch.setattr(table, "BLOCK_BYTES", 8192)
    _refused_alike(wild_exports / "sensorlogger_ios-skisim-2legs")
    folder = tmp_path / "pixel6"
    shutil.copytree(wild_exports / "sensorlogger_android-walk-pixel6", folder)
    gyro = folder / "Gyroscope.csv"
    lines = gyro.read_text().splitlines(keepends=True)
    lines[20000] = lines[20000].rsplit(",", 1)[0] + ",abc\n"
    gyro.write_text("".join(lines))
    said = _refused_alike(folder)
    assert "Gyroscope.csv:20001: column 5 is not a number: 'abc'" in said


@pytest.mark.parametrize("variant", ["ios", "android", "metabase5"])
def test_metabase_streams_file_by_file(variant, tmp_path, monkeypatch):
    """MetaBase's three dialects block by block: the whole read, bit for bit; a step back in
    time at a block's edge is refused with its line, as the whole read refuses it."""
    from firmware_bridge.exports import metabase as app
    from gaitedge.formats import table

    demo = _demo_excerpt()
    path = app.VARIANTS[variant](demo, tmp_path)
    _streams_as_read(path, "metabase", monkeypatch)
    gyro = next(p for p in (path.iterdir() if path.is_dir() else [path]) if "Gyro" in p.name)
    with gyro.open("rb") as f:  # the first row of a later block: only `before` sees the step
        time = gyro.read_text().split(",", 1)[0]
        edge = [b.first_line for b in table.iter_tables(f, "g", usecols=[time])][10]
    lines = gyro.read_text().splitlines(keepends=True)
    cells = lines[edge - 1].split(",")
    cells[0] = str(float(cells[0]) - (5000 if variant != "metabase5" else 5))  # 5 s back
    lines[edge - 1] = ",".join(cells)
    gyro.write_text("".join(lines))
    said = _refused_alike(path)
    assert f"{gyro.name}:{edge}: time goes back" in said


@pytest.mark.parametrize("variant", ["units", "unitless"])
def test_sensorlog_streams_block_by_block(variant, tmp_path, monkeypatch):
    """SensorLog's wide CSV block by block: the whole read, bit for bit, with a repeated tick
    (left out) and then a step back in time (refused, its line named) at a block's edge."""
    from firmware_bridge.exports import sensorlog as app
    from gaitedge.formats import table

    path = app.VARIANTS[variant](_demo_excerpt(), tmp_path)
    monkeypatch.setattr(table, "BLOCK_BYTES", 8192)
    text = path.read_text()
    header = text.split("\n", 1)[0].split(",")
    clocks = [h for h in header if h.startswith("accelerometerTimestamp")]
    clock = (clocks or [h for h in header if h.startswith("loggingTime")])[0]
    with path.open("rb") as f:
        edge = [b.first_line for b in table.iter_tables(f, "s", usecols=[clock])][10]
    lines = text.splitlines(keepends=True)
    lines[edge - 1] = lines[edge - 2]  # the tick before again, as the first row of a block
    path.write_text("".join(lines))
    whole = _streams_as_read(path, "sensorlog", monkeypatch)
    assert any("repeat the sample before" in r for r in whole.source.rules) or variant != "units"
    cells = lines[edge - 1].split(",")
    i = header.index(clock)
    cells[i] = repr(float(cells[i]) - 5.0)
    lines[edge - 1] = ",".join(cells)
    path.write_text("".join(lines))
    said = _refused_alike(path)
    assert f"{path.name}:{edge}:" in said and "time goes back" in said


def test_sensorlog_on_its_text_clock_streams(tmp_path, monkeypatch):
    """A SensorLog CSV whose accelerometer has no clock of its own: every sensor on the text
    loggingTime, parsed row by row beside the numbers' blocks; the whole read, bit for bit."""
    from firmware_bridge.exports import sensorlog as app

    path = app.VARIANTS["units"](_demo_excerpt(), tmp_path)
    rows = [line.split(",") for line in path.read_text().splitlines()]
    drop = rows[0].index("accelerometerTimestamp_sinceReboot(s)")
    path.write_text("\n".join(",".join(r[:drop] + r[drop + 1 :]) for r in rows) + "\n")
    whole = _streams_as_read(path, "sensorlog", monkeypatch)
    assert "time: loggingTime for every sensor (one has no *Timestamp_sinceReboot)" in (
        whole.source.rules
    )
    lines = path.read_text().splitlines(keepends=True)
    lines[2500] = "yesterday" + lines[2500][lines[2500].index(",") :]
    path.write_text("".join(lines))
    said = _refused_alike(path)
    assert f"{path.name}:2501: loggingTime 'yesterday' is not a date" in said


def test_edge_impulse_streams_block_by_block(tmp_path, monkeypatch):
    from firmware_bridge.exports import edgeimpulse as app

    demo = _demo_excerpt()
    path = next(iter(app.VARIANTS.values()))(demo, tmp_path)
    _streams_as_read(path, "edgeimpulse", monkeypatch)


@pytest.mark.parametrize("impact", [False, True])
def test_shimmer_streams_block_by_block(impact, tmp_path, monkeypatch):
    """Consensys' CSV block by block: the whole read, bit for bit; an impact past the low-noise
    accelerometer's range late in the file (after the first block) switches both reads to
    the wide-range one (the stream decides on a first pass over the whole file)."""
    from firmware_bridge.exports import shimmer as app

    demo = _demo_excerpt()
    imu = demo.imu.copy()
    if impact:
        imu[2900, 0] = 3.5 * 9.80665
    path = app.VARIANTS["consensys"](Recording(demo.timestamp_s, imu), tmp_path)
    whole = _streams_as_read(path, "shimmer", monkeypatch)
    assert any(
        f"the {'wide-range' if impact else 'low-noise'} accelerometer" in r
        for r in whole.source.rules
    )
    assert ("Accel_WR" if impact else "Accel_LN") in whole.source.sensors[0].where


@pytest.mark.parametrize("variant", ["android-comma-folder", "ios-semicolon-decimal-comma-zip"])
def test_phyphox_streams_set_by_set(variant, tmp_path, monkeypatch):
    """A phyphox export block by block: the whole read, bit for bit (padded short columns left
    out at the end); an empty cell in a block's last row, a complete row after it in the next
    block, is refused with its line as the whole read refuses it."""
    from firmware_bridge.exports import phyphox as app
    from gaitedge.formats import table

    demo = _demo_excerpt()
    path = app.VARIANTS[variant](demo, tmp_path)
    folder = tmp_path / "unzipped"
    if path.is_file():
        import zipfile

        with zipfile.ZipFile(path) as z:
            z.extractall(folder)
        path = next(p.parent for p in folder.rglob("Gyroscope.csv"))
    _streams_as_read(path, "phyphox", monkeypatch)
    gyro = path / "Gyroscope.csv"
    with gyro.open("rb") as f:
        edge = [b.first_line for b in table.iter_tables(f, "g")][10]
    lines = gyro.read_bytes().split(b"\n")
    sep = b";" if b";" in lines[0] else (b"\t" if b"\t" in lines[0] else b",")
    cells = lines[edge - 2].split(sep)
    cells[2] = b""
    lines[edge - 2] = sep.join(cells)  # the last row of the block before
    gyro.write_bytes(b"\n".join(lines))
    said = _refused_alike(path)
    assert f"Gyroscope.csv:{edge - 1}:" in said


@pytest.mark.parametrize("indent", [2, None])
def test_sensor_logger_json_streams_sensor_by_sensor(indent, tmp_path, monkeypatch):
    """The JSON export (one array of string-valued records grouped by sensor, as the app writes
    it, and the same on one line) streams a block of each sensor's records at a time: the
    whole read, bit for bit; a truncated export, a record that is not JSON far into a sensor's
    run, and a missing comma at a block's edge are refused alike, naming the line."""
    import json

    from firmware_bridge.exports import sensorlogger as app
    from gaitedge.formats import table

    path = app.VARIANTS["ios-json"](_demo_excerpt(), tmp_path)
    records = json.loads(path.read_text())
    path.write_text(json.dumps(records, indent=indent))
    whole = _streams_as_read(path, "sensorlogger", monkeypatch)
    assert len(whole.timestamp_s) > 2500
    monkeypatch.setattr(table, "BLOCK_BYTES", 8192)

    text = path.read_text()
    path.write_text(text[: len(text) - 300])  # cut within the last record
    said = _refused_alike(path)
    assert "not valid JSON: expected ']' after the last record" in said
    gyro = next(i for i, r in enumerate(records) if r["sensor"] == "Gyroscope")
    at = text.index(f'"{records[gyro + 2000]["time"]}"')
    end = text.index("}", at)
    path.write_text(text[:end] + text[end + 1 :])  # a record far into the file, its brace lost
    said = _refused_alike(path)
    line = text[:end].count("\n") + 1  # where json stops: the next record's "{"
    assert f"{path.name}:{line + (1 if indent else 0)}: not valid JSON: Expecting" in said
    records[gyro + 5]["z"] = "n/a"
    path.write_text(json.dumps(records, indent=indent))
    said = _refused_alike(path)
    assert f"record {gyro + 6} (Gyroscope)" in said


def test_sensor_logger_json_holds_blocks_not_the_array(tmp_path, monkeypatch):
    """Neither read decodes the whole array: json decodes one block of records at a time."""
    import json

    from firmware_bridge.exports import sensorlogger as app
    from gaitedge.formats import table

    path = app.VARIANTS["ios-json"](_demo_excerpt(), tmp_path)
    monkeypatch.setattr(table, "BLOCK_BYTES", 8192)
    loads, sizes = json.loads, []

    def counted(data, *args, **kwargs):
        sizes.append(len(data))
        return loads(data, *args, **kwargs)

    monkeypatch.setattr(json, "loads", counted)
    read(path)
    list(open_chunks(path))
    assert len(sizes) > 50 and max(sizes) < 3 * 8192, (len(sizes), max(sizes))


def test_convert_streams_and_leaves_nothing_half_written(phone_csv, tmp_path):
    out = tmp_path / "out.csv"
    n, _ = write_chunks(out, CsvChunks(phone_csv, chunk_bytes=4096))
    again = read_recording(out)
    assert n == len(again) == len(read_recording(phone_csv))
    np.testing.assert_allclose(again.imu, read_recording(phone_csv).imu, rtol=1e-12)
    lines = phone_csv.read_text().splitlines()
    lines[-10] = lines[-10].replace(",", ",,", 1)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["convert", str(bad), str(tmp_path / "half.csv")])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {bad}:5992: expected 9 fields")
    assert not (tmp_path / "half.csv").exists()


def test_replay_streams_a_file(hapt_experiment, tmp_path):
    t, x, _ = hapt_experiment
    path = tmp_path / "rec.csv"
    write_recording(path, Recording(t[:9000] + 1000.0, x[:9000]))
    source = ReplaySource(path, fast=True)

    async def collect():
        async with source:
            return [c async for c in source.chunks()]

    chunks = asyncio.run(collect())
    np.testing.assert_allclose(np.concatenate([c.t_s for c in chunks]), t[:9000], atol=1e-6)
    assert [c.new_connection for c in chunks].count(True) == 1


def test_a_bad_file_is_refused_when_opened(tmp_path):
    empty = tmp_path / "e.csv"
    empty.write_text("timestamp_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z\n")
    with pytest.raises(FormatError, match="no samples after the header"):
        open_chunks(empty)


def test_batched_fall_detection_equals_window_by_window(sisfall_dir):
    """update_windows passes over windows that cannot hold an impact; on real falls and
    daily activities it gives exactly the alerts of update() on every window."""
    cfg = ChainConfig()
    recs = list(ds.sisfall_recordings(sisfall_dir.parent, ["sisfall:SA03"]))[::6]
    assert any(r.is_fall for r in recs) and not all(r.is_fall for r in recs)
    t = np.concatenate([r.timestamp_s + 20.0 * i for i, r in enumerate(recs)])  # gaps: segments
    windows = run_offline(cfg, t, np.concatenate([r.imu for r in recs]))
    rng = np.random.default_rng(0)
    p_fall = rng.uniform(0.3, 1.0, len(windows))
    batched, single = FallDetector(cfg.channels), FallDetector(cfg.channels)
    got = []
    for lo, hi in zip([0, 37, 500], [37, 500, len(windows)], strict=True):
        part = windows.__class__(
            windows.data[lo:hi],
            windows.t_start_s[lo:hi],
            windows.t_end_s[lo:hi],
            windows.segment[lo:hi],
        )
        got += batched.update_windows(part, p_fall[lo:hi], cfg)
    from gaitedge.alerts import denormalize

    raw = denormalize(windows, cfg)
    want = [
        a
        for i in range(len(windows))
        if (
            a := single.update(
                windows.t_start_s[i], windows.t_end_s[i], p_fall[i], raw[i], windows.segment[i]
            )
        )
        is not None
    ]
    assert len(want) >= 3
    assert [(a.t, a.t_event, a.p, a.confirmed_by) for a in got] == [
        (a.t, a.t_event, a.p, a.confirmed_by) for a in want
    ]


def test_live_windows_with_their_peaks_equal_window_by_window(sisfall_dir):
    """Live, one window per call with its peak |a| (as ``Pipeline`` gives every device's at
    once): a window that cannot hold an impact is passed over even as the last one of its
    call; on real falls and daily activities the alerts are exactly update()'s on every
    window, and most windows never reach the history."""
    cfg = ChainConfig()
    recs = list(ds.sisfall_recordings(sisfall_dir.parent, ["sisfall:SA03"]))[::6]
    t = np.concatenate([r.timestamp_s + 20.0 * i for i, r in enumerate(recs)])  # gaps: segments
    windows = run_offline(cfg, t, np.concatenate([r.imu for r in recs]))
    p_fall = np.random.default_rng(1).uniform(0.3, 1.0, len(windows))

    class Counted(FallDetector):
        appended = 0

        def _append(self, *args):
            Counted.appended += 1
            return super()._append(*args)

    live, single = Counted(cfg.channels), FallDetector(cfg.channels)
    peaks = live.window_peaks_g(windows.data, cfg)
    got = []
    for i in range(len(windows)):
        one = windows.__class__(
            windows.data[i : i + 1],
            windows.t_start_s[i : i + 1],
            windows.t_end_s[i : i + 1],
            windows.segment[i : i + 1],
        )
        got += live.update_windows(one, p_fall[i : i + 1], cfg, float(peaks[i]))
    from gaitedge.alerts import denormalize

    raw = denormalize(windows, cfg)
    want = []
    for i in range(len(windows)):
        a = single.update(
            windows.t_start_s[i], windows.t_end_s[i], p_fall[i], raw[i], windows.segment[i]
        )
        want += [a] if a is not None else []
    assert len(want) >= 3
    assert [(a.t, a.t_event, a.p, a.confirmed_by) for a in got] == [
        (a.t, a.t_event, a.p, a.confirmed_by) for a in want
    ]
    assert Counted.appended < len(windows) // 4


def test_blocks_from_a_stream_that_returns_short_reads(wild_exports):
    """A zip member or a pipe may hand out fewer bytes than asked: the blocks still hold whole
    lines and give the whole parse's values and line numbers."""
    import io

    from gaitedge.formats.table import iter_tables, parse_table

    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes):
            self._data, self._at = data, 0

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            n = 10 if n is None or n < 0 else min(n, 10)  # less than the header line
            out = self._data[self._at : self._at + n]
            self._at += len(out)
            return out

    data = (wild_exports / "sensorlogger_android-walk-pixel6" / "Gyroscope.csv").read_bytes()
    cols = ["time", "x", "y", "z"]
    whole = parse_table(data, "g", usecols=cols)
    blocks = list(iter_tables(Trickle(data), "g", usecols=cols, block_bytes=5000))
    assert len(blocks) > 100
    np.testing.assert_array_equal(np.concatenate([b.data for b in blocks]), whole.data)
    assert [b.first_line for b in blocks[:2]] == [2, 2 + len(blocks[0].data)]
