"""asr.text.normalize and asr.text.english: each normaliser by name, one test per rule."""

import pytest

from asr.metrics import Transcripts, score
from asr.text.english import normalize_english, numbers_to_digits
from asr.text.normalize import NORMALIZERS, NormalizerError, get_normalizer, normalize_text, normalize_unicode


def test_normalizers_are_found_by_name_and_an_unknown_name_lists_them():
    assert set(NORMALIZERS) == {"librispeech", "english", "unicode", "none", "digits"}
    assert get_normalizer("librispeech") is normalize_text
    assert get_normalizer("none")("  a \t b\n") == "a b"
    with pytest.raises(NormalizerError, match="librispeech, english, unicode, digits, none"):
        get_normalizer("whisper")


# --------------------------------------------------------------------------- unicode


@pytest.mark.parametrize(
    "raw, normalised",
    [
        ("你好，世界。", "你好 世界"),  # CJK kept, full-width punctuation removed
        ("Привет, МИР!", "привет мир"),  # Cyrillic kept and case-folded
        ("नमस्ते दुनिया", "नमस्ते दुनिया"),  # Devanagari vowel signs (combining marks) kept
        ("مرحبا، بالعالم؟", "مرحبا بالعالم"),  # Arabic comma and question mark removed
        ("Straße ÉTÉ", "strasse été"),  # casefold: ß -> ss; accents kept (they are letters)
        ("l’eau d'été — 'quoted'", "l'eau d'été quoted"),  # apostrophes inside words only
        ("ｆｕｌｌ－ｗｉｄｔｈ ２０２４", "full width 2024"),  # NFKC compatibility forms
        ("a+b=c € 5 #tag", "a b c 5 tag"),  # symbols become spaces
    ],
)
def test_unicode_keeps_every_script_and_removes_punctuation_by_category(raw, normalised):
    assert normalize_unicode(raw) == normalised


def test_the_librispeech_rule_empties_other_scripts_and_the_scorer_says_so():
    refs = Transcripts({"zh": "你好世界", "en": "HELLO"})
    hyps = Transcripts({"zh": "再见", "en": "HELLO"})
    english = score(refs, hyps)
    assert english.wer == 0.0 and english.emptied == ["zh"]  # a perfect score, but flagged
    unicode = score(refs, hyps, normalizer="unicode", primary="cer")
    assert unicode.emptied == [] and unicode.primary_rate == unicode.cer == pytest.approx(4 / 9)


# --------------------------------------------------------------------------- english (Whisper-style)


@pytest.mark.parametrize(
    "whisper, librispeech",
    [
        ("Hello, World!", "HELLO WORLD"),  # case and punctuation
        ("I won't go.", "I WILL NOT GO"),  # won't
        ("We can't stay", "WE CANNOT STAY".replace("CANNOT", "CAN NOT")),  # can't
        ("They don't know", "THEY DO NOT KNOW"),  # n't
        ("You're right, I'm sure we've seen it", "YOU ARE RIGHT I AM SURE WE HAVE SEEN IT"),  # 're 'm 've
        ("She'll say he'd come", "SHE WILL SAY HE WOULD COME"),  # 'll 'd
        ("Let's go", "LET US GO"),  # let's
        ("It's John's", "ITS JOHNS"),  # 's kept as a plain s
        ("Mr. Smith met Dr. Jones", "MISTER SMITH MET DOCTOR JONES"),  # titles
        ("7 dogs", "SEVEN DOGS"),  # digits vs words
        ("21 cats", "TWENTY ONE CATS"),
        ("twenty-one cats", "TWENTY ONE CATS"),  # hyphenated numbers
        ("1,000 people", "ONE THOUSAND PEOPLE"),  # thousands separators
        ("105 days", "ONE HUNDRED AND FIVE DAYS"),  # "and" inside a number
        ("2005", "TWO THOUSAND AND FIVE"),
        ("in 1984", "IN NINETEEN EIGHTY FOUR"),  # years read as two groups
        ("the 21st", "THE TWENTY FIRST"),  # ordinals
        ("the 2nd and 3rd", "THE SECOND AND THIRD"),
        ("the 12th", "THE TWELFTH"),
        ("the 20th", "THE TWENTIETH"),
        ("3.5 miles", "THREE POINT FIVE MILES"),  # decimals
        ("50% off", "FIFTY PERCENT OFF"),  # percent
        ("$5 each", "FIVE DOLLARS EACH"),  # currency
        ("salt & pepper", "SALT AND PEPPER"),  # ampersand
        ("Um, I, uh, think so", "I THINK SO"),  # fillers
        ("[Music] Well (laughs) yes", "WELL YES"),  # bracketed annotations
        ("Don\u2019t", "DON'T"),  # typographic apostrophe
    ],
)
def test_english_makes_whisper_output_and_librispeech_references_agree(whisper, librispeech):
    assert normalize_english(whisper) == normalize_english(librispeech)


