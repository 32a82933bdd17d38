"""CTC prefix beam search for a batch of utterances in tensors: the n-best lists that attention
rescoring reranks.

The algorithm is :func:`asr.decode.ctc.ctc_prefix_beam_search` (Hannun et al., 2014, algorithm
1, with wenet's pruning to the ``beam`` most likely labels per frame), which stays the readable
one-utterance reference it is tested against. Here every utterance's ``beam`` prefixes advance
through the frames together, each as two log-probabilities (paths ending in blank, paths ending
in the prefix's last label). Per frame each prefix has 1 + k continuations: itself (a blank, or
its last label repeated) and itself + each of the k labels. Continuations that are the same
prefix must be merged (their probabilities added): a prefix is named by two independent 31-bit
polynomial hashes of its tokens, continuations are sorted by that name, and equal neighbours
are summed; the ``beam`` most probable distinct prefixes are kept. A hash collision (chance about
1e-13 per utterance) would merge two prefixes. Ties between exactly equal scores may be broken
in another order than the reference's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from asr.nn.masks import NEG_INF
from asr.text.tokenizer import BLANK_ID

MODULI = (2_147_483_647, 2_147_483_629)  # two primes below 2**31: products stay within int64
BASES = (1_000_003, 999_983)


@dataclass
class Prefixes:
    """``beam`` prefixes per utterance of N: (N, B, ...) tensors."""

    tokens: Tensor  # (N, B, T) long, the first ``length`` entries used
    length: Tensor  # (N, B) long
    last: Tensor  # (N, B) long, last token; -1 for the empty prefix
    hashes: Tensor  # (N, B, 2) long
    blank: Tensor  # (N, B) float64 log P(paths emitting the prefix, ending in blank); -inf: unused
    label: Tensor  # (N, B) float64 log P(paths ending in the prefix's last label)

    @classmethod
    def empty(cls, utterances: int, beam: int, frames: int, device: torch.device) -> Prefixes:
        blank = torch.full((utterances, beam), NEG_INF, dtype=torch.float64, device=device)
        blank[:, 0] = 0.0  # only the empty prefix, in slot 0
        zeros = torch.zeros(utterances, beam, dtype=torch.long, device=device)
        return cls(
            torch.zeros(utterances, beam, max(frames, 1), dtype=torch.long, device=device), zeros, zeros - 1,
            torch.zeros(utterances, beam, 2, dtype=torch.long, device=device), blank, torch.full_like(blank, NEG_INF),
        )  # fmt: skip

    def with_capacity(self, tokens: int) -> Prefixes:
        """The same prefixes with room for at least ``tokens`` tokens each (a prefix grows by at
        most one token per frame)."""
        spare = tokens - self.tokens.shape[2]
        if spare <= 0:
            return self
        grown = torch.nn.functional.pad(self.tokens, (0, spare))
        return Prefixes(grown, self.length, self.last, self.hashes, self.blank, self.label)


def ctc_prefix_beam_search_batch(
    log_probs: Tensor, lengths: Tensor, beam: int, blank: int = BLANK_ID
) -> list[list[tuple[list[int], float]]]:
    """log_probs (N, T, V), lengths (N,) valid frames -> per utterance up to ``beam``
    (tokens, log-prob) pairs, best first: the beam's own estimates, as in the reference."""
    prefixes = Prefixes.empty(log_probs.shape[0], beam, log_probs.shape[1], log_probs.device)
    return prefix_results(advance_prefixes(prefixes, log_probs, lengths, beam, blank))


def advance_prefixes(prefixes: Prefixes, log_probs: Tensor, lengths: Tensor, beam: int, blank: int = BLANK_ID) -> Prefixes:
    """The prefixes after ``lengths`` (N,) more frames of log_probs (N, T, V): a whole utterance,
    or the next chunk of a stream (:mod:`asr.decode.streaming`)."""
    utts, time, vocab = log_probs.shape
    top_p, top_labels = log_probs.double().topk(min(beam, vocab), dim=-1)  # (N, T, k)
    prefixes = prefixes.with_capacity(int(prefixes.length.max()) + time)
    for t in range(time):
        grown = _step(prefixes, top_p[:, t], top_labels[:, t], beam, blank)
        active = (t < lengths)[:, None]  # (N, 1): an utterance past its end keeps its prefixes
        prefixes = Prefixes(
            *(torch.where(active[..., None] if old.dim() == 3 else active, new, old)
              for old, new in zip(_fields(prefixes), _fields(grown)))
        )  # fmt: skip
    return prefixes


def _fields(p: Prefixes) -> tuple[Tensor, ...]:
    return p.tokens, p.length, p.last, p.hashes, p.blank, p.label


