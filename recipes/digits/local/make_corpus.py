"""Build a connected-digit corpus in the LibriSpeech layout from Free Spoken Digit Dataset recordings.

Usage:
    .venv/bin/python recipes/digits/local/make_corpus.py --fsdd DIR --out DIR
        [--test-speaker george] [--speakers jackson,nicolas,george,yweweler]
        [--train-utterances 4000] [--dev-utterances 150] [--test-utterances 200]
        [--dev-indices 5] [--max-index 50] [--max-digits 7] [--train-max-digits N] [--seed 0]

Each utterance joins 1 to --max-digits recordings (training utterances: 1 to --train-max-digits,
by default the same) ({digit}_{speaker}_{index}.wav, 8 kHz mono) of
ONE speaker. Every recording is peak-normalised (FSDD speakers were recorded at very different
levels) and faded in/out over 5 ms; recordings are separated (and the utterance padded at both
ends) by 50-300 ms pauses of very low white noise. The utterance is assembled at 8 kHz, resampled
to 16 kHz with torchaudio.functional.resample, and written as 16-bit FLAC with soundfile.
Transcripts are the digit words, e.g. "SEVEN TWO ZERO".

Splits (speaker-disjoint between train/dev and test):
    train  the other speakers' recordings with index >= --dev-indices
    dev    the other speakers' recordings with index <  --dev-indices (held-out recordings)
    test   every recording of --test-speaker, never seen in training
Recordings are drawn from a shuffled deck per speaker, so each is used about equally often.
Each split is drawn with its own random generator (from --seed and the split's name), so the dev
and test utterances do not depend on how the training split is drawn: run.sh and run_whisper.sh
(1,000 training utterances of up to 10 digits) score the same test utterances.
--max-index N keeps only recordings with index < N (for quick tests).

Output (the root to give `asr prepare librispeech --root`):
    <out>/LibriSpeech/{train,dev,test}/<spk>/<chapter>/<spk>-<chapter>-<NNNN>.flac
    <out>/LibriSpeech/{train,dev,test}/<spk>/<chapter>/<spk>-<chapter>.trans.txt
    <out>/LICENSE-FSDD.txt   FSDD attribution and licence (CC BY-SA 4.0): the corpus is derived
    <out>/SPEAKERS.tsv       numeric speaker id -> FSDD name, split
    <out>/sources.tsv        utterance id -> the FSDD recordings it joins, in order
The same arguments give the same corpus, byte for byte.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

SOURCE_RATE = 8000
TARGET_RATE = 16000
WORDS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
DEFAULT_SPEAKERS = ("jackson", "nicolas", "george", "yweweler")
# Numeric ids for the FSDD speakers (LibriSpeech ids are numbers); others get a stable hash.
SPEAKER_IDS = {"jackson": 101, "nicolas": 102, "theo": 103, "yweweler": 104, "george": 105, "lucas": 106}
CHAPTERS = {"train": "1000", "dev": "2000", "test": "3000"}
PEAK = 0.5  # every recording is scaled to this peak amplitude
PAUSE_MS = (50, 300)  # pause between digits (and before/after the utterance)
NOISE_RMS = (0.0005, 0.003)  # pause noise level (about -66 to -50 dBFS)
FADE_MS = 5
AUGMENT_NOISE_DB = (-3.5, -1.5)  # augmented training utterances: noise RMS 10^x * PEAK (-76 to -36 dBFS)
MAX_DIGITS = 40  # about 25 s of digits and pauses: a bound on what one utterance may hold in memory
MARKER = ".digits-corpus.json"  # our parameters; a folder without it is never deleted
FILENAME = re.compile(r"^([0-9])_([A-Za-z]+)_([0-9]+)\.wav$")

LICENSE_TEXT = """\
This corpus is derived from the Free Spoken Digit Dataset (FSDD):
    https://github.com/Jakobovski/free-spoken-digit-dataset
    Zohar Jackson, Cesar Souza, Jason Flaks, Yuxin Pan, Hereman Nicolas and Adhish Thite,
    "Jakobovski/free-spoken-digit-dataset", Zenodo, doi:10.5281/zenodo.1342401

