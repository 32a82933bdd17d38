"""Ranker: length normalisation or bonus, and the bound on what an alive hypothesis can reach."""

import pytest
import torch

from asr.decode.ranking import Ranker


def test_rank_normalises_or_adds_a_bonus_per_token():
    assert Ranker().rank(-6.0, 3) == -6.0
    assert Ranker(length_norm=True, alpha=1.0).rank(-6.0, 3) == -2.0
    assert Ranker(bonus=0.5).rank(-6.0, 3) == -4.5
    ranked = Ranker(bonus=0.5).rank(torch.tensor([-6.0, -1.0]), 3)
    assert ranked.tolist() == [-4.5, 0.5]


def test_best_possible_bounds_every_completion():
    score, limit = torch.tensor([-4.0]), torch.tensor([9])
    # The bound: a 2-token prefix may end with 3..10 tokens counting <eos>.
    assert Ranker().best_possible(score, 2, limit).item() == -4.0
    assert Ranker(bonus=0.5).best_possible(score, 2, limit).item() == -4.0 + 0.5 * 10
    assert Ranker(bonus=-0.5).best_possible(score, 2, limit).item() == -4.0 - 0.5 * 3
    assert Ranker(length_norm=True).best_possible(score, 2, limit).item() == pytest.approx(-0.4)


@pytest.mark.parametrize("per_token", [0.7, -0.7])
def test_a_score_growing_per_token_bounds_like_the_same_length_bonus(per_token):
    """A scorer adding ``per_token`` to every token and <eos> is a length bonus: the bounds agree
    (the raw score of a 2-token prefix already holds 2 * per_token)."""
    score, limit = torch.tensor([-4.0, -7.5]), torch.tensor([9, 4])
    as_bonus = Ranker(bonus=per_token).best_possible(score, 2, limit)
    as_scorer = Ranker().best_possible(score + 2 * per_token, 2, limit, token_bound=per_token)
    torch.testing.assert_close(as_scorer, as_bonus)
    # Brute force over every final length 3..limit+1.
    for h in range(2):
        finals = [score[h] + per_token * length for length in range(3, int(limit[h]) + 2)]
        assert as_bonus[h].item() == pytest.approx(max(finals).item())
