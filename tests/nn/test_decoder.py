"""The decoder: teacher forcing and incremental decoding with an explicit, grouped cache agree."""

import pytest
import torch

from asr.config import DecoderConfig, EncoderConfig, ModelConfig
from asr.nn.decoder import Decoder
from tests.support.batches import padded

CONFIG = ModelConfig(
    d_model=32,
    encoder=EncoderConfig(layers=2, heads=4, ff_dim=64, dropout=0.1, conv_channels=8),
    decoder=DecoderConfig(layers=2, heads=4, ff_dim=64, dropout=0.1),
)
VOCAB = 11


def test_decoder_output_is_the_same_alone_and_padded_in_a_batch():
    decoder = Decoder(VOCAB, CONFIG).eval()
    memories = [torch.randn(n, 32) for n in (9, 4, 13)]
    tokens = [torch.randint(3, VOCAB, (n,)) for n in (5, 2, 7)]
    memory, memory_lengths = padded(memories)
    token_batch = torch.zeros(3, 7, dtype=torch.long)
    for i, t in enumerate(tokens):
        token_batch[i, : len(t)] = t
    logits, _ = decoder(token_batch, memory, memory_lengths)
    for i in range(3):
        alone, _ = decoder(tokens[i][None], memories[i][None], torch.tensor([len(memories[i])]))
        torch.testing.assert_close(logits[i, : len(tokens[i])], alone[0], atol=1e-5, rtol=1e-5)


def test_incremental_decoding_gives_the_logits_of_a_full_forward_pass():
    decoder = Decoder(VOCAB, CONFIG).eval()
    memory, memory_lengths = padded([torch.randn(n, 32) for n in (9, 4)])
    tokens = torch.randint(3, VOCAB, (2, 6))
    full, _ = decoder(tokens, memory, memory_lengths)
    cache = decoder.init_cache(memory, memory_lengths)
    for step in range(tokens.shape[1]):
        logits, cache = decoder.step(tokens[:, step], cache)
        torch.testing.assert_close(logits, full[:, step], atol=1e-5, rtol=1e-5)


def test_grouped_hypotheses_share_one_copy_of_the_encoder_keys_and_values():
    """G hypotheses per utterance (beam search) score like G separate copies of the utterance,
    and reordering hypotheses moves their self-attention history with them."""
    decoder = Decoder(VOCAB, CONFIG).eval()
    beams = 3
    memory, memory_lengths = padded([torch.randn(n, 32) for n in (9, 4)])
    tokens = torch.randint(3, VOCAB, (2 * beams, 5))
    copies = memory.repeat_interleave(beams, 0), memory_lengths.repeat_interleave(beams)
    full, _ = decoder(tokens, *copies)

    cache = decoder.expand_cache(decoder.init_cache(memory, memory_lengths), beams)
    assert cache.memory_kv[0][0].shape[0] == 2 and cache.group == beams  # never copied per beam
    for step in range(4):
        logits, cache = decoder.step(tokens[:, step], cache)
        torch.testing.assert_close(logits, full[:, step], atol=1e-5, rtol=1e-5)
    # Swap hypotheses within each utterance; the last step must follow the swapped histories.
    order = torch.tensor([2, 0, 1, 4, 5, 3])
    cache = cache.select_hypotheses(order)
    logits, _ = decoder.step(tokens[order, 4], cache)
    torch.testing.assert_close(logits, full[order, 4], atol=1e-5, rtol=1e-5)


