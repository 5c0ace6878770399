"""Emulated phones on the network: Sensor Logger pushing a recording (HTTP POST or MQTT), and
phyphox's remote-access server serving one.

Kept apart from the decoders (``gaitedge.sources.phone``, ``http``, ``mqtt``, ``phyphox``): what
these write is anchored on the vendors' documents, not on the readers.

* Sensor Logger (``awesome-sensor-logger`` PUSHING.md, UNITS.md; vendor-formats.md §A1): one JSON
  message per batch period, ``{"messageId", "sessionId", "deviceId", "payload": [...]}``,
  ``messageId`` counting from 0, each reading ``{"name": <lower case>, "time": <epoch ns>,
  "values": {"x", "y", "z"}}`` (plus ``accuracy`` on Android), numbers as JavaScript prints them.
  The sensors are rendered as the app's file exports are (``firmware_bridge.exports``): Android
  ``accelerometer`` (without gravity) and ``totalacceleration`` at ~100 Hz and ``gyroscope`` at
  ~400 Hz, each on its own stamps; iOS one CoreMotion update at 100 Hz giving ``accelerometer``,
  ``gravity`` and ``gyroscope`` the same stamps, acceleration and gravity negated unless
  standardised.
* phyphox (``RemoteServer.java``; vendor-formats.md §A2): ``/config`` (inputs and their
  buffers), ``/control?cmd=start|stop``, ``/time``, and ``/get?buf=<threshold>|<reference>``
  answering ``{"buffer": {name: {"size", "updateMode", "buffer": [...]}}, "status": {...}}``
  with numbers formatted ``0.#######E0``, the threshold nudged up by
  ``10^floor(log10(|t| / 1e7))`` as the app does. A simple experiment's buffers (``acc_time``,
  ``accX``.., ``gyr_time``, ``gyrX``..; ``SimpleExperimentCreator.java``) fill as time passes.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from firmware_bridge.exports._common import gravity_split, resample
from firmware_bridge.exports.sensorlogger import FIRST_SAMPLE_EPOCH_S, js_number

ANDROID_ACC_HZ = 100.0
ANDROID_GYRO_HZ = 400.0
IOS_HZ = 100.0
# Sensor Logger's accuracy field on Android (SensorManager.SENSOR_STATUS_ACCURACY_HIGH).
ANDROID_ACCURACY = 3


@dataclass(frozen=True)
class PushConfig:
    """How the emulated Sensor Logger renders and batches a recording."""

    platform: str = "android"  # or "ios"
    standardised: bool = False  # iOS "Standardise Units & Frames"
    batch_s: float = 0.2  # the app's batch period setting
    device_id: str = "33de95da-c360-488a-8c16-33210f9e805a"
    session_id: str = "f0a8e1b2-6b7c-4f00-9d3e-2c1b0e5a7d11"
    start_epoch_s: float = FIRST_SAMPLE_EPOCH_S


def sensor_streams(
    t_s: np.ndarray, imu: np.ndarray, config: PushConfig
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A canonical recording as the phone's sensors report it: name -> (epoch ms [N] float64,
    values [N, 3] as the app sends them: platform sign, float32 where the sensor is)."""
    t = t_s - t_s[0]
    acc, gyro = imu[:, :3], imu[:, 3:]

    def ms(rel_s: np.ndarray) -> np.ndarray:
        return np.round((config.start_epoch_s + rel_s) * 1e3, 3)  # the app's float ms stamps

    def f32(x: np.ndarray) -> np.ndarray:
        return x.astype(np.float32).astype(np.float64)

    if config.platform == "android":
        linear, _ = gravity_split(t, acc)
        t_tot, total = resample(t, acc, ANDROID_ACC_HZ, jitter_s=1e-3, seed=1, bandlimited=True)
        t_lin, lin = resample(
            t, linear, ANDROID_ACC_HZ, jitter_s=1e-3, offset_s=0.004, seed=2, bandlimited=True
        )
        t_gyr, gyr = resample(
            t, gyro, ANDROID_GYRO_HZ, jitter_s=2e-4, offset_s=0.001, seed=3, bandlimited=True
        )
        return {
            "accelerometer": (ms(t_lin), f32(lin)),
            "gyroscope": (ms(t_gyr), f32(gyr)),
            "totalacceleration": (ms(t_tot), f32(total)),
        }
    linear, gravity = gravity_split(t, acc)
    t100, both = resample(
        t, np.hstack([linear, gravity, gyro]), IOS_HZ, jitter_s=2e-4, seed=4, bandlimited=True
    )
    sign = 1.0 if config.standardised else -1.0
    stamps = ms(t100)
    return {
        "accelerometer": (stamps, sign * both[:, :3]),
        "gravity": (stamps, sign * both[:, 3:6]),
        "gyroscope": (stamps, f32(both[:, 6:])),
    }


