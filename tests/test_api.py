"""asr.api: load an experiment or a checkpoint, transcribe paths, arrays and tensors, with the
CLI's defaults. The model is random: the tests check consistency, not the quality of the text."""

import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
import typer.main

import asr
from asr.api import DEFAULTS, OptionError, decode_options
from asr.cli import app
from asr.decode.options import DecodeOptions

TEXTS = ["HELLO WORLD", "GOOD MORNING", "THE CAT SAT ON THE MAT", "ONE TWO THREE", "A DOG", "YES NO"]
RATE = 16000


@pytest.fixture(scope="module")
def exp(random_experiment):
    return random_experiment(TEXTS, decoder_layers=1)[0]


@pytest.fixture(scope="module")
def recognizer(exp):
    return asr.load(exp)


def _speechlike(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (220.0, 540.0, 1300.0))
    return (0.07 * (0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t) ** 2) * wave).astype(np.float32)


def test_the_api_defaults_are_the_cli_defaults():
    params = {p.name: p.default for p in typer.main.get_command(app).commands["transcribe"].params}
    shared = set(params) & set(DEFAULTS)  # the others are reached by --set decode.KEY=VALUE
    assert {name: params[name] for name in shared} == {name: DEFAULTS[name] for name in shared}
    assert {"segment_seconds", "nbest", "timestamps", "vad", "language", "beam", "method"} <= shared
    options, pipeline = decode_options()
    assert options == DecodeOptions().for_model(True)  # and DecodeOptions() has the CLI's defaults
    assert decode_options(has_ctc=False)[0].method == "attention_beam"  # no CTC head: as the CLI does
    assert pipeline == {"segment_seconds": None, "timestamps": True, "align": None, "vad": True}
    assert decode_options(length_bonus=0.5)[0].length_norm is False  # exclusive, as in the CLI


def test_an_unknown_option_is_an_error_that_lists_the_valid_ones():
    with pytest.raises(OptionError, match="'beam_size'.*valid options: method, beam"):
        decode_options(beam_size=4)


def test_a_path_an_array_and_a_tensor_give_the_same_result(recognizer, tmp_path):
    wave = _speechlike(1.5)
    sf.write(tmp_path / "a.wav", wave, RATE, subtype="FLOAT")
    from_path = recognizer.transcribe(tmp_path / "a.wav", method="attention_beam", beam=3, nbest=3)
    from_array = recognizer.transcribe(wave, method="attention_beam", beam=3, nbest=3)
    from_tensor = recognizer.transcribe(torch.from_numpy(wave), RATE, method="attention_beam", beam=3, nbest=3)
    assert from_path.text and from_path.text == from_array.text == from_tensor.text
    assert (from_path.path, from_array.path, from_tensor.path) == (str(tmp_path / "a.wav"), "<array>", "<tensor>")
    assert 1 <= len(from_path.nbest) <= 3 and from_path.nbest[0].text == from_path.text
    scores = [c.score for c in from_path.nbest]
    assert scores == sorted(scores, reverse=True)
    assert [w.to_json() for w in from_path.words] == [w.to_json() for w in from_array.words]


def test_other_rates_and_channels_are_converted(recognizer):
    wave = _speechlike(1.5, 44100)
    mono = recognizer.transcribe(wave, 44100, method="ctc_greedy")
    stereo = recognizer.transcribe(np.stack([wave, wave]), 44100, method="ctc_greedy")
    assert mono.duration == pytest.approx(1.5, abs=1e-3) and mono.text == stereo.text
    with pytest.raises(ValueError, match="shape"):
        recognizer.transcribe(np.zeros((2, 3, 4), np.float32))