def test_reordering_at_every_step_alternates_two_buffers_and_follows_the_histories():
    """Double buffering: each reorder writes into the spare buffer and the old one becomes the
    next spare; the histories still follow their hypotheses, and a consumed cache refuses a
    second reorder (its buffer is someone else's spare)."""
    decoder = Decoder(VOCAB, CONFIG).eval()
    memory, memory_lengths = padded([torch.randn(n, 32) for n in (9, 4)])
    tokens = torch.randint(3, VOCAB, (6, 6))
    orders = [torch.tensor(o) for o in ([2, 0, 1, 4, 5, 3], [1, 1, 0, 3, 3, 5], [0, 2, 2, 5, 4, 3])]
    history = torch.arange(6)  # which original sequence each row's history comes from
    with torch.inference_mode():
        cache = decoder.expand_cache(decoder.init_cache(memory, memory_lengths), 3)
        buffers = []
        for step in range(len(orders) + 1):
            logits, cache = decoder.step(tokens[history, step], cache)
            # Teacher-forced: row r has read tokens[history[r], :step+1], its own history.
            copies = memory.repeat_interleave(3, 0), memory_lengths.repeat_interleave(3)
            full, _ = decoder(tokens[history, : step + 1], *copies)
            torch.testing.assert_close(logits, full[:, step], atol=1e-5, rtol=1e-5)
            if step < len(orders):
                before = cache
                cache = cache.select_hypotheses(orders[step])
                history = history[orders[step]]
                buffers.append(cache.self_kv.data_ptr())
        with pytest.raises(AssertionError, match="reordered already"):
            before.select_hypotheses(orders[0])
    assert buffers[0] != buffers[1] and buffers[2] == buffers[0]  # two buffers, taking turns


def test_dropping_a_finished_utterance_keeps_the_others_scores():
    decoder = Decoder(VOCAB, CONFIG).eval()
    memory, memory_lengths = padded([torch.randn(n, 32) for n in (9, 4, 6)])
    tokens = torch.randint(3, VOCAB, (6, 3))
    full, _ = decoder(tokens, memory.repeat_interleave(2, 0), memory_lengths.repeat_interleave(2))
    cache = decoder.expand_cache(decoder.init_cache(memory, memory_lengths), 2)
    _, cache = decoder.step(tokens[:, 0], cache)
    cache = cache.select_utterances(torch.tensor([0, 2]))
    rows = torch.tensor([0, 1, 4, 5])
    logits, _ = decoder.step(tokens[rows, 1], cache)
    torch.testing.assert_close(logits, full[rows, 1], atol=1e-5, rtol=1e-5)


def test_attention_weights_are_returned_on_request_and_match_the_fused_path():
    decoder = Decoder(VOCAB, CONFIG).eval()
    memory, memory_lengths = padded([torch.randn(n, 32) for n in (9, 4)])
    tokens = torch.randint(3, VOCAB, (2, 5))
    fused, none = decoder(tokens, memory, memory_lengths)
    explicit, weights = decoder(tokens, memory, memory_lengths, need_weights=True)
    assert none is None
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)
    assert len(weights) == 2 and weights[0].shape == (2, 4, 5, 9)
    torch.testing.assert_close(weights[0].sum(-1), torch.ones(2, 4, 5))
    assert float(weights[0][1, :, :, 4:].detach().abs().max()) == 0.0  # padded encoder frames get no weight


def test_the_cache_holds_its_group_and_a_batch_that_does_not_divide_is_an_error():
    decoder = Decoder(VOCAB, CONFIG).eval()
    memory, memory_lengths = padded([torch.randn(n, 32) for n in (9, 4)])
    cache = decoder.init_cache(memory, memory_lengths, group=3)
    assert cache.group == 3 and cache.self_kv.shape[3] == 6
    assert decoder.expand_cache(cache, 2).group == 6
    with pytest.raises(AssertionError, match="not 3 per utterance"):
        cache.select_hypotheses(torch.tensor([0, 1, 2, 3, 4]))  # 5 rows for 2 utterances
    with pytest.raises(AssertionError, match="5 tokens for 6 hypotheses"):
        decoder.step(torch.zeros(5, dtype=torch.long), cache)


def test_incremental_decoding_past_the_cache_capacity_grows_it():
    decoder = Decoder(VOCAB, CONFIG).eval()
    memory, memory_lengths = padded([torch.randn(n, 32) for n in (9, 4)])
    tokens = torch.randint(3, VOCAB, (4, 7))
    full, _ = decoder(tokens, memory.repeat_interleave(2, 0), memory_lengths.repeat_interleave(2))
    with torch.inference_mode():
        cache = decoder.init_cache(memory, memory_lengths, group=2, capacity=2)
        for step in range(7):
            logits, cache = decoder.step(tokens[:, step], cache)
            torch.testing.assert_close(logits, full[:, step], atol=1e-5, rtol=1e-5)
    assert cache.steps == 7 and cache.self_kv.shape[0] >= 7
