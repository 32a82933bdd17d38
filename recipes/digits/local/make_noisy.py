"""Noisy copies of a test set: white noise and babble at fixed SNRs, deterministic.

Usage:
    .venv/bin/python recipes/digits/local/make_noisy.py --test MANIFEST --babble MANIFEST --out DIR
        --manifests DIR [--conditions white:10,white:0,babble:10,babble:0] [--talkers 4] [--seed 0]

Every utterance of --test is mixed with noise of its own length at each condition's SNR (speech
energy over noise energy, over the utterance, as in training: asr.noise.mix_at_snr):
    white   Gaussian white noise;
    babble  --talkers streams of --babble utterances (the digits recipe: the dev split, the
            training speakers' held-out recordings), each stream random utterances end to end
            at the same level, summed.
The noise of an utterance depends on (--seed, kind, utterance id) alone: the 10 and 0 dB sets
hold the same noise at two levels, and the same arguments give the same files, byte for byte.
A mix that would clip is scaled down as a whole (the SNR stays). Writes 16-bit FLAC under
<out>/<kind><snr>/ and the manifests <manifests>/<test name>-<kind><snr>.jsonl.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import zlib
from pathlib import Path

import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from asr.audio import load_audio  # noqa: E402
from asr.data.manifest import Utterance, read_manifest, write_manifest  # noqa: E402
from asr.noise import BABBLE_JOINS, coloured_noise, mix_at_snr, talker_stream  # noqa: E402

RATE = 16000
PEAK = 0.99


def parse_conditions(text: str) -> list[tuple[str, float]]:
    conditions = []
    for item in text.split(","):
        kind, _, snr = item.partition(":")
        if kind not in ("white", "babble") or not snr:
            raise SystemExit(f"--conditions: {item!r} is not KIND:SNR with KIND white or babble (e.g. babble:10)")
        conditions.append((kind, float(snr)))
    return conditions


def noise_for(kind: str, utt: Utterance, samples: int, babble: list[Utterance], talkers: int, seed: int) -> torch.Tensor:
    """The (samples,) unscaled noise of ``utt`` for ``kind``, from (seed, kind, id) alone."""
    key = f"{seed}:{kind}:{utt.id}"
    generator = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    if kind == "white":
        return coloured_noise(samples, "white", generator)
    rng = random.Random(key)
    load = lambda i: load_audio(babble[i].audio, RATE)[0]  # noqa: E731
    streams = [[rng.randrange(len(babble)) for _ in range(BABBLE_JOINS)] for _ in range(talkers)]
    return sum(talker_stream(load, stream, samples) for stream in streams)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--babble", type=Path, required=True, help="manifest of the babble talkers' utterances")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--manifests", type=Path, required=True)
    parser.add_argument("--conditions", default="white:10,white:0,babble:10,babble:0")
    parser.add_argument("--talkers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # short tensors: more threads only wait for each other on a busy machine
    conditions = parse_conditions(args.conditions)
    test, babble = read_manifest(args.test), read_manifest(args.babble)
    speakers = {u.speaker for u in test}
    if speakers & {u.speaker for u in babble}:
        raise SystemExit(f"--babble shares speakers with --test ({', '.join(sorted(speakers))}): babble must be others")
    mixed: dict[str, list[Utterance]] = {f"{kind}{snr:g}": [] for kind, snr in conditions}
    for utt in test:
        clean = load_audio(utt.audio, RATE)[0]
        noises = {kind: noise_for(kind, utt, clean.numel(), babble, args.talkers, args.seed) for kind in {k for k, _ in conditions}}
        for kind, snr in conditions:
            name = f"{kind}{snr:g}"
            wave = mix_at_snr(clean, noises[kind], snr)
            wave = wave * min(1.0, PEAK / float(wave.abs().max().clamp(min=1e-9)))
            path = args.out / name / f"{utt.id}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, wave.numpy(), RATE, subtype="PCM_16")
            mixed[name].append(dataclasses.replace(utt, audio=str(path.resolve()), sample_rate=RATE))
    for name, utterances in mixed.items():
        target = args.manifests / f"{args.test.stem}-{name}.jsonl"
        write_manifest(utterances, target)
        print(f"{name}: {len(utterances)} utterances -> {target}")


if __name__ == "__main__":
    main()
