"""deploy/: what can be checked without a Jetson. The systemd unit (``systemd-analyze verify``
where systemd is installed, and parsed), the udev rule (parsed with udev's syntax), the
Dockerfile's install order, the package metadata that keeps a GPU onnxruntime from being
overwritten, and the image check's verdicts."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import PurePosixPath

import pytest
from packaging.requirements import Requirement

from tests.conftest import REPO

DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "gaitedge-listen@.service"
RULE = DEPLOY / "99-gaitedge.rules"
sys.path.insert(0, str(DEPLOY))
import image_check  # noqa: E402 - deploy/ is scripts, not a package


def unit_sections(text: str) -> dict[str, dict[str, list[str]]]:
    """systemd's INI dialect: sections of ``Key=value`` lines, keys may repeat."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif "=" in line and current is not None:
            key, value = line.split("=", 1)
            current.setdefault(key.strip(), []).append(value.strip())
        else:
            raise AssertionError(f"{UNIT.name}:{n}: not a section or Key=value: {line!r}")
    return sections


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd not installed")
def test_unit_passes_systemd_analyze_verify(tmp_path):
    shutil.copy(UNIT, tmp_path / UNIT.name)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "gaitedge-listen@ttyACM0.service")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "gaitedge-listen" not in done.stderr, done.stderr  # no warning about our unit


def test_unit_reaches_the_gpu_and_follows_the_port():
    unit = unit_sections(UNIT.read_text())
    assert set(unit) == {"Unit", "Service"}  # no [Install]: udev starts it, boot never waits
    service = unit["Service"]
    assert "DeviceAllow" not in service and "PrivateDevices" not in service
    assert {"video", "render"} <= set(service["SupplementaryGroups"][0].split())
    assert unit["Unit"]["BindsTo"] == ["dev-%i.device"]
    assert "--serial /dev/%i" in service["ExecStart"][0]
    assert service["Restart"] == ["on-failure"]


def test_unit_passes_secrets_as_credentials_and_keeps_files_private():
    from gaitedge.mqtt import PASSWORD_CREDENTIAL
    from gaitedge.webhook import SECRET_CREDENTIAL, TOKEN_CREDENTIAL

    service = unit_sections(UNIT.read_text())["Service"]
    # Names without a path: looked up in /etc/credstore/, and a missing one is not fatal.
    wanted = {PASSWORD_CREDENTIAL, SECRET_CREDENTIAL, TOKEN_CREDENTIAL}
    assert set(service["LoadCredential"]) == wanted
    assert service["UMask"] == ["0077"] and service["StateDirectoryMode"] == ["0700"]


def test_unit_and_store_agree_where_what_is_learned_is_kept():
    """ProtectHome=yes hides the user's cache: the mounting store is the directory systemd
    grants (StateDirectory= sets $STATE_DIRECTORY), and systemd's stop signal is one gaitedge
    stops cleanly on, saving it (tests/test_persistence.py runs both for real)."""
    from gaitedge.mounting import default_mount_file
    from gaitedge.runner import STOP_SIGNALS

    service = unit_sections(UNIT.read_text())["Service"]
    assert service["ProtectHome"] == ["yes"] and service["ProtectSystem"] == ["strict"]
    (state,) = service["StateDirectory"]
    granted = PurePosixPath("/var/lib") / state  # a system unit's StateDirectory= (systemd.exec)
    environ = {"STATE_DIRECTORY": str(granted), "HOME": "/home/gaitedge"}
    assert default_mount_file(environ).parent == granted
    assert str(granted) in service["ReadWritePaths"]
    (kill,) = service.get("KillSignal", ["SIGTERM"])
    assert signal.Signals[kill] in STOP_SIGNALS
    assert float(service["TimeoutStopSec"][0]) >= 10  # time to close, flush and save


