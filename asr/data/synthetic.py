"""Small corpora in the LibriSpeech layout, for tests and for a first end-to-end run on a CPU.

``make_synthetic_corpus`` speaks sentences from a tiny seeded grammar (about 110 words) with
espeak-ng; each "speaker" is one (voice + variant, speed, pitch) combination, and the train, dev and
test splits have no speaker in common. A small model learns it in minutes, which makes it a quick
check that the whole pipeline (prepare -> features -> train -> decode -> score) works.

Layout written (the same as the official tarballs)::

    <root>/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<NNNN>.flac
    <root>/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
"""

from __future__ import annotations

import itertools
import json
import random
import shutil
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import soundfile as sf
from rich.console import Console

from asr import files
from asr.audio import load_audio
from asr.data.download import mark_complete
from asr.progress import counting_progress

SAMPLE_RATE = 16000
SPLITS = ("train", "dev", "test")
MARKER = ".synthetic.json"  # in <out_dir>/LibriSpeech: the parameters, and whether it is whole

# English voices of espeak-ng 1.51 (`espeak-ng --voices=en`) and voice variants
# (`espeak-ng --voices=variant`); a speaker is one voice+variant with its own speed and pitch.
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us-nyc", "en-gb-x-gbclan")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "f5")
SPEEDS = range(140, 191, 5)  # words per minute
PITCHES = range(30, 71, 5)  # espeak-ng's 0-99 scale, 50 = the voice's default


class SyntheticError(RuntimeError):
    """espeak-ng is missing or failed; the message says what to do."""


class CorpusSizeError(ValueError):
    """A speaker, utterance or worker count out of range; the message names the option."""


_MAX_SPEAKERS = 9900  # speaker ids are drawn from 100..9999
_MAX_UTTERANCES = 10000  # utterance numbers have four digits


# --------------------------------------------------------------------------------------------------
# Text: a template grammar over a small vocabulary: sentences vary, the word set stays tiny.

DETERMINERS = ("THE", "A", "MY", "YOUR", "HIS", "HER", "OUR", "THIS", "THAT")
ADJECTIVES = ("BIG", "SMALL", "RED", "GREEN", "BLUE", "OLD", "NEW", "HAPPY", "LITTLE", "GOOD",
              "DARK", "WARM", "COLD", "FAST")  # fmt: skip
NOUNS = ("DOG", "CAT", "BIRD", "HOUSE", "CAR", "TREE", "BOOK", "CHILD", "MAN", "WOMAN", "BOAT",
         "HORSE", "DOOR", "WINDOW", "GARDEN", "TABLE", "FRIEND", "TEACHER")  # fmt: skip
