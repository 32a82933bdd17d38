"""Checkpoints: save, load (verified), average, and the best-K index.

A checkpoint is a dict written by ``torch.save`` and read with ``weights_only=True`` (pickled code
is refused). What decoding needs comes from ``model_state``:

    model, config, vocab_size   the weights, the resolved config and the vocabulary size: the
                                model is rebuilt from the checkpoint alone, never from flags
    tokenizer_sha256            content hash of the tokenizer it was trained with
    sha256                      content hash of everything else in the file, added on save

``last.pt`` adds the training state (optimizer, scheduler, scaler, position, RNG). Loading checks
the content hash, so a flipped byte is an error instead of a model that decodes garbage, and
``check_tokenizer`` refuses a tokenizer other than the one the model was trained with.

Decoding imports this module without importing the trainer.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from asr import files
from asr.config import ConfigError, from_dict, lm_config_from_dict, to_dict
from asr.faults import kill_point
from asr.model import ASRModel
from asr.nn.lm import TransformerLM

HASH_KEY = "sha256"
TOKENIZER_HASH_KEY = "tokenizer_sha256"
BEST_INDEX = "best.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, altered, or not matching its tokenizer."""


# --------------------------------------------------------------------------- content hashes


def _feed(digest: Any, value: Any) -> None:
    """Hash ``value`` canonically: tensors by dtype, shape and bytes; containers in key order."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{tensor.dtype}{tuple(value.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=str):
            digest.update(f"K{key!r}".encode())
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"V{type(value).__name__}:{value!r}".encode())


def content_hash(state: dict) -> str:
    """SHA-256 of a checkpoint's contents (its own ``sha256`` entry left out)."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in state.items() if k != HASH_KEY})
    return digest.hexdigest()


