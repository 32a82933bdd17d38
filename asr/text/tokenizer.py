"""Tokenizers: one interface, two implementations.

* :class:`SentencePieceTokenizer`, trained by ``asr tokenizer train`` on normalised transcripts;
* :class:`asr.text.whisper_bpe.WhisperTokenizer`, Whisper's byte-level BPE (imported models).

Both keep the special ids of :mod:`asr.text.special`. A tokenizer is a directory; it is copied
into each experiment so that decoding never needs the training data, and
:func:`load_tokenizer` tells the two kinds apart by the files in it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from asr.text.normalize import normalize_text
from asr.text.special import BLANK_ID, SOS_EOS_ID, UNK_ID

__all__ = ["BLANK_ID", "UNK_ID", "SOS_EOS_ID", "MODEL_FILE", "Tokenizer", "SentencePieceTokenizer",
           "load_tokenizer", "is_tokenizer_dir", "train_tokenizer"]

MODEL_FILE = "tokenizer.model"  # SentencePiece
WHISPER_FILE = "whisper_vocab.json"  # asr.text.whisper_bpe


class Tokenizer(Protocol):
    """What training, decoding and scoring need from a tokenizer."""

    kind: str  # "sentencepiece" or "whisper"

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def pieces(self, ids: list[int]) -> list[str]: ...

    def save(self, directory: str | Path) -> None: ...


def is_tokenizer_dir(directory: str | Path) -> bool:
    return any((Path(directory) / name).is_file() for name in (MODEL_FILE, WHISPER_FILE))


def load_tokenizer(directory: str | Path) -> Tokenizer:
    """The tokenizer saved in ``directory``, of whichever kind it is."""
    directory = Path(directory)
    if (directory / WHISPER_FILE).is_file():
        from asr.text.whisper_bpe import WhisperTokenizer  # only imported models need tiktoken

        return WhisperTokenizer(directory)
    return SentencePieceTokenizer(directory)


class SentencePieceTokenizer:
    kind = "sentencepiece"

    def __init__(self, directory: str | Path):
        import sentencepiece as spm

        path = Path(directory) / MODEL_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no tokenizer at {path} (make one with `asr tokenizer train`)")
        self.directory = Path(directory)
        self._sp = spm.SentencePieceProcessor(model_file=str(path))

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        return self._sp.encode(normalize_text(text), out_type=int)

    def decode(self, ids: list[int]) -> str:
        specials = (BLANK_ID, UNK_ID, SOS_EOS_ID)
        return self._sp.decode([i for i in ids if i not in specials])

    def pieces(self, ids: list[int]) -> list[str]:
        return [self._sp.id_to_piece(i) for i in ids]

    def save(self, directory: str | Path) -> None:
        """Copy the tokenizer into ``directory`` (e.g. an experiment)."""
        from asr.files import copy_file

        target = Path(directory) / MODEL_FILE
        if not target.exists() or target.resolve() != (self.directory / MODEL_FILE).resolve():
            copy_file(self.directory / MODEL_FILE, target)


def train_tokenizer(
    texts: Iterable[str],
    out_dir: str | Path,
    vocab_size: int,
    model_type: str = "unigram",
) -> SentencePieceTokenizer:
    """Train SentencePiece on the normalised ``texts`` (transcripts) and save it to ``out_dir``."""
    import sentencepiece as spm

    from asr.files import copy_file

    if model_type not in ("unigram", "bpe"):
        raise ValueError(f"model type {model_type!r} is not one of unigram, bpe")
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        text_file = Path(tmp) / "text.txt"
        with text_file.open("w") as f:
            for text in texts:
                if isinstance(text, Path):
                    raise TypeError(f"train_tokenizer takes transcripts, not the manifest {text} (see manifest_texts)")
                f.write(normalize_text(text) + "\n")
        try:
            spm.SentencePieceTrainer.train(
                input=str(text_file),
                model_prefix=str(Path(tmp) / "tokenizer"),
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=1.0,
                pad_id=BLANK_ID,
                pad_piece="<blank>",
                unk_id=UNK_ID,
                bos_id=SOS_EOS_ID,
                bos_piece="<sos/eos>",
                eos_id=-1,
                # Small corpora (tests, digits) cannot fill a large vocabulary; shrink instead of failing.
                hard_vocab_limit=False,
                num_threads=2,
                minloglevel=2,
            )
        except RuntimeError as err:  # sentencepiece reports bad settings as RuntimeError
            raise ValueError(f"cannot train a tokenizer with vocab_size={vocab_size}: {err}") from None
        copy_file(Path(tmp) / "tokenizer.model", out_dir / MODEL_FILE)
    return SentencePieceTokenizer(out_dir)
