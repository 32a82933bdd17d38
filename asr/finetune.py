"""Start training from another experiment's weights (``asr train --init EXP``), for example an
imported Whisper model, and optionally freeze the bottom of the encoder.

The model being trained is built from the merged config; the weights of ``EXP`` are loaded into
it by name. Parameters the new config adds (a CTC head over the Whisper vocabulary when
``model.ctc_weight`` > 0) keep their fresh initialisation; any other missing or differently
shaped tensor is an error naming it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from asr import experiment as exp_files
from asr.model import ASRModel

NEW_PARTS = ("ctc.",)  # what fine-tuning may add to a model


class InitError(ValueError):
    """A --init experiment whose weights do not fit the model being trained."""


def load_init_weights(model: ASRModel, init: str | Path) -> list[str]:
    """Copy the weights of experiment (or checkpoint file) ``init`` into ``model``; return the
    names of the parameters that stay freshly initialised."""
    path = Path(init)
    checkpoint = path if path.is_file() else exp_files.default_checkpoint(path)
    weights = exp_files.load_checkpoint(checkpoint)["model"]
    own = model.state_dict()
    for name, value in weights.items():
        if name in own and own[name].shape != value.shape:
            raise InitError(f"{checkpoint}: {name} has shape {tuple(value.shape)}, the model {tuple(own[name].shape)}")
    unexpected = [n for n in weights if n not in own and not n.startswith(NEW_PARTS)]
    if unexpected:
        raise InitError(f"{checkpoint}: {unexpected[0]} is not in the model being trained (another architecture?)")
    weights = {n: v for n, v in weights.items() if n in own}
    missing, _ = model.load_state_dict(weights, strict=False)
    # Buffers rebuilt from the config (the frontend's window, CMVN statistics) may be absent.
    fresh = [n for n in missing if not n.startswith(("frontend.", "cmvn."))]
    wrong = [n for n in fresh if not n.startswith(NEW_PARTS)]
    if wrong:
        raise InitError(f"{checkpoint}: has no {wrong[0]} for the model being trained")
    return fresh


def freeze_encoder(model: ASRModel, blocks: int) -> int:
    """Freeze the encoder's stem, positions and first ``blocks`` blocks (-1: the whole encoder,
    its final norm too). Returns the number of parameters frozen."""
    if blocks == 0:
        return 0
    encoder = model.encoder
    parts: list[torch.nn.Module] = [encoder.subsampling]
    parts += list(encoder.blocks) if blocks < 0 else list(encoder.blocks[:blocks])
    if blocks < 0 or blocks >= len(encoder.blocks):
        parts.append(encoder.norm)
    frozen = 0
    for part in parts:
        for param in part.parameters():
            param.requires_grad_(False)
            frozen += param.numel()
    return frozen


def init_base_config(init: str | Path) -> dict:
    """The config of experiment ``init`` as the base of a fine-tuning config: its model and
    features, its tokenizer as data.tokenizer, and train.init pointing at it."""
    import yaml

    path = Path(init) / exp_files.CONFIG
    if not path.is_file():
        raise InitError(f"--init {init}: no {exp_files.CONFIG} (not an experiment folder)")
    values = yaml.safe_load(path.read_text()) or {}
    base = {"model": values.get("model", {}), "features": values.get("features", {})}
    base["data"] = {"tokenizer": str(Path(init) / exp_files.TOKENIZER)}
    base["train"] = {"init": str(init)}
    return base
