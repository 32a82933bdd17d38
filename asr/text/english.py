"""English normalisation for fair WER between Whisper-style and LibriSpeech-style text.

Whisper writes "Mr. Smith paid $1,000 on the 21st." where a LibriSpeech reference says "MISTER
SMITH PAID ONE THOUSAND DOLLARS ON THE TWENTY FIRST". Both become
"mister smith paid 1000 dollars on the 21st". The rules, in order (in the spirit of Whisper's
``EnglishTextNormalizer``, smaller):

1. Unicode compatibility forms, straight apostrophes, lower case; text in [brackets] or
   (parentheses) is dropped (annotations such as "[music]").
2. Fillers are dropped: um, uh, hmm, mm, mhm, er, ah.
3. Contractions are expanded: won't -> will not, can't -> can not, n't -> not, 're -> are,
   've -> have, 'll -> will, 'm -> am, 'd -> would, let's -> let us; the possessive/"is" 's is
   kept as a plain s (it's -> its), since the two cannot be told apart.
4. Titles are spelled out: mr -> mister, mrs -> missus, dr -> doctor, st -> saint, ...
5. Symbols become words: % -> percent, $5 -> 5 dollars, & -> and.
6. Numbers become digits: "1,000" -> 1000; "one hundred and five" -> 105; "twenty-one" -> 21;
   "nineteen eighty four" -> 1984 (two two-digit groups read as a year); ordinals keep their
   suffix ("twenty first" -> 21st, "second" -> 2nd); "three point five" -> 3.5.
7. Every other mark is removed; words are separated by single spaces.
"""

from __future__ import annotations

import re
import unicodedata

ONES = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
ORDINAL_ONES = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19,
}  # fmt: skip
ORDINAL_TENS = {f"{word[:-1]}ieth": value for word, value in TENS.items()}  # twentieth ...
ORDINAL_SCALES = {f"{word}th": value for word, value in SCALES.items()}  # hundredth ...

FILLERS = {"um", "uh", "hmm", "mm", "mhm", "mmm", "er", "ah", "uhm"}
TITLES = {
    "mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor", "st": "saint", "jr": "junior",
    "sr": "senior", "prof": "professor", "capt": "captain", "gen": "general", "lt": "lieutenant",
    "sgt": "sergeant", "rev": "reverend", "hon": "honorable", "vs": "versus",
}  # fmt: skip
CONTRACTIONS = [  # (pattern, replacement), applied in order
    (r"\bwon't\b", "will not"), (r"\bcan't\b", "can not"), (r"\bshan't\b", "shall not"),
    (r"\blet's\b", "let us"), (r"\bain't\b", "is not"), (r"\by'all\b", "you all"),
    (r"n't\b", " not"), (r"'re\b", " are"), (r"'ve\b", " have"), (r"'ll\b", " will"),
    (r"'m\b", " am"), (r"'d\b", " would"),
]  # fmt: skip
_BRACKETED = re.compile(r"\[[^\]]*\]|\([^)]*\)")
_DIGIT_COMMA = re.compile(r"(?<=\d),(?=\d{3}\b)")
_CURRENCY = re.compile(r"[$£€]\s*(\d+(?:\.\d+)?)")
_CURRENCY_NAMES = {"$": "dollars", "£": "pounds", "€": "euros"}
_ORDINAL_DIGITS = re.compile(r"^(\d+)(st|nd|rd|th)$")
_WORD = re.compile(r"\d+\.\d+|[a-z0-9]+(?:'[a-z0-9]+)*")


def normalize_english(text: str) -> str:
    """Whisper-style English normalisation (see the module docstring).

    >>> normalize_english("Mr. Smith won't pay $1,000 on the 21st, um, 7 days later!")
    'mister smith will not pay 1000 dollars on the 21st 7 days later'
    >>> normalize_english("MISTER SMITH WON'T PAY ONE THOUSAND DOLLARS ON THE TWENTY FIRST SEVEN DAYS LATER")
    'mister smith will not pay 1000 dollars on the 21st 7 days later'
    """
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u2018", "'").lower()
    text = _BRACKETED.sub(" ", text)
    for pattern, replacement in CONTRACTIONS:
        text = re.sub(pattern, replacement, text)
    text = _DIGIT_COMMA.sub("", text)
    text = _CURRENCY.sub(lambda m: f"{m[1]} {_CURRENCY_NAMES[m[0][0]]}", text)
    text = text.replace("%", " percent ").replace("&", " and ").replace("-", " ")
    words = [w.replace("'", "") for w in _WORD.findall(text)]
    words = [TITLES.get(w, w) for w in words if w not in FILLERS]
    return " ".join(numbers_to_digits(words))


