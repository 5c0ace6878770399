"""``gaitedge info``: the contract in readable form, and clear errors for bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from gaitedge.cli import app
from gaitedge.info import channel_unit
from gaitedge.preprocess import ChainConfig
from tests.bundles import make_bundle, tiny_contract

runner = CliRunner()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    rng = np.random.default_rng(0)
    windows = rng.standard_normal((16, 128, 9)).astype(np.float32)
    return make_bundle(tmp_path_factory.mktemp("info") / "tiny.onnx", windows)


def test_info_prints_the_contract(bundle):
    result = runner.invoke(app, ["info", str(bundle)])
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("tiny-test 0.0.1", "50 Hz", "order 4, 20 Hz", "0.3 Hz", "128 / 25 samples",
                 "gravity_x    m/s²", "gyro_z       rad/s", "activity: WALKING, WALKING_UPSTAIRS",
                 "fall: no_fall, fall", "test_subjects", "macro_f1"):  # fmt: skip
        assert text in out, text


def test_info_without_an_argument_describes_the_shipped_model():
    from gaitedge.engine import DEFAULT_MODEL

    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    shipped = runner.invoke(app, ["info", str(DEFAULT_MODEL)])
    assert result.output == shipped.output
    assert "gaitedge-default" in result.output


def test_info_names_a_shipped_bundle_by_its_file_name(tmp_path, monkeypatch):
    """The model cards say ``gaitedge info gaitedge-acc.onnx``: a bare name that is not a file
    here is the shipped bundle of that name; a file of that name here comes first."""
    from gaitedge.engine import MODELS_DIR

    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["info", "gaitedge-acc.onnx"])
    assert result.exit_code == 0, result.output
    assert (
        result.output == runner.invoke(app, ["info", str(MODELS_DIR / "gaitedge-acc.onnx")]).output
    )
    assert "gaitedge-acc 0.4.0" in result.output and "[batch, 128, 6]" in result.output
    (tmp_path / "gaitedge-acc.onnx").write_bytes(b"not an onnx model")
    local = runner.invoke(app, ["info", "gaitedge-acc.onnx"])
    assert local.exit_code != 0 and "not a loadable ONNX model" in local.output


def test_a_shipped_bundle_name_opens_as_a_model(tmp_path, monkeypatch):
    """``--model gaitedge-default-fp32.onnx`` (any command) opens the shipped file of that name."""
    from gaitedge.engine import DEFAULT_MODEL, MODELS_DIR, load_engine, model_path

    monkeypatch.chdir(tmp_path)
    assert model_path(None) == DEFAULT_MODEL
    assert model_path("gaitedge-tiny.onnx") == MODELS_DIR / "gaitedge-tiny.onnx"
    engine = load_engine("gaitedge-default-fp32.onnx")
    assert engine.contract == load_engine(MODELS_DIR / "gaitedge-default-fp32.onnx").contract
    with pytest.raises(Exception, match="no such model file"):
        load_engine("gaitedge-nothing.onnx")


def test_info_json_round_trips(bundle):
    result = runner.invoke(app, ["info", str(bundle), "--json"])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert ChainConfig.from_dict(data["chain"]) == tiny_contract().chain


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not an onnx model", "not a loadable ONNX model"), (None, "no such model file")],
    ids=["garbage", "missing"],
)
def test_info_refuses_a_bad_file_with_a_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.onnx"
    if content is not None:
        path.write_bytes(content)
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_info_refuses_an_onnx_model_without_a_contract(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )  # fmt: skip
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph), str(path))
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 2 and "has no gaitedge contract" in result.output


@pytest.mark.parametrize(
    ("channel", "unit"),
    [
        ("body_acc_x", "m/s²"),
        ("gravity_z", "m/s²"),
        ("acc_y", "m/s²"),
        ("gyro_x", "rad/s"),
        ("acc_norm", "m/s²"),
        ("gyro_norm", "rad/s"),
    ],
)
def test_channel_units(channel, unit):
    assert channel_unit(channel) == unit
