import pytest

from asr.text.normalize import normalize_text
from asr.text.tokenizer import BLANK_ID, SOS_EOS_ID, UNK_ID, SentencePieceTokenizer, load_tokenizer, train_tokenizer


@pytest.mark.parametrize(
    "raw, normalised",
    [
        ("Hello, world!", "HELLO WORLD"),
        ("don't  STOP", "DON'T STOP"),
        ("It\u2019s a dog's life.", "IT'S A DOG'S LIFE"),
        ("'quoted' words", "QUOTED WORDS"),
        ("well-known caf\u00e9", "WELL KNOWN CAFE"),
        ("  \t ", ""),
        ("HE SAID 42 THINGS", "HE SAID 42 THINGS"),
    ],
)
def test_normalisation_follows_librispeech_conventions(raw, normalised):
    assert normalize_text(raw) == normalised
    assert normalize_text(normalised) == normalised  # idempotent


SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "she didn't know where the old man's boat was",
    "we can't stop now said the captain",
    "seven silver spoons lay on the kitchen table",
    "my grandmother's garden is full of yellow flowers",
    "they won't come back before the winter",
] * 5


@pytest.fixture(scope="module", params=["unigram", "bpe"])
def tokenizer(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    return train_tokenizer(iter(SENTENCES), root / "tok", vocab_size=60, model_type=request.param)


def test_round_trip_gives_the_normalised_text(tokenizer):
    for text in SENTENCES[:6] + ["The fox's garden, seven boats!"]:
        ids = tokenizer.encode(text)
        assert all(i not in (BLANK_ID, SOS_EOS_ID) for i in ids)
        assert tokenizer.decode(ids) == normalize_text(text)


def test_special_ids_are_reserved(tokenizer):
    assert tokenizer.pieces([BLANK_ID, UNK_ID, SOS_EOS_ID]) == ["<blank>", "<unk>", "<sos/eos>"]
    assert tokenizer.vocab_size <= 60


def test_tokenizer_travels_with_the_experiment(tokenizer, tmp_path):
    tokenizer.save(tmp_path / "exp" / "tokenizer")
    copy = load_tokenizer(tmp_path / "exp" / "tokenizer")
    assert copy.encode(SENTENCES[1]) == tokenizer.encode(SENTENCES[1])


def test_missing_tokenizer_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no tokenizer at .*tokenizer.model"):
        SentencePieceTokenizer(tmp_path)
