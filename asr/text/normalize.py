"""Text normalisation in LibriSpeech's conventions: upper case, words split by single spaces,
apostrophes kept (``DON'T``), every other punctuation mark removed."""

from __future__ import annotations

import re
import unicodedata

_NOT_WORD = re.compile(r"[^A-Z0-9' ]+")
_SPACES = re.compile(r"\s+")
_LONE_APOSTROPHE = re.compile(r"(?<![A-Z0-9])'|'(?![A-Z0-9])")


def normalize_text(text: str) -> str:
    """Normalise a transcript the way LibriSpeech references are written.

    >>> normalize_text("  Don't stop, Mr. Smith -- it's 'fine'!")
    "DON'T STOP MR SMITH IT'S FINE"
    """
    # Fold accents (CAFÉ -> CAFE) and typographic apostrophes before filtering.
    text = unicodedata.normalize("NFKD", text.replace("\u2019", "'").replace("\u2018", "'"))
    text = "".join(c for c in text if not unicodedata.combining(c)).upper()
    text = _NOT_WORD.sub(" ", text.replace("-", " "))
    text = _LONE_APOSTROPHE.sub(" ", text)
    return _SPACES.sub(" ", text).strip()
