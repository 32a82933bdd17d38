"""Text normalisation before tokenising and scoring, by name (:data:`NORMALIZERS`):

* ``librispeech`` (the default, and what English recipes train on): LibriSpeech's conventions,
  upper case, accents folded, apostrophes inside words kept (``DON'T``), other marks removed.
  Letters outside A-Z are deleted, so it is for English only.
* ``unicode``: for any language. Letters (with their combining marks) and digits of every script
  are kept, case is folded (``str.casefold``), and punctuation, symbols and separators become
  spaces, all by Unicode category. Scripts written without spaces stay one "word" per run of
  text: score them by CER (``asr wer --cer``).
* ``english``: for comparing Whisper-style output ("Don't worry, it's 7:30.") with
  LibriSpeech-style references ("DON'T WORRY IT'S SEVEN THIRTY"), both sides lower-cased with
  contractions expanded, titles spelled out, numbers written as digits (``seven`` -> ``7``,
  ``twenty first`` -> ``21st``, ``1,000`` -> ``1000``), fillers (``um``, ``uh``) dropped and
  punctuation removed: :mod:`asr.text.english`.
* ``digits``: for spoken digit strings (PINs, phone numbers, the digits recipe), where Whisper
  writes "98808" or "9, 7, 5" for NINE EIGHT EIGHT ZERO EIGHT: the ``english`` rules, then one
  word per digit ("98808" -> ``9 8 8 0 8``, "twenty one" -> ``2 1``), marks inside numbers and
  ordinal endings dropped ("9.5" -> ``9 5``, "8th" -> ``8``), "oh" read as ``0``.
* ``none``: only whitespace is tidied.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable

_NOT_WORD = re.compile(r"[^A-Z0-9' ]+")
_SPACES = re.compile(r"\s+")
_LONE_APOSTROPHE = re.compile(r"(?<![A-Z0-9])'|'(?![A-Z0-9])")
APOSTROPHES = {"\u2019": "'", "\u2018": "'", "\u02bc": "'"}


class NormalizerError(ValueError):
    """A normaliser name that does not exist."""


def normalize_text(text: str) -> str:
    """Normalise a transcript the way LibriSpeech references are written.

    >>> normalize_text("  Don't stop, Mr. Smith -- it's 'fine'!")
    "DON'T STOP MR SMITH IT'S FINE"
    """
    # Fold accents (CAFÉ -> CAFE) and typographic apostrophes before filtering.
    text = unicodedata.normalize("NFKD", _straight_apostrophes(text))
    text = "".join(c for c in text if not unicodedata.combining(c)).upper()
    text = _NOT_WORD.sub(" ", text.replace("-", " "))
    text = _LONE_APOSTROPHE.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def normalize_unicode(text: str) -> str:
    """Keep the letters, marks and digits of every script; fold case; punctuation, symbols and
    separators become spaces. An apostrophe between two letters stays (``l'eau``).

    >>> normalize_unicode("Привет, МИР! «Ça va?» 你好，世界。 नमस्ते")
    'привет мир ça va 你好 世界 नमस्ते'
    """
    text = unicodedata.normalize("NFKC", _straight_apostrophes(text)).casefold()
    kept = []
    for i, char in enumerate(text):
        category = unicodedata.category(char)[0]
        if category in "LMN":  # letters, combining marks (vowel signs, accents), numbers
            kept.append(char)
        elif char == "'" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum():
            kept.append(char)
        else:
            kept.append(" ")
    return _SPACES.sub(" ", "".join(kept)).strip()


def normalize_none(text: str) -> str:
    """Whitespace only: one line, single spaces."""
    return _SPACES.sub(" ", text).strip()


def _straight_apostrophes(text: str) -> str:
    for curly, straight in APOSTROPHES.items():
        text = text.replace(curly, straight)
    return text


def _english(text: str) -> str:
    from asr.text.english import normalize_english  # numbers and contractions: a module of its own

    return normalize_english(text)


_ORDINAL_ENDING = re.compile(r"(?<=\d)(st|nd|rd|th)\b")


def normalize_digits(text: str) -> str:
    """Spoken digit strings, one word per digit (see the module docstring).

    >>> normalize_digits("Oh, 98808. Fix the eighth")
    '0 9 8 8 0 8 fix the 8'
    """
    words = _ORDINAL_ENDING.sub("", _english(text)).split()
    words = ["0" if w == "oh" else w for w in words]
    out: list[str] = []
    for word in words:
        if any(c.isdigit() for c in word) and not any(c.isalpha() for c in word):
            out += [c for c in word if c.isdigit()]  # "9.5" -> 9 5; "98808" -> 9 8 8 0 8
        else:
            out.append(word)
    return " ".join(out)


NORMALIZERS: dict[str, Callable[[str], str]] = {
    "librispeech": normalize_text,
    "english": _english,
    "unicode": normalize_unicode,
    "digits": normalize_digits,
    "none": normalize_none,
}
DEFAULT_NORMALIZER = "librispeech"


def get_normalizer(name: str) -> Callable[[str], str]:
    """The normaliser called ``name``; an unknown name is an error listing the known ones."""
    if name not in NORMALIZERS:
        raise NormalizerError(f"unknown normalizer {name!r}; choose one of {', '.join(NORMALIZERS)}")
    return NORMALIZERS[name]
