"""search_encoded: every method through one entry point; the length limit holds for each."""

import math

import torch

from asr.decode.end_rules import max_token_lengths
from asr.decode.options import DecodeOptions
from asr.decode.search import beam_scorers, search_encoded


def test_length_limit_is_respected_and_eos_is_forced_there(tiny_model, memory, lengths):
    model = tiny_model(12, seed=4, eos_bias=-20.0)  # <eos> never wins on its own
    ratio = 0.3
    limits = max_token_lengths(lengths, ratio).tolist()  # [9, 6, 4, 2]
    with torch.inference_mode():
        for method in ("attention_greedy", "attention_beam", "joint_beam", "attention_rescoring"):
            options = DecodeOptions(method=method, beam=3, max_length_ratio=ratio)
            results = search_encoded(model, memory, lengths, options)
            for hyps, limit in zip(results, limits):
                if method == "attention_rescoring":  # CTC proposals: bounded by frames only
                    assert all(len(h.tokens) <= lengths.max() for h in hyps)
                    continue
                assert all(len(h.tokens) <= limit for h in hyps)
                assert len(hyps[0].tokens) == limit and math.isfinite(hyps[0].score)


def test_beam_scorers_weight_the_decoder_and_ctc(model, lengths):
    joint = beam_scorers(model, DecodeOptions(method="joint_beam", ctc_weight=0.3), lengths)
    assert {name: weight for name, (_, weight) in joint.items()} == {"decoder": 0.7, "ctc": 0.3}
    assert not joint["decoder"][0].partial and joint["ctc"][0].partial
    for options in (DecodeOptions(method="attention_beam"), DecodeOptions(method="joint_beam", ctc_weight=0.0)):
        assert {name: weight for name, (_, weight) in beam_scorers(model, options, lengths).items()} == {"decoder": 1.0}
