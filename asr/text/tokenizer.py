"""SentencePiece subword tokenizer with the model's special ids defined once.

Ids 0..2 are reserved: 0 is the CTC blank (also used to pad token batches), 1 is <unk>, and 2
is <sos/eos>, which starts every decoder input and ends every decoder target. The tokenizer is
a directory holding ``tokenizer.model``; it is copied into each experiment so that decoding
never needs the training manifests. ``normalizer.txt`` beside it names the text normaliser
(:mod:`asr.text.normalize`; ``librispeech`` when absent). Text that the normaliser empties
(another script under the English rule) is counted in ``Tokenizer.emptied``, with a warning.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import sentencepiece as spm

from asr import files
from asr.data.manifest import read_manifest
from asr.text.normalize import DEFAULT_NORMALIZER, get_normalizer

BLANK_ID = 0
UNK_ID = 1
SOS_EOS_ID = 2
MODEL_FILE = "tokenizer.model"
NORMALIZER_FILE = "normalizer.txt"


class EmptiedTextWarning(UserWarning):
    """Normalisation turned a non-empty transcript into nothing."""


def _normalizer_name(directory: Path) -> str:
    path = directory / NORMALIZER_FILE
    return path.read_text().strip() if path.is_file() else DEFAULT_NORMALIZER


def _warn_emptied(count: int, normalizer: str, where: str) -> None:
    warnings.warn(
        f"{where}: {count} non-empty transcript(s) became empty under the {normalizer!r} normalizer "
        "(text in another script?); train the tokenizer with --normalizer unicode",
        EmptiedTextWarning, stacklevel=3,
    )  # fmt: skip


class TokenizerError(ValueError):
    """A tokenizer file that is empty, truncated, corrupt or not one of ours."""


class Tokenizer:
    def __init__(self, directory: str | Path):
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
        """Copy the tokenizer into ``directory`` (e.g. an experiment)."""
        Path(directory).mkdir(parents=True, exist_ok=True)
        target = Path(directory) / MODEL_FILE
        if target.resolve() != (self.directory / MODEL_FILE).resolve():
            files.copy_file(self.directory / MODEL_FILE, target)
            files.write_text(Path(directory) / NORMALIZER_FILE, self.normalizer + "\n")


def train_tokenizer(
    manifests: list[str | Path],
    out_dir: str | Path,
    vocab_size: int,
    model_type: str = "unigram",
    normalizer: str = DEFAULT_NORMALIZER,
) -> Tokenizer:
    """Train SentencePiece on the transcripts of ``manifests``, normalised by ``normalizer``,
    and save it (with the normaliser's name) to ``out_dir``."""
    if model_type not in ("unigram", "bpe"):
        raise ValueError(f"model type {model_type!r} is not one of unigram, bpe")
    normalize = get_normalizer(normalizer)
    out_dir = Path(out_dir)
    raw = [utt.text for manifest in manifests for utt in read_manifest(manifest)]
    texts = [normalize(text) for text in raw]
    emptied = sum(1 for text, clean in zip(raw, texts) if text.strip() and not clean)
    if emptied:
        _warn_emptied(emptied, normalizer, ", ".join(map(str, manifests)))
    files.check_writable_dir(out_dir)  # found out before training, not after
    with tempfile.TemporaryDirectory() as tmp:
        text_file = Path(tmp) / "text.txt"
        text_file.write_text("".join(text + "\n" for text in texts), encoding="utf-8")
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
        files.copy_file(Path(tmp) / "tokenizer.model", out_dir / MODEL_FILE)
        files.write_text(out_dir / NORMALIZER_FILE, normalizer + "\n")
    return Tokenizer(out_dir)
