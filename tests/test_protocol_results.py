"""Protocol 1.2's result frame against a 1.1 host: the host as committed before 1.2 (its
``protocol.py`` from git) decodes a 1.2 stream as it always did, dropping only what it does
not know."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from firmware_bridge import DeviceInfo, ResultFrame, SampleFrame, StreamDecoder, encode_serial
from firmware_bridge.protocol import RESULT_ACTIVITY_CHANGE, DropReason
from tests.conftest import REPO

# The last commit whose protocol.py speaks 1.1.
PROTOCOL_1_1 = "42406c6"


@pytest.fixture(scope="module")
def old_protocol(tmp_path_factory):
    try:
        text = subprocess.run(
            ["git", "show", f"{PROTOCOL_1_1}:firmware_bridge/protocol.py"],
            cwd=REPO, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"no git history to read the 1.1 host from: {exc}")
    path = tmp_path_factory.mktemp("old") / "protocol_1_1.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("protocol_1_1", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["protocol_1_1"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    assert module.PROTOCOL_MINOR == 1
    return module


def _stream() -> tuple[bytes, list]:
    info = DeviceInfo(7, 50_000, 16, 2000, mounting=(1, 2, 3), outputs=1)
    frames = [SampleFrame(i, 100_000 * i, np.full((5, 6), i, np.int16)) for i in range(4)]
    results = [ResultFrame(0, 2_540_000, 3, 200), ResultFrame(1, 2_740_000, 3, 210, 1, 60_000, 1)]
    messages = [info, frames[0], results[0], frames[1], frames[2], results[1], frames[3]]
    return b"\x00" + b"".join(encode_serial(m) for m in messages), messages


def test_a_1_1_host_keeps_the_samples_and_drops_result_frames_as_unknown(old_protocol) -> None:
    data, messages = _stream()
    old = old_protocol.StreamDecoder()
    got = old.feed(data)
    assert [type(m).__name__ for m in got] == ["DeviceInfo"] + ["SampleFrame"] * 4
    assert got[0].mounting == (1, 2, 3) and got[0].protocol_minor == 2  # 19 bytes, 18 read
    samples = [m for m in messages if isinstance(m, SampleFrame)]
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(got[1:], samples, strict=True))
    assert old.stats.dropped_total == 2
    assert old.stats.dropped[old_protocol.DropReason.UNKNOWN_TYPE] == 2


def test_a_1_2_host_decodes_every_message(old_protocol) -> None:
    data, messages = _stream()
    new = StreamDecoder()
    assert new.feed(data) == messages and new.stats.dropped_total == 0
    assert messages[5].activity_change and messages[5].flags == RESULT_ACTIVITY_CHANGE
    assert new.stats.dropped[DropReason.BAD_FIELD] == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"flags": 0x02}, "confirmation"),  # a fall without a confirmation
        ({"flags": 0x04}, "confirmation"),  # a confirmation without a fall
        ({"flags": 0x10}, "reserved"),
        ({"activity": None, "flags": 0x01}, "without an activity"),
    ],
)
def test_result_frame_refuses_flags_a_host_would_drop(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        ResultFrame(**({"seq": 0, "timestamp_us": 0, "activity": 1} | kwargs))


def test_outputs_that_send_nothing_are_refused() -> None:
    with pytest.raises(ValueError, match="outputs"):
        DeviceInfo(1, 50_000, 16, 2000, outputs=2)
