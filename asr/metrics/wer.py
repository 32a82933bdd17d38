"""Scoring hypotheses against references: WER, CER, SER, per speaker, confusions.

jiwer does every alignment (``process_words`` / ``process_characters``); this
module only tallies its chunks.

Conventions:

* A reference id with no hypothesis is scored as an empty hypothesis (all of its
  words are deletions) and listed in ``WerReport.missing``: a decoder that drops
  utterances must not look better for it.
* A hypothesis id with no reference cannot be scored; it is listed in
  ``WerReport.extra`` and counts nowhere else.
* Every rate is errors / reference length, with the length taken as 1 when it is
  0. That is jiwer's own convention for an empty reference (WER = number of
  insertions), so corpus totals equal ``jiwer.wer`` / ``jiwer.cer`` exactly, and
  an empty reference with a non-empty hypothesis is insertions, never a crash.
* Texts are normalised by a named normaliser (:mod:`asr.text.normalize`; ``librispeech`` by
  default). A transcript that the normaliser empties (Chinese under the English rule, say)
  would score as all deletions or a perfect empty match; its id is listed in
  ``WerReport.emptied`` and the report warns.
* ``primary`` names the headline metric: ``wer``, or ``cer`` for scripts written without
  spaces, where a "word" is a whole phrase.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import jiwer
from jiwer import AlignmentChunk

from asr.metrics.alignment import DELETION, INSERTION, SUBSTITUTION, AlignedWord, align_words
from asr.metrics.transcripts import Transcripts
from asr.text.normalize import DEFAULT_NORMALIZER, get_normalizer, normalize_none


@dataclass(frozen=True)
class ErrorCounts:
    """Edit counts of an alignment (of words or of characters) and the error rate."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    hits: int = 0

    @property
    def reference_length(self) -> int:
        """Reference words (or characters): every one is a hit, substituted or deleted."""
        return self.hits + self.substitutions + self.deletions

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """errors / reference length (length 1 when empty, as jiwer does)."""
        return self.errors / max(self.reference_length, 1)

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.hits + other.hits,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "substitutions": self.substitutions,
            "deletions": self.deletions,
            "insertions": self.insertions,
            "hits": self.hits,
            "reference_length": self.reference_length,
            "errors": self.errors,
            "rate": self.rate,
        }


@dataclass(frozen=True)
class UtteranceScore:
    """One scored utterance: normalised texts, word and character counts, alignment."""

    id: str
    speaker: str | None
    ref: str
    hyp: str
    words: ErrorCounts
    chars: ErrorCounts
    alignment: list[AlignedWord]
    missing: bool = False  # no hypothesis was given; scored as an empty one

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "speaker": self.speaker,
            "ref": self.ref,
            "hyp": self.hyp,
            "missing": self.missing,
            "words": self.words.to_json(),
            "chars": self.chars.to_json(),
            # [ref, hyp, op] per column; null on the empty side of a deletion/insertion.
            "alignment": [[c.ref, c.hyp, c.op] for c in self.alignment],
        }


@dataclass(frozen=True)
class SpeakerScore:
    """Word error counts summed over one speaker's utterances."""

    speaker: str
    utterances: int
    words: ErrorCounts

    def to_json(self) -> dict[str, Any]:
        return {"speaker": self.speaker, "utterances": self.utterances, "words": self.words.to_json()}


@dataclass
class WerReport:
    """Everything ``asr wer`` reports. Lists of confusions are sorted most frequent first."""

    words: ErrorCounts
    chars: ErrorCounts
    sentence_errors: int  # utterances with at least one word error
    utterances: list[UtteranceScore]
    speakers: list[SpeakerScore] = field(default_factory=list)  # empty when no speaker is known
    substitutions: list[tuple[str, str, int]] = field(default_factory=list)  # (ref, hyp, count)
    deletions: list[tuple[str, int]] = field(default_factory=list)  # (ref word, count)
    insertions: list[tuple[str, int]] = field(default_factory=list)  # (hyp word, count)
    missing: list[str] = field(default_factory=list)  # ids with a reference but no hypothesis
    extra: list[str] = field(default_factory=list)  # ids with a hypothesis but no reference
    emptied: list[str] = field(default_factory=list)  # ids whose text normalisation emptied
    normalizer: str = DEFAULT_NORMALIZER
    primary: str = "wer"  # the headline metric: "wer" or "cer"

    @property
    def num_utterances(self) -> int:
        return len(self.utterances)

    @property
    def wer(self) -> float:
        return self.words.rate

    @property
    def cer(self) -> float:
        return self.chars.rate

    @property
    def ser(self) -> float:
        """Sentence error rate: the fraction of utterances with any word error."""
        return self.sentence_errors / max(self.num_utterances, 1)

    @property
    def primary_rate(self) -> float:
        return self.cer if self.primary == "cer" else self.wer

    def to_json(self) -> dict[str, Any]:
        """Plain dicts and lists (``json.dumps`` ready), per-utterance results included."""
        return {
            "primary": self.primary,
            "normalizer": self.normalizer,
            "wer": self.wer,
            "cer": self.cer,
            "ser": self.ser,
            "num_utterances": self.num_utterances,
            "sentence_errors": self.sentence_errors,
            "words": self.words.to_json(),
            "chars": self.chars.to_json(),
            "speakers": [s.to_json() for s in self.speakers],
            "substitutions": [{"ref": r, "hyp": h, "count": n} for r, h, n in self.substitutions],
            "deletions": [{"word": w, "count": n} for w, n in self.deletions],
            "insertions": [{"word": w, "count": n} for w, n in self.insertions],
            "missing": list(self.missing),
            "extra": list(self.extra),
            "emptied": list(self.emptied),
            "utterances": [u.to_json() for u in self.utterances],
        }


