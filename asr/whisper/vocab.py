"""Whisper vocabularies in any of the files that ship beside a checkpoint -> the tokens in
Whisper's id order (GPT-2 byte characters, special tokens by name).

* ``tokenizer.json`` (Hugging Face tokenizers): ``model.vocab`` and ``added_tokens``;
* ``vocab.json``: token -> id;
* ``vocabulary.json`` (CTranslate2): the tokens as a list; ``vocabulary.txt``: one a line;
* ``*.tiktoken`` (openai-whisper): "base64-token rank" a line, without the special tokens.

Every file is checked as it is read: a malformed one is a :class:`VocabularyError` naming the
file and the entry, and no list is allocated longer than the model's vocabulary.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

from asr.text.whisper_bpe import byte_to_char, token_text

LANGUAGE_CODES = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur hr "
    "bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si km sn "
    "yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt haw ln ha ba jw su yue"
).split()  # openai-whisper's LANGUAGES, in token order
VOCAB_FILES = ("tokenizer.json", "vocabulary.json", "vocabulary.txt", "vocab.json")


class VocabularyError(ValueError):
    """A vocabulary file that is malformed or does not fit the model; the message names it."""


def find_vocab(folder: Path, source: Path) -> Path:
    for name in VOCAB_FILES:
        if (folder / name).is_file():
            return folder / name
    raise VocabularyError(
        f"{source}: missing tokenizer: none of {', '.join(VOCAB_FILES)} in {folder} "
        "(pass one with --tokenizer; openai-whisper's gpt2.tiktoken/multilingual.tiktoken also work)"
    )


def read_vocabulary(path: Path, n_vocab: int) -> list[str]:
    """The tokens in Whisper id order, completed with the special tokens a file leaves out."""
    if not path.is_file():
        raise VocabularyError(f"{path}: tokenizer file not found")
    if path.suffix == ".tiktoken":
        return _complete(_tiktoken_tokens(path), n_vocab, path)
    if path.suffix == ".txt":
        return _complete(path.read_text(encoding="utf-8").split("\n")[:n_vocab], n_vocab, path)
    data = read_json(path)
    if isinstance(data, list):  # CTranslate2 vocabulary.json
        for i, token in enumerate(data):
            if not isinstance(token, str):
                raise VocabularyError(f"{path}: entry {i} is {token!r}, not a token string")
        return _complete(data, n_vocab, path)
    return _complete(_in_id_order(_token_ids(data, path), n_vocab, path), n_vocab, path)


def _token_ids(data: object, path: Path) -> dict[str, object]:
    """token -> id, from a tokenizer.json (``model.vocab`` + ``added_tokens``) or a vocab.json."""
    if not isinstance(data, dict):
        raise VocabularyError(f"{path}: not a tokenizer file (a JSON object of tokens was expected)")
    if "model" not in data:  # vocab.json
        return data
    model, added = data["model"], data.get("added_tokens", [])
    if not isinstance(model, dict) or not isinstance(model.get("vocab", {}), dict):
        raise VocabularyError(f"{path}: \"model\" must be an object with a \"vocab\" object of token ids")
    if not isinstance(added, list):
        raise VocabularyError(f"{path}: \"added_tokens\" must be a list")
    table = dict(model.get("vocab", {}))
    for i, entry in enumerate(added):
        if not isinstance(entry, dict) or not isinstance(entry.get("content"), str) or "id" not in entry:
            raise VocabularyError(f"{path}: added_tokens[{i}] needs a \"content\" string and an \"id\"")
        table[entry["content"]] = entry["id"]
    return table


def _in_id_order(table: dict[str, object], n_vocab: int, path: Path) -> list[str | None]:
    """The tokens by id (None where the file names none); every id a whole number below n_vocab."""
    tokens: list[str | None] = [None] * min(n_vocab, max(len(table), 1))
    for token, index in table.items():
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n_vocab:
            raise VocabularyError(
                f"{path}: token {token!r} has id {index!r}; ids are whole numbers from 0 to "
                f"{n_vocab - 1} (the model has {n_vocab} embeddings)"
            )
        if index >= len(tokens):
            tokens += [None] * (index + 1 - len(tokens))
        if tokens[index] not in (None, token):
            raise VocabularyError(f"{path}: id {index} is given to both {tokens[index]!r} and {token!r}")
        tokens[index] = token
    return tokens


def _tiktoken_tokens(path: Path) -> list[str]:
    """openai-whisper's rank files: "base64-token rank" per line, ranks 0, 1, 2, ... each once."""
    ranks: dict[int, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks.setdefault(int(rank), token_text(base64.b64decode(token)))
        except (ValueError, binascii.Error):
            raise VocabularyError(f"{path}:{number}: expected \"base64-token rank\", got {line[:60]!r}") from None
    missing = next((i for i in range(len(ranks)) if i not in ranks), None)
    if missing is not None:
        raise VocabularyError(f"{path}: no token of rank {missing} (ranks must run 0, 1, 2, ... without gaps)")
    return [ranks[i] for i in range(len(ranks))]


def _complete(tokens: list[str | None], n_vocab: int, path: Path) -> list[str]:
    """Add what a vocabulary file may leave out: all the special tokens (a .tiktoken rank file)
    or the timestamp tokens (some tokenizer.json files), in openai-whisper's order."""
    if "<|endoftext|>" not in tokens:
        languages = n_vocab - len(tokens) - 1509  # eot, sot, 6 task/special tokens, 1501 timestamps
        if not 0 < languages <= len(LANGUAGE_CODES):
            raise VocabularyError(f"{path}: {len(tokens)} tokens do not fit a {n_vocab}-token Whisper model")
        tokens = tokens + ["<|endoftext|>", "<|startoftranscript|>"]
        tokens += [f"<|{code}|>" for code in LANGUAGE_CODES[:languages]]
        tokens += ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]
    tokens = tokens[:n_vocab]
    tokens += [f"<|{i * 0.02:.2f}|>" for i in range(n_vocab - len(tokens))]
    if None in tokens or "<|notimestamps|>" not in tokens:  # an id the file does not name
        raise VocabularyError(f"{path}: not a complete Whisper vocabulary for {n_vocab} tokens")
    _check_byte_characters(tokens[: tokens.index("<|endoftext|>")], path)  # type: ignore[arg-type]
    return tokens  # type: ignore[return-value]


def _check_byte_characters(tokens: list[str], path: Path) -> None:
    """Byte-level BPE tokens are written in GPT-2's 256 stand-in characters, nothing else."""
    known = set(byte_to_char().values())
    for i, token in enumerate(tokens):
        if not set(token) <= known:
            raise VocabularyError(
                f"{path}: token {i} ({token[:40]!r}) is not written in GPT-2's byte characters "
                "(not a Whisper byte-level BPE vocabulary)"
            )


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise VocabularyError(f"{path}: not valid JSON (truncated?): {err}") from None
