"""Greedy attention decoding: the cached decoder gives the search of full recomputation."""

import pytest
import torch

from asr.decode.greedy import attention_greedy
from asr.decode.options import DecodeOptions
from asr.decode.scorers import DecoderScorer


def test_cached_greedy_search_equals_full_recomputation(model, memory, lengths, full_recompute_scorer, assert_same):
    options = DecodeOptions(method="attention_greedy")
    with torch.inference_mode():
        greedy = attention_greedy(DecoderScorer(model.decoder), memory, lengths, options)
        reference = attention_greedy(full_recompute_scorer(model.decoder), memory, lengths, options)
    assert_same(greedy, reference)
    assert len({len(h[0].tokens) for h in greedy}) > 1  # not a degenerate case


def test_greedy_scores_are_the_teacher_forced_log_probs(model, memory, lengths, teacher_forced):
    with torch.inference_mode():
        results = attention_greedy(DecoderScorer(model.decoder), memory, lengths, DecodeOptions())
        for n, [hyp] in enumerate(results):
            expected = teacher_forced(model, memory[n], int(lengths[n]), hyp.tokens)
            assert hyp.attention == hyp.score
            assert hyp.score == pytest.approx(expected, abs=1e-3)