def numbers_to_digits(words: list[str]) -> list[str]:
    """Replace each run of number words by its digits (see rule 6 of the module docstring).

    >>> numbers_to_digits("one hundred and five dogs and twenty first".split())
    ['105', 'dogs', 'and', '21st']
    """
    out: list[str] = []
    i = 0
    while i < len(words):
        value, suffix, used = _read_number(words, i)
        if used == 0:
            out.append(words[i])
            i += 1
            continue
        out.append(f"{value}{suffix}")
        i += used
    return _join_years(out)


def _read_number(words: list[str], start: int) -> tuple[str, str, int]:
    """Parse number words from ``words[start]``: (digits, ordinal suffix, words used); used is
    0 when no number starts there."""
    if words[start] == "zero" and words[start + 1 : start + 2] != ["point"]:
        return "0", "", 1  # a number of its own: "zero seven" is 0 7, not 7
    total, current, used, suffix = 0, None, 0, ""
    i = start
    while i < len(words) and not suffix:
        word = words[i]
        ordinal = ORDINAL_ONES.get(word) or ORDINAL_TENS.get(word) or ORDINAL_SCALES.get(word)
        value = ONES.get(word, TENS.get(word))
        scale = SCALES.get(word) or ORDINAL_SCALES.get(word)
        if word == "and" and current is not None and i + 1 < len(words) and _is_small(words[i + 1]) and _after_scale(words, i):
            i += 1
            continue
        if scale and current is not None:
            current *= scale
            if scale >= 1000:
                total, current = total + current, 0
        elif (value is not None or ordinal is not None) and _fits(current, value if value is not None else ordinal):
            current = (current or 0) + (value if value is not None else ordinal)  # type: ignore[operator]
        else:
            break
        if ordinal is not None:
            suffix = _suffix(ordinal)
        i += 1
        used = i - start
    if used == 0:
        return "", "", 0
    digits = str(total + (current or 0))
    if not suffix and used < len(words) - start and words[start + used] == "point":
        decimals = []
        j = start + used + 1
        while j < len(words) and words[j] in ONES and ONES[words[j]] < 10:
            decimals.append(str(ONES[words[j]]))
            j += 1
        if decimals:
            return f"{digits}.{''.join(decimals)}", "", j - start
    return digits, suffix, used


def _fits(current: int | None, value: int) -> bool:
    """Can ``value`` (0-90) extend the number read so far? "twenty" + "one" yes; "one" + "two" no."""
    if current is None:
        return True
    if value == 0:  # "twenty zero" is 20 0
        return False
    last = current % 100
    if value >= 20:
        return last == 0
    if value >= 10:
        return last == 0
    return last == 0 or (last >= 20 and last % 10 == 0)


def _is_small(word: str) -> bool:
    return word in ONES or word in TENS or word in ORDINAL_ONES or word in ORDINAL_TENS


def _after_scale(words: list[str], i: int) -> bool:
    """"and" joins a number only right after hundred/thousand/...: "one hundred and five"."""
    return words[i - 1] in SCALES


def _suffix(value: int) -> str:
    if value % 100 in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(value % 10, "th")


def _join_years(words: list[str]) -> list[str]:
    """"19 84" (from "nineteen eighty four") -> "1984": two adjacent 10-99 groups are a year."""
    out: list[str] = []
    for word in words:
        if out and _two_digit(out[-1]) and _two_digit(word) and int(out[-1]) >= 10 and int(word) >= 10:
            out[-1] = out[-1] + word
        else:
            out.append(word)
    return out


def _two_digit(word: str) -> bool:
    return word.isdigit() and len(word) == 2
