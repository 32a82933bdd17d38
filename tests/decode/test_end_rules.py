"""When a search stops: the length limit and the end-of-utterance rules."""

import torch

from asr.decode.end_rules import max_token_lengths, utterances_done


def test_length_limit_is_relative_to_the_encoder_frames():
    assert max_token_lengths(torch.tensor([30, 7, 1]), 0.5).tolist() == [15, 3, 1]


def test_an_utterance_is_done_when_nothing_alive_can_beat_its_best_or_its_beam_is_full():
    inf = float("inf")
    done = utterances_done(
        torch.tensor([-3.0, -3.0, -inf, -3.0]),  # best finished
        torch.tensor([[-2.0, -9.0], [-3.5, -inf], [-inf, -inf], [-2.0, -2.5]]),  # alive bounds
        torch.tensor([1, 1, 0, 2]),  # finished so far
        beam=2,
    )
    # can still improve | cannot | nothing alive | the beam is full of finished hypotheses
    assert done.tolist() == [False, True, True, True]