def directory_hash(directory: str | Path) -> str:
    """SHA-256 over the names and bytes of every file in ``directory`` (e.g. a tokenizer)."""
    directory = Path(directory)
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(f"F{path.relative_to(directory).as_posix()}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- save and load


def model_state(model: ASRModel | TransformerLM, tokenizer_sha256: str | None = None) -> dict:
    """What decoding needs from a checkpoint: the weights, the resolved config, the vocabulary size
    and (when known) the hash of the tokenizer the model was trained with. (A language model's
    config is its ``lm`` section.)"""
    state = {"model": model.state_dict(), "config": to_dict(model.config), "vocab_size": model.vocab_size}
    if tokenizer_sha256:
        state[TOKENIZER_HASH_KEY] = tokenizer_sha256
    return state


def save_checkpoint(state: dict, path: str | Path) -> None:
    """Write ``state`` with its content hash, atomically (a crash leaves the previous file)."""
    state = {**state, HASH_KEY: content_hash(state)}
    with files.atomic_path(path) as tmp:
        torch.save(state, tmp)
        kill_point("checkpoint")


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint onto the CPU and verify its content hash (when it has one)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad file: all mean the same here
        text = str(err).strip()
        reason = text.splitlines()[0].split(". ")[0][:120] if text else type(err).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint (empty, truncated or corrupt: {reason})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not an asr checkpoint (no 'model' entry)")
    expected = state.get(HASH_KEY)
    if expected is not None and content_hash(state) != expected:
        raise CheckpointError(f"{path}: contents do not match the checkpoint's hash (the file is corrupt)")
    return state


def check_tokenizer(state: dict, tokenizer_dir: str | Path, where: str | Path) -> None:
    """Refuse a tokenizer other than the one the checkpoint ``where`` was trained with."""
    expected = state.get(TOKENIZER_HASH_KEY)
    if expected is not None and directory_hash(tokenizer_dir) != expected:
        raise CheckpointError(
            f"{where} was trained with a different tokenizer than {tokenizer_dir} "
            f"(content hash {expected[:12]} expected); restore that tokenizer or retrain"
        )


def model_from_checkpoint(state: dict, where: str | Path = "checkpoint") -> ASRModel:
    """Rebuild the model from a checkpoint's config and vocabulary size, then load its weights."""
    try:
        model = ASRModel(from_dict(state["config"]), state["vocab_size"])
    except (ConfigError, KeyError) as err:
        raise CheckpointError(f"{where}: config or vocab_size unusable ({err})") from None
    _load_weights(model, state, where)
    return model


def lm_from_checkpoint(state: dict, where: str | Path = "checkpoint") -> TransformerLM:
    """Rebuild a language model from a checkpoint's ``lm`` config and vocabulary size, then load
    its weights. An LM saved before LMs used this format (no content hash) is refused."""
    if HASH_KEY not in state or "options" in state:
        raise CheckpointError(f"{where}: an LM in the format of older asr versions; train it again with `asr lm train`")
    try:
        model = TransformerLM(lm_config_from_dict(state["config"]), state["vocab_size"])
    except (ConfigError, KeyError) as err:
        raise CheckpointError(f"{where}: not a language model, or its config is unusable ({err})") from None
    _load_weights(model, state, where)
    return model


def _load_weights(model: torch.nn.Module, state: dict, where: str | Path) -> None:
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        reason = (first[1] if len(first) > 1 else first[0]).strip()[:160]
        raise CheckpointError(f"{where}: weights do not fit the model its config describes ({reason})") from None


# --------------------------------------------------------------------------- best-K and averaging


class BestCheckpoints:
    """Keeps the K checkpoints with the lowest dev metric (WER, then loss) in a directory,
    listed in ``best.json`` so that `asr average` can find them.

    The index is rewritten before dropped files are deleted, so a kill at any moment leaves an
    index that names only files that exist; leftover files are removed on the next ``consider``.
    """

    def __init__(self, directory: str | Path, keep: int):
        self.directory = Path(directory)
        self.keep = keep
        self.index = self.directory / BEST_INDEX
        self.entries: list[dict] = self._read_index()

    def _read_index(self) -> list[dict]:
        if not self.index.is_file():
            return []
        try:
            entries = json.loads(self.index.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise CheckpointError(f"{self.index}: not valid JSON ({err}); remove it to rebuild it") from None
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "name" in e for e in entries):
            raise CheckpointError(f"{self.index}: expected a list of {{name, step, metric}} entries")
        return entries

    def consider(self, state: dict, step: int, metric: tuple[float, float]) -> bool:
        """Save ``state`` as step-N.pt if it ranks among the best K; returns whether it was kept.
        Considering the same step twice (after a resume) gives the same files and index."""
        name = f"step-{step:08d}.pt"
        entries = [e for e in self.entries if e["name"] != name]
        entries.append({"name": name, "step": step, "metric": list(metric)})
        entries.sort(key=lambda e: (tuple(e["metric"]), -e["step"]))
        kept = entries[: self.keep]
        if all(e["name"] != name for e in kept):
            return False
        save_checkpoint(state, self.directory / name)
        kill_point("best")
        files.write_json(self.index, kept, indent=1)
        self.entries = kept
        names = {e["name"] for e in kept}
        for path in self.directory.glob("step-*.pt"):
            if path.name not in names:
                path.unlink(missing_ok=True)
        return True

    def best(self, count: int) -> list[Path]:
        return [self.directory / e["name"] for e in self.entries[:count]]


def average_checkpoints(paths: list[Path]) -> dict:
    """Element-wise mean of the models in ``paths`` (config, vocab and tokenizer hash from the
    first). Integer buffers (e.g. counters) are taken from the first checkpoint."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    first = load_checkpoint(paths[0])
    total = {k: v.double() if v.is_floating_point() else v for k, v in first["model"].items()}
    for path in paths[1:]:
        model = load_checkpoint(path)["model"]
        if model.keys() != total.keys():
            missing = sorted(set(total) ^ set(model))[0]
            raise CheckpointError(f"{path}: parameter {missing} is in only one of it and {paths[0]}; cannot average")
        for key, value in model.items():
            if value.shape != total[key].shape:
                raise CheckpointError(
                    f"{path}: {key} has shape {tuple(value.shape)} but {tuple(total[key].shape)} in "
                    f"{paths[0]}; only checkpoints of one model can be averaged"
                )
            if value.is_floating_point():
                total[key] += value.double()
        kill_point("average")
    averaged = {
        k: (v / len(paths)).to(first["model"][k].dtype) if v.is_floating_point() else v
        for k, v in total.items()
    }
    state = {"model": averaged, "config": first["config"], "vocab_size": first["vocab_size"]}
    if TOKENIZER_HASH_KEY in first:
        state[TOKENIZER_HASH_KEY] = first[TOKENIZER_HASH_KEY]
    return {**state, "averaged_from": [p.name for p in paths]}


def average_best(checkpoint_dir: str | Path, count: int, out: str | Path) -> list[Path]:
    """Average the ``count`` best checkpoints listed in ``checkpoint_dir``'s index into ``out``."""
    if count < 1:
        raise CheckpointError(f"--best must be at least 1, got {count}")
    keeper = BestCheckpoints(checkpoint_dir, keep=count)
    paths = keeper.best(count)
    if not paths:
        raise FileNotFoundError(f"no best checkpoints listed in {keeper.index} (validation must run first)")
    save_checkpoint(average_checkpoints(paths), out)
    return paths