def _step(p: Prefixes, top_p: Tensor, top_labels: Tensor, beam: int, blank: int) -> Prefixes:
    """One frame: top_p, top_labels (N, k) the frame's most likely labels."""
    utts, slots = p.blank.shape
    k = top_labels.shape[1]
    is_blank = top_labels == blank  # (N, k)
    blank_p = torch.where(is_blank, top_p, NEG_INF).amax(dim=1)  # (N,) -inf if blank not in the top k
    # The prefix itself: + blank (from either ending), or its last label repeated ("aa" -> "a").
    total = torch.logaddexp(p.blank, p.label)  # (N, B)
    repeat = (top_labels[:, None, :] == p.last[..., None]) & ~is_blank[:, None, :]  # (N, B, k)
    repeat_p = torch.where(repeat, top_p[:, None, :], NEG_INF).amax(dim=2)  # (N, B)
    same_blank, same_label = total + blank_p[:, None], p.label + repeat_p
    # The prefix + each non-blank label: a repeat needs a blank between, so only from blank endings.
    from_ends = torch.where(repeat, p.blank[..., None], total[..., None])  # (N, B, k)
    ext_label = (from_ends + top_p[:, None, :]).masked_fill(is_blank[:, None, :], NEG_INF)
    # Candidates (N, B * (1 + k)): the B prefixes themselves, then their B * k extensions.
    cand_blank = torch.cat([same_blank, torch.full_like(ext_label, NEG_INF).view(utts, -1)], dim=1)
    cand_label = torch.cat([same_label, ext_label.view(utts, -1)], dim=1)
    parent = torch.arange(slots, device=p.blank.device).repeat_interleave(k)  # extension -> its prefix
    parent = torch.cat([torch.arange(slots, device=parent.device), parent])[None].expand(utts, -1)
    label = torch.cat([torch.full_like(p.last, -1), top_labels.repeat(1, slots)], dim=1)  # -1: no label
    hashes = torch.cat([p.hashes, _extend_hashes(p.hashes, top_labels)], dim=1)  # (N, C, 2)
    return _merge_and_prune(p, parent, label, hashes, cand_blank, cand_label, beam)


def _extend_hashes(hashes: Tensor, labels: Tensor) -> Tensor:
    """Hashes (N, B, 2) of prefixes extended by each of labels (N, k) -> (N, B * k, 2)."""
    out = []
    for i, (modulus, base) in enumerate(zip(MODULI, BASES)):
        grown = (hashes[:, :, i, None] * base + labels[:, None, :] + 1) % modulus  # (N, B, k)
        out.append(grown.reshape(hashes.shape[0], -1))
    return torch.stack(out, dim=2)


def _merge_and_prune(
    p: Prefixes, parent: Tensor, label: Tensor, hashes: Tensor, cand_blank: Tensor, cand_label: Tensor, beam: int
) -> Prefixes:
    """Sum the candidates (N, C) that are the same prefix, keep the ``beam`` most probable."""
    utts, count = cand_blank.shape
    key = hashes[..., 0] * MODULI[1] + hashes[..., 1]  # (N, C) one int64 name per prefix
    key = key.masked_fill(torch.isneginf(torch.logaddexp(cand_blank, cand_label)), -1)  # impossible: apart
    key, order = key.sort(dim=1, stable=True)
    starts = torch.ones_like(key, dtype=torch.bool)
    starts[:, 1:] = key[:, 1:] != key[:, :-1]
    segment = starts.long().cumsum(dim=1) - 1  # (N, C) index of each candidate's distinct prefix
    merged_blank = _segment_logsumexp(cand_blank.gather(1, order), segment, count)
    merged_label = _segment_logsumexp(cand_label.gather(1, order), segment, count)
    first = torch.full_like(segment, count).scatter_reduce(1, segment, torch.arange(count, device=key.device).expand(utts, -1), "amin")
    score = torch.logaddexp(merged_blank, merged_label).masked_fill(first == count, NEG_INF)  # (N, C)
    score = score.masked_fill(key.gather(1, first.clamp(max=count - 1)) == -1, NEG_INF)
    top, chosen = score.topk(beam, dim=1)  # (N, B) segments
    source = order.gather(1, first.clamp(max=count - 1).gather(1, chosen))  # (N, B) candidate of each
    return _grow(p, parent.gather(1, source), label.gather(1, source), hashes, source,
                 merged_blank.gather(1, chosen), merged_label.gather(1, chosen), top)  # fmt: skip


def _segment_logsumexp(values: Tensor, segment: Tensor, count: int) -> Tensor:
    """log-sum-exp of values (N, C) within each segment (N, C) -> (N, C) per segment index."""
    top = torch.full_like(values, NEG_INF).scatter_reduce(1, segment, values, "amax")
    shift = top.masked_fill(torch.isneginf(top), 0.0)
    sums = torch.zeros_like(values).scatter_add(1, segment, (values - shift.gather(1, segment)).exp())
    return sums.log() + shift


def _grow(
    p: Prefixes, parent: Tensor, label: Tensor, hashes: Tensor, source: Tensor, blank: Tensor, lab: Tensor, top: Tensor
) -> Prefixes:
    """The kept prefixes (N, B): parent slot, appended label (-1: none), and merged scores."""
    utts, beam = parent.shape
    tokens = p.tokens.gather(1, parent[..., None].expand(-1, -1, p.tokens.shape[2])).clone()
    length = p.length.gather(1, parent)
    extended = label >= 0
    position = length.clamp(max=tokens.shape[2] - 1)[..., None]
    tokens.scatter_(2, position, torch.where(extended, label, tokens.gather(2, position)[..., 0])[..., None])
    dead = torch.isneginf(top)
    return Prefixes(
        tokens=tokens,
        length=length + extended.long(),
        last=torch.where(extended, label, p.last.gather(1, parent)),
        hashes=hashes.gather(1, source[..., None].expand(-1, -1, 2)),
        blank=blank.masked_fill(dead, NEG_INF),
        label=lab.masked_fill(dead, NEG_INF),
    )


def prefix_results(p: Prefixes) -> list[list[tuple[list[int], float]]]:
    score = torch.logaddexp(p.blank, p.label)  # (N, B), best first already (topk sorts)
    results = []
    for tokens, lengths, scores in zip(p.tokens.tolist(), p.length.tolist(), score.tolist()):
        results.append([(t[:n], s) for t, n, s in zip(tokens, lengths, scores) if s != NEG_INF])
    return results
