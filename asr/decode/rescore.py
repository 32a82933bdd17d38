"""Attention rescoring (wenet): CTC prefix beam search proposes an n-best list (for every
utterance of a batch at once, asr.decode.ctc_beam), the decoder scores each candidate
teacher-forced in one batched pass, and the best combined score wins.

    score = w * log P_ctc(y | x) + (1 - w) * log P_att(y, <eos> | x)   (ranked by length rule)

Cheaper than joint beam search (one decoder pass instead of one per token), and the CTC
alignment constraint keeps the decoder from inventing or dropping words.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from asr.decode.ctc import batched_sequence_log_probs
from asr.decode.ctc_beam import ctc_prefix_beam_search_batch
from asr.decode.hypothesis import Hypothesis
from asr.decode.options import DecodeOptions
from asr.decode.ranking import Ranker
from asr.decode.scorers import combine
from asr.model import with_prompt
from asr.nn.decoder import Decoder
from asr.nn.masks import lengths_to_mask
from asr.text.tokenizer import BLANK_ID, SOS_EOS_ID


POSITIONS_PER_PASS = 2048  # decoder positions (rows x tokens) per pass: big matmuls, cache-sized activations


def teacher_forced_log_probs(
    decoder: Decoder, memory: Tensor, memory_lengths: Tensor, owner: Tensor, sequences: list[list[int]],
    prompt: tuple[int, ...] = (),
) -> Tensor:
    """Decoder log P(tokens, <eos> | x) of C sequences, teacher-forced (after ``prompt``, if any).

    memory (N, T, D), memory_lengths (N,); owner (C,) the utterance of each sequence, in
    utterance order. Returns (C,) float32, the same per-token values beam search adds (blank
    excluded, not renormalised). Consecutive utterances are scored together, about
    POSITIONS_PER_PASS decoder positions at a time: one pass over a whole large batch would pad
    every sequence to the batch's longest and hold (C, U, V) logits, far more than the caches
    hold, so a batch would cost more per utterance than a single utterance.
    """
    counts = torch.bincount(owner.cpu(), minlength=memory.shape[0]).tolist()
    starts = [0, *itertools.accumulate(counts)]
    longest = [max((len(s) for s in sequences[starts[n] : starts[n + 1]]), default=0) for n in range(len(counts))]
    scores = []
    for run in _passes(counts, longest):
        a, b = run.start, run.stop
        local = owner[starts[a] : starts[b]] - a
        scores.append(_score_pass(decoder, memory[a:b], memory_lengths[a:b], local, sequences[starts[a] : starts[b]], prompt))
    return torch.cat(scores) if scores else memory.new_zeros(0)


def _passes(counts: list[int], longest: list[int]) -> list[range]:
    """Consecutive runs of utterances, each padded to (utterances x most sequences x (longest
    + 1)) positions of at most POSITIONS_PER_PASS (or one utterance). counts and longest: per
    utterance, its sequences and the tokens of its longest."""

    def size(a: int, b: int) -> int:
        return (b - a) * max(counts[a:b]) * (max(longest[a:b]) + 1)

    runs, first = [], 0
    for n in range(1, len(counts) + 1):
        if n == len(counts) or size(first, n + 1) > POSITIONS_PER_PASS:
            runs.append(range(first, n))
            first = n
    return runs


def _score_pass(
    decoder: Decoder, memory: Tensor, memory_lengths: Tensor, owner: Tensor, sequences: list[list[int]],
    prompt: tuple[int, ...] = (),
) -> Tensor:
    """One decoder pass of :func:`teacher_forced_log_probs`. Each utterance's sequences are
    padded to G rows, the most any utterance has, so that its encoder output is projected once
    for all G (explicit group)."""
    owner_cpu = owner.cpu()
    counts = torch.bincount(owner_cpu, minlength=memory.shape[0])
    group = max(1, int(counts.max()))
    starts = torch.cumsum(counts, 0) - counts
    rows = owner_cpu * group + torch.arange(len(sequences)) - starts[owner_cpu]  # (C,) row of each sequence
    longest = max((len(s) for s in sequences), default=0)
    inputs = torch.full((memory.shape[0] * group, longest + 1), BLANK_ID, dtype=torch.long)  # <sos> y, padded
    inputs[:, 0] = SOS_EOS_ID
    targets = torch.full((memory.shape[0] * group, longest + 1), SOS_EOS_ID, dtype=torch.long)  # y <eos>, padded
    for c, sequence in enumerate(sequences):
        inputs[rows[c], 1 : len(sequence) + 1] = torch.tensor(sequence, dtype=torch.long)
        targets[rows[c], : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
    inputs, targets, rows = inputs.to(memory.device), targets.to(memory.device), rows.to(memory.device)
    # Causal attention makes the padding after <eos> (and the empty padding rows) harmless.
    inputs, prefix = with_prompt(inputs, prompt)
    logits, _ = decoder(inputs, memory, memory_lengths, group=group, prefix=prefix)  # (N*G, U+1, V)
    # log_softmax at the targets only (never blank: CTC emits none), without (N*G, U+1, V) log-probs.
    token_log_probs = logits.gather(2, targets[..., None]).squeeze(2).float() - logits.float().logsumexp(dim=2)
    token_log_probs = token_log_probs.index_select(0, rows)  # (C, U+1)
    lengths = torch.tensor([len(s) + 1 for s in sequences], device=memory.device)
    real = lengths_to_mask(lengths, longest + 1)
    return token_log_probs.masked_fill(~real, 0.0).sum(dim=1)


def attention_rescoring(
    decoder: Decoder,
    memory: Tensor,
    memory_lengths: Tensor,
    ctc_log_probs: Tensor,
    options: DecodeOptions,
    prompt: tuple[int, ...] = (),
) -> list[list[Hypothesis]]:
    """memory (N, T, D), memory_lengths (N,) >= 1, ctc_log_probs (N, T, V) -> per utterance its
    ``options.beam`` CTC candidates rescored, best first (the decoder fed ``prompt`` first)."""
    ranker = Ranker.from_options(options)
    sequences: list[list[int]] = []
    owner: list[int] = []
    for n, nbest in enumerate(ctc_prefix_beam_search_batch(ctc_log_probs, memory_lengths, options.beam)):
        sequences += [tokens for tokens, _ in nbest]
        owner += [n] * len(nbest)
    owner_t = torch.tensor(owner, device=memory.device)
    attention = teacher_forced_log_probs(decoder, memory, memory_lengths, owner_t, sequences, prompt)
    # Exact CTC log-probs: the prefix beam's own scores miss the paths it pruned.
    ctc = batched_sequence_log_probs(ctc_log_probs, memory_lengths, owner_t, sequences).to(attention.device)
    joint = combine({"decoder": attention, "ctc": ctc}, {"decoder": 1.0 - options.ctc_weight, "ctc": options.ctc_weight})

    results: list[list[Hypothesis]] = [[] for _ in range(memory.shape[0])]
    for c, sequence in enumerate(sequences):
        results[owner[c]].append(
            Hypothesis(
                tokens=sequence,
                score=ranker.rank(float(joint[c]), len(sequence) + 1),
                scores={"decoder": float(attention[c]), "ctc": float(ctc[c])},
            )
        )
    return [sorted(hyps, key=lambda h: -h.score) for hyps in results]
