"""CTC searches without a decoder, checked against brute force and F.ctc_loss."""

import math

import pytest
import torch
import torch.nn.functional as F

from asr.decode.ctc import ctc_best_path_scores, ctc_greedy, ctc_prefix_beam_search, ctc_sequence_log_probs



def _log_probs_from_paths(best: list[list[int]], vocab: int) -> torch.Tensor:
    """(B, T, V) log-probs whose frame-wise argmax is ``best``."""
    probs = torch.full((len(best), len(best[0]), vocab), 0.1)
    for b, path in enumerate(best):
        for t, label in enumerate(path):
            probs[b, t, label] = 1.0
    return probs.log_softmax(dim=-1)


def test_ctc_greedy_merges_repeats_drops_blanks_and_respects_lengths():
    paths = [
        [0, 3, 3, 0, 3, 4, 4, 0],  # a blank between two 3s keeps both
        [5, 5, 5, 0, 0, 6, 6, 6],  # the last frames are padding (length 4)
    ]
    log_probs = _log_probs_from_paths(paths, vocab=7)
    assert ctc_greedy(log_probs, torch.tensor([8, 4])) == [[3, 3, 4], [5]]
    expected = log_probs.max(-1).values
    scores = ctc_best_path_scores(log_probs, torch.tensor([8, 4]))
    torch.testing.assert_close(scores, torch.stack([expected[0].sum(), expected[1, :4].sum()]))


def test_prefix_beam_search_with_a_wide_beam_finds_the_most_probable_sequence(sequence_probs):
    torch.manual_seed(5)
    for _ in range(3):
        log_probs = (torch.randn(5, 4) * 2).log_softmax(-1)
        totals = sequence_probs(log_probs)
        best_seq, best_p = max(totals.items(), key=lambda item: item[1])
        nbest = ctc_prefix_beam_search(log_probs, beam=200)
        assert tuple(nbest[0][0]) == best_seq
        assert nbest[0][1] == pytest.approx(math.log(best_p), abs=1e-9)
        # With nothing pruned every score is exact, and the list is sorted.
        for tokens, logp in nbest:
            assert logp == pytest.approx(math.log(totals[tuple(tokens)]), abs=1e-9)
        assert [s for _, s in nbest] == sorted((s for _, s in nbest), reverse=True)


def test_ctc_sequence_log_probs_match_ctc_loss():
    torch.manual_seed(6)
    log_probs = torch.randn(9, 8).log_softmax(-1)
    sequences = [[3, 3, 5], [], [7], [4, 5, 4, 5], [6, 6, 6, 6, 6], [6] * 6]
    got = ctc_sequence_log_probs(log_probs, sequences)
    for c, seq in enumerate(sequences):
        expected = -F.ctc_loss(
            log_probs[:, None], torch.tensor([seq or [1]]), torch.tensor([9]), torch.tensor([len(seq)]),
            blank=0, reduction="sum",
        )
        assert got[c].item() == pytest.approx(expected.item(), abs=1e-4)
    # Five repeats need 9 frames (blanks between them): possible; six need 11 > 9: impossible.
    assert math.isfinite(got[4].item()) and got[5].item() == float("-inf")
