"""Attention rescoring (wenet): CTC prefix beam search proposes an n-best list (for every
utterance of a batch at once, asr.decode.ctc_beam), the decoder scores each candidate
teacher-forced in one batched pass, and the best combined score wins.

    score = w * log P_ctc(y | x) + (1 - w) * log P_att(y, <eos> | x)   (ranked by length rule)

Cheaper than joint beam search (one decoder pass instead of one per token), and the CTC
alignment constraint keeps the decoder from inventing or dropping words.
"""

from __future__ import annotations

import torch
from torch import Tensor

from asr.decode.ctc import batched_sequence_log_probs
from asr.decode.ctc_beam import ctc_prefix_beam_search_batch
from asr.decode.hypothesis import Hypothesis
from asr.decode.options import DecodeOptions
from asr.decode.ranking import Ranker
from asr.decode.scorers import combine, next_token_log_probs
from asr.nn.decoder import Decoder
from asr.nn.masks import lengths_to_mask
from asr.text.tokenizer import BLANK_ID, SOS_EOS_ID


def teacher_forced_log_probs(
    decoder: Decoder, memory: Tensor, memory_lengths: Tensor, owner: Tensor, sequences: list[list[int]]
) -> Tensor:
    """Decoder log P(tokens, <eos> | x) of C sequences in one forward pass.

    memory (N, T, D), memory_lengths (N,); owner (C,) the utterance of each sequence, in
    utterance order. Returns (C,) float32, the same per-token values beam search adds (blank
    excluded, not renormalised). Each utterance's sequences are padded to G rows, the most any
    utterance has, so that its encoder output is projected once for all G (explicit group).
    """
    counts = torch.bincount(owner.cpu(), minlength=memory.shape[0])
    group = max(1, int(counts.max()))
    starts = torch.cumsum(counts, 0) - counts
    owner_cpu = owner.cpu()
    rows = owner_cpu * group + torch.arange(len(sequences)) - starts[owner_cpu]  # (C,) row of each sequence
    longest = max((len(s) for s in sequences), default=0)
    inputs = torch.full((memory.shape[0] * group, longest + 1), BLANK_ID, dtype=torch.long)  # <sos> y, padded
    inputs[:, 0] = SOS_EOS_ID
    targets = torch.full((len(sequences), longest + 1), SOS_EOS_ID, dtype=torch.long)  # y <eos>, padded
    for c, sequence in enumerate(sequences):
        inputs[rows[c], 1 : len(sequence) + 1] = torch.tensor(sequence, dtype=torch.long)
        targets[c, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
    inputs, targets, rows = inputs.to(memory.device), targets.to(memory.device), rows.to(memory.device)
    # Causal attention makes the padding after <eos> (and the empty padding rows) harmless.
    logits, _ = decoder(inputs, memory, memory_lengths, group=group)
    log_probs = next_token_log_probs(logits.index_select(0, rows))  # (C, U+1, V)
    token_log_probs = log_probs.gather(2, targets[..., None]).squeeze(2)  # (C, U+1)
    lengths = torch.tensor([len(s) + 1 for s in sequences], device=memory.device)
    real = lengths_to_mask(lengths, longest + 1)
    return token_log_probs.masked_fill(~real, 0.0).sum(dim=1)


def attention_rescoring(
    decoder: Decoder,
    memory: Tensor,
    memory_lengths: Tensor,
    ctc_log_probs: Tensor,
    options: DecodeOptions,
) -> list[list[Hypothesis]]:
    """memory (N, T, D), memory_lengths (N,) >= 1, ctc_log_probs (N, T, V) -> per utterance its
    ``options.beam`` CTC candidates rescored, best first."""
    ranker = Ranker.from_options(options)
    sequences: list[list[int]] = []
    owner: list[int] = []
    for n, nbest in enumerate(ctc_prefix_beam_search_batch(ctc_log_probs, memory_lengths, options.beam)):
        sequences += [tokens for tokens, _ in nbest]
        owner += [n] * len(nbest)
    owner_t = torch.tensor(owner, device=memory.device)
    attention = teacher_forced_log_probs(decoder, memory, memory_lengths, owner_t, sequences)
    # Exact CTC log-probs: the prefix beam's own scores miss the paths it pruned.
    ctc = batched_sequence_log_probs(ctc_log_probs, memory_lengths, owner_t, sequences).to(attention.device)
    joint = combine({"decoder": attention, "ctc": ctc}, {"decoder": 1.0 - options.ctc_weight, "ctc": options.ctc_weight})

    results: list[list[Hypothesis]] = [[] for _ in range(memory.shape[0])]
    for c, sequence in enumerate(sequences):
        results[owner[c]].append(
            Hypothesis(
                tokens=sequence,
                score=ranker.rank(float(joint[c]), len(sequence) + 1),
                attention=float(attention[c]),
                ctc=float(ctc[c]),
            )
        )
    return [sorted(hyps, key=lambda h: -h.score) for hyps in results]