def score(
    refs: Transcripts,
    hyps: Transcripts,
    *,
    normalize: bool = True,
    normalizer: str = DEFAULT_NORMALIZER,
    primary: str = "wer",
) -> WerReport:
    """Score every reference utterance against its hypothesis.

    Texts pass through the normaliser named ``normalizer`` first (only whitespace is
    tidied when ``normalize`` is False). Utterances keep the order of ``refs``; a
    speaker comes from ``refs.speakers``, else ``hyps.speakers``. See the module
    docstring for how missing, extra and emptied transcripts count.
    """
    if primary not in ("wer", "cer"):
        raise ValueError(f"primary metric {primary!r} is not one of wer, cer")
    ids = list(refs.texts)
    missing = [i for i in ids if i not in hyps.texts]
    extra = [i for i in hyps.texts if i not in refs.texts]
    clean = get_normalizer(normalizer) if normalize else normalize_none
    ref_texts = [clean(refs.texts[i]) for i in ids]
    hyp_texts = [clean(hyps.texts.get(i, "")) for i in ids]
    emptied = [
        i for i, r, h in zip(ids, ref_texts, hyp_texts)
        if (refs.texts[i].strip() and not r) or (hyps.texts.get(i, "").strip() and not h)
    ]  # fmt: skip

    utterances = _score_utterances(ids, ref_texts, hyp_texts, refs, hyps, set(missing))
    substitutions, deletions, insertions = _confusions(utterances)
    return WerReport(
        words=sum((u.words for u in utterances), ErrorCounts()),
        chars=sum((u.chars for u in utterances), ErrorCounts()),
        sentence_errors=sum(1 for u in utterances if u.words.errors > 0),
        utterances=utterances,
        speakers=_per_speaker(utterances),
        substitutions=substitutions,
        deletions=deletions,
        insertions=insertions,
        missing=missing,
        extra=extra,
        emptied=emptied,
        normalizer=normalizer if normalize else "none",
        primary=primary,
    )


def _score_utterances(
    ids: list[str], ref_texts: list[str], hyp_texts: list[str], refs: Transcripts, hyps: Transcripts, missing: set[str]
) -> list[UtteranceScore]:
    """Align every normalised (ref, hyp) pair by words and by characters."""
    if not ids:  # jiwer needs at least one pair
        return []
    words = jiwer.process_words(ref_texts, hyp_texts)
    chars = jiwer.process_characters(ref_texts, hyp_texts)
    return [
        UtteranceScore(
            id=utt_id,
            speaker=refs.speakers.get(utt_id) or hyps.speakers.get(utt_id),
            ref=ref_texts[k],
            hyp=hyp_texts[k],
            words=_count(words.alignments[k]),
            chars=_count(chars.alignments[k]),
            alignment=align_words(words.references[k], words.hypotheses[k], words.alignments[k]),
            missing=utt_id in missing,
        )
        for k, utt_id in enumerate(ids)
    ]


def _count(chunks: Sequence[AlignmentChunk]) -> ErrorCounts:
    tally: Counter[str] = Counter()
    for chunk in chunks:
        # A substitute chunk spans as many hyp items as ref items; a deletion spans
        # only ref items and an insertion only hyp items, so max() counts each.
        tally[chunk.type] += max(
            chunk.ref_end_idx - chunk.ref_start_idx, chunk.hyp_end_idx - chunk.hyp_start_idx
        )
    return ErrorCounts(tally["substitute"], tally["delete"], tally["insert"], tally["equal"])


def _per_speaker(utterances: Sequence[UtteranceScore]) -> list[SpeakerScore]:
    counts: dict[str, ErrorCounts] = {}
    sizes: Counter[str] = Counter()
    for utt in utterances:
        if utt.speaker is None:  # unknown speakers are left out of the per-speaker table
            continue
        counts[utt.speaker] = counts.get(utt.speaker, ErrorCounts()) + utt.words
        sizes[utt.speaker] += 1
    return [SpeakerScore(s, sizes[s], counts[s]) for s in sorted(counts, key=_natural_key)]


def _natural_key(name: str) -> tuple[int, int, str]:
    # LibriSpeech speakers are numbers: order 121 before 1089, as a listing of them would.
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


def _confusions(
    utterances: Sequence[UtteranceScore],
) -> tuple[list[tuple[str, str, int]], list[tuple[str, int]], list[tuple[str, int]]]:
    subs: Counter[tuple[str, str]] = Counter()
    dels: Counter[str] = Counter()
    ins: Counter[str] = Counter()
    for utt in utterances:
        for col in utt.alignment:
            if col.op == SUBSTITUTION:
                subs[(col.ref, col.hyp)] += 1
            elif col.op == DELETION:
                dels[col.ref] += 1
            elif col.op == INSERTION:
                ins[col.hyp] += 1
    # Most frequent first; ties alphabetically so reports are reproducible.
    return (
        [(r, h, n) for (r, h), n in sorted(subs.items(), key=lambda kv: (-kv[1], kv[0]))],
        sorted(dels.items(), key=lambda kv: (-kv[1], kv[0])),
        sorted(ins.items(), key=lambda kv: (-kv[1], kv[0])),
    )