def reading_json(name: str, stamp_ms: float, xyz: np.ndarray, accuracy: int | None) -> str:
    """One payload entry as the app writes it (JavaScript's number printing)."""
    x, y, z = (js_number(float(v)) for v in xyz)
    extra = "" if accuracy is None else f',"accuracy":{accuracy}'
    return (
        f'{{"name":"{name}","time":{js_number(stamp_ms * 1e6)},'
        f'"values":{{"x":{x},"y":{y},"z":{z}}}{extra}}}'
    )


def js_numbers(values: np.ndarray) -> list[str]:
    """A column as JavaScript prints it: Python's repr has the same shortest digits; only
    exponents and whole numbers are written differently (those go through js_number)."""
    floats = values.tolist()
    return [
        s if "e" not in s and s[-2:] != ".0" else js_number(v)
        for s, v in zip(map(repr, floats), floats, strict=True)
    ]


def _epoch_ns_text(stamps_ms: np.ndarray) -> list[str]:
    """``time``: the ms stamp times 1e6 as JavaScript prints it; from 1e18 to 1e19 that is
    repr's digits padded with zeros to 19 (js_number's result without its per-value cost)."""
    ns = stamps_ms * 1e6
    if not ((ns >= 1e18) & (ns < 1e19)).all():
        return js_numbers(ns)
    return [r.partition("e")[0].replace(".", "").ljust(19, "0") for r in map(repr, ns.tolist())]


