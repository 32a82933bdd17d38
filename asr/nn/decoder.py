"""Transformer decoder: causal self-attention, cross-attention to the encoder output, feed-forward.

Two ways in: :meth:`Decoder.forward` scores whole token sequences (training, teacher forcing);
:meth:`Decoder.step` extends hypotheses by one token using a :class:`DecoderCache` that holds
the encoder keys/values (projected once per utterance) and every earlier step's self-attention
keys/values. Both give the same logits (tests/nn/test_decoder.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from asr.config import ModelConfig
from asr.nn.attention import FeedForward, KeyValue, MultiHeadAttention, length_mask, sinusoidal_positions


@dataclass
class DecoderCache:
    """Decoding state for N utterances with G hypotheses each (G=1 for greedy search).

    memory_kv and memory_mask have one row per utterance; self_kv has one row per hypothesis,
    ordered utterance-major (hypothesis g of utterance n is row n*G + g).
    """

    memory_kv: list[KeyValue]  # per layer, (N, H, T_enc, Dh) each
    memory_mask: Tensor  # (N, 1, 1, T_enc), True on real encoder frames
    self_kv: list[KeyValue]  # per layer, (N*G, H, steps, Dh) each

    @property
    def steps(self) -> int:
        return self.self_kv[0][0].shape[2]

    def select_hypotheses(self, rows: Tensor) -> DecoderCache:
        """Keep/reorder/duplicate hypothesis rows (N*G,) -> new order. Rows must stay grouped by
        utterance with the same G per utterance; the encoder keys/values are not touched."""
        self_kv = [(k.index_select(0, rows), v.index_select(0, rows)) for k, v in self.self_kv]
        return DecoderCache(self.memory_kv, self.memory_mask, self_kv)

    def select_utterances(self, keep: Tensor) -> DecoderCache:
        """Drop finished utterances: ``keep`` (N',) indexes utterances; their hypotheses follow."""
        group = self.self_kv[0][0].shape[0] // self.memory_mask.shape[0]
        rows = (keep[:, None] * group + torch.arange(group, device=keep.device)).reshape(-1)
        memory_kv = [(k.index_select(0, keep), v.index_select(0, keep)) for k, v in self.memory_kv]
        self_kv = [(k.index_select(0, rows), v.index_select(0, rows)) for k, v in self.self_kv]
        return DecoderCache(memory_kv, self.memory_mask.index_select(0, keep), self_kv)


class DecoderBlock(nn.Module):
    def __init__(self, d_model: int, heads: int, ff_dim: int, dropout: float):
        super().__init__()
        self.self_norm = nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, heads, dropout)
        self.cross_norm = nn.LayerNorm(d_model)
        self.cross_attn = MultiHeadAttention(d_model, heads, dropout)
        self.ff_norm = nn.LayerNorm(d_model)
        self.ff = FeedForward(d_model, ff_dim, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        memory_kv: KeyValue,
        memory_mask: Tensor,
        past_kv: KeyValue | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, KeyValue, Tensor | None]:
        """x (B, U, D) -> (B, U, D), this block's self-attention keys/values for the cache
        (past + new), and the cross-attention weights if asked."""
        h = self.self_norm(x)
        k, v = self.self_attn.project_kv(h)
        if past_kv is not None:  # one new position attends to every earlier one: no mask needed
            k, v = torch.cat([past_kv[0], k], dim=2), torch.cat([past_kv[1], v], dim=2)
        x = x + self.dropout(self.self_attn(h, (k, v), causal=past_kv is None)[0])
        attended, weights = self.cross_attn(
            self.cross_norm(x), memory_kv, memory_mask, need_weights=need_weights
        )
        x = x + self.dropout(attended)
        x = x + self.dropout(self.ff(self.ff_norm(x)))
        return x, (k, v), weights


class Decoder(nn.Module):
    def __init__(self, vocab_size: int, config: ModelConfig):
        super().__init__()
        dec = config.decoder
        self.d_model = config.d_model
        self.embed = nn.Embedding(vocab_size, config.d_model)
        # Unit-variance embeddings after the sqrt(d_model) scaling, as large as the positional
        # encodings: N(0, 1) entries would be sqrt(d_model) times larger and drown the positions.
        nn.init.normal_(self.embed.weight, std=config.d_model**-0.5)
        self.dropout = nn.Dropout(dec.dropout)
        self.blocks = nn.ModuleList(
            DecoderBlock(config.d_model, dec.heads, dec.ff_dim, dec.dropout) for _ in range(dec.layers)
        )
        self.norm = nn.LayerNorm(config.d_model)
        self.output = nn.Linear(config.d_model, vocab_size)

    def _embed(self, tokens: Tensor, offset: int) -> Tensor:
        positions = sinusoidal_positions(tokens.shape[1], self.d_model, offset).to(self.embed.weight)
        return self.dropout(self.embed(tokens) * math.sqrt(self.d_model) + positions)

    def forward(
        self, tokens: Tensor, memory: Tensor, memory_lengths: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, list[Tensor] | None]:
        """Teacher-forced scores. tokens (B, U) starting with <sos>; memory (B, T, D).

        Returns logits (B, U, V) and, if asked, each block's cross-attention weights (B, H, U, T).
        Padding after a sequence's end needs no mask: causal attention never looks ahead.
        """
        memory_mask = length_mask(memory_lengths, memory.shape[1])[:, None, None, :]
        x = self._embed(tokens, 0)
        all_weights = []
        for block in self.blocks:
            x, _, weights = block(x, block.cross_attn.project_kv(memory), memory_mask, None, need_weights)
            all_weights.append(weights)
        return self.output(self.norm(x)), all_weights if need_weights else None

    def init_cache(self, memory: Tensor, memory_lengths: Tensor) -> DecoderCache:
        """Project the encoder output (N, T, D) once into every block's cross-attention keys/values."""
        memory_kv = [block.cross_attn.project_kv(memory) for block in self.blocks]
        memory_mask = length_mask(memory_lengths, memory.shape[1])[:, None, None, :]
        empty = memory.new_zeros(memory.shape[0], 0, self.d_model)
        self_kv = [block.self_attn.project_kv(empty) for block in self.blocks]
        return DecoderCache(memory_kv, memory_mask, self_kv)

    def step(self, tokens: Tensor, cache: DecoderCache) -> tuple[Tensor, DecoderCache]:
        """Feed each hypothesis's latest token (N*G,) -> next-token logits (N*G, V) and the
        cache grown by one step. The first call feeds <sos>."""
        x = self._embed(tokens[:, None], cache.steps)  # (N*G, 1, D)
        self_kv = []
        for block, memory_kv, past_kv in zip(self.blocks, cache.memory_kv, cache.self_kv):
            x, kv, _ = block(x, memory_kv, cache.memory_mask, past_kv)
            self_kv.append(kv)
        logits = self.output(self.norm(x[:, 0]))
        return logits, DecoderCache(cache.memory_kv, cache.memory_mask, self_kv)

    def expand_cache(self, cache: DecoderCache, group: int) -> DecoderCache:
        """Give each utterance ``group`` hypothesis rows (copies of its current ones)."""
        rows = torch.arange(cache.self_kv[0][0].shape[0], device=cache.memory_mask.device)
        return cache.select_hypotheses(rows.repeat_interleave(group))
