"""`asr export`: the encoder + CTC head as ONNX, run by onnxruntime on other batch sizes and
lengths than the traced ones, equal to torch to float rounding."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from asr.cli import app
from asr.export import ExportError, check_parity, example_features, export_onnx
from asr.experiment import load_for_inference
from tests.support.experiments import make_random_experiment

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

TEXTS = ["HELLO WORLD", "GOOD MORNING", "ONE TWO THREE", "YES NO"]


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    return make_random_experiment(tmp_path_factory.mktemp("export"), TEXTS, decoder_layers=1)[0]


def test_the_onnx_graph_gives_torchs_ctc_log_probs_on_unseen_shapes(exp, tmp_path):
    model, _, _ = load_for_inference(exp)
    path = export_onnx(model, tmp_path / "model.onnx")  # traced on 2 utterances of 2.0 and 1.4 s
    info = json.loads((tmp_path / "model.onnx.json").read_text())
    assert info["n_mels"] == model.config.features.n_mels and info["vocab_size"] == model.vocab_size
    parity = check_parity(model, path)  # 3 utterances of 3.1, 1.3 and 0.6 s
    assert parity.lengths_equal and parity.greedy_equal and parity.max_abs_diff < 1e-4
    # one unpadded utterance: the branch the tracer did not record (no padding at all)
    feats, lengths = example_features(model, (4.0,), seed=3)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got, got_lengths = session.run(None, {"feats": feats.numpy(), "lengths": lengths.numpy()})
    with torch.no_grad():
        expected = model.ctc_log_probs(model.encoder(feats, lengths)[0])
    assert got.shape == tuple(expected.shape) and int(got_lengths[0]) == expected.shape[1]
    assert np.abs(got - expected.numpy()).max() < 1e-4


def test_the_export_command_writes_the_graph_and_reports_parity(exp, tmp_path):
    result = CliRunner().invoke(app, ["export", "--exp", str(exp), "--out", str(tmp_path / "m.onnx")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "CTC best paths equal True" in " ".join(result.output.split()) and (tmp_path / "m.onnx").stat().st_size > 10_000


def test_a_model_without_a_ctc_head_is_refused(exp, tmp_path):
    model, _, _ = load_for_inference(exp)
    model.ctc = None  # as a model trained with model.ctc_head: false
    with pytest.raises(ExportError, match="no CTC head"):
        export_onnx(model, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
