"""asr.decode.attention_align: cross-attention -> token frames (DTW) -> words, against
openai-whisper's own functions where they exist, and on a tiny native model."""

import numpy as np
import pytest
import torch

from asr.decode.align import FrameClock, Word
from asr.decode.attention_align import (
    TokenTimes, alignment_heads, attention_matrix, attention_words, dtw, first_frames, median_filter, word_groups,
)  # fmt: skip
from asr.decode.word_times import check_aligner, default_aligner


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 40), (9, 9), (12, 5)])
def test_dtw_takes_the_path_of_openai_whisper(shape):
    timing = pytest.importorskip("whisper.timing")
    rng = np.random.default_rng(sum(shape))
    for cost in (rng.standard_normal(shape), rng.integers(0, 3, shape).astype(float)):  # the second: many ties
        theirs = timing.dtw_cpu(cost.astype(np.float64))  # float64, as openai-whisper's dtw() passes it
        assert np.array_equal(np.stack(dtw(cost)), theirs)


def test_the_median_filter_is_openai_whispers():
    timing = pytest.importorskip("whisper.timing")
    x = torch.randn(3, 5, 40, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(median_filter(x, 7), timing.median_filter(x, 7))
    short = torch.randn(2, 3)
    assert torch.equal(median_filter(short, 7), short)  # too short to reflect: unchanged


def test_tokens_start_where_their_attention_moves_to():
    """Row k attends to frames [10k, 10k + 10) in both heads: token k starts at frame 10k."""
    weights = torch.full((2, 4, 40), 0.01)
    for row in range(4):
        weights[:, row, 10 * row : 10 * row + 10] = 1.0
    matrix = attention_matrix(weights, frames=40)
    assert matrix.shape == (4, 40)
    assert first_frames(matrix) == [0, 10, 20, 30]
    assert first_frames(attention_matrix(weights, frames=25)) == [0, 10, 20, 24]  # cut to the audio's frames


def test_words_start_at_a_spaced_token_and_punctuation_joins_its_neighbour():
    # ' "Hello, world." he said': byte-level BPE pieces and their texts
    pieces = ['Ġ"', "Hello", ",", "Ġworld", ".", "Ġhe", "Ġsa", "id"]
    texts = [' "', "Hello", ",", " world", ".", " he", " sa", "id"]
    groups = word_groups(texts, pieces)
    # the comma and full stop join the word before them (which they do not time)
    assert groups == [([0, 1, 2], [0, 1]), ([3, 4], [3]), ([5], [5]), ([6, 7], [6, 7])]
    # an opening mark standing alone joins the word after it
    assert word_groups([" -", " yes", "!"], ["Ġ-", "Ġyes", "!"]) == [([0, 1, 2], [1])]
    assert word_groups(["HEL", "LO", "YOU"], ["\u2581HEL", "LO", "\u2581YOU"]) == [([0, 1], [0, 1]), ([2], [2])]


def test_words_take_their_timing_tokens_frames_and_mean_probability():
    class Pieces:
        text = {1: "\u2581HEL", 2: "LO", 3: "\u2581YOU"}

        def decode(self, ids):
            return "".join(self.text[i] for i in ids).replace("\u2581", " ").strip()

        def pieces(self, ids):
            return [self.text[i] for i in ids]

    times = TokenTimes(starts=[0, 4, 6, 10], probabilities=[0.5, 1.0, 0.25])
    words = attention_words(times, [1, 2, 3], Pieces(), FrameClock(stride=0.1, offset=0.05), offset_seconds=1.0)
    assert words == [Word("HELLO", 1.0, 1.6, 0.75), Word("YOU", 1.6, 2.0, 0.25)]


def test_heads_default_to_every_head_of_the_upper_half_and_bad_ones_are_named(random_experiment):
    _, model = random_experiment(["A B C"])
    config = model.config.model.decoder
    half = [(layer, head) for layer in range(config.layers // 2, config.layers) for head in range(config.heads)]
    assert alignment_heads(config) == half and half
    import dataclasses

    assert alignment_heads(dataclasses.replace(config, alignment_heads=((0, 1),))) == [(0, 1)]
    with pytest.raises(ValueError, match=r"alignment_heads: \(9, 0\)"):
        alignment_heads(dataclasses.replace(config, alignment_heads=((9, 0),)))


def test_the_aligner_must_exist_and_ctc_needs_a_head(random_experiment):
    _, model = random_experiment(["A B C"])
    with pytest.raises(ValueError, match="--align 'dtw' is not one of ctc, cross-attention"):
        check_aligner("dtw", model)
    model.ctc = None
    assert check_aligner(None, model) == "cross-attention"
    with pytest.raises(ValueError, match="--align ctc: this model has no CTC head"):
        check_aligner("ctc", model)
