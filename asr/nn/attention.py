"""Multi-head attention on ``scaled_dot_product_attention``, one class for self and cross.

Keys and values are projected by :meth:`MultiHeadAttention.project_kv` separately from the
attention itself, so that a caller can project the encoder output once per utterance and reuse
it at every decoding step, or append one step's keys/values to a cache.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from asr import cpu
from asr.cpu import Linear
from asr.nn.masks import NEG_INF
from asr.precision import cpu_autocast_on

KeyValue = tuple[Tensor, Tensor]  # each (B, H, T, head_dim)


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, heads: int, dropout: float = 0.0, key_bias: bool = True):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not divisible by heads {heads}")
        self.heads = heads
        self.head_dim = d_model // heads
        self.dropout = dropout
        self.query = Linear(d_model, d_model)
        self.key = Linear(d_model, d_model, bias=key_bias)  # Whisper's keys have no bias
        self.value = Linear(d_model, d_model)
        self.out = Linear(d_model, d_model)

    def _split(self, x: Tensor) -> Tensor:
        batch, time, _ = x.shape
        return x.view(batch, time, self.heads, self.head_dim).transpose(1, 2)  # (B, H, T, Dh)

    def project_kv(self, x: Tensor) -> KeyValue:
        """(B, T, D) -> keys and values, each (B, H, T, Dh)."""
        return self._split(self.key(x)), self._split(self.value(x))

    def forward(
        self,
        x: Tensor,
        kv: KeyValue,
        mask: Tensor | None = None,
        *,
        causal: bool = False,
        need_weights: bool = False,
        group: int = 1,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from queries ``x`` (B*G, Tq, D) to ``kv`` ((B, H, Tk, Dh) each).

        ``mask`` is boolean, True where a key may be attended, broadcastable to (B, H, Tq', Tk).
        ``group`` G is the number of query rows per key/value row (G hypotheses of one utterance
        in beam search, rows utterance-major): the G rows are folded into the query-time axis, so
        one utterance's keys/values serve all its hypotheses without being copied.
        Returns the output (B*G, Tq, D) and, if asked, the weights (B*G, H, Tq, Tk).
        """
        keys, values = kv
        kv_batch = keys.shape[0]
        batch, q_time, d_model = x.shape
        assert batch == kv_batch * group, f"{batch} query rows are not {group} per key/value row ({kv_batch})"
        q = self._split(self.query(x))  # (B*G, H, Tq, Dh)
        if group > 1:
            # (B*G, H, Tq, Dh) -> (B, H, G*Tq, Dh): hypotheses become extra query positions.
            q = q.view(kv_batch, group, self.heads, q_time, self.head_dim)
            q = q.permute(0, 2, 1, 3, 4).reshape(kv_batch, self.heads, group * q_time, self.head_dim)
        dropout = self.dropout if self.training else 0.0
        if need_weights or cpu.attention_by_parts(q, mask, causal, dropout):
            weights = self._weights(q, keys, mask, causal)
            out = cpu.dropout(weights, dropout, self.training) @ values
            weights = weights if need_weights else None
        else:
            weights = None
            out = _attend(q, keys, values, mask, dropout, causal and mask is None)
        if group > 1:
            out = out.view(kv_batch, self.heads, group, q_time, self.head_dim).permute(0, 2, 1, 3, 4)
            out = out.reshape(batch, self.heads, q_time, self.head_dim)
            if weights is not None:
                weights = weights.view(kv_batch, self.heads, group, q_time, -1).transpose(1, 2)
                weights = weights.reshape(batch, self.heads, q_time, -1)
        out = out.transpose(1, 2).reshape(batch, q_time, d_model)
        return self.out(out), weights

    @staticmethod
    def _weights(q: Tensor, keys: Tensor, mask: Tensor | None, causal: bool) -> Tensor:
        scores = (q / math.sqrt(q.shape[-1])) @ keys.transpose(-2, -1)  # (B, H, Tq, Tk)
        if causal:
            q_time, k_time = scores.shape[-2:]
            allowed = torch.ones(q_time, k_time, dtype=torch.bool, device=q.device).tril(k_time - q_time)
            scores = scores.masked_fill_(~allowed, NEG_INF)  # in place: a fresh product
        if mask is not None:
            scores = scores.masked_fill_(~mask, NEG_INF)
        return scores.softmax(dim=-1)


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, ff_dim: int, dropout: float, activation: str = "relu"):
        act = nn.GELU() if activation == "gelu" else nn.ReLU()
        super().__init__(Linear(d_model, ff_dim), act, cpu.Dropout(dropout), Linear(ff_dim, d_model))


def sinusoidal_positions(
    length: int, d_model: int, offset: int = 0, device: torch.device | None = None
) -> Tensor:
    """Positional encodings (length, d_model) float32 for positions offset .. offset+length-1
    (Vaswani et al., 2017, section 3.5), made on ``device`` (no copy from the host per step)."""
    position = torch.arange(offset, offset + length, dtype=torch.float32, device=device).unsqueeze(1)
    rate = torch.arange(0, d_model, 2, dtype=torch.float32, device=device)
    rate = torch.exp(rate * (-math.log(10000.0) / d_model))
    table = torch.zeros(length, d_model, device=device)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)
    return table


def whisper_sinusoids(length: int, d_model: int) -> Tensor:
    """Whisper's encoder positions (length, d_model): sines in the first half of the channels,
    cosines in the second, timescales from 1 to 10000 (``sinusoids`` in openai-whisper)."""
    increment = math.log(10000.0) / (d_model // 2 - 1)
    rate = torch.exp(-increment * torch.arange(d_model // 2, dtype=torch.float32))
    scaled = torch.arange(length, dtype=torch.float32)[:, None] * rate[None, :]
    return torch.cat([scaled.sin(), scaled.cos()], dim=1)


def _attend(q: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None, dropout: float, causal: bool) -> Tensor:
    """scaled_dot_product_attention; in fp32 under CPU bf16 autocast. The CPU kernel is no faster
    in bf16 (18 ms either way for Whisper tiny's 1500 frames, AVX512-BF16 EPYC), and fp32 here
    keeps bf16 decoding closer to fp32 (tiny.en greedy: 39 of 44 transcripts the same without it,
    43 with it and the fp32 stem)."""
    if not cpu_autocast_on(q):
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, dropout_p=dropout, is_causal=causal)
    mask = mask.float() if mask is not None and mask.is_floating_point() else mask
    with torch.autocast("cpu", enabled=False):
        out = F.scaled_dot_product_attention(
            q.float(), keys.float(), values.float(), attn_mask=mask, dropout_p=dropout, is_causal=causal
        )
    return out.to(q.dtype)
