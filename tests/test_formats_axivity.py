"""Axivity ``.cwa``: the wild AX6 file read as the device wrote it and pinned against
scikit-digital-health's ``ReadCwa`` (an outside reference: MIT, its own Fortran decoder), the
layout's fields decoded from hand-built bytes, the emulated AX6 and AX3 files checked with skdh
too (so the writer is not only pinned by our reader), and bad files refused in one line."""

from __future__ import annotations

import datetime as dt
import shutil
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

from firmware_bridge.exports import axivity as app
from gaitedge.formats import Container, FormatError, ReadOptions, SensorKind, open_chunks, read
from gaitedge.formats import axivity as reader
from gaitedge.recording import Recording
from gaitedge.units import STANDARD_GRAVITY_M_S2 as G
from tests.conftest import missing
from tests.test_formats_metabase import assert_matches_canonical, canonical_excerpt

WILD = "axivity_ax6-sample"
FILE = "ax6_sample.cwa"
EPOCH = dt.datetime(1970, 1, 1)


@pytest.fixture(scope="module")
def skdh_read():
    """skdh's ``ReadCwa().predict(file=...)`` (dev extra; required under CI=true)."""
    try:
        from skdh.io import ReadCwa
    except ImportError:
        missing("scikit-digital-health (skdh) is not installed: pip install -e '.[dev]'")

    def run(path: Path) -> dict:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # naive local time, no tz: said in our rules too
            return ReadCwa().predict(file=str(path))

    return run


@pytest.fixture(scope="module")
def canonical() -> Recording:
    return canonical_excerpt()


@pytest.fixture
def wild_file(wild_exports) -> Path:
    return wild_exports / WILD / FILE


def _export(path: Path, options: ReadOptions | None = None):
    with Container(path) as c:
        return reader.read(c, options or ReadOptions())


def _right_handed_corr(t: np.ndarray, acc: np.ndarray, gyro: np.ndarray) -> float:
    """Correlation of d(acc)/dt with acc x gyro below 0.5 Hz: a world-fixed vector (gravity)
    seen from a sensor turning at w changes as v x w when the gyroscope is right-handed about the
    accelerometer's axes (and as -v x w when its sign is flipped)."""
    sos = butter(2, 0.5, fs=1.0 / np.median(np.diff(t)), output="sos")
    a, w = sosfiltfilt(sos, acc, axis=0), sosfiltfilt(sos, gyro, axis=0)
    da, pred = np.gradient(a, t, axis=0), np.cross(a, w)
    return float(np.sum(da * pred) / np.sqrt(np.sum(da**2) * np.sum(pred**2)))


# -- the wild AX6 file ---------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["file", "folder", "zip"])
def test_wild_ax6_reads_as_the_device_wrote_it(wild_exports, tmp_path, given):
    path = {
        "file": wild_exports / WILD / FILE,
        "folder": wild_exports / WILD,
        "zip": Path(shutil.make_archive(str(tmp_path / "ax6"), "zip", wild_exports / WILD)),
    }[given]
    rec = read(path)
    src = rec.source
    assert src.format == "axivity"
    acc, gyro = src.sensors
    # README: 259 AX sectors of 40 samples x 6 axes, 100 Hz configured, ±16 g, gyro ±2000 dps,
    # deviceId 48026 (the header's lower word; the upper word 0x005b makes it 6011802).
    assert (acc.unit, gyro.unit, acc.samples, gyro.samples) == ("g", "deg/s", 10360, 10360)
    assert src.rules[0] == (
        "AX6 6011802 (session 0): 259 sectors, 6 axes int16, 10360 samples, configured 100 Hz, "
        "±16 g"
    )
    assert "units: acceleration 1/2048 g per count, rotation rate ±2000 deg/s full scale" in (
        src.rules
    )
    # Starts 2019-10-29 09:03:06 device-local (+0.3 s: the first sample lies 30 samples after
    # the whole second); the device's clock is slow: 10360 samples span 105.26 s, not 103.6.
    assert (
        rec.timestamp_s[0] == (dt.datetime(2019, 10, 29, 9, 3, 6, 300000) - EPOCH).total_seconds()
    )
    assert "starting 2019-10-29 09:03:06.300 device-local" in src.rules[1]
    assert src.start_epoch_s is None  # local time without a zone is not an epoch
    assert len(rec) == 10360 and rec.duration_s == pytest.approx(105.26, abs=0.005)
    # Gravity 1.013 g (the device's own calibration); on its z axis -0.974 g where it lies
    # still (80-82 s): the sensor face down, read as written (no flip).
    assert np.median(np.linalg.norm(rec.imu[:, :3], axis=1)) == pytest.approx(1.0132 * G, abs=0.01)
    still = slice(8000, 8200)
    assert np.linalg.norm(rec.imu[still, :3], axis=1).std() < 0.03
    np.testing.assert_allclose(
        rec.imu[still, :3].mean(axis=0), np.array([0.155, 0.042, -0.974]) * G, atol=0.02
    )
    # The gyroscope turns right-handed about the accelerometer's axes (openmovement "AX
    # Orientation": positive rotations clockwise looking out along an axis).
    corr = _right_handed_corr(rec.timestamp_s, rec.imu[:, :3], rec.imu[:, 3:])
    assert corr > 0.7
    assert _right_handed_corr(rec.timestamp_s, rec.imu[:, :3], -rec.imu[:, 3:]) < -0.7


