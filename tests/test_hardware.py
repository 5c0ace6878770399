"""Opt-in tests against real hardware (bleak's integration-test style).

Set ``GAITEDGE_BLE_ADDRESS`` to a device speaking the gaitedge GATT service, or
``GAITEDGE_SERIAL_PORT`` to one on a serial port; otherwise these skip. CI has neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

import numpy as np
import pytest

from gaitedge.sources import BleSource, SerialSource

BLE_ADDRESS = os.environ.get("GAITEDGE_BLE_ADDRESS")
SERIAL_PORT = os.environ.get("GAITEDGE_SERIAL_PORT")


async def _first_seconds(source, seconds: float = 3.0):
    chunks = []

    async def run():
        async with source:
            async for chunk in source.chunks():
                chunks.append(chunk)

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run(), seconds)
    return chunks


def _check_stream(chunks) -> None:
    assert chunks, "no samples in 3 s"
    t = np.concatenate([c.t_s for c in chunks])
    imu = np.concatenate([c.imu for c in chunks])
    assert (np.diff(t) > 0).all()
    gravity = np.median(np.linalg.norm(imu[:, :3], axis=1))
    assert 8.0 < gravity < 11.5, f"|acc| median {gravity:.2f} m/s²: scale or units wrong"


@pytest.mark.hardware
@pytest.mark.skipif(not BLE_ADDRESS, reason="set GAITEDGE_BLE_ADDRESS to test a real BLE device")
def test_real_ble_device_streams_plausible_samples():
    _check_stream(asyncio.run(_first_seconds(BleSource(BLE_ADDRESS))))


@pytest.mark.hardware
@pytest.mark.skipif(not SERIAL_PORT, reason="set GAITEDGE_SERIAL_PORT to test a real device")
def test_real_serial_device_streams_plausible_samples():
    _check_stream(asyncio.run(_first_seconds(SerialSource(SERIAL_PORT))))
