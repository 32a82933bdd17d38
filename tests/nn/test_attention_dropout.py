"""Attention in training on a CPU: explicit products with asr.cpu.dropout, the same attention as SDPA."""

import math

import torch

from asr.nn.attention import MultiHeadAttention
from asr.cpu import keep_mask


def _inputs(batch=3, q_time=7, k_time=9, d_model=16):
    torch.manual_seed(0)
    x, memory = torch.randn(batch, q_time, d_model), torch.randn(batch, k_time, d_model)
    lengths = torch.tensor([k_time, 4, 1])
    mask = (torch.arange(k_time) < lengths[:, None])[:, None, None, :]  # (B, 1, 1, Tk)
    return x, memory, mask


def test_training_attention_without_dropped_weights_is_sdpa_with_a_padding_mask_and_causal():
    x, memory, mask = _inputs()
    attn = MultiHeadAttention(16, heads=4, dropout=1e-9)  # keeps every weight: the mask is all ones
    for kv, m, causal in ((attn.project_kv(memory), mask, False), (attn.project_kv(x), None, True)):
        trained, _ = attn.train()(x, kv, m, causal=causal)
        reference, _ = attn.eval()(x, kv, m, causal=causal)  # SDPA without dropout
        torch.testing.assert_close(trained, reference, rtol=1e-5, atol=1e-6)


def test_training_attention_drops_the_weights_with_the_seeded_mask():
    x, memory, mask = _inputs()
    attn = MultiHeadAttention(16, heads=4, dropout=0.5).train()
    keys, values = attn.project_kv(memory)
    torch.manual_seed(7)
    out, _ = attn(x, (keys, values), mask)
    q = attn._split(attn.query(x))
    scores = (q @ keys.transpose(-2, -1) / math.sqrt(4)).masked_fill(~mask, float("-inf"))
    torch.manual_seed(7)
    kept = keep_mask(scores.shape, 0.5).float() * 2.0
    expected = (scores.softmax(-1) * kept) @ values  # (B, H, Tq, Dh)
    expected = attn.out(expected.transpose(1, 2).reshape(3, 7, 16))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_a_query_row_with_no_key_to_attend_stays_finite_in_training():
    x, memory, mask = _inputs()
    mask[2] = False  # an utterance of length 0: SDPA's safe softmax gives zeros, not NaN
    attn = MultiHeadAttention(16, heads=4, dropout=0.1).train()
    out, _ = attn(x, attn.project_kv(memory), mask)
    assert torch.isfinite(out).all()
