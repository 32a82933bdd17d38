"""Shallow fusion: the LM as one more weighted scorer of beam search (asr.decode.scorers).

Joint CTC/attention search with an LM ranks hypotheses by
    (1 - w_ctc) log p_dec(y|x) + w_ctc log p_ctc(y|x) + w_lm log p_lm(y)
(Watanabe et al., 2017, eq. 19 and section IV-D; ESPnet's ``lm_weight``). The LM scores every
next unit of every hypothesis from its own cache, so it is a full scorer like the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from asr.decode.scorers import Scores, Selection
from asr.lm.model import LMCache, TransformerLM, next_token_log_probs
from asr.nn.masks import utterance_rows
from asr.text.tokenizer import MODEL_FILE, SOS_EOS_ID


class LMError(ValueError):
    """An LM that cannot be used with this recogniser (another tokenizer)."""


@dataclass
class LMState:
    cache: LMCache
    last: Tensor  # (N*G,) latest unit of each hypothesis; <sos> before the first
    total: Tensor  # (N*G,) LM log-prob of each hypothesis's units so far
    group: int  # hypotheses per utterance


class LMScorer:
    partial = False  # one step scores the whole vocabulary
    max_token_score = 0.0  # log-probabilities

    def __init__(self, lm: TransformerLM):
        self.lm = lm

    def init(self, memory: Tensor, memory_lengths: Tensor, group: int) -> LMState:
        """N utterances (memory (N, T, D) gives N and the device) -> G empty hypotheses each."""
        hyps = memory.shape[0] * group
        last = torch.full((hyps,), SOS_EOS_ID, dtype=torch.long, device=memory.device)
        return LMState(self.lm.empty_cache(hyps, memory.device), last, memory.new_zeros(hyps, dtype=torch.float32), group)

    def score(self, state: LMState, candidates: Tensor | None) -> Scores:
        logits, cache = self.lm.step(state.last, state.cache)
        totals = state.total[:, None] + next_token_log_probs(logits)  # (H, V)
        tokens = totals if candidates is None else totals.gather(1, candidates)
        return Scores(tokens, totals[:, SOS_EOS_ID], (cache, totals, state.group))

    def select(self, scored_state: tuple[LMCache, Tensor, int], selection: Selection) -> LMState:
        cache, totals, group = scored_state
        total = totals[selection.rows, selection.tokens]
        return LMState(cache.select(selection.rows), selection.tokens, total, group)

    def select_utterances(self, state: LMState, keep: Tensor) -> LMState:
        rows = utterance_rows(keep, state.group)
        return LMState(state.cache.select(rows), state.last[rows], state.total[rows], state.group)


def load_fusion_lm(lm_dir: str | Path, exp_dir: str | Path, device: str | torch.device = "cpu") -> TransformerLM:
    """The LM of ``lm_dir`` for decoding ``exp_dir``; an error unless both use one tokenizer."""
    from asr.lm.train import TOKENIZER, load_lm

    lm, _ = load_lm(lm_dir, device)
    ours = Path(exp_dir) / "tokenizer" / MODEL_FILE
    theirs = Path(lm_dir) / TOKENIZER / MODEL_FILE
    if ours.is_file() and ours.read_bytes() != theirs.read_bytes():
        raise LMError(
            f"the LM in {lm_dir} was trained on another tokenizer than {exp_dir}'s: train it with "
            f"`asr lm train --tokenizer {ours.parent}`"
        )
    return lm
