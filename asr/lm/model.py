"""A causal Transformer language model over SentencePiece units, with an explicit cache.

Sentences are scored as <sos> w1 ... wn <eos>, with <sos> and <eos> the same id as the ASR
decoder's (``SOS_EOS_ID``), so a hypothesis of the recogniser is a prefix the LM can score
token by token: :meth:`TransformerLM.step` extends every hypothesis by one token from an
:class:`LMCache` of earlier keys and values, and gives the same log-probabilities as
:meth:`TransformerLM.forward` over the whole prefix (tests/lm/test_lm.py).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from asr.nn.attention import sinusoidal_positions
from asr.text.tokenizer import BLANK_ID, SOS_EOS_ID

KeyValue = tuple[Tensor, Tensor]  # each (B, heads, steps, head_dim)


@dataclass(frozen=True)
class LMConfig:
    vocab_size: int
    d_model: int = 256
    heads: int = 4
    layers: int = 4
    ff_dim: int = 1024
    dropout: float = 0.1


@dataclass
class LMCache:
    """Self-attention keys/values of every layer for B rows (hypotheses)."""

    kv: list[KeyValue]

    @property
    def steps(self) -> int:
        return self.kv[0][0].shape[2]

    def select(self, rows: Tensor) -> LMCache:
        """Rows (B',) of the cache, reordered or repeated."""
        return LMCache([(k.index_select(0, rows), v.index_select(0, rows)) for k, v in self.kv])


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"LM d_model {d_model} is not divisible by heads {heads}")
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor, past: KeyValue | None) -> tuple[Tensor, KeyValue]:
        """x (B, U, D) -> (B, U, D) and the keys/values including the new positions. With
        ``past``, x holds one new position, which may attend to all of them (no mask)."""
        batch, time, d_model = x.shape
        q, k, v = (t.view(batch, time, self.heads, -1).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        dropout = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=past is None)
        return self.out(out.transpose(1, 2).reshape(batch, time, d_model)), (k, v)


class LMBlock(nn.Module):
    def __init__(self, config: LMConfig):
        super().__init__()
        d = config.d_model
        self.attn_norm, self.attn = nn.LayerNorm(d), CausalSelfAttention(d, config.heads, config.dropout)
        self.ff_norm = nn.LayerNorm(d)
        self.ff = nn.Sequential(
            nn.Linear(d, config.ff_dim), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(config.ff_dim, d)
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, past: KeyValue | None) -> tuple[Tensor, KeyValue]:
        attended, kv = self.attn(self.attn_norm(x), past)
        x = x + self.dropout(attended)
        return x + self.dropout(self.ff(self.ff_norm(x))), kv


class TransformerLM(nn.Module):
    def __init__(self, config: LMConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        nn.init.normal_(self.embed.weight, std=config.d_model**-0.5)  # unit scale after sqrt(d)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(LMBlock(config) for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.output = nn.Linear(config.d_model, config.vocab_size)

    def _embed(self, tokens: Tensor, offset: int) -> Tensor:
        d = self.config.d_model
        positions = sinusoidal_positions(tokens.shape[1], d, offset).to(self.embed.weight)
        return self.dropout(self.embed(tokens) * math.sqrt(d) + positions)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (B, U), each row starting with <sos> -> next-token logits (B, U, V).
        Padding after a row's end needs no mask: causal attention never looks ahead."""
        x = self._embed(tokens, 0)
        for block in self.blocks:
            x, _ = block(x, None)
        return self.output(self.norm(x))

    def empty_cache(self, rows: int, device: torch.device) -> LMCache:
        shape = (rows, self.config.heads, 0, self.config.d_model // self.config.heads)
        empty = torch.zeros(shape, device=device, dtype=self.embed.weight.dtype)
        return LMCache([(empty, empty) for _ in self.blocks])

    def step(self, tokens: Tensor, cache: LMCache) -> tuple[Tensor, LMCache]:
        """Feed each row's latest token (B,) (<sos> first) -> next-token logits (B, V) and the
        cache grown by one step."""
        x = self._embed(tokens[:, None], cache.steps)  # (B, 1, D)
        kv = []
        for block, past in zip(self.blocks, cache.kv):
            x, layer_kv = block(x, past)
            kv.append(layer_kv)
        return self.output(self.norm(x[:, 0])), LMCache(kv)

    def sentence_loss(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, int]:
        """Summed cross entropy of sentences and their <eos>, and how many tokens that is.

        tokens (B, L) padded unit ids without <sos>/<eos>; lengths (B,)."""
        batch = tokens.shape[0]
        sos = tokens.new_full((batch, 1), SOS_EOS_ID)
        inputs = torch.cat([sos, tokens], dim=1)  # (B, L+1)
        targets = torch.cat([tokens, tokens.new_full((batch, 1), -100)], dim=1)
        real = torch.arange(targets.shape[1], device=tokens.device)[None] < lengths[:, None]
        targets = targets.masked_fill(~real, -100)
        targets[torch.arange(batch), lengths] = SOS_EOS_ID  # <eos> right after the last unit
        logits = self(inputs)
        loss = F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=-100, reduction="sum")
        return loss, int((targets != -100).sum())

    def state(self) -> dict:
        """What a checkpoint needs to rebuild the model."""
        return {"config": asdict(self.config), "model": self.state_dict()}


def lm_from_state(state: dict) -> TransformerLM:
    model = TransformerLM(LMConfig(**state["config"]))
    model.load_state_dict(state["model"])
    return model


def next_token_log_probs(logits: Tensor) -> Tensor:
    """LM logits (..., V) -> log-probs in float32 with the CTC blank impossible (never a target)."""
    log_probs = logits.float().log_softmax(dim=-1)
    log_probs[..., BLANK_ID] = float("-inf")
    return log_probs
