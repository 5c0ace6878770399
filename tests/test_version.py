"""`gaitedge version` names the shipped model, read from the bundle without ONNX Runtime: the
light protobuf reader against the ``onnx`` library (writer) and ONNX Runtime (reader)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from gaitedge import __version__, bundle
from gaitedge.bundle import (
    CONTRACT_KEY,
    SHIPPED_MODEL,
    ContractError,
    contract_metadata,
    read_contract,
)
from gaitedge.cli import app
from gaitedge.engine import DEFAULT_MODEL, MODELS_DIR

runner = CliRunner()


def ort_metadata(path) -> dict[str, str]:
    opts = ort.SessionOptions()
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return session.get_modelmeta().custom_metadata_map


@pytest.mark.parametrize("path", sorted(MODELS_DIR.glob("*.onnx")), ids=lambda p: p.name)
def test_shipped_bundles_read_as_onnx_runtime_reads_them(path):
    assert contract_metadata(path) == json.loads(ort_metadata(path)[CONTRACT_KEY])


def test_the_shipped_model_is_the_engines_default():
    assert SHIPPED_MODEL == DEFAULT_MODEL
    contract = read_contract(SHIPPED_MODEL)
    assert bundle.shipped_model() == f"{contract.name} {contract.model_version}"


def _model(tmp_path, props: dict[str, str], *, props_first: bool, weights: int = 0):
    """An ONNX file written by the ``onnx`` library: metadata before or after a graph carrying
    ``weights`` float32 initialiser values (skipped unread by the light reader)."""
    init = [numpy_helper.from_array(np.arange(weights, dtype=np.float32), "w")] if weights else []
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        initializer=init,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    meta = onnx.ModelProto()
    for key, value in props.items():
        meta.metadata_props.add(key=key, value=value)
    # Serialised messages concatenate into their merge: the metadata ahead of the graph here,
    # where the onnx library writes it after (fields in number order).
    parts = [meta.SerializeToString(), model.SerializeToString()]
    path = tmp_path / "m.onnx"
    path.write_bytes(b"".join(parts if props_first else parts[::-1]))
    return path


@pytest.mark.parametrize("props_first", [False, True], ids=["props-last", "props-first"])
def test_metadata_among_other_entries_and_a_large_graph(tmp_path, props_first):
    contract = {"name": "größe-model", "model_version": "1.2.3", "notes": "é" * 300}
    props = {"author": "x", CONTRACT_KEY: json.dumps(contract), "z": "long " * 100}
    path = _model(tmp_path, props, props_first=props_first, weights=200_000)
    assert ort_metadata(path) == props
    assert contract_metadata(path) == contract


def test_bad_bundles_are_one_clear_error(tmp_path):
    good = _model(tmp_path, {CONTRACT_KEY: json.dumps({"name": "m"})}, props_first=False)
    data = good.read_bytes()
    cases = {
        "truncated.onnx": data[: len(data) - 3],
        "text.onnx": b"timestamp_s,acc_x\n0.0,1.0\n",
        "nocontract.onnx": _model(tmp_path, {"a": "b"}, props_first=False).read_bytes(),
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ContractError, match=name):
            contract_metadata(tmp_path / name)
    with pytest.raises(ContractError, match="cannot read"):
        contract_metadata(tmp_path / "absent.onnx")


def test_version_names_the_shipped_model():
    contract = read_contract(DEFAULT_MODEL)
    want = f"gaitedge {__version__} (model {contract.name} {contract.model_version})\n"
    assert runner.invoke(app, ["version"]).output == want
    assert runner.invoke(app, ["--version"]).output == want


def test_version_without_a_readable_model_still_answers(tmp_path, monkeypatch):
    monkeypatch.setattr(bundle, "SHIPPED_MODEL", tmp_path / "gaitedge-default.onnx")
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.output.startswith(f"gaitedge {__version__} (model unavailable: ")


def test_version_command_stays_light():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from gaitedge.cli import app\n"
        "r = CliRunner().invoke(app, ['version'])\n"
        "assert r.exit_code == 0 and '(model gaitedge-default ' in r.output, r.output\n"
        "bad = [m for m in ('numpy', 'scipy', 'onnxruntime', 'onnx') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
