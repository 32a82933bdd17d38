"""The language of a multilingual Whisper model's decoding prompt, chosen per decode.

A multilingual Whisper model is told what to transcribe by its prompt: <|startoftranscript|>
<|L|> <|transcribe|> <|notimestamps|>. `asr import whisper --language L` (default en) records
that prompt in the experiment's config; `asr decode` and `asr transcribe --language L`, and
``Recognizer.transcribe(..., language=L)``, decode with the prompt of another language for that
call (:func:`language_prompt`; the decoding task of asr.decode.task feeds it). Nothing of the
model changes: one model serves calls in different languages at once, and the prompt keeps its
length, so the searches and their length limits are unchanged.

English-only (.en) models have no language in their prompt (``en`` is accepted, as at import);
native SentencePiece models have no prompt at all. Either refuses any other ``--language``.
"""

from __future__ import annotations

import difflib

from asr.text.tokenizer import Tokenizer
from asr.text.whisper_bpe import WhisperTokenizer

EXAMPLES = 8  # codes named in the error for an unknown language (Whisper's most frequent first)


class LanguageError(ValueError):
    """A --language the model cannot take (unknown code, English-only or SentencePiece model)."""


def whisper_prompt(tokenizer: WhisperTokenizer, language: str | None) -> tuple[int, ...]:
    """Model ids of Whisper's prompt without timestamps: <|startoftranscript|> [<|language|>
    <|transcribe|>] <|notimestamps|>, the language and task only for multilingual models
    (``language`` None: en). Raises LanguageError for a language the model does not have."""
    prompt = [tokenizer.special("startoftranscript")]
    if tokenizer.multilingual:
        language = language or "en"
        if language not in tokenizer.languages:
            raise LanguageError(unknown_language(tokenizer, language))
        prompt += [tokenizer.special(language), tokenizer.special("transcribe")]
    elif language not in (None, "en"):
        raise LanguageError(
            f"--language {language!r}: this model is English-only (.en); --language applies to multilingual "
            "Whisper models (tiny, base, ..., large-v3)"
        )
    return (*prompt, tokenizer.special("notimestamps"))


def unknown_language(tokenizer: WhisperTokenizer, language: str) -> str:
    """One line: the unknown code, the nearest and most frequent valid ones, how to list all."""
    codes = tokenizer.languages
    near = difflib.get_close_matches(language.lower(), codes, n=3, cutoff=0.5)
    examples = list(dict.fromkeys([*near, *codes[:EXAMPLES]]))[:EXAMPLES]
    return (
        f"--language {language!r} is not a language of this model; valid codes include {', '.join(examples)} "
        f"({len(codes)} in all; list them with: python -c \"import asr; print(*asr.load('EXP').languages)\")"
    )


def model_languages(tokenizer: Tokenizer) -> list[str]:
    """The codes ``--language`` takes with this tokenizer's model: a multilingual Whisper
    model's languages, ["en"] for an English-only one, none for SentencePiece."""
    if not isinstance(tokenizer, WhisperTokenizer):
        return []
    return list(tokenizer.languages) if tokenizer.multilingual else ["en"]


def prompt_language(tokenizer: Tokenizer, prompt: list[int] | tuple[int, ...]) -> str | None:
    """The language a decoder prompt asks for (``en`` for an English-only Whisper model), or
    None for a model without one (SentencePiece)."""
    if not isinstance(tokenizer, WhisperTokenizer):
        return None
    if not tokenizer.multilingual:
        return "en"
    pieces = set(tokenizer.pieces(list(prompt)))
    return next((code for code in tokenizer.languages if f"<|{code}|>" in pieces), None)


def check_language(tokenizer: Tokenizer, language: str) -> tuple[int, ...]:
    """The prompt of ``language`` for this tokenizer's model, or a LanguageError saying why not."""
    if not isinstance(tokenizer, WhisperTokenizer):
        raise LanguageError(
            f"--language {language!r}: this model has SentencePiece units and no language prompt; "
            "--language applies to multilingual Whisper models (asr import whisper)"
        )
    return whisper_prompt(tokenizer, language)


def language_prompt(tokenizer: Tokenizer | None, prompt: tuple[int, ...], language: str | None) -> tuple[int, ...]:
    """The decoder prompt of one decode: the experiment's own ``prompt`` (language None), or the
    prompt of ``language`` in its place, of the same length. The check comes first, so a bad
    language fails before anything is decoded; nothing of the model or tokenizer changes."""
    if language is None:
        return tuple(prompt)
    if tokenizer is None:
        raise LanguageError(f"--language {language!r}: decoding in a language needs the model's tokenizer")
    asked = check_language(tokenizer, language)
    if len(prompt) != len(asked):  # a model fine-tuned with another prompt shape
        raise LanguageError(
            f"--language {language!r}: this model's prompt {' '.join(tokenizer.pieces(list(prompt)))} is not "
            "Whisper's, so it has no language to replace"
        )
    return asked


def no_speech_token(tokenizer: Tokenizer | None) -> int | None:
    """The model id of Whisper's no-speech token (<|nospeech|>, called <|nocaptions|> before
    large-v3), whose probability after <|startoftranscript|> says an input holds no speech; None
    for a model without one (SentencePiece)."""
    if not isinstance(tokenizer, WhisperTokenizer):
        return None
    for name in ("<|nospeech|>", "<|nocaptions|>"):
        if name in tokenizer.specials:
            return tokenizer.specials[name]
    return None
