"""Build the toolkit's ASRModel from Whisper dimensions and openai-whisper-named weights."""

from __future__ import annotations

from torch import Tensor

from asr.model import ASRModel
from asr.whisper.dims import WhisperDims, whisper_config
from asr.whisper.weights import check_shapes, toolkit_state


def build_whisper_model(
    dims: WhisperDims,
    state: dict[str, Tensor],
    rules: dict,
    permutation: list[int],
    source: str = "checkpoint",
    pad_seconds: float = 30.0,
) -> ASRModel:
    """An eval-mode ASRModel holding these Whisper weights (no CTC head: fine-tuning adds one)."""
    check_shapes(state, dims, source)
    model = ASRModel(whisper_config(dims, rules, pad_seconds), dims.n_vocab)
    weights = toolkit_state(state, dims, permutation)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    left = [name for name in missing if not name.startswith("frontend.")]
    if left or unexpected:  # pragma: no cover - the name table and the model disagree: a bug
        raise RuntimeError(f"Whisper weights do not fit the model: missing {left}, unexpected {unexpected}")
    return model.eval()