def push_messages(t_s: np.ndarray, imu: np.ndarray, config: PushConfig) -> list[str]:
    """The recording as the app's push bodies, in ``messageId`` order (0, 1, ...): every
    reading stamped inside one batch period goes in that period's message (the same text as
    :func:`reading_json`, written a column at a time)."""
    streams = sensor_streams(t_s, imu, config)
    start_ms = config.start_epoch_s * 1e3
    end_ms = max(ms[-1] for ms, _ in streams.values())
    n = math.floor((end_ms - start_ms) / (config.batch_s * 1e3)) + 1
    extra = f',"accuracy":{ANDROID_ACCURACY}' if config.platform == "android" else ""
    per_batch: list[list[str]] = [[] for _ in range(n)]
    for name, (stamps, xyz) in streams.items():
        batch = ((stamps - start_ms) // (config.batch_s * 1e3)).astype(int).tolist()
        cols = [_epoch_ns_text(stamps)] + [js_numbers(xyz[:, c]) for c in range(3)]
        for b, ns, x, y, z in zip(batch, *cols, strict=True):
            per_batch[b].append(
                f'{{"name":"{name}","time":{ns},"values":{{"x":{x},"y":{y},"z":{z}}}{extra}}}'
            )
    return [
        f'{{"messageId":{i},"sessionId":"{config.session_id}",'
        f'"deviceId":"{config.device_id}","payload":[{",".join(p)}]}}'
        for i, p in enumerate(per_batch)
    ]


def delivery_order(n: int, *, swap_p: float = 0.0, drop: frozenset[int] = frozenset(), seed=0):
    """The order messages reach the server: adjacent messages swapped with probability
    ``swap_p`` (two HTTP requests racing, an MQTT broker's QoS 0), ``drop`` never sent."""
    order = [i for i in range(n) if i not in drop]
    rng = np.random.default_rng(seed)
    i = 0
    while i < len(order) - 1:
        if rng.random() < swap_p:
            order[i], order[i + 1] = order[i + 1], order[i]
            i += 2
        else:
            i += 1
    return order


def paced(
    bodies: list[str], order: list[int], batch_s: float, speed: float, delay_s: float = 0.0
) -> Iterator[tuple[int, str]]:
    """Yield (messageId, body) at the wall time each batch is complete (``speed`` x real time),
    the recording starting ``delay_s`` from now."""
    start = time.monotonic() + delay_s
    for i in order:
        due = start + (i + 1) * batch_s / speed
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        yield i, bodies[i]


def post(url: str, body: str, *, headers: dict[str, str] | None = None, context=None) -> int:
    """One HTTP POST as the app makes it (JSON body); returns the status code."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url,
        data=body.encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class PushingPhone:
    """Sensor Logger pushing a recording from a background thread (HTTP or MQTT).

    Args:
        send: ``send(body, stop) -> None`` (an HTTP POST, an MQTT publish); ``stop`` is set
            when the phone is told to stop (a sender waiting for its server gives up).
        bodies, order: from :func:`push_messages` and :func:`delivery_order`.
    """

    def __init__(
        self,
        send,
        bodies: list[str],
        order: list[int],
        *,
        batch_s: float,
        speed: float = 1.0,
        delay_s: float = 0.0,
    ) -> None:
        self.sent = 0
        self.errors: list[BaseException] = []
        self._args = (send, bodies, order, batch_s, speed, delay_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emulated-phone", daemon=True)

    def _run(self) -> None:
        send, bodies, order, batch_s, speed, delay_s = self._args
        try:
            for _, body in paced(bodies, order, batch_s, speed, delay_s):
                if self._stop.is_set():
                    return
                send(body, self._stop)
                self.sent += 1
        except BaseException as exc:  # reported to the test, not swallowed
            self.errors.append(exc)

    def __enter__(self) -> PushingPhone:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def join(self, timeout_s: float) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()


def java_sci(x: float) -> str:
    """``x`` as phyphox's ``DecimalFormat("0.#######E0")`` (English) prints it: 8 significant
    digits, trailing zeros dropped, ``E`` and the exponent without sign padding."""
    if x == 0:
        return "0E0"
    mantissa, exponent = f"{x:.7e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}E{int(exponent)}"


class EmulatedPhyphox:
    """phyphox's remote access on 127.0.0.1 for a simple experiment (accelerometer +
    gyroscope), its buffers filling from ``t_s``/``imu`` as (``speed`` x) real time passes
    after ``/control?cmd=start``. ``stop()`` and ``start()`` pause and resume as the app does
    (the experiment clock pauses; buffers are kept)."""

    ACC_HZ = 100.0
    GYRO_HZ = 200.0
    FIRST_S = 0.0367  # the first sample's experiment time (not 0: vendor-formats.md §A2)

    def __init__(self, t_s: np.ndarray, imu: np.ndarray, *, speed: float = 1.0, port: int = 0):
        t = t_s - t_s[0]
        ta, acc = resample(t, imu[:, :3], self.ACC_HZ, jitter_s=1e-3, seed=5, bandlimited=True)
        tg, gyr = resample(
            t, imu[:, 3:], self.GYRO_HZ, jitter_s=5e-4, offset_s=0.003, seed=6, bandlimited=True
        )
        self.acc = (ta + self.FIRST_S, acc)
        self.gyro = (tg + self.FIRST_S, gyr)
        self.speed = speed
        self.session = uuid.uuid4().hex[:8]
        self.measuring = False
        self.requests = 0
        self.offline_until = 0.0  # host time until which the Wi-Fi link is down
        self._run_start: float | None = None  # host time the current run started
        self._elapsed_s = 0.0  # experiment time of earlier runs
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> EmulatedPhyphox:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def start(self) -> bool:
        with self._lock:
            if not self.measuring:
                self.measuring, self._run_start = True, time.monotonic()
        return True

    def offline_for(self, seconds: float) -> None:
        """The phone's Wi-Fi drops: requests are cut off unanswered for ``seconds``."""
        self.offline_until = time.monotonic() + seconds

    def stop(self) -> None:
        with self._lock:
            if self.measuring:
                self._elapsed_s += (time.monotonic() - self._run_start) * self.speed
                self.measuring = False

    def experiment_time_s(self) -> float:
        with self._lock:
            running = (time.monotonic() - self._run_start) * self.speed if self.measuring else 0
            return self._elapsed_s + running

    def buffers(self) -> dict[str, np.ndarray]:
        now = self.experiment_time_s()
        out = {}
        for prefix, time_name, (t, x) in (
            ("acc", "acc_time", self.acc),
            ("gyr", "gyr_time", self.gyro),
        ):
            n = int(np.searchsorted(t, now, side="right"))
            out[time_name] = t[:n]
            for c, axis in enumerate("XYZ"):
                out[f"{prefix}{axis}"] = x[:n, c]
        return out

    def config(self) -> dict:
        sensors = (("accelerometer", "acc", "acc_time"), ("gyroscope", "gyr", "gyr_time"))
        return {
            "crc32": "6c0f5a3e",
            "title": "gait",
            "localTitle": "gait",
            "category": "New experiment",
            "localCategory": "New experiment",
            "buffers": [
                {"name": n, "size": 0}
                for _, p, tn in sensors
                for n in (tn, f"{p}X", f"{p}Y", f"{p}Z")
            ],
            "inputs": [
                {
                    "source": source,
                    "outputs": [{"x": f"{p}X"}, {"y": f"{p}Y"}, {"z": f"{p}Z"}, {"t": tn}],
                }
                for source, p, tn in sensors
            ],
            "export": [],
        }

    def get(self, params: list[tuple[str, str]]) -> str:
        """``/get``'s body for its query (RemoteServer.handleGet)."""
        buffers = self.buffers()
        parts, seen = [], set()
        for name, value in params:
            if name in seen or name not in buffers:
                continue
            seen.add(name)
            data = buffers[name]
            if value == "":
                mode = "single"
                values = [data[-1]] if len(data) else [math.nan]
            elif value == "full":
                mode, values = "full", list(data)
            else:
                mode = "partial"
                threshold_text, _, reference = value.partition("|")
                threshold = float(threshold_text)
                threshold += 10 ** math.floor(math.log10(abs(threshold) / 1e7)) if threshold else 0
                ref = buffers.get(reference or name, data)
                n = min(len(ref), len(data))
                values = data[:n][ref[:n] > threshold].tolist()
            text = ",".join("null" if not math.isfinite(v) else java_sci(v) for v in values)
            parts.append(f'"{name}":{{"size":0,"updateMode":"{mode}", "buffer":[{text}]}}')
        status = (
            f'"session":"{self.session}", "measuring":{str(self.measuring).lower()}, '
            '"timedRun":false, "countDown":0'
        )
        return '{"buffer":{\n' + ",\n".join(parts) + '\n},\n"status":{\n' + status + "\n}\n}\n"

    def _handler(self):
        phone = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, body: str, status: int = 200) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if time.monotonic() < phone.offline_until:
                    self.close_connection = True  # no answer: the client sees the link drop
                    return
                phone.requests += 1
                url = urllib.parse.urlsplit(self.path)
                params = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
                if url.path == "/config":
                    self._send(json.dumps(phone.config()))
                elif url.path == "/get":
                    try:
                        self._send(phone.get(params))
                    except ValueError:
                        self._send('{"error": "Invalid threshold."}', 400)
                elif url.path == "/control":
                    cmd = dict(params).get("cmd")
                    if cmd == "start":
                        ok = phone.start()
                    elif cmd == "stop":
                        phone.stop()
                        ok = True
                    else:
                        ok = False
                    self._send(json.dumps({"result": ok}))
                elif url.path == "/time":
                    self._send(json.dumps([]))
                else:
                    self._send('{"error": "Unknown path."}', 404)

        return Handler


