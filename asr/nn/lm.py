"""A causal Transformer language model over the tokenizer's units: the decoder without
cross-attention.

Sentences are scored as <sos> w1 ... wn <eos>, with <sos> and <eos> the ASR decoder's id
(``SOS_EOS_ID``), so a hypothesis of the recogniser is a prefix the LM scores token by token.
The blocks are the decoder's (:class:`~asr.nn.decoder.DecoderBlock` without cross-attention) and
so is the cache: :meth:`TransformerLM.step` writes each step's keys and values into a
preallocated :class:`~asr.nn.decoder.DecoderCache` (no encoder keys/values), and gives the same
logits as :meth:`TransformerLM.forward` over the whole prefix (tests/lm/test_lm.py). With
``init_cache`` and ``step`` shaped as the decoder's, the decoder's scorer scores it
(asr.decode.lm).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from asr.config import LMConfig
from asr.nn.attention import sinusoidal_positions
from asr.nn.decoder import DecoderBlock, DecoderCache
from asr.nn.dropout import Dropout
from asr.nn.linear import Linear
from asr.nn.masks import lengths_to_mask
from asr.text.special import SOS_EOS_ID

IGNORE = -100  # target id the cross entropy skips (padding)


class TransformerLM(nn.Module):
    def __init__(self, config: LMConfig, vocab_size: int):
        super().__init__()
        self.config = config  # the whole resolved ``lm`` section: what a checkpoint stores
        self.vocab_size = vocab_size
        shape = config.model
        self.d_model = shape.d_model
        self.embed = nn.Embedding(vocab_size, shape.d_model)
        nn.init.normal_(self.embed.weight, std=shape.d_model**-0.5)  # unit scale after sqrt(d)
        self.dropout = Dropout(shape.dropout)
        self.blocks = nn.ModuleList(
            DecoderBlock(shape.d_model, shape.heads, shape.ff_dim, shape.dropout, shape.activation, cross_attention=False)
            for _ in range(shape.layers)
        )
        self.norm = nn.LayerNorm(shape.d_model)
        self.output = Linear(shape.d_model, vocab_size)

    def _embed(self, tokens: Tensor, offset: int) -> Tensor:
        weight = self.embed.weight
        positions = sinusoidal_positions(tokens.shape[1], self.d_model, offset, weight.device).to(weight.dtype)
        return self.dropout(self.embed(tokens) * math.sqrt(self.d_model) + positions)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (B, U), each row starting with <sos> -> next-token logits (B, U, V).
        Padding after a row's end needs no mask: causal attention never looks ahead."""
        x = self._embed(tokens, 0)
        for block in self.blocks:
            x, _ = block(x, None, None)
        return self.output(self.norm(x))

    def init_cache(self, memory: Tensor, memory_lengths: Tensor, group: int = 1, capacity: int = 16) -> DecoderCache:
        """Room for ``capacity`` steps of G = ``group`` empty hypotheses for each of N utterances.
        The LM reads no encoder output: ``memory`` (N, T, D) gives N and the device (the
        decoder's signature, so that :class:`asr.decode.scorers.DecoderScorer` scores an LM)."""
        attn = self.blocks[0].self_attn
        shape = (max(1, capacity), len(self.blocks), 2, memory.shape[0] * group, attn.heads, attn.head_dim)
        buffer = torch.empty(shape, device=memory.device, dtype=self.embed.weight.dtype)
        return DecoderCache([], None, buffer, 0, group)

    def step(self, tokens: Tensor, cache: DecoderCache) -> tuple[Tensor, DecoderCache]:
        """Feed each hypothesis's latest token (N*G,) (<sos> first) -> next-token logits
        (N*G, V) and the cache one step longer (it shares the buffer: keep the returned one)."""
        assert tokens.shape[0] == cache.self_kv.shape[3], f"{tokens.shape[0]} tokens for {cache.self_kv.shape[3]} hypotheses"
        cache = cache.grown()
        x = self._embed(tokens[:, None], cache.steps)  # (N*G, 1, D)
        for layer, block in enumerate(self.blocks):
            x, _ = block(x, None, None, cache=cache, layer=layer)
        return self.output(self.norm(x[:, 0])), cache.advanced()

    def sentence_loss(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, int]:
        """Summed cross entropy of sentences and their <eos>, and how many units that is.

        tokens (B, L) padded unit ids without <sos>/<eos>; lengths (B,)."""
        batch = tokens.shape[0]
        inputs = torch.cat([tokens.new_full((batch, 1), SOS_EOS_ID), tokens], dim=1)  # (B, L+1)
        targets = torch.cat([tokens, tokens.new_full((batch, 1), IGNORE)], dim=1)
        targets = targets.masked_fill(~lengths_to_mask(lengths, targets.shape[1]), IGNORE)
        targets[torch.arange(batch), lengths] = SOS_EOS_ID  # <eos> right after the last unit
        logits = self(inputs)
        loss = F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=IGNORE, reduction="sum")
        return loss, int((targets != IGNORE).sum())
