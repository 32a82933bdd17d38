"""Transformer decoder: causal self-attention, cross-attention to the encoder output, feed-forward.

Two ways in: :meth:`Decoder.forward` scores whole token sequences (training, teacher forcing);
:meth:`Decoder.step` extends hypotheses by one token using a :class:`DecoderCache` that holds
the encoder keys/values (projected once per utterance) and every earlier step's self-attention
keys/values. Both give the same logits (tests/nn/test_decoder.py).

Both return raw logits. What a decode feeds first (Whisper's prompt) and which tokens it may
emit (suppression, a forced end) are decided per call by the decoding task (asr.decode.task);
the decoder holds no decoding state of its own, so one model serves concurrent decodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from asr.config import ModelConfig
from asr.cpu import Dropout, Linear
from asr.nn.attention import FeedForward, KeyValue, MultiHeadAttention, sinusoidal_positions
from asr.nn.masks import lengths_to_mask, utterance_rows


@dataclass
class DecoderCache:
    """Decoding state for N utterances with ``group`` G hypotheses each (G=1 for greedy search).

    memory_kv and memory_mask have one row per utterance; the self-attention keys/values have one
    row per hypothesis, utterance-major (hypothesis g of utterance n is row n*G + g). They live in
    one buffer preallocated for ``capacity`` steps, time first, so that a step writes its keys and
    values in place, and reordering hypotheses copies only the ``steps`` filled positions (one
    op for every layer) instead of growing a tensor per layer by concatenation.

    Reordering writes into ``spare``, a second buffer of the same shape, and hands the old one
    back as the next spare (double buffering): a fresh buffer per step would cost more than the
    copy itself (the allocator returns large blocks to the system, and touching new pages is
    slow). So :meth:`select_hypotheses` consumes this cache: keep using the returned one.
    """

    memory_kv: list[KeyValue]  # per layer, (N, H, T_enc, Dh) each; [] without an encoder (an LM)
    memory_mask: Tensor | None  # (N, 1, 1, T_enc), True on real encoder frames; None without an encoder
    self_kv: Tensor  # (capacity, layers, 2, N*G, H, Dh): keys [:, :, 0] and values [:, :, 1]
    steps: int  # positions of self_kv filled
    group: int  # G, hypotheses per utterance
    spare: Tensor | None = None  # like self_kv, what the next reorder writes into
    consumed: bool = False  # reordered already: self_kv is another cache's spare

    def __post_init__(self) -> None:
        if self.memory_mask is None:
            return
        utterances, hyps = self.memory_mask.shape[0], self.self_kv.shape[3]
        assert hyps == utterances * self.group, f"{hyps} hypotheses are not {self.group} per utterance ({utterances})"

    def write(self, layer: int, k: Tensor, v: Tensor) -> KeyValue:
        """Store one step's keys and values (N*G, H, 1, Dh) of ``layer`` at position ``steps``;
        return the keys and values of every position up to it, (N*G, H, steps+1, Dh) views."""
        self.self_kv[self.steps, layer, 0] = k[:, :, 0]
        self.self_kv[self.steps, layer, 1] = v[:, :, 0]
        kv = self.self_kv[: self.steps + 1, layer].permute(1, 2, 3, 0, 4)  # (2, N*G, H, steps+1, Dh)
        return kv[0], kv[1]

    def select_hypotheses(self, rows: Tensor, group: int | None = None) -> DecoderCache:
        """Keep/reorder/duplicate hypothesis rows -> new order (N*G',), G' = ``group`` (default:
        unchanged). Rows must stay grouped by utterance; encoder keys/values are not touched.
        Consumes this cache when the row count stays (its buffer becomes the returned one's spare)."""
        assert not self.consumed, "this cache was reordered already: use the cache that returned"
        buffer, spare = _select_rows(self.self_kv, self.spare, self.steps, rows)
        if buffer is self.spare:
            self.spare = None
        self.consumed = spare is not None  # its buffer is now the spare that the next reorder overwrites
        return DecoderCache(self.memory_kv, self.memory_mask, buffer, self.steps, group or self.group, spare)

    def select_utterances(self, keep: Tensor) -> DecoderCache:
        """Drop finished utterances: ``keep`` (N',) indexes utterances; their hypotheses follow."""
        memory_kv = [(k.index_select(0, keep), v.index_select(0, keep)) for k, v in self.memory_kv]
        self_kv, _ = _select_rows(self.self_kv, None, self.steps, utterance_rows(keep, self.group))
        memory_mask = self.memory_mask.index_select(0, keep) if self.memory_mask is not None else None
        return DecoderCache(memory_kv, memory_mask, self_kv, self.steps, self.group)

    def grown(self) -> DecoderCache:
        """This cache with room for one more step (the capacity doubles when full)."""
        if self.steps < self.self_kv.shape[0]:
            return self
        buffer = self.self_kv.new_empty((2 * self.steps,) + self.self_kv.shape[1:])
        buffer[: self.steps] = self.self_kv
        return DecoderCache(self.memory_kv, self.memory_mask, buffer, self.steps, self.group)

    def advanced(self) -> DecoderCache:
        """This cache after one more step was written (same buffers)."""
        return DecoderCache(self.memory_kv, self.memory_mask, self.self_kv, self.steps + 1, self.group, self.spare)


def _select_rows(self_kv: Tensor, spare: Tensor | None, steps: int, rows: Tensor) -> tuple[Tensor, Tensor | None]:
    """Hypothesis ``rows`` of the first ``steps`` positions of ``self_kv``, written into ``spare``
    when it has the right shape (else into a new buffer) -> (that buffer, the next spare)."""
    shape = self_kv.shape[:3] + (rows.shape[0],) + self_kv.shape[4:]
    # As (positions * layers * 2, rows, H * Dh): one index_select of contiguous H * Dh rows.
    filled = self_kv[:steps].flatten(0, 2).flatten(2)
    if filled.requires_grad:  # out= cannot record a gradient (a decoder used outside no_grad)
        buffer = self_kv.new_empty(shape)
        buffer[:steps] = filled.index_select(1, rows).view((steps,) + shape[1:])
        return buffer, None
    buffer = spare if spare is not None and spare.shape == shape else self_kv.new_empty(shape)
    torch.index_select(filled, 1, rows, out=buffer[:steps].flatten(0, 2).flatten(2))
    return buffer, self_kv if self_kv.shape == shape else None


class DecoderBlock(nn.Module):
    """Self-attention, cross-attention to the encoder output (left out with ``cross_attention``
    False: a language model's block), feed-forward; each pre-norm with a residual."""

    def __init__(
        self, d_model: int, heads: int, ff_dim: int, dropout: float, activation: str = "relu", key_bias: bool = True,
        cross_attention: bool = True,
    ):
        super().__init__()
        self.self_norm = nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, heads, dropout, key_bias)
        self.cross_norm = nn.LayerNorm(d_model) if cross_attention else None
        self.cross_attn = MultiHeadAttention(d_model, heads, dropout, key_bias) if cross_attention else None
        self.ff_norm = nn.LayerNorm(d_model)
        self.ff = FeedForward(d_model, ff_dim, dropout, activation)
        self.dropout = Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        memory_kv: KeyValue | None,
        memory_mask: Tensor | None,
        need_weights: bool = False,
        cache: DecoderCache | None = None,
        layer: int = 0,
        group: int = 1,
    ) -> tuple[Tensor, Tensor | None]:
        """x (B, U, D) -> (B, U, D) and the cross-attention weights if asked.

        With a ``cache`` (one decoding step, U = 1, B = N*G rows), this block's new keys/values
        are written into ``cache.self_kv`` at position ``cache.steps`` of ``layer``, and the new
        position attends to every earlier one (no mask needed)."""
        h = self.self_norm(x)
        k, v = self.self_attn.project_kv(h)  # (B, H, U, Dh) each
        if cache is not None:
            k, v = cache.write(layer, k, v)
            group = cache.group
        x = x + self.dropout(self.self_attn(h, (k, v), causal=cache is None)[0])
        weights = None
        if self.cross_attn is not None:
            attended, weights = self.cross_attn(
                self.cross_norm(x), memory_kv, memory_mask, need_weights=need_weights, group=group
            )
            x = x + self.dropout(attended)
        x = x + self.dropout(self.ff(self.ff_norm(x)))
        return x, weights


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
        self.dropout = Dropout(dec.dropout)
        self.blocks = nn.ModuleList(
            DecoderBlock(config.d_model, dec.heads, dec.ff_dim, dec.dropout, dec.activation, config.attention_key_bias)
            for _ in range(dec.layers)
        )
        self.norm = nn.LayerNorm(config.d_model)
        self.output = Linear(config.d_model, vocab_size, bias=not dec.tie_output)
        if dec.tie_output:
            self.output.weight = self.embed.weight

    def _embed(self, tokens: Tensor, offset: int) -> Tensor:
        if self.learned_positions is not None:
            positions = self.learned_positions.weight[offset : offset + tokens.shape[1]]
        else:
            weight = self.embed.weight
            positions = sinusoidal_positions(tokens.shape[1], self.d_model, offset, weight.device).to(weight.dtype)
        return self.dropout(self.embed(tokens) * self.scale + positions)

    def forward(
        self, tokens: Tensor, memory: Tensor, memory_lengths: Tensor, need_weights: bool = False, group: int = 1,
        prefix: int = 0,
    ) -> tuple[Tensor, list[Tensor] | None]:
        """Teacher-forced scores. tokens (N*G, P+U), G = ``group`` sequences per utterance
        (utterance-major); memory (N, T, D), projected once for all G. The first ``prefix`` P
        positions only condition the rest (a prompt, asr.model.with_prompt): no output of theirs.

        Returns logits (N*G, U, V) and, if asked, each block's cross-attention weights
        (N*G, H, U, T). Padding after a sequence's end needs no mask: causal attention never
        looks ahead.
        """
        memory_mask = lengths_to_mask(memory_lengths, memory.shape[1])[:, None, None, :]
        x = self._embed(tokens, 0)
        all_weights = []
        for block in self.blocks:
            kv = block.cross_attn.project_kv(memory)
            x, weights = block(x, kv, memory_mask, need_weights, group=group)
            all_weights.append(weights[:, :, prefix:] if weights is not None else None)
        return self.output(self.norm(x[:, prefix:])), all_weights if need_weights else None

    def init_cache(self, memory: Tensor, memory_lengths: Tensor, group: int = 1, capacity: int = 16) -> DecoderCache:
        """Project the encoder output (N, T, D) once into every block's cross-attention keys/values,
        and make room for ``capacity`` steps of G = ``group`` empty hypotheses per utterance."""
        # Contiguous (N, H, T, Dh), not views of (N, T, H*Dh): every step reads them whole, and
        # from memory (tiny.en over 1500 frames: 4.6 MB a layer); a step is 15-20% faster so.
        memory_kv = [tuple(t.contiguous() for t in block.cross_attn.project_kv(memory)) for block in self.blocks]
        memory_mask = lengths_to_mask(memory_lengths, memory.shape[1])[:, None, None, :]
        attn = self.blocks[0].self_attn
        shape = (max(1, capacity), len(self.blocks), 2, memory.shape[0] * group, attn.heads, attn.head_dim)
        return DecoderCache(memory_kv, memory_mask, memory.new_empty(shape), 0, group)

    def feed(self, tokens: Tensor, cache: DecoderCache) -> tuple[Tensor, DecoderCache]:
        """Feed (N*G,) tokens -> the last block's output (N*G, D) and the cache one step longer
        (without the output projection: what a prompt's tokens need)."""
        assert tokens.shape[0] == cache.self_kv.shape[3], f"{tokens.shape[0]} tokens for {cache.self_kv.shape[3]} hypotheses"
        cache = cache.grown()
        x = self._embed(tokens[:, None], cache.steps)  # (N*G, 1, D)
        for layer, (block, memory_kv) in enumerate(zip(self.blocks, cache.memory_kv)):
            x, _ = block(x, memory_kv, cache.memory_mask, cache=cache, layer=layer)
        return x[:, 0], cache.advanced()

    def step(self, tokens: Tensor, cache: DecoderCache) -> tuple[Tensor, DecoderCache]:
        """Feed each hypothesis's latest token (N*G,) -> next-token logits (N*G, V) and the
        cache one step longer. The first call feeds <sos> (or a prompt's last token). The new
        step is written into the cache's buffer, which the returned cache shares: keep using
        the returned one."""
        x, cache = self.feed(tokens, cache)
        return self.output(self.norm(x)), cache

    def expand_cache(self, cache: DecoderCache, group: int) -> DecoderCache:
        """Give each hypothesis ``group`` rows (copies of its current ones): G' = G * group."""
        rows = torch.arange(cache.self_kv.shape[3], device=cache.memory_mask.device)
        return cache.select_hypotheses(rows.repeat_interleave(group), cache.group * group)

