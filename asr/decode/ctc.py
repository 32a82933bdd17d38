"""CTC searches that need no decoder: greedy (best path) and prefix beam search, and the exact CTC
log-probability of given token sequences.

CTC (Graves et al., 2006) emits one label or blank per frame; a label sequence is read off a path
by merging repeated labels and then dropping blanks.
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import Tensor

from asr.nn.masks import NEG_INF, lengths_to_mask
from asr.text.tokenizer import BLANK_ID



def ctc_greedy(log_probs: Tensor, lengths: Tensor, blank: int = BLANK_ID) -> list[list[int]]:
    """Best path decoding: frame-wise argmax, repeats merged, blanks dropped.

    log_probs (B, T, V); lengths (B,) valid frames. Returns B token lists.
    """
    best = log_probs.argmax(dim=-1)  # (B, T)
    # A frame starts a new label when it differs from the previous frame and is not blank.
    changed = torch.ones_like(best, dtype=torch.bool)
    changed[:, 1:] = best[:, 1:] != best[:, :-1]
    keep = changed & (best != blank)
    return [best[b, : int(lengths[b])][keep[b, : int(lengths[b])]].tolist() for b in range(best.shape[0])]


def ctc_best_path_scores(log_probs: Tensor, lengths: Tensor) -> Tensor:
    """Log-probability of the best path of each utterance: (B, T, V), (B,) -> (B,) float32."""
    best = log_probs.float().max(dim=-1).values  # (B, T)
    valid = lengths_to_mask(lengths, best.shape[1])
    return best.masked_fill(~valid, 0.0).sum(dim=1)


def _logadd(*values: float) -> float:
    top = max(values)
    if top == NEG_INF:
        return NEG_INF
    return top + math.log(sum(math.exp(v - top) for v in values))


def ctc_prefix_beam_search(
    log_probs: Tensor, beam: int, blank: int = BLANK_ID
) -> list[tuple[list[int], float]]:
    """CTC prefix beam search (Hannun et al., 2014, "First-pass large vocabulary continuous speech
    recognition using bi-directional recurrent DNNs", algorithm 1) for one utterance.

    log_probs (T, V) of the utterance's valid frames. Each prefix carries two log-probabilities:
    of the paths that emit it and end in blank, and of those ending in its last label, because
    a repeated label extends the prefix only after a blank. At each frame only the ``beam`` most
    likely labels are tried (as in wenet), and the ``beam`` best prefixes are kept.

    Returns up to ``beam`` (tokens, log-prob) pairs, best first. The log-probs are the beam's
    estimates (paths through pruned prefixes are lost); :func:`ctc_sequence_log_probs` gives
    exact values.
    """
    top_p, top_labels = log_probs.double().topk(min(beam, log_probs.shape[-1]), dim=-1)  # (T, k)
    # prefix -> (log p ending in blank, log p ending in the prefix's last label)
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
    for frame_p, frame_labels in zip(top_p.tolist(), top_labels.tolist()):
        grown: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
        for prefix, (p_blank, p_label) in beams.items():
            for label, p in zip(frame_labels, frame_p):
                if label == blank:
                    entry = grown[prefix]
                    entry[0] = _logadd(entry[0], p_blank + p, p_label + p)
                    continue
                extended = grown[prefix + (label,)]
                if prefix and prefix[-1] == label:
                    # "aa" without a blank between is still "a"; only a blank-ended path extends it.
                    extended[1] = _logadd(extended[1], p_blank + p)
                    same = grown[prefix]
                    same[1] = _logadd(same[1], p_label + p)
                else:
                    extended[1] = _logadd(extended[1], p_blank + p, p_label + p)
        scored = [(-_logadd(*p), prefix) for prefix, p in grown.items()]
        ranked = sorted((s, prefix) for s, prefix in scored if s != -NEG_INF)  # impossible ones out
        beams = {prefix: (grown[prefix][0], grown[prefix][1]) for _, prefix in ranked[:beam]}
    return [(list(prefix), _logadd(pb, pl)) for prefix, (pb, pl) in beams.items()]


def ctc_sequence_log_probs(log_probs: Tensor, sequences: list[list[int]], blank: int = BLANK_ID) -> Tensor:
    """Exact CTC log P(sequence | frames) of several sequences for one utterance.

    log_probs (T, V) valid frames; returns (C,) float32 for the C sequences."""
    owner = torch.zeros(len(sequences), dtype=torch.long, device=log_probs.device)
    lengths = torch.tensor([log_probs.shape[0]], device=log_probs.device)
    return batched_sequence_log_probs(log_probs[None], lengths, owner, sequences, blank)


def batched_sequence_log_probs(
    log_probs: Tensor, lengths: Tensor, owner: Tensor, sequences: list[list[int]], blank: int = BLANK_ID
) -> Tensor:
    """Exact CTC log P(sequence | frames) of C sequences, sequence c of utterance owner[c].

    log_probs (N, T, V), lengths (N,) valid frames, owner (C,); returns (C,) float32 in one
    F.ctc_loss call. Each sequence is scored on only its own columns (blank + its distinct
    labels, re-indexed), so the lattice is (T, 1 + distinct labels) rather than (T, V) per
    sequence; repeated labels keep one index, so CTC's blank-between-repeats rule still applies.
    """
    width = 1 + max((len(set(s)) for s in sequences), default=0)
    columns = torch.full((len(sequences), width), blank, dtype=torch.long)  # (C, W)
    longest = max((len(s) for s in sequences), default=0)
    targets = torch.zeros(len(sequences), max(longest, 1), dtype=torch.long)  # (C, U), padded
    for c, sequence in enumerate(sequences):
        distinct = list(dict.fromkeys(sequence))  # first-appearance order
        columns[c, 1 : 1 + len(distinct)] = torch.tensor(distinct, dtype=torch.long)
        index = {label: i + 1 for i, label in enumerate(distinct)}
        targets[c, : len(sequence)] = torch.tensor([index[t] for t in sequence], dtype=torch.long)
    frames = log_probs.float().transpose(0, 1)  # (T, N, V)
    device = frames.device
    reduced = frames[:, owner[:, None], columns.to(device)]  # (T, C, W): unused columns repeat blank
    loss = F.ctc_loss(
        reduced,
        targets.to(device),
        lengths.index_select(0, owner),
        torch.tensor([len(s) for s in sequences], dtype=torch.long, device=device),
        blank=0,
        reduction="none",
        zero_infinity=False,
    )
    return -loss  # (C,)
