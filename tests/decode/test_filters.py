"""Logit filters (asr.decode.filters) and the decoder's raw logits: suppression and the forced
end are the decoding task's, per call; the decoder itself applies none."""

import dataclasses

import torch

from asr.config import DecoderConfig
from asr.decode.filters import ForceEnd, NoRepeatNgram, SuppressTokens, apply_filters, model_filters
from asr.decode.options import DecodeOptions
from asr.decode.task import DecodingTask
from asr.text.special import SOS_EOS_ID

NEG = float("-inf")


def test_suppressed_tokens_are_never_chosen_and_first_only_ones_only_at_the_first_step():
    logits = torch.zeros(2, 6)
    assert apply_filters((SuppressTokens((1, 4)),), logits, 5)[:, [1, 4]].eq(NEG).all()
    first = SuppressTokens((3,), first_only=True)
    assert first.apply(logits, 0)[:, 3].eq(NEG).all() and first.apply(logits, 1).eq(0).all()
    assert logits.eq(0).all()  # the input is not changed in place


def test_the_forced_end_leaves_only_eos_from_its_step_on():
    logits = torch.arange(12.0).view(2, 6)
    end = ForceEnd(7)
    assert torch.equal(end.apply(logits, 6), logits)
    ended = end.apply(logits, 7)
    assert torch.equal(ended[:, SOS_EOS_ID], logits[:, SOS_EOS_ID]) and ended.isinf().sum() == 2 * 5


def test_the_model_config_gives_the_filters_and_a_native_model_none():
    assert model_filters(DecoderConfig(), 0) == ()
    whisper = DecoderConfig(positions="learned", max_positions=448, suppress=(5, 6), suppress_at_start=(7,))
    assert model_filters(whisper, 4) == (SuppressTokens((5, 6)), SuppressTokens((7,), first_only=True), ForceEnd(444))


def test_the_decoder_returns_raw_logits_and_the_task_filters_them(tiny_model):
    model = tiny_model(12, seed=1)
    decoder_config = dataclasses.replace(model.config.model.decoder, suppress=(5,), suppress_at_start=(6,))
    model.config = dataclasses.replace(model.config, model=dataclasses.replace(model.config.model, decoder=decoder_config))
    memory, lengths = torch.randn(2, 9, model.config.model.d_model), torch.tensor([9, 6])
    task = DecodingTask.build(model, DecodeOptions(method="attention_greedy"))
    raw, _ = model.decoder.step(torch.full((2,), SOS_EOS_ID), model.decoder.init_cache(memory, lengths))
    assert torch.isfinite(raw).all()  # no suppression inside the decoder
    scorer = task.decoder_scorer(lengths)
    scored = scorer.score(scorer.init(memory, lengths, 1), None)
    assert scored.tokens[:, [5, 6]].eq(NEG).all() and torch.isfinite(scored.tokens[:, 7]).all()
    for hyps in task.search(memory, lengths):
        assert 5 not in hyps[0].tokens and (not hyps[0].tokens or hyps[0].tokens[0] != 6)


def _repeats(tokens: list[int], n: int) -> int:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) - len(set(grams))


def test_the_ngram_guard_bans_the_token_that_would_repeat_an_ngram():
    history = torch.tensor([[4, 5, 6, 4, 5], [1, 2, 3, 1, 3]])
    banned = NoRepeatNgram(3).apply(torch.zeros(2, 8), 5, history)
    assert banned[0].isinf().nonzero().flatten().tolist() == [6]  # "4 5" was followed by 6 once already
    assert not banned[1].isinf().any()  # "1 3" never was
    assert NoRepeatNgram(3).apply(torch.zeros(2, 8), 2, history[:, :2]).eq(0).all()  # shorter than n


def test_a_native_model_that_loops_repeats_no_ngram_with_the_guard(tiny_model):
    model = tiny_model(12, seed=5)  # random and peaked: it repeats itself (every method)
    memory, lengths = torch.randn(3, 30, model.config.model.d_model, generator=torch.Generator().manual_seed(2)), torch.tensor([30, 21, 14])
    for method in ("attention_greedy", "attention_beam", "joint_beam"):
        options = DecodeOptions(method=method, beam=3)
        plain = [hyps[0].tokens for hyps in DecodingTask.build(model, options).search(memory, lengths)]
        assert sum(_repeats(tokens, 3) for tokens in plain) > 0
        guarded = DecodingTask.build(model, dataclasses.replace(options, no_repeat_ngram=3)).search(memory, lengths)
        assert all(_repeats(hyps[0].tokens, 3) == 0 for hyps in guarded)
        assert all(len(h.tokens) > 0 for hyps in guarded for h in hyps)
