"""Tokenizers: one interface, two implementations.

* :class:`SentencePieceTokenizer`, trained by ``asr tokenizer train`` on normalised transcripts;
* :class:`asr.text.whisper_bpe.WhisperTokenizer`, Whisper's byte-level BPE (imported models).

Both keep the special ids of :mod:`asr.text.special`: 0 is the CTC blank (also used to pad token
batches), 1 is <unk>, and 2 is <sos/eos>, which starts every decoder input and ends every decoder
target. A tokenizer is a directory; it is copied into each experiment so that decoding never
needs the training data, and :func:`load_tokenizer` tells the two kinds apart by the files in it.
``normalizer.txt`` beside a SentencePiece model names its text normaliser
(:mod:`asr.text.normalize`; ``librispeech`` when absent). Text that the normaliser empties
(another script under the English rule) is counted in ``emptied``, with a warning.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from asr import files
from asr.text.normalize import DEFAULT_NORMALIZER, get_normalizer
from asr.text.special import BLANK_ID, SOS_EOS_ID, UNK_ID

__all__ = ["BLANK_ID", "UNK_ID", "SOS_EOS_ID", "MODEL_FILE", "NORMALIZER_FILE", "Tokenizer",
           "SentencePieceTokenizer", "TokenizerError", "EmptiedTextWarning", "load_tokenizer",
           "is_tokenizer_dir", "train_tokenizer"]  # fmt: skip

MODEL_FILE = "tokenizer.model"  # SentencePiece
NORMALIZER_FILE = "normalizer.txt"
WHISPER_FILE = "whisper_vocab.json"  # asr.text.whisper_bpe
OWN_FILES = (MODEL_FILE, NORMALIZER_FILE)  # what `asr tokenizer train` writes, and all it replaces


class EmptiedTextWarning(UserWarning):
    """Normalisation turned a non-empty transcript into nothing."""


class TokenizerError(ValueError):
    """A tokenizer file that is empty, truncated, corrupt or not one of ours."""


class Tokenizer(Protocol):
    """What training, decoding and scoring need from a tokenizer."""

    kind: str  # "sentencepiece" or "whisper"
    normalizer: str  # name of the text normaliser that scores its output

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


def _normalizer_name(directory: Path) -> str:
    path = directory / NORMALIZER_FILE
    return path.read_text().strip() if path.is_file() else DEFAULT_NORMALIZER


def _warn_emptied(count: int, normalizer: str, where: str) -> None:
    warnings.warn(
        f"{where}: {count} non-empty transcript(s) became empty under the {normalizer!r} normalizer "
        "(text in another script?); train the tokenizer with --normalizer unicode",
        EmptiedTextWarning, stacklevel=3,
    )  # fmt: skip


class SentencePieceTokenizer:
    kind = "sentencepiece"

    def __init__(self, directory: str | Path):
        import sentencepiece as spm  # imported here: the model and the searches do not need it

        path = Path(directory) / MODEL_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no tokenizer at {path} (make one with `asr tokenizer train`)")
        self.directory = Path(directory)
        try:
            self._sp = spm.SentencePieceProcessor(model_file=str(path))
        except (RuntimeError, OSError) as err:  # sentencepiece: "could not parse ModelProto", ...
            raise TokenizerError(
                f"{path}: not a valid SentencePiece model (empty, truncated or corrupt: {err}); "
                "train it again with `asr tokenizer train`"
            ) from None
        if self._sp.get_piece_size() <= SOS_EOS_ID or self._sp.id_to_piece(SOS_EOS_ID) != "<sos/eos>":
            raise TokenizerError(
                f"{path}: not a tokenizer made by `asr tokenizer train` (ids 0-2 must be "
                "<blank>, <unk>, <sos/eos>); train it again"
            )
        self.normalizer = _normalizer_name(self.directory)
        self._normalize = get_normalizer(self.normalizer)
        self.emptied = 0  # encode() calls whose non-empty text normalised to nothing

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        normalized = self._normalize(text)
        if not normalized and text.strip():
            self.emptied += 1
            if self.emptied == 1:  # once per tokenizer; the count keeps growing
                _warn_emptied(1, self.normalizer, str(self.directory))
        return self._sp.encode(normalized, out_type=int)

    def decode(self, ids: list[int]) -> str:
        specials = (BLANK_ID, UNK_ID, SOS_EOS_ID)
        return self._sp.decode([i for i in ids if i not in specials])

    def pieces(self, ids: list[int]) -> list[str]:
        return [self._sp.id_to_piece(i) for i in ids]

    def save(self, directory: str | Path) -> None:
        """Copy the tokenizer into ``directory`` (e.g. an experiment's tokenizer/), replacing it whole."""
        target = Path(directory) / MODEL_FILE
        if not target.exists() or target.resolve() != (self.directory / MODEL_FILE).resolve():
            _write_tokenizer_dir(self.directory / MODEL_FILE, self.normalizer, Path(directory))


def train_tokenizer(
    texts: Iterable[str],
    out_dir: str | Path,
    vocab_size: int,
    model_type: str = "unigram",
    normalizer: str = DEFAULT_NORMALIZER,
) -> SentencePieceTokenizer:
    """Train SentencePiece on ``texts`` (transcripts), normalised by ``normalizer``, and save it
    (with the normaliser's name) to ``out_dir``."""
    import sentencepiece as spm

    if model_type not in ("unigram", "bpe"):
        raise ValueError(f"model type {model_type!r} is not one of unigram, bpe")
    normalize = get_normalizer(normalizer)
    out_dir = Path(out_dir)
    raw = []
    for text in texts:
        if isinstance(text, Path):
            raise TypeError(f"train_tokenizer takes transcripts, not the manifest {text} (see manifest_texts)")
        raw.append(text)
    clean = [normalize(text) for text in raw]
    emptied = sum(1 for text, norm in zip(raw, clean) if text.strip() and not norm)
    if emptied:
        _warn_emptied(emptied, normalizer, str(out_dir))
    _check_tokenizer_out(out_dir)  # found out before training, not after
    with tempfile.TemporaryDirectory() as tmp:
        text_file = Path(tmp) / "text.txt"
        text_file.write_text("".join(text + "\n" for text in clean), encoding="utf-8")
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
        _write_tokenizer_dir(Path(tmp) / "tokenizer.model", normalizer, out_dir)
    return SentencePieceTokenizer(out_dir)


def _check_tokenizer_out(out_dir: Path) -> None:
    """``out_dir`` is replaced whole: it must be missing, empty or hold only a tokenizer's files
    (so a mistyped ``--out data`` never deletes anything else)."""
    files.check_replaceable_dir(out_dir)
    others = sorted(p.name for p in out_dir.iterdir() if p.name not in OWN_FILES) if out_dir.is_dir() else []
    if others:
        raise files.OutputPathError(
            f"{out_dir}: holds {others[0]}, which is not a tokenizer's file; a tokenizer replaces its "
            "--out folder whole, so choose a new or empty one"
        )


def _write_tokenizer_dir(model: Path, normalizer: str, out_dir: Path) -> None:
    """Both files or neither: written aside, swapped in as one folder. tokenizer.model alone
    would load with the default normaliser."""
    with files.replaced_dir(out_dir) as staged:
        files.copy_file(model, staged / MODEL_FILE)
        files.write_text(staged / NORMALIZER_FILE, normalizer + "\n")