def test_words_have_ordered_times_inside_their_segments_and_confidences(recognizer):
    result = recognizer.transcribe(_speechlike(2.0), method="joint_beam", beam=3)
    assert result.words and " ".join(w.text for w in result.words) == result.text
    for segment in result.segments:
        for a, b in zip(segment.words, segment.words[1:]):
            assert a.start <= a.end <= b.start <= b.end
        assert all(segment.start <= w.start and w.end <= segment.end + 1e-6 for w in segment.words)
    assert all(0.0 <= w.confidence <= 1.0 for w in result.words)
    assert result.confidence == pytest.approx(np.mean([w.confidence for w in result.words]))
    plain = recognizer.transcribe(_speechlike(2.0), method="joint_beam", beam=3, timestamps=False)
    assert plain.text == result.text and plain.words == [] and plain.confidence is None


def test_cross_attention_times_the_same_words_in_order(recognizer):
    """--align cross-attention (asr.decode.attention_align) on a native model: the words of the
    text, ordered, inside the audio, with confidences; ctc stays the default there."""
    by_ctc = recognizer.transcribe(_speechlike(2.0), method="joint_beam", beam=3)
    result = recognizer.transcribe(_speechlike(2.0), method="joint_beam", beam=3, align="cross-attention")
    assert result.text == by_ctc.text and [w.text for w in result.words] == result.text.split()
    assert result.words != by_ctc.words  # another aligner, other times
    assert all(a.end <= b.start for a, b in zip(result.words, result.words[1:]))
    assert all(0.0 <= w.start <= w.end <= 2.0 and 0.0 <= w.confidence <= 1.0 for w in result.words)
    words = recognizer.align(_speechlike(2.0), "HELLO WORLD", align="cross-attention")
    assert [w.text for w in words] == ["HELLO", "WORLD"] and words[0].end <= words[1].start


def test_decode_batch_equals_one_at_a_time(recognizer):
    waves = [_speechlike(s, seed=i) for i, s in enumerate((0.8, 1.7, 1.2))]
    batched = recognizer.decode_batch(waves, method="joint_beam", beam=3, batch_size=3)
    alone = [recognizer.transcribe(w, method="joint_beam", beam=3, batch_size=1) for w in waves]
    assert [r.text for r in batched] == [r.text for r in alone]
    assert [len(r.words) for r in batched] == [len(r.words) for r in alone]


def test_load_takes_the_experiment_or_a_checkpoint_inside_it(exp, recognizer):
    by_file = asr.load(exp / "checkpoints" / "last.pt")
    assert by_file.exp_dir == exp
    wave = _speechlike(1.0, seed=3)
    assert by_file.transcribe(wave, method="ctc_greedy").text == recognizer.transcribe(wave, method="ctc_greedy").text
    with pytest.raises(FileNotFoundError, match="no experiment"):
        asr.load(exp / "nothing-here")


def test_segments_longer_than_the_training_utterances_are_warned_about(recognizer):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recognizer.transcribe(_speechlike(0.5), segment_seconds=60.0, method="ctc_greedy")
    assert any("longest training utterance" in str(w.message) for w in caught)


def test_align_places_a_known_text(recognizer):
    words = recognizer.align(_speechlike(2.0), "HELLO WORLD")
    assert [w.text for w in words] == ["HELLO", "WORLD"]
    assert 0.0 <= words[0].start < words[0].end <= words[1].start < words[1].end <= 2.0


def test_texts_never_hold_double_spaces(recognizer):
    from asr.transcribe import hypothesis_text

    tokenizer = recognizer.tokenizer
    pieces = {tokenizer.pieces([i])[0]: i for i in range(tokenizer.vocab_size)}
    lone = pieces["\u2581"]  # a word-boundary piece on its own, as CTC greedy search can emit
    words = [i for p, i in pieces.items() if p.startswith("\u2581") and len(p) > 1][:2]
    tokens = [lone, words[0], lone, lone, words[1], lone]
    assert "  " in tokenizer.decode(tokens)  # SentencePiece's own decoding keeps every space
    text = hypothesis_text(tokenizer, tokens)
    assert "  " not in text and text == text.strip() and len(text.split()) == 2
