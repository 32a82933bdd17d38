"""The experiment directory: everything needed to resume training or decode later.

    exp/
      config.yaml          resolved config (as trained)
      tokenizer/           SentencePiece model (copied from data.tokenizer)
      cmvn.json            global mean/variance of the training features
      log.jsonl            one JSON object per logged training/validation event
      checkpoints/
        last.pt            latest training state (model, optimiser, schedule, RNG, position)
        step-00001234.pt   kept best-K checkpoints by dev metric
        averaged.pt        written by `asr average`
        imported.pt        written by `asr import whisper` (weights only)

Every checkpoint stores the resolved config and vocabulary size, so a model is rebuilt from the
checkpoint alone, never from command-line flags.
"""

from __future__ import annotations

from pathlib import Path

import torch

from asr.config import ExperimentConfig, from_dict, to_dict
from asr.model import ASRModel
from asr.text.tokenizer import Tokenizer, load_tokenizer

CONFIG = "config.yaml"
TOKENIZER = "tokenizer"
CMVN = "cmvn.json"
LOG = "log.jsonl"
CHECKPOINTS = "checkpoints"
LAST = "last.pt"
AVERAGED = "averaged.pt"
IMPORTED = "imported.pt"  # written by `asr import whisper`


def checkpoint_dir(exp_dir: str | Path) -> Path:
    return Path(exp_dir) / CHECKPOINTS


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return torch.load(path, map_location=map_location, weights_only=True)


def default_checkpoint(exp_dir: str | Path) -> Path:
    """The model to decode with when none is named: averaged, else last, else imported."""
    directory = checkpoint_dir(exp_dir)
    for name in (AVERAGED, LAST, IMPORTED):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"no checkpoint in {directory} (train with `asr train` first)")


def resolve_checkpoint(exp_dir: str | Path, checkpoint: str | Path | None) -> Path:
    """``checkpoint`` may be None (default), a file name inside exp/checkpoints, or a path."""
    if checkpoint is None:
        return default_checkpoint(exp_dir)
    path = Path(checkpoint)
    if not path.is_file() and (checkpoint_dir(exp_dir) / path).is_file():
        path = checkpoint_dir(exp_dir) / path
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
    return path


def model_state(model: ASRModel) -> dict:
    """What decoding needs from a checkpoint: the weights, the resolved config, the vocabulary size."""
    return {"model": model.state_dict(), "config": to_dict(model.config), "vocab_size": model.vocab_size}


def model_from_checkpoint(state: dict) -> ASRModel:
    config = from_dict(state["config"])
    model = ASRModel(config, state["vocab_size"])
    model.load_state_dict(state["model"])
    return model


def load_for_inference(
    exp_dir: str | Path, checkpoint: str | Path | None = None, device: str | torch.device = "cpu"
) -> tuple[ASRModel, Tokenizer, ExperimentConfig]:
    """Rebuild the model from a checkpoint of ``exp_dir`` in eval mode, with its tokenizer."""
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise FileNotFoundError(f"experiment directory not found: {exp_dir}")
    state = load_checkpoint(resolve_checkpoint(exp_dir, checkpoint), map_location=device)
    model = model_from_checkpoint(state).to(device).eval()
    return model, load_tokenizer(exp_dir / TOKENIZER), model.config
