"""LM training text: sentences from a text file (plain or .gz, one per line) or from manifests'
transcripts, normalised as the transcripts are, read in chunks so that a corpus of tens of
millions of sentences (the LibriSpeech LM corpus) never has to fit in memory."""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from asr.data.dataset import pad
from asr.text.normalize import normalize_text
from asr.text.tokenizer import Tokenizer


def text_sentences(path: str | Path) -> Iterator[str]:
    """Non-empty normalised lines of a text file (gzip if it ends in .gz)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LM text not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            text = normalize_text(line)
            if text:
                yield text


def manifest_sentences(manifests: Iterable[str | Path]) -> Iterator[str]:
    from asr.data.manifest import read_manifest

    for manifest in manifests:
        for utt in read_manifest(manifest):
            text = normalize_text(utt.text)
            if text:
                yield text


def token_batches(
    sentences: Iterable[str], tokenizer: Tokenizer, batch_tokens: int, rng: random.Random,
    chunk: int = 100_000, max_units: int = 256,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Padded batches (B, L) of unit ids and their lengths (B,), about ``batch_tokens`` units
    each. Sentences are read ``chunk`` at a time, sorted by length inside the chunk (little
    padding), cut into batches, and the batches shuffled; longer sentences are cut to
    ``max_units``."""
    buffer: list[list[int]] = []
    for sentence in sentences:
        ids = tokenizer.encode(sentence)[:max_units]
        if ids:
            buffer.append(ids)
        if len(buffer) >= chunk:
            yield from _batch_chunk(buffer, batch_tokens, rng)
            buffer = []
    if buffer:
        yield from _batch_chunk(buffer, batch_tokens, rng)


def _batch_chunk(
    sentences: list[list[int]], batch_tokens: int, rng: random.Random
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    rng.shuffle(sentences)  # equal lengths in random order
    sentences.sort(key=len)
    batches, batch = [], []
    for ids in sentences:
        if batch and (len(batch) + 1) * (len(ids) + 1) > batch_tokens:
            batches.append(batch)
            batch = []
        batch.append(ids)
    if batch:
        batches.append(batch)
    rng.shuffle(batches)
    for batch in batches:
        yield pad([torch.tensor(ids, dtype=torch.long) for ids in batch], 0)