def free_port() -> int:
    """A TCP port free on loopback now (for a listener the phone is told about first)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_sender(url: str, *, context=None, patience_s: float = 10.0, codes: list | None = None):
    """``send(body)`` POSTing to ``url`` as the app does, waiting (up to ``patience_s``) for a
    listener that is not up yet; each answer's status code is appended to ``codes``."""
    import urllib.error

    def send(body: str, stop: threading.Event) -> None:
        deadline = time.monotonic() + patience_s
        while True:
            try:
                code = post(url, body, context=context)
                break
            except urllib.error.URLError:
                if time.monotonic() > deadline:
                    raise
                if stop.wait(0.05):
                    return
        if codes is not None:
            codes.append(code)

    return send


@contextlib.contextmanager
def emulated_sensor_logger(
    url: str, t_s: np.ndarray, imu: np.ndarray, *, config: PushConfig | None = None, speed=1.0
) -> Iterator[PushingPhone]:
    """Sensor Logger pushing ``t_s``/``imu`` to ``url`` (its HTTP Push URL) in the background."""
    config = config or PushConfig()
    bodies = push_messages(t_s, imu, config)
    order = list(range(len(bodies)))
    with PushingPhone(
        http_sender(url), bodies, order, batch_s=config.batch_s, speed=speed
    ) as phone:
        yield phone