def test_wild_ax6_equals_skdh_readcwa(wild_file, skdh_read):
    ref = skdh_read(wild_file)
    export = _export(wild_file)
    acc, gyro = export.get(SensorKind.ACC), export.get(SensorKind.GYRO)
    # Same sample times (skdh's per-sector spreading, device-local seconds since 1970) and the
    # same values in g and deg/s, to float precision.
    np.testing.assert_allclose(acc.t_s, ref["time"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(gyro.t_s, acc.t_s)
    np.testing.assert_allclose(acc.xyz / G, ref["accel"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.degrees(gyro.xyz), ref["gyro"], rtol=0, atol=1e-9)
    assert ref["fs"] == 100.0


def test_blocks_of_any_size_give_the_same_samples(wild_file):
    with wild_file.open("rb") as f:
        whole = list(reader.CwaReader(f, "w").blocks())
    with wild_file.open("rb") as f:
        small = reader.CwaReader(f, "w", block_sectors=7)
        parts = list(small.blocks())
    assert len(whole) == 1 and len(parts) == 37  # 259 sectors = 37 x 7
    for field in ("t_s", "acc_g", "gyro_dps"):
        np.testing.assert_array_equal(
            np.concatenate([getattr(b, field) for b in parts]), getattr(whole[0], field)
        )
    assert small.stats.samples == 10360 and small.stats.sectors == 259


# -- the layout, from hand-built bytes -----------------------------------------------------------


def test_header_fields_of_the_wild_file(wild_file):
    head = reader.parse_header(wild_file.read_bytes()[:1024], "w")
    assert head == reader.CwaHeader(
        device_type="AX6",
        device_id=0x005B << 16 | 48026,
        session_id=0,
        sensor_config=0x02,
        rate_hz=100.0,
        accel_range_g=16,
        gyro_range_dps=2000.0,
        header_bytes=1024,
    )


def test_packed_timestamp_and_dword_decoding():
    # 2019-10-29 09:03:06 packed as YYYYYYMM MMDDDDDh hhhhmmmm mmssssss (the wild file's first
    # sector: 0x4EBA90C6), and 2000-02-29 23:59:59 across the leap day.
    packed = np.array(
        [0x4EBA90C6, (0 << 26) | (2 << 22) | (29 << 17) | (23 << 12) | (59 << 6) | 59]
    )
    t, ok = reader.unpack_timestamps(packed)
    assert ok.all()
    assert t[0] == (dt.datetime(2019, 10, 29, 9, 3, 6) - EPOCH).total_seconds()
    assert t[1] == (dt.datetime(2000, 2, 29, 23, 59, 59) - EPOCH).total_seconds()
    assert not reader.unpack_timestamps(np.array([13 << 22 | 1 << 17]))[1][0]  # month 13
    # AX3 packed DWORD eezzzzzz zzzzyyyy yyyyyyxx xxxxxxxx: x = -1, y = 511, z = -512, e = 2.
    dword = (2 << 30) | ((-512 & 0x3FF) << 20) | (511 << 10) | (-1 & 0x3FF)
    payload = np.zeros((1, 480), dtype=np.uint8)
    payload[0, :4] = np.frombuffer(struct.pack("<I", dword), dtype=np.uint8)
    np.testing.assert_array_equal(reader._unpack_dwords(payload)[0, 0], [-4, 2044, -2048])


# -- the emulated device, checked by skdh and by our reader ------------------------------------


def test_emulated_ax6_read_by_skdh_and_by_us(canonical, tmp_path, skdh_read):
    path = app.VARIANTS["ax6"](canonical, tmp_path)
    assert path.name == "CWA-DATA.CWA"
    ref = skdh_read(path)
    start = (app.START_LOCAL - EPOCH).total_seconds()
    # skdh: the device's 100 Hz clock from START_LOCAL; 59.98 s give 5999 samples, of which
    # the 149 whole sectors of 40 are written.
    assert len(ref["time"]) == 149 * 40
    np.testing.assert_allclose(ref["time"] - start, np.arange(len(ref["time"])) / 100, atol=1e-6)
    # The canonical signal at those instants, within the int16 quantisation: 1/2048 g and
    # 2000/32768 deg/s full steps (half a step each way), in skdh's units; plus what the float64
    # stamps' resolution near 1.7e9 s (2.4e-7 s) moves a signal turning at 1000 deg/s/s.
    t = ref["time"] - start
    at = np.stack([np.interp(t, canonical.timestamp_s, canonical.imu[:, c]) for c in range(6)], 1)
    assert np.abs(ref["accel"] - at[:, :3] / G).max() <= 0.5 / 2048 + 1e-5
    assert np.abs(ref["gyro"] - np.degrees(at[:, 3:])).max() <= 0.5 * 2000 / 32768 + 1e-3
    # Our reader gives skdh's answer on the emulated file too, and the canonical recording back.
    rec = read(path)
    np.testing.assert_allclose(rec.timestamp_s, ref["time"], rtol=0, atol=1e-6)
    assert rec.median_rate_hz == pytest.approx(100.0, rel=1e-6)
    assert_matches_canonical(rec, canonical, start, acc_m_s2=0.003, gyro_rad_s=0.0006)


def test_emulated_ax3_read_by_skdh_and_refused_by_us(canonical, tmp_path, skdh_read):
    path = app.ACCEL_ONLY_VARIANTS["ax3"](canonical, tmp_path)
    ref = skdh_read(path)
    assert "gyro" not in ref and ref["accel"].shape[1] == 3
    start = (app.START_LOCAL - EPOCH).total_seconds()
    t = ref["time"] - start
    at = np.stack([np.interp(t, canonical.timestamp_s, canonical.imu[:, c]) for c in range(3)], 1)
    # Packed 10-bit with an exponent at 256 counts per g: within 2^e / 2 counts, e <= 1 here
    # (|a| < 4 g).
    assert np.abs(ref["accel"] - at / G).max() <= 1.0 / 256 + 1e-5
    export = _export(path)
    assert export.get(SensorKind.GYRO) is None
    np.testing.assert_allclose(export.get(SensorKind.ACC).xyz / G, ref["accel"], atol=1e-12)
    assert "accelerometer only (header sensorConfig 0x00, 3 axes per sample): no gyroscope" in (
        export.rules
    )
    with pytest.raises(FormatError) as exc:
        read(path)
    assert str(exc.value) == (
        f"{path}: this axivity export has an accelerometer but no gyroscope; the model needs "
        "both (6 axes) and is never fed zeros; an AX3 (or an AX6 set to accelerometer only) "
        "records no gyroscope: record with an AX6 configured for accelerometer + gyroscope in "
        "OmGui"
    )
    # For the accelerometer-only model: skdh's accelerations alone ([N, 3], nothing padded),
    # whole or streamed in chunks alike.
    options = ReadOptions(accelerometer_only=True)
    rec = read(path, options=options)
    assert rec.imu.shape == (len(ref["time"]), 3)
    np.testing.assert_allclose(rec.imu / G, ref["accel"], atol=1e-12)
    np.testing.assert_allclose(rec.timestamp_s, ref["time"], rtol=0, atol=1e-6)
    chunks = list(open_chunks(path, options=options))
    assert len(chunks) > 1 and all(c.imu.shape[1] == 3 for c in chunks)
    np.testing.assert_array_equal(np.concatenate([c.imu for c in chunks]), rec.imu)


# -- bad files -----------------------------------------------------------------------------------


def _copy(wild_file: Path, tmp_path: Path, edit=None, keep: int | None = None) -> Path:
    data = bytearray(wild_file.read_bytes())
    if edit:
        edit(data)
    path = tmp_path / "rec.cwa"
    path.write_bytes(bytes(data[:keep]))
    return path


def _sector(k: int) -> slice:
    return slice(1024 + 512 * k, 1024 + 512 * (k + 1))


def test_bad_checksum_sector_is_left_out_and_counted(wild_file, tmp_path):
    def corrupt(data):
        data[_sector(5).start + 100] ^= 0x01

    path = _copy(wild_file, tmp_path, corrupt)
    acc = _export(path).get(SensorKind.ACC)
    assert len(acc.t_s) == 10360 - 40
    gap = np.diff(acc.t_s)[5 * 40 - 1]
    assert 0.40 < gap < 0.43  # the sector's 0.4 s is a gap, not squeezed out
    rule = "1 sectors with a bad checksum left out (40 samples; the join sees the gap)"
    assert rule in read(path).source.rules


def test_truncated_file_keeps_its_whole_sectors(wild_file, tmp_path):
    rec = read(_copy(wild_file, tmp_path, keep=1024 + 512 * 100 + 200))
    assert len(rec) == 100 * 40
    assert "a truncated last sector of 200 bytes left out" in rec.source.rules


def test_header_only_file_is_refused(wild_file, tmp_path):
    path = _copy(wild_file, tmp_path, keep=1024)
    with pytest.raises(FormatError, match=r"rec\.cwa: no readable data sectors \(0 sectors"):
        read(path)


def test_a_sector_with_another_configuration_is_refused(wild_file, tmp_path):
    def three_axes(data):
        sec = _sector(3)
        data[sec.start + 25] = 0x32
        words = np.frombuffer(bytes(data[sec.start : sec.stop - 2]), dtype="<u2")
        data[sec.stop - 2 : sec.stop] = struct.pack("<H", (-int(words.sum())) & 0xFFFF)

    path = _copy(wild_file, tmp_path, three_axes)
    with pytest.raises(FormatError) as exc:
        read(path)
    assert str(exc.value) == (
        f"{path}: sector 3: numAxesBPS 0x32 and rate code 0x0a differ from the first sector's "
        "(0x62, 0x0a); one configuration per file"
    )


def test_wrong_format_and_truncated_zip(wild_exports, wild_file, tmp_path):
    with pytest.raises(FormatError, match="does not look like a movesense export"):
        read(wild_file, format="movesense")
    zpath = tmp_path / "ax6.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.write(wild_file, FILE)
    cut = tmp_path / "cut.zip"
    cut.write_bytes(zpath.read_bytes()[:5000])
    with pytest.raises(FormatError, match=r"cut\.zip: a truncated or damaged zip"):
        read(cut)


def test_two_recordings_in_a_folder_need_a_choice(wild_file, tmp_path):
    for name in ("left.cwa", "right.cwa"):
        shutil.copy(wild_file, tmp_path / name)
    with pytest.raises(FormatError) as exc:
        read(tmp_path)
    assert str(exc.value) == (
        f"{tmp_path}: 2 CWA recordings (left.cwa, right.cwa); give one (or --device with part of "
        "its name)"
    )
    assert len(read(tmp_path, options=ReadOptions(device="right"))) == 10360


def test_a_text_file_opening_with_md_is_not_a_cwa(tmp_path):
    path = tmp_path / "hashes.csv"
    path.write_text("MD5,size\n" + "d41d8cd98f00b204e9800998ecf8427e,0\n" * 100)
    with Container(path) as c:
        assert reader.detect(c) is None


def test_erased_sectors_at_the_end_are_skipped_without_warnings(wild_file, tmp_path):
    """The real AX6 file with three zero-filled (erased) sectors after its data, as a device's
    unused space reads: numpy's divide-by-zero warnings reached stderr on every command (a
    sector's rate code 0 shifted in uint8); skipped and said so, the same samples read."""
    padded = tmp_path / "padded.cwa"
    padded.write_bytes(wild_file.read_bytes() + bytes(3 * 512))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec = read(padded)
    want = read(wild_file)
    np.testing.assert_array_equal(rec.imu, want.imu)
    assert any("3 sectors that are not data" in r for r in rec.source.rules), rec.source.rules