FSDD is licensed under the Creative Commons Attribution-ShareAlike 4.0 International licence
(CC BY-SA 4.0): https://creativecommons.org/licenses/by-sa/4.0/

Changes made: recordings of one speaker were peak-normalised, joined with short pauses of
low-level noise into connected-digit utterances, resampled from 8 kHz to 16 kHz and written as
FLAC in the LibriSpeech folder layout, by recipes/digits/local/make_corpus.py of the `asr`
toolkit. This derived corpus is shared under the same licence, CC BY-SA 4.0.
"""


@dataclass(frozen=True)
class Recording:
    path: Path
    digit: int
    speaker: str
    index: int


def speaker_id(name: str) -> str:
    return str(SPEAKER_IDS.get(name, 1000 + zlib.crc32(name.encode()) % 9000))


def find_recordings(fsdd: Path, speakers: list[str], max_index: int) -> dict[str, list[Recording]]:
    """FSDD file names -> recordings per speaker, sorted (the order must not depend on the disk)."""
    if not fsdd.is_dir():
        sys.exit(f"error: FSDD recordings folder {fsdd} not found (pass --fsdd DIR, the "
                 "'recordings' folder of a clone of github.com/Jakobovski/free-spoken-digit-dataset)")
    found: dict[str, list[Recording]] = defaultdict(list)
    for path in sorted(fsdd.glob("*.wav")):
        match = FILENAME.match(path.name)
        if match is None:
            continue
        digit, name, index = int(match[1]), match[2], int(match[3])
        if name in speakers and index < max_index:
            found[name].append(Recording(path, digit, name, index))
    missing = [s for s in speakers if not found[s]]
    if missing:
        sys.exit(f"error: no recordings of speaker(s) {', '.join(missing)} in {fsdd}")
    return found


def load_recording(recording: Recording) -> np.ndarray:
    """(S,) float32 at 8 kHz, peak-normalised, with 5 ms fades at both ends (no clicks)."""
    wave, rate = sf.read(str(recording.path), dtype="float32", always_2d=True)
    if rate != SOURCE_RATE:
        sys.exit(f"error: {recording.path} is {rate} Hz; FSDD recordings are {SOURCE_RATE} Hz")
    wave = wave.mean(axis=1)
    wave = wave * (PEAK / max(float(np.abs(wave).max()), 1e-4))
    fade = min(len(wave) // 2, SOURCE_RATE * FADE_MS // 1000)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    wave[:fade] *= ramp
    wave[len(wave) - fade:] *= ramp[::-1]
    return wave.astype(np.float32)


class Deck:
    """Draws a speaker's recordings without replacement, reshuffling when all have been drawn."""

    def __init__(self, recordings: list[Recording], rng: random.Random):
        self.recordings, self.rng, self.cards = list(recordings), rng, []

    def draw(self) -> Recording:
        if not self.cards:
            self.cards = list(self.recordings)
            self.rng.shuffle(self.cards)
        return self.cards.pop()


def plan_split(decks: dict[str, Deck], count: int, max_digits: int, rng: random.Random) -> list[tuple[str, list[Recording]]]:
    """``count`` utterances, round-robin over the split's speakers: (speaker, recordings)."""
    speakers = sorted(decks)
    plan = []
    for n in range(count):
        speaker = speakers[n % len(speakers)]
        length = rng.randint(1, max_digits)
        plan.append((speaker, [decks[speaker].draw() for _ in range(length)]))
    return plan


