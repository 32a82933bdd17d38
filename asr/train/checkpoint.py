"""Checkpoints: atomic writes, RNG state capture, best-K bookkeeping, and averaging."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import torch

from asr import experiment
from asr.experiment import load_checkpoint


def save_atomic(state: dict, path: str | Path) -> None:
    """Write to a temporary file in the same directory, then rename over ``path``: a crash
    mid-write leaves the previous file intact, never a truncated one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    state["python_version"] = random.getstate()[0]
    state["python_gauss"] = random.getstate()[2]
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class BestCheckpoints:
    """Keeps the K checkpoints with the lowest dev metric (WER, then loss) in a directory,
    listed in ``best.json`` so that `asr average` can find them."""

    def __init__(self, directory: str | Path, keep: int):
        self.directory = Path(directory)
        self.keep = keep
        self.index = self.directory / "best.json"
        self.entries: list[dict] = json.loads(self.index.read_text()) if self.index.is_file() else []

    def consider(self, state: dict, step: int, metric: tuple[float, float]) -> bool:
        """Save ``state`` as step-N.pt if it ranks among the best K; returns whether it was kept."""
        name = f"step-{step:08d}.pt"
        entries = [e for e in self.entries if e["name"] != name]
        entries.append({"name": name, "step": step, "metric": list(metric)})
        entries.sort(key=lambda e: (tuple(e["metric"]), -e["step"]))
        kept, dropped = entries[: self.keep], entries[self.keep :]
        if all(e["name"] != name for e in kept):
            return False
        save_atomic(state, self.directory / name)
        for entry in dropped:
            (self.directory / entry["name"]).unlink(missing_ok=True)
        self.entries = kept
        tmp = self.index.with_suffix(".tmp")
        tmp.write_text(json.dumps(kept, indent=1))
        tmp.replace(self.index)
        return True

    def best(self, count: int) -> list[Path]:
        return [self.directory / e["name"] for e in self.entries[:count]]


def average_checkpoints(paths: list[Path]) -> dict:
    """Element-wise mean of the models in ``paths`` (config and vocab from the first).
    Integer buffers (e.g. counters) are taken from the first checkpoint."""
    if not paths:
        raise ValueError("no checkpoints to average")
    first = load_checkpoint(paths[0])
    total = {k: v.double() if v.is_floating_point() else v for k, v in first["model"].items()}
    for path in paths[1:]:
        model = load_checkpoint(path)["model"]
        if model.keys() != total.keys():
            raise ValueError(f"{path}: parameters differ from {paths[0]}; cannot average")
        for key, value in model.items():
            if value.is_floating_point():
                total[key] += value.double()
    averaged = {
        k: (v / len(paths)).to(first["model"][k].dtype) if v.is_floating_point() else v
        for k, v in total.items()
    }
    return {
        "model": averaged,
        "config": first["config"],
        "vocab_size": first["vocab_size"],
        "averaged_from": [p.name for p in paths],
    }


def average_best(exp_dir: str | Path, count: int, out: str | Path | None = None) -> tuple[list[Path], Path]:
    """Average the ``count`` best checkpoints of ``exp_dir`` (by dev WER) into ``out``
    (default: checkpoints/averaged.pt, which decoding then uses). Returns (sources, output)."""
    if not Path(exp_dir).is_dir():
        raise FileNotFoundError(f"experiment directory not found: {exp_dir}")
    keeper = BestCheckpoints(experiment.checkpoint_dir(exp_dir), keep=count)
    paths = keeper.best(count)
    if not paths:
        raise FileNotFoundError(f"no best checkpoints listed in {keeper.index} (validation must run first)")
    target = Path(out) if out else experiment.checkpoint_dir(exp_dir) / experiment.AVERAGED
    save_atomic(average_checkpoints(paths), target)
    return paths, target
