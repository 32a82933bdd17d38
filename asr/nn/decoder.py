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
from asr.text.special import SOS_EOS_ID
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
    def __init__(
        self, d_model: int, heads: int, ff_dim: int, dropout: float, activation: str = "relu", key_bias: bool = True
    ):
        super().__init__()
        self.self_norm = nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, heads, dropout, key_bias)
        self.cross_norm = nn.LayerNorm(d_model)
        self.cross_attn = MultiHeadAttention(d_model, heads, dropout, key_bias)
        self.ff_norm = nn.LayerNorm(d_model)
        self.ff = FeedForward(d_model, ff_dim, dropout, activation)
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
        self.scale = math.sqrt(self.d_model) if dec.scale_embedding else 1.0
        self.learned_positions = (
            nn.Embedding(dec.max_positions, config.d_model) if dec.positions == "learned" else None
        )
        self.max_positions = dec.max_positions
        self.dropout = nn.Dropout(dec.dropout)
        self.blocks = nn.ModuleList(
            DecoderBlock(config.d_model, dec.heads, dec.ff_dim, dec.dropout, dec.activation, config.attention_key_bias)
            for _ in range(dec.layers)
        )
        self.norm = nn.LayerNorm(config.d_model)
        self.output = nn.Linear(config.d_model, vocab_size, bias=not dec.tie_output)
        if dec.tie_output:
            self.output.weight = self.embed.weight
        self.prompt = list(dec.prompt)  # the prompt's last token stands in for <sos>
        self.suppress = list(dec.suppress)
        self.suppress_at_start = list(dec.suppress_at_start)

    def _embed(self, tokens: Tensor, offset: int) -> Tensor:
        if self.prompt:
            tokens = tokens.masked_fill(tokens == SOS_EOS_ID, self.prompt[-1])
        if self.learned_positions is not None:
            positions = self.learned_positions.weight[offset : offset + tokens.shape[1]]
        else:
            positions = sinusoidal_positions(tokens.shape[1], self.d_model, offset).to(self.embed.weight)
        return self.dropout(self.embed(tokens) * self.scale + positions)

    def _with_prompt(self, tokens: Tensor) -> Tensor:
        """(B, U) -> (B, P-1+U): the prompt's first P-1 tokens before each sequence."""
        head = tokens.new_tensor(self.prompt[:-1]).expand(tokens.shape[0], -1)
        return torch.cat([head, tokens], dim=1)

    def _filter(self, logits: Tensor, step: int) -> Tensor:
        """Decoding-time logit rules (N, V): suppressed tokens, the first step's suppressed
        tokens, and <eos> forced at the last position the learned table has."""
        if self.suppress:
            logits = logits.index_fill(1, logits.new_tensor(self.suppress, dtype=torch.long), float("-inf"))
        if step == 0 and self.suppress_at_start:
            logits = logits.index_fill(1, logits.new_tensor(self.suppress_at_start, dtype=torch.long), float("-inf"))
        if self.max_positions and step + max(len(self.prompt), 1) >= self.max_positions:
            eos = logits[:, SOS_EOS_ID].clone()
            logits = torch.full_like(logits, float("-inf"))
            logits[:, SOS_EOS_ID] = eos
        return logits

    def forward(
        self, tokens: Tensor, memory: Tensor, memory_lengths: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, list[Tensor] | None]:
        """Teacher-forced scores. tokens (B, U) starting with <sos>; memory (B, T, D).

        Returns logits (B, U, V) and, if asked, each block's cross-attention weights (B, H, U, T).
        Padding after a sequence's end needs no mask: causal attention never looks ahead.
        """
        memory_mask = length_mask(memory_lengths, memory.shape[1])[:, None, None, :]
        skip = max(len(self.prompt) - 1, 0)  # prompt positions, whose outputs are not scored
        x = self._embed(self._with_prompt(tokens) if skip else tokens, 0)
        all_weights = []
        for block in self.blocks:
            x, _, weights = block(x, block.cross_attn.project_kv(memory), memory_mask, None, need_weights)
            all_weights.append(weights[:, :, skip:] if weights is not None else None)
        return self.output(self.norm(x[:, skip:])), all_weights if need_weights else None

    def init_cache(self, memory: Tensor, memory_lengths: Tensor) -> DecoderCache:
        """Project the encoder output (N, T, D) once into every block's cross-attention keys/values."""
        memory_kv = [block.cross_attn.project_kv(memory) for block in self.blocks]
        memory_mask = length_mask(memory_lengths, memory.shape[1])[:, None, None, :]
        empty = memory.new_zeros(memory.shape[0], 0, self.d_model)
        self_kv = [block.self_attn.project_kv(empty) for block in self.blocks]
        cache = DecoderCache(memory_kv, memory_mask, self_kv)
        if len(self.prompt) > 1:  # the prompt before <sos>, fed once, in one pass
            head = memory.new_tensor(self.prompt[:-1], dtype=torch.long).expand(memory.shape[0], -1)
            cache = self._feed(head, cache)[1]
        return cache

    def _feed(self, tokens: Tensor, cache: DecoderCache) -> tuple[Tensor, DecoderCache]:
        """Feed (N*G, U) tokens after the cached ones -> last hidden states (N*G, U, D), cache."""
        x = self._embed(tokens, cache.steps)
        self_kv = []
        causal = tokens.shape[1] > 1
        for block, memory_kv, past_kv in zip(self.blocks, cache.memory_kv, cache.self_kv):
            h = block.self_norm(x)
            k, v = block.self_attn.project_kv(h)
            k, v = torch.cat([past_kv[0], k], dim=2), torch.cat([past_kv[1], v], dim=2)
            mask = None
            if causal:  # a new position sees the cached ones and the new ones up to itself
                mask = torch.ones(tokens.shape[1], k.shape[2], dtype=torch.bool, device=x.device).tril(cache.steps)
            x = x + block.dropout(block.self_attn(h, (k, v), mask)[0])
            x = x + block.dropout(block.cross_attn(block.cross_norm(x), memory_kv, cache.memory_mask)[0])
            x = x + block.dropout(block.ff(block.ff_norm(x)))
            self_kv.append((k, v))
        return x, DecoderCache(cache.memory_kv, cache.memory_mask, self_kv)

    def step(self, tokens: Tensor, cache: DecoderCache) -> tuple[Tensor, DecoderCache]:
        """Feed each hypothesis's latest token (N*G,) -> next-token logits (N*G, V) and the
        cache grown by one step. The first call feeds <sos>."""
        x = self._embed(tokens[:, None], cache.steps)  # (N*G, 1, D)
        self_kv = []
        for block, memory_kv, past_kv in zip(self.blocks, cache.memory_kv, cache.self_kv):
            x, kv, _ = block(x, memory_kv, cache.memory_mask, past_kv)
            self_kv.append(kv)
        logits = self.output(self.norm(x[:, 0]))
        if self.prompt or self.suppress or self.max_positions:
            logits = self._filter(logits, cache.steps - max(len(self.prompt) - 1, 0))
        return logits, DecoderCache(cache.memory_kv, cache.memory_mask, self_kv)

    def expand_cache(self, cache: DecoderCache, group: int) -> DecoderCache:
        """Give each utterance ``group`` hypothesis rows (copies of its current ones)."""
        rows = torch.arange(cache.self_kv[0][0].shape[0], device=cache.memory_mask.device)
        return cache.select_hypotheses(rows.repeat_interleave(group))
