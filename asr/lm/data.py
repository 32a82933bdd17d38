"""LM training text: sentences from text files (plain or .gz, one per line) and manifests'
transcripts, normalised as the transcripts are, read in chunks so that a corpus of tens of
millions of sentences (the LibriSpeech LM corpus) never has to fit in memory; and
:class:`LMData`, their batches epoch by epoch for the training loop (asr.train.loop)."""

from __future__ import annotations

import gzip
import itertools
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from asr.config import LMConfig
from asr.data.dataset import pad
from asr.text.normalize import normalize_text
from asr.text.tokenizer import Tokenizer
from asr.train.data import group_updates
from asr.train.state import Position


@dataclass
class TextBatch:
    tokens: torch.Tensor  # (B, L) unit ids, 0-padded, without <sos>/<eos>
    lengths: torch.Tensor  # (B,)

    def to(self, device: torch.device) -> TextBatch:
        return TextBatch(self.tokens.to(device), self.lengths.to(device))

    def __len__(self) -> int:
        return self.tokens.shape[0]


class LMData:
    """The batches of each epoch, from (seed, epoch) alone, as the training loop takes them.

    Batches hold sentences of similar length, cut from length-sorted chunks, so how many an
    epoch has does not depend on the shuffling: it is counted once, in a first pass."""

    def __init__(self, config: LMConfig, tokenizer: Tokenizer):
        data = config.data
        if not data.text and not data.manifests:
            raise ValueError("no LM training text: set lm.data.text (text files) or lm.data.manifests")
        self.config, self.tokenizer = config, tokenizer
        self._count: int | None = None

    def sentences(self) -> Iterator[str]:
        """A fresh pass over every sentence: the text files, then the manifests' transcripts."""
        data = self.config.data
        return itertools.chain(*(text_sentences(t) for t in data.text), manifest_sentences(data.manifests))

    def batches(self, epoch: int) -> Iterator[TextBatch]:
        data = self.config.data
        rng = random.Random(f"{self.config.train.seed}/{epoch}")
        for tokens, lengths in token_batches(self.sentences(), self.tokenizer, data.batch_tokens, rng, data.chunk, data.max_units):
            yield TextBatch(tokens, lengths)

    def epoch_batches(self, epoch: int) -> int:
        if self._count is None:
            self._count = sum(1 for _ in self.batches(0))
            if self._count == 0:
                raise ValueError("no LM training sentences (the text is empty after normalisation)")
        return self._count

    def updates(self, position: Position, accum_steps: int) -> Iterator[list[TextBatch]]:
        """The rest of ``position.epoch`` as the micro-batch groups of successive updates."""
        rest = itertools.islice(self.batches(position.epoch), position.batch_in_epoch, None)
        return group_updates(rest, accum_steps)


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
