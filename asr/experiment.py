"""The experiment directory: everything needed to resume training or decode later.

    exp/
      config.yaml          resolved config (as trained)
      tokenizer/           SentencePiece model (copied from data.tokenizer)
      cmvn.json            global mean/variance of the training features
      log.jsonl            one JSON object per logged training/validation event
      .lock                held by the running `asr train` (pid, host)
      checkpoints/
        last.pt            latest training state (model, optimiser, schedule, RNG, position)
        step-00001234.pt   kept best-K checkpoints by dev metric
        averaged.pt        written by `asr average`
        imported.pt        written by `asr import whisper` (weights only)

A language model's folder (`asr lm train`) has the same form:

    lm/
      config.yaml          resolved config (its ``lm`` section)
      tokenizer/           the tokenizer its units come from (the recogniser's)
      log.jsonl            train and epoch records
      lm.pt                the model (a checkpoint as below)

Every checkpoint stores the resolved config, the vocabulary size and the tokenizer's content hash,
so a model is rebuilt from the checkpoint alone, never from command-line flags, and never paired
with another tokenizer (see ``asr.checkpoint``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from asr.checkpoint import average_best as _average, check_tokenizer, load_checkpoint, lm_from_checkpoint, model_from_checkpoint
from asr.config import ExperimentConfig
from asr.model import ASRModel
from asr.nn.lm import TransformerLM
from asr.text.tokenizer import Tokenizer, load_tokenizer

CONFIG = "config.yaml"
TOKENIZER = "tokenizer"
CMVN = "cmvn.json"
LOG = "log.jsonl"
CHECKPOINTS = "checkpoints"
LAST = "last.pt"
AVERAGED = "averaged.pt"
IMPORTED = "imported.pt"  # written by `asr import whisper`
LM_MODEL = "lm.pt"  # a language model folder's model
LOCK = ".lock"
TRAIN_REJECTED = "train.rejected.tsv"  # training utterances left out for their audio (asr.data.screen)
DEV_REJECTED = "dev.rejected.tsv"


def checkpoint_dir(exp_dir: str | Path) -> Path:
    return Path(exp_dir) / CHECKPOINTS


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


def load_for_inference(
    exp_dir: str | Path, checkpoint: str | Path | None = None, device: str | torch.device = "cpu"
) -> tuple[ASRModel, Tokenizer, ExperimentConfig]:
    """Rebuild the model from a checkpoint of ``exp_dir`` in eval mode, with its tokenizer."""
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise FileNotFoundError(f"experiment directory not found: {exp_dir}")
    path = resolve_checkpoint(exp_dir, checkpoint)
    state = load_checkpoint(path)
    check_tokenizer(state, exp_dir / TOKENIZER, path)
    model = model_from_checkpoint(state, path).to(device).eval()
    return model, load_tokenizer(exp_dir / TOKENIZER), model.config


def load_lm(lm_dir: str | Path, device: str | torch.device = "cpu") -> tuple[TransformerLM, Tokenizer]:
    """Rebuild the language model of an `asr lm train` folder in eval mode, with its tokenizer."""
    path = Path(lm_dir) / LM_MODEL
    if not path.is_file():
        raise FileNotFoundError(f"no language model at {path} (train one with `asr lm train`)")
    state = load_checkpoint(path)
    check_tokenizer(state, Path(lm_dir) / TOKENIZER, path)
    model = lm_from_checkpoint(state, path).to(device).eval()
    return model, load_tokenizer(Path(lm_dir) / TOKENIZER)


def average_best(exp_dir: str | Path, count: int, out: str | Path | None = None) -> tuple[list[Path], Path]:
    """Average the ``count`` best checkpoints of ``exp_dir`` (by dev WER) into ``out``
    (default: checkpoints/averaged.pt, which decoding then uses). Returns (sources, output)."""
    if not Path(exp_dir).is_dir():
        raise FileNotFoundError(f"experiment directory not found: {exp_dir}")
    target = Path(out) if out else checkpoint_dir(exp_dir) / AVERAGED
    return _average(checkpoint_dir(exp_dir), count, target), target
