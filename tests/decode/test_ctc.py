"""CTC searches and the batched CTC prefix scorer, checked against brute force and F.ctc_loss."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from asr.decode.ctc import ctc_best_path_scores, ctc_greedy, ctc_prefix_beam_search, ctc_sequence_log_probs
from asr.decode.ctc_prefix import CTCPrefixScorer

EOS = 2  # asr.text.tokenizer.SOS_EOS_ID; blank is 0



def _log_probs_from_paths(best: list[list[int]], vocab: int) -> torch.Tensor:
    """(B, T, V) log-probs whose frame-wise argmax is ``best``."""
    probs = torch.full((len(best), len(best[0]), vocab), 0.1)
    for b, path in enumerate(best):
        for t, label in enumerate(path):
            probs[b, t, label] = 1.0
    return probs.log_softmax(dim=-1)


def _collapse(path: tuple[int, ...]) -> tuple[int, ...]:
    out, previous = [], None
    for label in path:
        if label != previous and label != 0:
            out.append(label)
        previous = label
    return tuple(out)


def _sequence_probs(log_probs: torch.Tensor) -> dict[tuple[int, ...], float]:
    """Brute force over every path of a (T, V) matrix: label sequence -> probability."""
    frames, vocab = log_probs.shape
    x = log_probs.double()
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(vocab), repeat=frames):
        p = math.exp(sum(x[t, c].item() for t, c in enumerate(path)))
        key = _collapse(path)
        totals[key] = totals.get(key, 0.0) + p
    return totals


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


def test_prefix_score_at_eos_equals_ctc_loss_for_batched_hypotheses():
    torch.manual_seed(3)
    utts, group, time, vocab = 3, 2, 12, 7
    lengths = torch.tensor([12, 9, 5])
    log_probs = (torch.randn(utts, time, vocab) * 2).log_softmax(-1)
    # Two sequences per utterance (one per hypothesis slot), all of the same length (lockstep),
    # with repeats, which need a blank between them.
    sequences = torch.tensor(
        [[3, 3, 4], [5, 1, 6], [6, 6, 6], [4, 3, 4], [1, 3, 1], [5, 5, 3]]
    )  # (N*G, U)
    scorer = CTCPrefixScorer(blank=0, eos=EOS)
    state = scorer.init(log_probs, lengths, group)
    rows = torch.arange(utts * group)
    for step in range(sequences.shape[1]):
        # Score a few candidates, the real next token among them, then select it.
        candidates = torch.stack([sequences[:, step], (sequences[:, step] % 6) + 1], dim=1)
        scored = scorer.score(state, candidates)
        state = scorer.select(scored, rows, torch.zeros_like(rows))
    owner = torch.arange(utts).repeat_interleave(group)
    expected = -F.ctc_loss(
        log_probs[owner].transpose(0, 1),
        sequences,
        lengths[owner],
        torch.full((utts * group,), sequences.shape[1]),
        blank=0,
        reduction="none",
    )
    torch.testing.assert_close(scorer.score_eos(state), expected, atol=1e-4, rtol=1e-5)
    # Dropping an utterance keeps the others' states intact.
    kept = scorer.select_utterances(state, torch.tensor([0, 2]))
    torch.testing.assert_close(scorer.score_eos(kept), expected[[0, 1, 4, 5]], atol=1e-4, rtol=1e-5)


def test_prefix_score_is_the_probability_of_all_outputs_starting_with_the_prefix():
    torch.manual_seed(4)
    time, vocab = 5, 4
    log_probs = (torch.randn(1, time, vocab) * 1.5).log_softmax(-1)
    totals = _sequence_probs(log_probs[0])

    def brute_psi(prefix: tuple[int, ...]) -> float:
        mass = sum(p for seq, p in totals.items() if seq[: len(prefix)] == prefix)
        return math.log(mass) if mass > 0 else float("-inf")

    scorer = CTCPrefixScorer(blank=0, eos=EOS)
    state = scorer.init(log_probs, torch.tensor([time]), group=1)
    candidates = torch.tensor([[1, 3]])
    for prefix in [(), (3,), (3, 3), (3, 3, 1)]:
        if prefix:  # extend the state by the prefix's last token
            scored = scorer.score(state, torch.tensor([[prefix[-1]]]))
            state = scorer.select(scored, torch.tensor([0]), torch.tensor([0]))
        scored = scorer.score(state, candidates)
        expected = [brute_psi(prefix + (c,)) for c in (1, 3)]
        assert scored.scores[0].tolist() == pytest.approx(expected, abs=1e-5)
        assert scorer.score_eos(state).item() == pytest.approx(math.log(totals.get(prefix, 0.0)), abs=1e-5)


def test_prefix_beam_search_with_a_wide_beam_finds_the_most_probable_sequence():
    torch.manual_seed(5)
    for _ in range(3):
        log_probs = (torch.randn(5, 4) * 2).log_softmax(-1)
        totals = _sequence_probs(log_probs)
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
