"""`asr train --init` on an imported (random, tiny-dimension) Whisper model: the imported config is
the base, the weights are loaded, frozen encoder blocks stay as they were, a new CTC head over the
Whisper vocabulary is trained jointly, and the result decodes with every method."""

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from asr.checkpoint import load_checkpoint
from asr.cli import app
from asr.data.manifest import Utterance, write_manifest
from asr.decode.options import DecodeOptions
from asr.decode.search import decode_batch
from asr.experiment import load_for_inference
from asr.whisper.convert import import_whisper
from asr.whisper.dims import WhisperDims
from asr.whisper.weights import expected_shapes

DIMS = WhisperDims(80, 1500, 32, 4, 2, 51864, 448, 32, 4, 2)


@pytest.fixture(scope="module")
def imported(tmp_path_factory, tiny_en_dir):
    root = tmp_path_factory.mktemp("ft")
    torch.manual_seed(0)
    state = {name: torch.randn(shape) * 0.2 for name, shape in expected_shapes(DIMS).items()}
    torch.save({"dims": DIMS.__dict__, "model_state_dict": state}, root / "random.pt")
    import_whisper(root / "random.pt", root / "whisper", tokenizer=tiny_en_dir / "tokenizer.json")
    utterances = []
    for i, text in enumerate(["ONE TWO", "THREE", "FOUR FIVE SIX", "SEVEN"]):
        t = np.arange(int((0.6 + 0.3 * i) * 16000)) / 16000
        sf.write(root / f"u{i}.wav", (0.3 * np.sin(2 * np.pi * (180 + 60 * i) * t)).astype(np.float32), 16000)
        utterances.append(Utterance(f"1-2-{i}", str(root / f"u{i}.wav"), len(t) / 16000, 16000, "1", "2", text))
    write_manifest(utterances, root / "train.jsonl")
    (root / "ft.yaml").write_text(
        "features: {pad_seconds: 0.0}\nmodel: {ctc_head: true, ctc_weight: 0.3}\n"
        "data: {max_batch_seconds: 10.0, num_workers: 0}\n"
        "train: {epochs: 1, max_steps: 2, lr: 1.0e-3, warmup_steps: 1, freeze_encoder: 1, log_every: 1}\n"
    )
    return root


def test_init_trains_from_the_imported_weights_with_a_new_ctc_head(imported):
    root = imported
    result = CliRunner().invoke(app, ["train", "--init", str(root / "whisper"), "--config", str(root / "ft.yaml"),
                                      "--exp", str(root / "exp"), "--set", f"data.train_manifest={root / 'train.jsonl'}",
                                      "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 0, result.output
    before = load_checkpoint(root / "whisper" / "checkpoints" / "imported.pt")["model"]
    after = load_checkpoint(root / "exp" / "checkpoints" / "last.pt")
    config = after["config"]
    assert config["features"]["pad_seconds"] == 0.0 and config["features"]["frontend"] == "whisper"
    assert config["model"]["decoder"]["prompt"] == [0, 50362] and config["train"]["init"] == str(root / "whisper")
    weights = after["model"]
    for frozen in ("encoder.subsampling.conv1.weight", "encoder.blocks.0.ff.0.weight"):
        assert torch.equal(weights[frozen], before[frozen]), frozen
    for trained in ("encoder.blocks.1.ff.0.weight", "decoder.blocks.0.ff.0.weight", "decoder.embed.weight"):
        assert not torch.equal(weights[trained], before[trained]), trained
    assert weights["ctc.weight"].shape == (51864, 32) and "ctc.weight" not in before
    assert torch.equal(weights["decoder.output.weight"], weights["decoder.embed.weight"])  # still tied

    model, tokenizer, _ = load_for_inference(root / "exp")
    waves = torch.randn(2, 16000) * 0.1
    lengths = torch.tensor([16000, 9000])
    for method in ("attention_greedy", "attention_beam", "joint_beam", "ctc_greedy", "attention_rescoring"):
        hyps = decode_batch(model, waves, lengths, DecodeOptions(method=method, beam=3, max_length_ratio=0.1))
        assert len(hyps) == 2 and all(isinstance(tokenizer.decode(h[0].tokens), str) for h in hyps)


def test_imported_model_has_no_ctc_head_and_says_which_methods_work(imported):
    model, _, _ = load_for_inference(imported / "whisper")
    assert model.ctc is None
    with pytest.raises(ValueError, match="no CTC head.*attention_greedy"):
        decode_batch(model, torch.zeros(1, 16000), torch.tensor([16000]), DecodeOptions(method="joint_beam"))


def test_init_from_a_folder_that_is_not_an_experiment_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(app, ["train", "--init", str(tmp_path), "--config", str(tmp_path / "x.yaml"),
                                      "--exp", str(tmp_path / "exp")])  # fmt: skip
    assert result.exit_code == 2 and "not an experiment folder" in result.output
