"""Training from tar shards: the file path's losses at the same seed, exact resume with several
DataLoader workers, and the same rejection of bad audio."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from rich.console import Console

from asr.config import load_config
from asr.data.manifest import Utterance, read_manifest, write_manifest
from asr.data.screen import usable_utterances
from asr.data.shards import read_shards, write_shards
from asr.train.loop import train

from toy import toy_overrides


def _losses(exp: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (exp / "log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if r["event"] == "train"}


def _train(exp: Path, corpus, *extra: str) -> dict[int, float]:
    config = load_config("configs/tiny.yaml", toy_overrides(corpus, "train.checkpoint_every=4", *extra))
    train(config, exp, device="cpu", console=Console(quiet=True))
    return _losses(exp)


def test_training_from_shards_gives_the_losses_of_training_from_files(toy_corpus, tmp_path):
    """'Same' here is exact: with one rank, one worker and one bucketing window over all shards,
    the shards give the very batches (same utterances, same order, same speed factors) and the
    same CMVN statistics as the manifest, so every step's loss is equal to the last bit."""
    index = write_shards(toy_corpus["manifest"], tmp_path / "shards", shard_seconds=5.0)
    assert len(index.files) >= 4  # several shards, read as one window
    extra = ["train.max_steps=6", "augment.speed_perturb=true"]
    from_files = _train(tmp_path / "files", toy_corpus, *extra)
    from_shards = _train(tmp_path / "shards_exp", toy_corpus, *extra, "data.train_manifest=",
                         f"data.train_shards={tmp_path / 'shards'}", "data.shard_window=0")  # fmt: skip
    assert sorted(from_files) == list(range(1, 7))
    assert from_shards == from_files
    assert (tmp_path / "files" / "cmvn.json").read_text() == (tmp_path / "shards_exp" / "cmvn.json").read_text()


def test_training_from_shards_with_two_workers_resumes_exactly(toy_corpus, tmp_path):
    write_shards(toy_corpus["manifest"], tmp_path / "shards", shard_seconds=5.0)
    extra = ["data.train_manifest=", f"data.train_shards={tmp_path / 'shards'}", "data.num_workers=2"]
    reference = _train(tmp_path / "reference", toy_corpus, *extra, "train.max_steps=8")
    _train(tmp_path / "resumed", toy_corpus, *extra, "train.max_steps=4")  # stops mid-epoch, last.pt at 4
    resumed = _train(tmp_path / "resumed", toy_corpus, *extra, "train.max_steps=8")
    assert sorted(reference) == list(range(1, 9))
    assert resumed == reference


def _write(path: Path, wave: np.ndarray, subtype: str = "PCM_16") -> Path:
    sf.write(path, wave, 16000, subtype=subtype)
    return path


def test_shards_reject_the_audio_training_from_files_rejects(tmp_path):
    rng = np.random.default_rng(0)
    good = [_write(tmp_path / f"good{i}.flac", 0.1 * rng.standard_normal(8000 + 800 * i)) for i in range(5)]
    nan = 0.1 * rng.standard_normal(8000)
    nan[100] = np.nan
    bad = [_write(tmp_path / "nan.wav", nan, "FLOAT"), _write(tmp_path / "silent.wav", np.zeros(8000))]
    full = _write(tmp_path / "full.flac", rng.standard_normal(16000) * 0.1).read_bytes()
    (tmp_path / "truncated.flac").write_bytes(full[: len(full) // 2])
    paths = good[:2] + bad + [tmp_path / "truncated.flac"] + good[2:]
    manifest = tmp_path / "m.jsonl"
    write_manifest([Utterance(f"u{i}", str(p), sf.info(p).duration, 16000, "s", "c", "A B") for i, p in enumerate(paths)], manifest)

    index = write_shards(manifest, tmp_path / "shards", shard_seconds=1.5)
    kept = usable_utterances(manifest, tmp_path / "files.rejected.tsv")
    assert len((tmp_path / "files.rejected.tsv").read_text().splitlines()) == 2 + 3  # NaN, silent, truncated
    assert [u.id for u in index.utterances] == [u.id for u in kept] == ["u0", "u1", "u5", "u6", "u7"]
    assert (tmp_path / "shards" / "rejected.tsv").read_text() == (tmp_path / "files.rejected.tsv").read_text()
    assert read_manifest(index.manifest) == kept  # utterances.jsonl is a manifest of the usable audio
    audio = index.audio(16000)
    for utt in index.utterances:  # each member holds the file's own bytes
        expected = torch.from_numpy(sf.read(utt.audio, dtype="float32")[0])
        assert torch.equal(audio(utt), expected)
    stamp = (tmp_path / "shards" / "shards.json").stat().st_mtime_ns
    write_shards(manifest, tmp_path / "shards", shard_seconds=1.5)  # same manifest, same settings: kept
    assert (tmp_path / "shards" / "shards.json").stat().st_mtime_ns == stamp
    assert read_shards(tmp_path / "shards").files == index.files
