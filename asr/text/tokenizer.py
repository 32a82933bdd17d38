"""SentencePiece subword tokenizer with the model's special ids defined once.

Ids 0..2 are reserved: 0 is the CTC blank (also used to pad token batches), 1 is <unk>, and 2
is <sos/eos>, which starts every decoder input and ends every decoder target. The tokenizer is
a directory holding ``tokenizer.model``; it is copied into each experiment so that decoding
never needs the training manifests.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import sentencepiece as spm

from asr import files
from asr.data.manifest import read_manifest
from asr.text.normalize import normalize_text

BLANK_ID = 0
UNK_ID = 1
SOS_EOS_ID = 2
MODEL_FILE = "tokenizer.model"


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
        Path(directory).mkdir(parents=True, exist_ok=True)
        target = Path(directory) / MODEL_FILE
        if target.resolve() != (self.directory / MODEL_FILE).resolve():
            files.copy_file(self.directory / MODEL_FILE, target)


def train_tokenizer(
    manifests: list[str | Path],
    out_dir: str | Path,
    vocab_size: int,
    model_type: str = "unigram",
) -> Tokenizer:
    """Train SentencePiece on the normalised transcripts of ``manifests`` and save it to ``out_dir``."""
    if model_type not in ("unigram", "bpe"):
        raise ValueError(f"model type {model_type!r} is not one of unigram, bpe")
    out_dir = Path(out_dir)
    texts = [normalize_text(utt.text) for manifest in manifests for utt in read_manifest(manifest)]
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
    return Tokenizer(out_dir)
