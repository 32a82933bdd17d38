"""Multi-head attention: G query rows per key/value row (beam search) equal copied keys/values."""

import pytest
import torch

from asr.nn.attention import MultiHeadAttention


def test_grouped_queries_attend_like_copies_of_their_keys_and_values():
    attn = MultiHeadAttention(16, 4).eval()
    memory = torch.randn(2, 7, 16)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])[:, None, None, :]
    queries = torch.randn(6, 1, 16)  # 3 per utterance, utterance-major
    kv = attn.project_kv(memory)
    grouped, _ = attn(queries, kv, mask, group=3)
    copies = attn.project_kv(memory.repeat_interleave(3, 0))
    expected, _ = attn(queries, copies, mask.repeat_interleave(3, 0))
    torch.testing.assert_close(grouped, expected, atol=1e-5, rtol=1e-5)
    weighted, weights = attn(queries, kv, mask, group=3, need_weights=True)
    torch.testing.assert_close(weighted, expected, atol=1e-5, rtol=1e-5)
    assert weights.shape == (6, 4, 1, 7) and float(weights[3:, :, :, 4:].detach().abs().max()) == 0.0


def test_a_batch_that_does_not_divide_into_the_group_is_an_error_not_a_broadcast():
    attn = MultiHeadAttention(16, 4).eval()
    kv = attn.project_kv(torch.randn(2, 7, 16))
    with pytest.raises(AssertionError, match="not 3 per key/value row"):
        attn(torch.randn(5, 1, 16), kv, group=3)
    with pytest.raises(AssertionError):
        attn(torch.randn(6, 1, 16), kv)  # group 1 is the default: 6 rows for 2 is refused too
