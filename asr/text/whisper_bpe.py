"""Whisper's byte-level BPE behind the :class:`asr.text.tokenizer.Tokenizer` interface.

The BPE itself is tiktoken's (the library openai-whisper uses): a token's id is its merge rank,
so the vocabulary in id order is all it needs. The tokenizer directory holds that vocabulary,
``whisper_vocab.json``: the tokens in Whisper's id order, written as GPT-2 writes them (bytes
mapped to printable characters, " the" is "Ġthe"), special tokens (``<|endoftext|>`` onwards)
by name.

Ids. The toolkit's searches and losses use the ids of :mod:`asr.text.special`: 0 for the CTC
blank and 2 for <sos/eos>. Whisper's <|endoftext|> ends a transcript, and <|startoftranscript|>
is never emitted, so the imported model's vocabulary is permuted by two swaps: model id 2 is
<|endoftext|> (and Whisper's id 2, "#", takes <|endoftext|>'s place), model id 0 is
<|startoftranscript|> (and "!" takes its place). The swaps are their own inverse, so
:meth:`WhisperTokenizer.to_model` also maps model ids back to Whisper's. The converters in
:mod:`asr.whisper` apply the same permutation to the embedding rows.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from asr.text.special import BLANK_ID, SOS_EOS_ID

VOCAB_FILE = "whisper_vocab.json"
EOT = "<|endoftext|>"
SOT = "<|startoftranscript|>"
# GPT-2's pre-tokenisation, as openai-whisper's tokenizer (tiktoken) uses it.
PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
NON_LANGUAGE = {"<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
                "<|nospeech|>", "<|nocaptions|>", "<|notimestamps|>"}  # fmt: skip


class WhisperVocabError(ValueError):
    """A Whisper vocabulary that cannot be used (missing special tokens, bad file)."""


@functools.cache
def byte_to_char() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte (``bytes_to_unicode`` in its encoder.py)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def token_bytes(token: str) -> bytes:
    chars = {c: b for b, c in byte_to_char().items()}
    return bytes(chars[c] for c in token)


def token_text(data: bytes) -> str:
    table = byte_to_char()
    return "".join(table[b] for b in data)


class WhisperTokenizer:
    kind = "whisper"
    # The WER of Whisper-style output (case, punctuation, "7" for "seven") is scored with the
    # English Whisper-style normaliser by name (asr.text.normalize), not LibriSpeech's.
    normalizer = "english"

    def __init__(self, directory: str | Path):
        path = Path(directory) / VOCAB_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no Whisper vocabulary at {path} (make one with `asr import whisper`)")
        self.directory = Path(directory)
        try:
            tokens = json.loads(path.read_text())["tokens"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
            raise WhisperVocabError(f"{path}: not a Whisper vocabulary ({err})") from None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise WhisperVocabError(f"{path}: not a Whisper vocabulary (\"tokens\" must be a list of strings)")
        self.tokens: list[str] = tokens
        self._init_ids(path)

    @classmethod
    def from_tokens(cls, tokens: list[str], directory: str | Path) -> WhisperTokenizer:
        """Write ``tokens`` (Whisper id order) as a tokenizer directory and load it."""
        from asr.files import write_json

        write_json(Path(directory) / VOCAB_FILE, {"tokens": list(tokens)}, indent=None)
        return cls(directory)

    def _init_ids(self, path: Path) -> None:
        index = {token: i for i, token in enumerate(self.tokens)}
        missing = [name for name in (EOT, SOT, "<|notimestamps|>") if name not in index]
        if missing:
            raise WhisperVocabError(f"{path}: no special token {missing[0]} in the vocabulary")
        self.eot = index[EOT]  # Whisper ids; every id from here on is special
        self.sot = index[SOT]
        self._swap = {BLANK_ID: self.sot, self.sot: BLANK_ID, SOS_EOS_ID: self.eot, self.eot: SOS_EOS_ID}
        self.specials = {t: self.to_model(i) for i, t in enumerate(self.tokens) if i >= self.eot}
        self.languages = []
        for token in self.tokens[self.sot + 1 :]:
            if token in NON_LANGUAGE:
                break
            self.languages.append(token[2:-2])

    @functools.cached_property
    def _bpe(self):
        import tiktoken

        try:
            ranks = {token_bytes(t): i for i, t in enumerate(self.tokens[: self.eot])}
        except KeyError as err:
            raise WhisperVocabError(
                f"{self.directory / VOCAB_FILE}: token character {err.args[0]!r} is not one of GPT-2's "
                "256 byte characters (a byte-level BPE vocabulary was expected)"
            ) from None
        specials = {t: i for i, t in enumerate(self.tokens) if i >= self.eot}
        return tiktoken.Encoding("whisper", pat_str=PATTERN, mergeable_ranks=ranks, special_tokens=specials)

    def to_model(self, whisper_id: int) -> int:
        """Whisper id <-> model id (the permutation is its own inverse)."""
        return self._swap.get(whisper_id, whisper_id)

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    @property
    def multilingual(self) -> bool:
        """Whether the model's prompt names a language: as openai-whisper tells them apart, a
        .en vocabulary has 51864 tokens, a multilingual one 51865 (51866 for large-v3)."""
        return self.vocab_size >= 51865

    def special(self, name: str) -> int:
        """Model id of a special token: ``special("notimestamps")``, ``special("de")``."""
        token = f"<|{name}|>"
        if token not in self.specials:
            raise WhisperVocabError(f"{self.directory}: this model has no token {token}")
        return self.specials[token]

    def encode(self, text: str) -> list[int]:
        """A transcript as Whisper writes it: with one leading space (" Hello world."). A
        reference all in upper case (LibriSpeech's convention) is lower-cased first: Whisper
        writes sentence case, and fine-tuning should not have to unlearn that."""
        text = text.strip()
        if text.isupper():
            text = text.lower()
        return [self.to_model(i) for i in self._bpe.encode_ordinary(" " + text)]

    def decode(self, ids: list[int]) -> str:
        """Text of the ids; special tokens (timestamps too) are left out."""
        text_ids = [w for w in (self.to_model(i) for i in ids) if w < self.eot]
        return self._bpe.decode(text_ids).strip()

    def pieces(self, ids: list[int]) -> list[str]:
        return [self.tokens[self.to_model(i)] for i in ids]

    def save(self, directory: str | Path) -> None:
        from asr.files import copy_file

        target = Path(directory) / VOCAB_FILE
        if not target.exists() or target.resolve() != (self.directory / VOCAB_FILE).resolve():
            copy_file(self.directory / VOCAB_FILE, target)