UDEV_MATCH = {"ACTION", "SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "ATTRS", "ENV", "DRIVERS"}
UDEV_ASSIGN = {"TAG", "ENV", "SYMLINK", "GROUP", "MODE", "RUN"}
UDEV_TOKEN = re.compile(r'\s*([A-Z_]+)(?:\{([^}]+)\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(,|$)')


def udev_rules(text: str) -> list[list[tuple[str, str | None, str, str]]]:
    """Rules as (key, attribute, operator, value) tokens, checked as udev reads them."""
    rules = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        tokens, pos = [], 0
        while pos < len(line):
            m = UDEV_TOKEN.match(line, pos)
            assert m, f"{RULE.name}:{n}: cannot parse from {line[pos:]!r}"
            key, attr, op, value, _ = m.groups()
            match = op in ("==", "!=")
            assert key in (UDEV_MATCH if match else UDEV_ASSIGN), f"{RULE.name}:{n}: {key}{op}"
            tokens.append((key, attr, op, value))
            pos = m.end()
        rules.append(tokens)
    return rules


def test_udev_rule_starts_the_unit_for_the_port_that_appeared():
    (rule,) = udev_rules(RULE.read_text())
    tokens = {(k, a): (op, v) for k, a, op, v in rule}
    assert tokens[("ACTION", None)] == ("==", "add")
    assert tokens[("SUBSYSTEM", None)] == ("==", "tty")
    assert tokens[("TAG", None)] == ("+=", "systemd")
    op, wants = tokens[("ENV", "SYSTEMD_WANTS")]
    assert op == "+=" and wants == UNIT.name.replace("@.", "@%k.")  # %k: the kernel name


def test_udev_parser_rejects_a_malformed_rule():
    with pytest.raises(AssertionError, match="cannot parse"):
        udev_rules('ACTION=="add", SUBSYSTEM="tty" TAG+="systemd"')
    with pytest.raises(AssertionError, match="ACTION="):
        udev_rules('ACTION="add"')  # an assignment to a match-only key


def dockerfile_runs() -> list[str]:
    """RUN instructions of deploy/Dockerfile with continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    return [line[4:] for line in text.splitlines() if line.startswith("RUN ")]


def test_dockerfile_installs_the_gpu_onnxruntime_first_and_nothing_pulls_the_cpu_wheel(requires):
    runs = dockerfile_runs()
    pip = [r for r in runs if "pip install" in r]
    (install,) = pip
    steps = [s.strip() for s in install.split("&&")]
    assert "onnxruntime-gpu" in steps[0] and "JETSON_INDEX" in steps[0]
    (extras_spec,) = re.findall(r'"\.\[([a-z,]+)\]"', steps[1])
    extras = extras_spec.split(",")
    names = requires(*extras)
    assert "onnxruntime" not in names and "torch" not in names, names
    assert "cuda-python" in names and "onnx" in names
    check = next(i for i, r in enumerate(runs) if "deploy/image_check.py" in r)
    assert check > runs.index(install)  # the image is checked after everything is installed


@pytest.fixture(scope="module")
def requires(tmp_path_factory):
    """``extra -> distribution names`` from the built wheel's metadata, as pip reads it."""
    out, src = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):  # a copy: setuptools leaves build/ behind
        shutil.copy(REPO / name, src / name)
    for name in ("gaitedge", "firmware_bridge"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(src)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = out.glob("gaitedge-*.whl")
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith("METADATA"))).decode()
    reqs = [Requirement(line.split(":", 1)[1]) for line in meta.splitlines()
            if line.startswith("Requires-Dist:")]  # fmt: skip

    def names(*extras: str) -> set[str]:
        return {r.name for r in reqs for e in ("", *extras)
                if r.marker is None or r.marker.evaluate({"extra": e})}  # fmt: skip

    return names


def test_package_names_no_onnxruntime_but_its_extras_do(requires):
    assert not {"onnxruntime", "onnxruntime-gpu", "torch"} & requires()
    assert "onnxruntime" in requires("cpu") and "onnxruntime-gpu" not in requires("cpu")
    assert "onnxruntime-gpu" in requires("gpu") and "onnxruntime" not in requires("gpu")
    ci = (REPO / ".ci" / "run").read_text()
    (ci_extras,) = re.findall(r"-e '\.\[([a-z,]+)\]'", ci)
    assert "onnxruntime" in requires(*ci_extras.split(","))  # CI still gets a runtime


@pytest.mark.parametrize(
    ("dists", "modules", "providers", "expected"),
    [
        ({"onnxruntime-gpu"}, {"tensorrt", "cuda"}, ["CUDAExecutionProvider"], []),
        ({"onnxruntime-gpu", "onnxruntime"}, {"tensorrt", "cuda"}, ["CPUExecutionProvider"],
         ["CPU-only onnxruntime wheel", "no CUDA execution provider"]),
        ({"onnxruntime-gpu"}, {"tensorrt", "cuda", "torch"}, ["CUDAExecutionProvider"],
         ["torch is importable"]),
        ({"onnxruntime-gpu"}, {"cuda"}, ["CUDAExecutionProvider"], ["tensorrt does not import"]),
    ],
    ids=["jetson-image", "cpu-wheel-over-gpu", "torch-crept-in", "no-tensorrt"],
)  # fmt: skip
def test_image_check_verdicts(dists, modules, providers, expected):
    found = image_check.problems(dists, modules, providers)
    assert len(found) == len(expected)
    for line, want in zip(found, expected, strict=True):
        assert want in line


def test_image_check_on_this_cpu_machine_fails_in_one_line_per_problem():
    done = subprocess.run(
        [sys.executable, str(DEPLOY / "image_check.py"), "--no-tensorrt"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines and all(line.startswith("error: ") for line in lines)
    assert any("CPU-only onnxruntime" in line for line in lines)
