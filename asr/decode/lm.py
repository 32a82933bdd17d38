"""Shallow fusion: a language model as one more weighted scorer of beam search.

Joint CTC/attention search with an LM ranks hypotheses by
    (1 - w_ctc) log p_dec(y|x) + w_ctc log p_ctc(y|x) + w_lm log p_lm(y)
(Watanabe et al., 2017, eq. 19 and section IV-D; ESPnet's ``lm_weight``). The LM
(asr.nn.lm) is the decoder without cross-attention, with the decoder's cache and step, so the
decoder's scorer scores it: every next unit of every hypothesis, from the LM's own cache.
"""

from __future__ import annotations

from pathlib import Path

import torch

from asr.checkpoint import directory_hash
from asr.decode.scorers import DecoderScorer
from asr.experiment import TOKENIZER, load_lm
from asr.nn.lm import TransformerLM


class LMError(ValueError):
    """An LM that cannot be used with this recogniser (another tokenizer)."""


class LMScorer(DecoderScorer):
    """The LM's log-probabilities of each hypothesis's units so far, and of every next unit
    (the CTC blank impossible: never a target). ``capacity``: steps before the cache grows."""

    def __init__(self, lm: TransformerLM, capacity: int = 16):
        super().__init__(lm, capacity=capacity)  # type: ignore[arg-type]  # init_cache and step as the decoder's


def load_fusion_lm(lm_dir: str | Path, exp_dir: str | Path, device: str | torch.device = "cpu") -> TransformerLM:
    """The LM of ``lm_dir`` for decoding ``exp_dir``; an error unless both use one tokenizer."""
    lm, _ = load_lm(lm_dir, device)
    ours = Path(exp_dir) / TOKENIZER
    if ours.is_dir() and directory_hash(ours) != directory_hash(Path(lm_dir) / TOKENIZER):
        raise LMError(
            f"the LM in {lm_dir} was trained on another tokenizer than {exp_dir}'s: train it with "
            f"`asr lm train --set lm.data.tokenizer={ours}`"
        )
    return lm