@pytest.mark.parametrize(
    "words, digits",
    [
        ("one two three", "1 2 3"),  # single digits in a row stay separate numbers
        ("twenty one", "21"),
        ("one hundred twenty three", "123"),
        ("sixty five thousand two hundred", "65200"),
        ("three million", "3000000"),
        ("eleven hundred", "1100"),
        ("first second", "1st 2nd"),
        ("the hundredth", "the 100th"),
        ("bread and butter", "bread and butter"),  # no number: nothing changes
        ("five and six", "5 and 6"),  # "and" joins only after hundred/thousand
        ("point five", "point 5"),  # a decimal needs a whole part
        ("zero seven", "0 7"),  # zero is a number of its own, not a leading digit to drop
        ("twenty zero", "20 0"),
        ("zero point five", "0.5"),
    ],
)
def test_number_words_become_digits(words, digits):
    assert " ".join(numbers_to_digits(words.split())) == digits


def test_english_wer_of_whisper_style_output_is_fair():
    refs = Transcripts({"a": "MISTER SMITH PAID ONE THOUSAND DOLLARS ON THE TWENTY FIRST", "b": "IT'S SEVEN O'CLOCK"})
    hyps = Transcripts({"a": "Mr. Smith paid $1,000 on the 21st.", "b": "It's 7 o'clock."})
    assert score(refs, hyps).wer > 0.5  # the LibriSpeech rule counts formatting as errors
    assert score(refs, hyps, normalizer="english").wer == 0.0


@pytest.mark.parametrize(
    "text, digits",
    [
        ("NINE SEVEN ZERO", "9 7 0"),  # digit words (references)
        ("9, 7, 0.", "9 7 0"),  # punctuation between digits
        ("98808", "9 8 8 0 8"),  # a digit string is one word per digit
        ("9.5 6.4", "9 5 6 4"),  # decimal points and other marks inside numbers
        ("Oh five", "0 5"),  # "oh" read as zero
        ("8th 7th", "8 7"),  # ordinal endings after a digit
        ("twenty one", "2 1"),  # number words too are digit by digit
        ("Fix six.", "fix 6"),  # other words stay, lower-cased
    ],
)
def test_digits_scores_spoken_digit_strings_digit_by_digit(text, digits):
    assert get_normalizer("digits")(text) == digits


def test_digits_wer_of_whisper_style_digit_strings_is_fair():
    refs = Transcripts({"a": "NINE EIGHT EIGHT ZERO EIGHT", "b": "ZERO SEVEN"})
    hyps = Transcripts({"a": "98808", "b": "Oh, 7."})
    assert score(refs, hyps, normalizer="english").wer > 0.5  # "98808" is one word there
    assert score(refs, hyps, normalizer="digits").wer == 0.0


# --------------------------------------------------------------------------- the tokenizer


def test_a_tokenizer_trained_with_the_unicode_rule_keeps_other_scripts_and_travels_with_it(tmp_path):
    from asr.data.manifest import Utterance, write_manifest
    from asr.text.tokenizer import EmptiedTextWarning, SentencePieceTokenizer as Tokenizer, train_tokenizer

    texts = ["你好世界", "世界很大", "你好吗", "Привет мир", "мир большой", "HELLO WORLD", "A GOOD DAY"]
    write_manifest([Utterance(f"u{i}", "x.wav", 1.0, 16000, "s", "", t) for i, t in enumerate(texts)], tmp_path / "m.jsonl")
    with pytest.warns(EmptiedTextWarning, match="5 non-empty transcript"):  # the English rule deletes CJK and Cyrillic
        train_tokenizer(texts, tmp_path / "en", vocab_size=20)
    tokenizer = train_tokenizer(texts, tmp_path / "any", vocab_size=60, normalizer="unicode")
    assert tokenizer.decode(tokenizer.encode("你好 Мир")) == "你好 мир"
    tokenizer.save(tmp_path / "exp" / "tokenizer")
    assert Tokenizer(tmp_path / "exp" / "tokenizer").normalizer == "unicode"
    english = Tokenizer(tmp_path / "en")
    with pytest.warns(EmptiedTextWarning):
        assert english.encode("你好") == []
    english.encode("世界")
    assert english.emptied == 2 and english.encode("") == [] and english.emptied == 2
