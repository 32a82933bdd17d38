"""Word times of imported Whisper models from cross-attention (asr.decode.attention_align): the
alignment heads are openai-whisper's, and tiny.en's words land on the silences that espeak-ng
phrases were joined with (README of bench/word_times.py for the comparison with faster-whisper)."""

import base64
import gzip

import numpy as np
import pytest

from asr.config import load_config
from asr.whisper.alignment_heads import ALIGNMENT_HEADS, whisper_alignment_heads
from asr.whisper.dims import WhisperDims

TINY = WhisperDims(80, 1500, 384, 6, 4, 51864, 448, 384, 6, 4)
LARGE = WhisperDims(80, 1500, 1280, 20, 32, 51865, 448, 1280, 20, 32)


def test_the_table_is_openai_whispers_masks():
    whisper = pytest.importorskip("whisper")
    shapes = {"tiny": (4, 6), "base": (6, 8), "small": (12, 12), "medium": (24, 16), "large": (32, 20), "turbo": (4, 20)}
    assert set(ALIGNMENT_HEADS) == set(whisper._ALIGNMENT_HEADS)
    for name, packed in whisper._ALIGNMENT_HEADS.items():
        size = "turbo" if "turbo" in name else name.split(".")[0].split("-")[0]
        mask = np.frombuffer(gzip.decompress(base64.b85decode(packed)), dtype=bool).reshape(shapes[size])
        assert tuple(map(tuple, np.argwhere(mask).tolist())) == ALIGNMENT_HEADS[name], name


def test_the_heads_come_from_the_source_then_the_file_name_then_the_dimensions():
    assert whisper_alignment_heads(TINY) == ALIGNMENT_HEADS["tiny.en"]
    assert whisper_alignment_heads(TINY, source_heads=((0, 1),)) == ((0, 1),)
    assert whisper_alignment_heads(LARGE) == ()  # large-v1 or large-v2: the dimensions do not tell
    assert whisper_alignment_heads(LARGE, name="/cache/whisper/large-v2.pt") == ALIGNMENT_HEADS["large-v2"]


def test_import_records_the_heads_in_the_config(tiny_en_exp, tiny_en_dir):
    import json
    from pathlib import Path

    shipped = json.loads((Path(tiny_en_dir) / "config.json").read_text())["alignment_heads"]
    heads = load_config(tiny_en_exp / "config.yaml").model.decoder.alignment_heads
    assert heads == ALIGNMENT_HEADS["tiny.en"] == tuple(map(tuple, shipped))


@pytest.mark.slow
def test_tiny_en_word_times_land_on_the_synthesised_silence_boundaries(tiny_en_exp):
    """Five recordings of three phrases (15 phrases, 30 edges), one per voice: the recognised
    edge words start and end within 50 ms of the synthesiser's (median), 90% within 150 ms;
    and without the snap to speech edges, cross-attention alone puts 95% of the recognised words
    inside their own phrase."""
    import asr
    from tests.support.spoken_words import boundary_errors, phrase_sets, transcribed_words, words_in_their_phrase

    recognizer = asr.load(tiny_en_exp)
    errors, boundaries, inside, recognised = [], 0, 0, 0
    for phrases, audio, bounds in phrase_sets(5):
        words, raw = transcribed_words(recognizer, audio, method="attention_greedy")
        found, total = boundary_errors(phrases, bounds, words)
        errors, boundaries = errors + found, boundaries + total
        hits, count = words_in_their_phrase(phrases, bounds, raw)
        inside, recognised = inside + hits, recognised + count
    errors = np.array(errors)
    assert len(errors) >= 0.6 * boundaries, (len(errors), boundaries)
    assert np.median(errors) <= 0.05 and (errors <= 0.15).mean() >= 0.9, np.round(np.sort(errors), 3)
    assert inside >= 0.95 * recognised, (inside, recognised)