def random_channel(wave: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A random microphone/room colouring of (S,) 8 kHz audio, peak-normalised again.

    FSDD's speakers differ as much by their microphones as by their voices (one has almost no
    energy below 100 Hz, one a darker high end); three training speakers are three channels only.
    """
    if rng.random() < 0.5:
        wave = AF.highpass_biquad(wave, SOURCE_RATE, float(rng.uniform(60, 300)))
    if rng.random() < 0.3:
        wave = AF.lowpass_biquad(wave, SOURCE_RATE, float(rng.uniform(2500, 3800)))
    for _ in range(2):  # peaking filters: centre 150-3500 Hz (log-uniform), +-9 dB
        centre = float(np.exp(rng.uniform(np.log(150), np.log(3500))))
        wave = AF.equalizer_biquad(wave, SOURCE_RATE, centre, float(rng.uniform(-9, 9)), float(rng.uniform(0.7, 2.0)))
    gain = 10 ** (rng.uniform(-9, 0) / 20)  # -9 to 0 dB below the usual peak
    return wave * (gain * PEAK / wave.abs().max().clamp(min=1e-4))


def assemble(recordings: list[Recording], cache: dict[Path, np.ndarray], rng: np.random.Generator,
             augment: bool = False) -> torch.Tensor:
    """Join recordings with noise pauses at 8 kHz, then resample: (S,) float32 at 16 kHz.
    With ``augment``, a random channel (``random_channel``) and a wider range of noise levels."""
    noise_rms = rng.uniform(*NOISE_RMS) if not augment else 10 ** rng.uniform(*AUGMENT_NOISE_DB) * PEAK

    def pause() -> np.ndarray:
        samples = int(rng.integers(PAUSE_MS[0], PAUSE_MS[1] + 1)) * SOURCE_RATE // 1000
        return (rng.standard_normal(samples) * noise_rms).astype(np.float32)

    pieces = [pause()]
    for recording in recordings:
        if recording.path not in cache:
            cache[recording.path] = load_recording(recording)
        # The noise goes under the speech too, so pauses are not the only noisy parts.
        speech = cache[recording.path]
        pieces += [speech + (rng.standard_normal(len(speech)) * noise_rms).astype(np.float32), pause()]
    wave = torch.from_numpy(np.concatenate(pieces))
    if augment:
        wave = random_channel(wave, rng)
    return AF.resample(wave, SOURCE_RATE, TARGET_RATE).clamp(-1.0, 1.0)


def build(args: argparse.Namespace) -> None:
    speakers = [s.strip() for s in args.speakers.split(",") if s.strip()]
    if args.test_speaker not in speakers:
        sys.exit(f"error: --test-speaker {args.test_speaker} is not one of --speakers {','.join(speakers)}")
    if not 1 <= args.max_digits <= MAX_DIGITS or not 0 <= args.train_max_digits <= MAX_DIGITS:
        sys.exit(f"error: --max-digits must be 1 to {MAX_DIGITS}, and --train-max-digits 1 to {MAX_DIGITS} "
                 f"(or 0: the same as --max-digits); got {args.max_digits} and {args.train_max_digits}")
    if not 0 < args.dev_indices < args.max_index:
        sys.exit("error: need 0 < --dev-indices < --max-index (dev and train both need recordings)")
    out = Path(args.out)
    corpus = out / "LibriSpeech"
    params = {k: v for k, v in sorted(vars(args).items()) if k not in ("fsdd", "out")}
    marker = corpus / MARKER
    if corpus.exists():
        if not marker.is_file():
            sys.exit(f"error: {corpus} exists and was not made by this script; not touching it")
        shutil.rmtree(corpus)  # ours: rebuild from scratch (also after a half-finished run)
    recordings = find_recordings(Path(args.fsdd), speakers, args.max_index)

    train_speakers = [s for s in speakers if s != args.test_speaker]
    pools = {
        "train": {s: [r for r in recordings[s] if r.index >= args.dev_indices] for s in train_speakers},
        "dev": {s: [r for r in recordings[s] if r.index < args.dev_indices] for s in train_speakers},
        "test": {args.test_speaker: recordings[args.test_speaker]},
    }
    counts = {"train": args.train_utterances, "dev": args.dev_utterances, "test": args.test_utterances}
    corpus.mkdir(parents=True)
    marker.write_text(json.dumps({"params": params, "complete": False}) + "\n")

    cache: dict[Path, np.ndarray] = {}
    sources, speaker_rows = [], []
    for split in ("train", "dev", "test"):
        rng = random.Random(f"{args.seed}/{split}")  # str seeds hash with SHA-512: the same in every run
        decks = {s: Deck(pool, rng) for s, pool in pools[split].items()}
        max_digits = (args.train_max_digits or args.max_digits) if split == "train" else args.max_digits
        plan = plan_split(decks, counts[split], max_digits, rng)
        noise_rng = np.random.default_rng([args.seed, list(CHAPTERS).index(split)])
        lines: dict[Path, list[str]] = defaultdict(list)
        for speaker, chosen in plan:
            spk, chapter = speaker_id(speaker), CHAPTERS[split]
            folder = corpus / split / spk / chapter
            folder.mkdir(parents=True, exist_ok=True)
            transcript = folder / f"{spk}-{chapter}.trans.txt"
            utt_id = f"{spk}-{chapter}-{len(lines[transcript]):04d}"
            wave = assemble(chosen, cache, noise_rng, augment=args.augment and split == "train")
            sf.write(folder / f"{utt_id}.flac", wave.numpy(), TARGET_RATE, subtype="PCM_16")
            lines[transcript].append(f"{utt_id} {' '.join(WORDS[r.digit] for r in chosen)}")
            sources.append(f"{utt_id}\t{' '.join(r.path.name for r in chosen)}")
        for transcript, content in lines.items():
            transcript.write_text("\n".join(content) + "\n")
        speaker_rows += [f"{speaker_id(s)}\t{s}\t{split}" for s in sorted(pools[split])]
        used = sum(len(chosen) for _, chosen in plan)
        print(f"{split}: {len(plan)} utterances, {used} digits, speakers {', '.join(sorted(pools[split]))}")

    (out / "LICENSE-FSDD.txt").write_text(LICENSE_TEXT)
    (out / "SPEAKERS.tsv").write_text("id\tfsdd_name\tsplit\n" + "\n".join(speaker_rows) + "\n")
    (out / "sources.tsv").write_text("id\trecordings\n" + "\n".join(sources) + "\n")
    for split in ("train", "dev", "test"):
        (corpus / split / ".complete").write_text("")  # what `asr prepare` takes as "whole"
    marker.write_text(json.dumps({"params": params, "complete": True}) + "\n")
    print(f"corpus written to {corpus}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fsdd", required=True, help="FSDD 'recordings' folder ({digit}_{speaker}_{index}.wav)")
    parser.add_argument("--out", required=True, help="corpus root (LibriSpeech/ is written inside)")
    parser.add_argument("--test-speaker", default="george", help="held-out speaker for the test split")
    parser.add_argument("--speakers", default=",".join(DEFAULT_SPEAKERS), help="FSDD speakers to use")
    parser.add_argument("--train-utterances", type=int, default=4000)
    parser.add_argument("--dev-utterances", type=int, default=150)
    parser.add_argument("--test-utterances", type=int, default=200)
    parser.add_argument("--dev-indices", type=int, default=5, help="recordings with index < N go to dev")
    parser.add_argument("--max-index", type=int, default=50, help="use only recordings with index < N")
    parser.add_argument("--max-digits", type=int, default=7, help="digits per utterance: 1 to N")
    parser.add_argument("--train-max-digits", type=int, default=0,
                        help="digits per training utterance: 1 to N (default: --max-digits)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                        help="give each training utterance a random channel (EQ, gain) and noise level")
    build(parser.parse_args())


if __name__ == "__main__":
    main()