PLURALS = ("DOGS", "CATS", "BIRDS", "BOOKS", "CARS", "TREES", "BOATS", "HORSES")
NUMBERS = ("TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "TEN")
PAST_TRANSITIVE = ("SAW", "FOUND", "LIKED", "WANTED", "OPENED", "PAINTED", "FOLLOWED", "CARRIED",
                   "MOVED", "HELD")  # fmt: skip
PAST_INTRANSITIVE = ("RAN", "SLEPT", "WAITED", "STOPPED", "LAUGHED", "WALKED", "STAYED")
PRESENT = ("LIKE", "WANT", "SEE", "KNOW", "NEED", "HAVE", "FIND")
PRONOUNS = ("I", "WE", "THEY", "YOU", "SHE", "HE")
NEGATIONS = ("DON'T", "DIDN'T", "CAN'T", "WON'T")
PREPOSITIONS = ("IN", "ON", "NEAR", "BY", "UNDER", "AT")
PLACES = ("PARK", "RIVER", "CITY", "SCHOOL", "MARKET", "STATION", "HILL", "ROAD")
TIMES = ("TODAY", "YESTERDAY", "AGAIN", "NOW")


def _noun_phrase(rng: random.Random) -> list[str]:
    words = [rng.choice(DETERMINERS)]
    if rng.random() < 0.5:
        words.append(rng.choice(ADJECTIVES))
    words.append(rng.choice(NOUNS))
    if words[0] == "A" and words[1][0] in "AEIOU":
        words[0] = "AN"
    return words


def _place(rng: random.Random) -> list[str]:
    return [rng.choice(PREPOSITIONS), "THE", rng.choice(PLACES)]


def _counted(rng: random.Random) -> list[str]:
    return [rng.choice(NUMBERS), rng.choice(PLURALS)]


def _maybe(rng: random.Random, words: Sequence[str]) -> list[str]:
    return [rng.choice(words)] if rng.random() < 0.3 else []


def _templates(rng: random.Random) -> list[list[str]]:
    """Every template once; the caller picks one (drawing them all keeps the rng stream simple)."""
    return [
        # THE BIG DOG SAW A CAT
        _noun_phrase(rng) + [rng.choice(PAST_TRANSITIVE)] + _noun_phrase(rng),
        # MY FRIEND WALKED NEAR THE RIVER
        _noun_phrase(rng) + [rng.choice(PAST_INTRANSITIVE)] + _place(rng),
        # I DON'T LIKE THE OLD HOUSE
        [rng.choice(PRONOUNS), rng.choice(NEGATIONS), rng.choice(PRESENT)] + _noun_phrase(rng),
        # IT'S A GREEN BOAT / THAT'S MY BOOK
        [rng.choice(("IT'S", "THAT'S"))] + _noun_phrase(rng) + _maybe(rng, TIMES),
        # WE SAW THREE BIRDS TODAY
        [rng.choice(PRONOUNS), rng.choice(PAST_TRANSITIVE)] + _counted(rng) + _maybe(rng, TIMES),
        # THE HOUSE WAS VERY OLD
        _noun_phrase(rng) + ["WAS"] + _maybe(rng, ("VERY",)) + [rng.choice(ADJECTIVES)],
        # TWO DOGS RAN IN THE PARK
        _counted(rng) + [rng.choice(PAST_INTRANSITIVE)] + _place(rng),
    ]


def make_sentences(count: int, seed: int) -> list[str]:
    """``count`` sentences of 3 to 8 words; the same seed gives the same sentences."""
    rng = random.Random(seed)
    sentences = []
    while len(sentences) < count:
        words = rng.choice(_templates(rng))
        if 3 <= len(words) <= 8:
            sentences.append(" ".join(words))
    return sentences


def vocabulary() -> set[str]:
    """Every word the grammar can produce."""
    groups = (DETERMINERS, ADJECTIVES, NOUNS, PLURALS, NUMBERS, PAST_TRANSITIVE, PAST_INTRANSITIVE,
              PRESENT, PRONOUNS, NEGATIONS, PREPOSITIONS, PLACES, TIMES)  # fmt: skip
    return set(itertools.chain(*groups)) | {"AN", "IT'S", "THAT'S", "WAS", "VERY"}


# --------------------------------------------------------------------------------------------------
# Speakers and the corpus.


@dataclass(frozen=True)
class Speaker:
    id: str  # numeric, like LibriSpeech's
    chapter: str
    split: str
    voice: str  # espeak-ng voice+variant, e.g. "en-gb+f2"
    speed: int
    pitch: int


def make_speakers(counts: dict[str, int], seed: int) -> list[Speaker]:
    """Distinct (voice, speed, pitch) speakers; splits get disjoint speakers and, while there are
    enough combinations, disjoint voice+variant pairs too (so dev/test voices are unseen)."""
    rng = random.Random(seed)
    pairs = [f"{voice}+{variant}" for voice in VOICES for variant in VARIANTS]
    rng.shuffle(pairs)
    total = sum(counts.values())
    ids = rng.sample(range(100, 10000), total)
    chapters = rng.sample(range(10000, 100000), total)
    seen: set[tuple[str, int, int]] = set()
    speakers = []
    for split, count in counts.items():
        for _ in range(count):
            i = len(speakers)
            while True:  # at most a few redraws: there are 77 pairs x 11 speeds x 9 pitches
                combo = (pairs[i % len(pairs)], rng.choice(SPEEDS), rng.choice(PITCHES))
                if combo not in seen:
                    break
            seen.add(combo)
            speakers.append(Speaker(str(ids[i]), str(chapters[i]), split, *combo))
    return speakers


def _check_espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SyntheticError(
            "espeak-ng not found on PATH; the synthetic corpus needs it to speak its sentences. "
            "Install it with `sudo apt-get install espeak-ng` (Debian/Ubuntu), "
            "`brew install espeak-ng` (macOS) or `conda install -c conda-forge espeak-ng`"
        )
    return exe


def _speak(exe: str, speaker: Speaker, text: str, flac: Path) -> None:
    """Speak ``text`` to a 16 kHz mono FLAC (espeak-ng writes 22.05 kHz WAV)."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        # Lower case: espeak-ng spells out some all-capital words as if they were acronyms.
        cmd = [exe, "-v", speaker.voice, "-s", str(speaker.speed), "-p", str(speaker.pitch),
               "-w", str(wav), text.lower()]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not wav.is_file():
            raise SyntheticError(f"espeak-ng failed for {flac.name}: {result.stderr.strip()}")
        waveform, _ = load_audio(wav, SAMPLE_RATE, expect_speech=True)
    # Resampling can overshoot [-1, 1] a little; clip rather than let 16-bit PCM wrap around.
    with files.atomic_path(flac) as tmp_flac:
        sf.write(tmp_flac, waveform.clamp(-1, 1).numpy(), SAMPLE_RATE, subtype="PCM_16", format="FLAC")


def _read_marker(marker: Path) -> dict | None:
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text())
    except json.JSONDecodeError:
        return {}  # ours but unreadable: rebuild


def check_sizes(counts: dict[str, int], utterances_per_speaker: int, num_workers: int) -> None:
    """A CorpusSizeError naming the first option out of range."""
    limits = {f"--{split}-speakers": (count, 1, _MAX_SPEAKERS) for split, count in counts.items()}
    limits["--utterances"] = (utterances_per_speaker, 1, _MAX_UTTERANCES)
    limits["--workers"] = (num_workers, 1, 64)
    for option, (value, low, high) in limits.items():
        if not (isinstance(value, int) and low <= value <= high):
            raise CorpusSizeError(f"{option} must be an integer from {low} to {high}, got {value!r}")
    if sum(counts.values()) > _MAX_SPEAKERS:
        raise CorpusSizeError(f"at most {_MAX_SPEAKERS} speakers in all, asked for {sum(counts.values())}")


def make_synthetic_corpus(
    out_dir: str | Path,
    *,
    speakers_train: int = 8,
    speakers_dev: int = 2,
    speakers_test: int = 2,
    utterances_per_speaker: int = 60,
    seed: int = 0,
    num_workers: int = 2,
    console: Console | None = None,
) -> Path:
    """Speak a corpus with espeak-ng into ``out_dir/LibriSpeech/{train,dev,test}``; return
    ``out_dir`` (the root to give ``prepare_librispeech``).

    Idempotent: a corpus already complete with the same parameters is left as it is; one made with
    other parameters, or left half-written, is replaced.
    """
    counts = {"train": speakers_train, "dev": speakers_dev, "test": speakers_test}
    check_sizes(counts, utterances_per_speaker, num_workers)
    console = console or Console()
    corpus = Path(out_dir) / "LibriSpeech"
    params = {"speakers": counts, "utterances_per_speaker": utterances_per_speaker, "seed": seed}
    if _already_made(corpus, params, console):
        return Path(out_dir)
    exe = _check_espeak()
    speakers = make_speakers(counts, seed)
    jobs = _jobs(corpus, speakers, utterances_per_speaker, seed)
    # Start from scratch: a half-written corpus or one with other parameters is ours to replace.
    for split in SPLITS:
        shutil.rmtree(corpus / split, ignore_errors=True)
    files.write_json(corpus / MARKER, {"params": params, "complete": False}, indent=None)
    _speak_all(exe, jobs, num_workers, console)
    _write_transcripts(jobs, corpus, speakers)
    for split in SPLITS:
        mark_complete(corpus / split)
    files.write_json(corpus / MARKER, {"params": params, "complete": True}, indent=None)
    console.print(f"synthetic corpus: {len(speakers)} speakers, {len(jobs)} utterances in {corpus}")
    return Path(out_dir)


def _already_made(corpus: Path, params: dict, console: Console) -> bool:
    """True if ``corpus`` is complete with ``params``; an error if it holds data not made here."""
    state = _read_marker(corpus / MARKER)
    if state == {"params": params, "complete": True}:
        console.print(f"synthetic corpus already complete in {corpus}")
        return True
    if state is None and any((corpus / split).exists() for split in SPLITS):
        # Without our marker these folders may be someone's data: never delete them.
        raise SyntheticError(f"{corpus} already has train/dev/test folders not made by this tool")
    return False


_Job = tuple[Speaker, str, str, Path]  # speaker, utterance id, text, FLAC path


def _jobs(corpus: Path, speakers: list[Speaker], utterances_per_speaker: int, seed: int) -> list[_Job]:
    # One sentence stream for the whole corpus, drawn before synthesis: the text does not depend on
    # the number of workers or on the order in which they finish.
    sentences = iter(make_sentences(len(speakers) * utterances_per_speaker, seed))
    jobs = []
    for speaker in speakers:
        folder = corpus / speaker.split / speaker.id / speaker.chapter
        for n in range(utterances_per_speaker):
            utt_id = f"{speaker.id}-{speaker.chapter}-{n:04d}"
            jobs.append((speaker, utt_id, next(sentences), folder / f"{utt_id}.flac"))
    return jobs


def _speak_all(exe: str, jobs: list[_Job], num_workers: int, console: Console) -> None:
    progress = counting_progress(console)
    with progress, ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        task = progress.add_task("speaking", total=len(jobs))
        futures = [pool.submit(_speak, exe, spk, text, flac) for spk, _, text, flac in jobs]
        try:
            for future in futures:
                future.result()  # re-raises the first espeak-ng failure
                progress.advance(task)
        except BaseException:
            pool.shutdown(cancel_futures=True)  # don't speak hundreds more sentences before failing
            raise


def _write_transcripts(jobs: list[_Job], corpus: Path, speakers: list[Speaker]) -> None:
    transcripts: dict[Path, list[str]] = defaultdict(list)
    for speaker, utt_id, text, flac in jobs:
        transcripts[flac.parent / f"{speaker.id}-{speaker.chapter}.trans.txt"].append(f"{utt_id} {text}")
    for path, lines in transcripts.items():
        files.write_lines(path, lines)
    files.write_json(corpus / "SPEAKERS.json", [asdict(s) for s in speakers], indent=1)
