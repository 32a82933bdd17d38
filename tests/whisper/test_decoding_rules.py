"""Whisper's decoding prompt and suppressed tokens, against openai-whisper's own tokenizer, for the
English-only and the multilingual vocabularies (with a language option), and the import of every
vocabulary size (51864 .en, 51865 multilingual, 51866 large-v3 with 128 mels)."""

from pathlib import Path

import pytest
import torch

from asr.text.whisper_bpe import WhisperTokenizer
from asr.whisper.convert import import_whisper
from asr.whisper.dims import WhisperDims, decoding_rules, non_speech_tokens
from asr.whisper.vocab import read_vocabulary
from asr.whisper.weights import expected_shapes

import whisper
ASSETS = Path(whisper.__file__).parent / "assets"


def _tokenizer(name: str, n_vocab: int, tmp: Path) -> WhisperTokenizer:
    return WhisperTokenizer.from_tokens(read_vocabulary(ASSETS / f"{name}.tiktoken", n_vocab), tmp)


@pytest.mark.parametrize("name, n_vocab, languages, language", [
    ("gpt2", 51864, 99, None), ("multilingual", 51865, 99, "de"), ("multilingual", 51866, 100, "yue"),
])  # fmt: skip
def test_prompt_and_suppressed_tokens_equal_openai_whisper(tmp_path, name, n_vocab, languages, language):
    ours = _tokenizer(name, n_vocab, tmp_path)
    theirs = whisper.tokenizer.get_tokenizer(n_vocab >= 51865, num_languages=languages, language=language or "en",
                                             task="transcribe")  # fmt: skip
    rules = decoding_rules(ours, language)
    to_whisper = ours.to_model  # its own inverse
    assert [to_whisper(i) for i in rules["prompt"]] == list(theirs.sot_sequence_including_notimestamps)
    assert non_speech_tokens(ours) == sorted(theirs.non_speech_tokens)
    expected = set(theirs.non_speech_tokens) | {theirs.transcribe, theirs.translate, theirs.sot, theirs.sot_prev,
                                                theirs.sot_lm, theirs.no_speech}  # fmt: skip
    assert {to_whisper(i) for i in rules["suppress"]} == expected
    assert [to_whisper(i) for i in rules["suppress_at_start"]] == [*theirs.encode(" "), theirs.eot]
    text = "Grüße, 7 o'clock — déjà vu!"
    assert [to_whisper(i) for i in ours.encode(text)] == theirs.encode(" " + text)


def test_language_must_be_one_of_the_models(tmp_path):
    multilingual = _tokenizer("multilingual", 51865, tmp_path / "m")
    with pytest.raises(ValueError, match="'xx' is not a language of this model"):
        decoding_rules(multilingual, "xx")
    with pytest.raises(ValueError, match="English-only"):
        decoding_rules(_tokenizer("gpt2", 51864, tmp_path / "e"), "de")


def test_large_v3_shaped_checkpoint_with_128_mels_imports(tmp_path):
    dims = WhisperDims(128, 1500, 32, 4, 1, 51866, 448, 32, 4, 1)
    state = {name: torch.randn(shape) * 0.1 for name, shape in expected_shapes(dims).items()}
    torch.save({"dims": dims.__dict__, "model_state_dict": state}, tmp_path / "large-v3.pt")
    summary = import_whisper(tmp_path / "large-v3.pt", tmp_path / "exp", tokenizer=ASSETS / "multilingual.tiktoken",
                             language="fr")  # fmt: skip
    assert summary.multilingual and summary.n_mels == 128 and summary.vocab_size == 51866
    from asr.experiment import load_for_inference

    model, tokenizer, config = load_for_inference(tmp_path / "exp")
    assert tokenizer.pieces(list(config.model.decoder.prompt)) == [
        "<|startoftranscript|>", "<|fr|>", "<|transcribe|>", "<|notimestamps|>"]  # fmt: skip
    feats, lengths = model.features(torch.randn(1, 16000), torch.tensor([16000]))
    assert feats.shape == (1, 3000, 128)
