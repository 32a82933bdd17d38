"""Padding masks and grouped rows."""

import torch

from asr.nn.masks import lengths_to_mask, utterance_rows


def test_lengths_to_mask_marks_the_real_positions():
    mask = lengths_to_mask(torch.tensor([3, 0, 1]), 4)
    assert mask.tolist() == [[True, True, True, False], [False] * 4, [True, False, False, False]]
    assert lengths_to_mask(torch.tensor([2, 5])).shape == (2, 5)  # the longest by default


def test_utterance_rows_lists_each_utterances_hypotheses():
    assert utterance_rows(torch.tensor([0, 2]), 3).tolist() == [0, 1, 2, 6, 7, 8]
    assert utterance_rows(torch.tensor([1]), 1).tolist() == [1]
