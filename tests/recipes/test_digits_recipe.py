"""recipes/digits end to end on a few dozen FSDD recordings with a very short training.

The FSDD recordings are taken from $ASR_FSDD, else from ../shared/data/fsdd/recordings next to the
repository (where CI has them). Missing data is a failure, not a skip: this test is the only check
that the recipe still runs.
"""

import json
import re
import subprocess
from pathlib import Path

import pytest
import soundfile as sf

from asr.data.manifest import read_manifest
from tests.support.fsdd import fsdd_recordings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "recipes" / "digits" / "run.sh"
MAKE_CORPUS = REPO / "recipes" / "digits" / "local" / "make_corpus.py"
PYTHON = REPO / ".venv" / "bin" / "python"
WORDS = {"ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"}
TEST_SPEAKER = "yweweler"  # not the recipe's default, so the option is exercised
METHODS = ("attention_greedy", "joint_beam")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("digits")
    cmd = [
        "bash", str(RUN), "--fsdd", str(fsdd_recordings()), "--work", str(work), "--stage", "1",
        "--test-speaker", TEST_SPEAKER, "--utterances", "30", "--eval-utterances", "8",
        "--max-index", "8", "--max-steps", "20",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"run.sh failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return work


def _speaker_names(work: Path) -> dict[str, str]:
    rows = (work / "corpus" / "SPEAKERS.tsv").read_text().splitlines()[1:]
    return {spk: name for spk, name, _ in (row.split("\t") for row in rows)}


def test_corpus_has_the_librispeech_layout_and_digit_transcripts(work: Path):
    root = work / "corpus" / "LibriSpeech"
    for split, count in (("train", 30), ("dev", 8), ("test", 8)):
        flacs = sorted((root / split).glob("*/*/*.flac"))
        transcripts = sorted((root / split).glob("*/*/*.trans.txt"))
        assert len(flacs) == count and transcripts
        lines = {}
        for transcript in transcripts:
            speaker, chapter = transcript.parent.parent.name, transcript.parent.name
            assert speaker.isdigit() and transcript.name == f"{speaker}-{chapter}.trans.txt"
            for line in transcript.read_text().splitlines():
                utt_id, text = line.split(" ", 1)
                assert re.fullmatch(rf"{speaker}-{chapter}-\d{{4}}", utt_id)
                assert 1 <= len(text.split()) <= 7 and set(text.split()) <= WORDS
                lines[utt_id] = text
        assert sorted(lines) == [f.stem for f in flacs]
        for flac in flacs:
            info = sf.info(str(flac))
            assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
            digits = len(lines[flac.stem].split())
            assert 0.1 * digits < info.duration < 1.0 * digits + 0.7  # recordings + pauses


def test_transcripts_match_the_source_recordings(work: Path):
    words = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]
    sources = dict(row.split("\t") for row in (work / "corpus" / "sources.tsv").read_text().splitlines()[1:])
    names = _speaker_names(work)
    for utterance in read_manifest(work / "manifests" / "train.jsonl"):
        recordings = sources[utterance.id].split()
        assert utterance.text == " ".join(words[int(r.split("_")[0])] for r in recordings)
        assert {r.split("_")[1] for r in recordings} == {names[utterance.speaker]}  # one speaker


def test_test_speaker_is_unseen_and_dev_recordings_are_held_out(work: Path):
    names = _speaker_names(work)
    manifests = {s: read_manifest(work / "manifests" / f"{s}.jsonl") for s in ("train", "dev", "test")}
    assert {names[u.speaker] for u in manifests["test"]} == {TEST_SPEAKER}
    assert TEST_SPEAKER not in {names[u.speaker] for u in manifests["train"] + manifests["dev"]}
    assert len({u.speaker for u in manifests["train"]}) == 3
    sources = dict(row.split("\t") for row in (work / "corpus" / "sources.tsv").read_text().splitlines()[1:])
    used = {s: {r for u in manifests[s] for r in sources[u.id].split()} for s in ("train", "dev")}
    assert not used["train"] & used["dev"]
    assert all(int(Path(r).stem.split("_")[2]) < 5 for r in used["dev"])


def test_fsdd_licence_and_attribution_are_written(work: Path):
    text = (work / "corpus" / "LICENSE-FSDD.txt").read_text()
    assert "CC BY-SA 4.0" in text and "github.com/Jakobovski/free-spoken-digit-dataset" in text


def test_decoding_writes_hypotheses_and_wer_for_every_test_utterance(work: Path):
    ids = [u.id for u in read_manifest(work / "manifests" / "test.jsonl")]
    assert (work / "exp" / "checkpoints" / "averaged.pt").is_file()
    for method in METHODS:
        out = work / "exp" / "decode" / f"test-{method}"
        hyp_ids = [line.split("\t")[0] for line in (out / "hyp.txt").read_text().splitlines()]
        assert hyp_ids == ids
        report = json.loads((out / "wer.json").read_text())
        assert 0.0 <= report["wer"]


def test_corpus_is_reproducible(tmp_path: Path):
    def build(out: Path, seed: int) -> dict[str, bytes]:
        cmd = [str(PYTHON), str(MAKE_CORPUS), "--fsdd", str(fsdd_recordings()), "--out", str(out),
               "--train-utterances", "4", "--dev-utterances", "2", "--test-utterances", "2",
               "--max-index", "7", "--seed", str(seed)]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    first = build(tmp_path / "a", 0)
    assert first == build(tmp_path / "b", 0)
    assert first != build(tmp_path / "c", 1)


def test_test_split_does_not_depend_on_how_train_is_drawn(tmp_path: Path):
    """run.sh and run_whisper.sh draw different training splits (4,000 utterances of up to 7
    digits; 1,000 of up to 10) and must still score the same test utterances."""

    def build(out: Path, *train_args: str) -> dict[str, list[str]]:
        cmd = [str(PYTHON), str(MAKE_CORPUS), "--fsdd", str(fsdd_recordings()), "--out", str(out),
               "--dev-utterances", "2", "--test-utterances", "3", "--max-index", "7", *train_args]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        corpus = out / "LibriSpeech"
        return {split: sorted(t.read_text() for t in (corpus / split).rglob("*.trans.txt")) for split in ("train", "dev", "test")}

    few = build(tmp_path / "a", "--train-utterances", "3")
    many = build(tmp_path / "b", "--train-utterances", "12", "--train-max-digits", "10")
    assert few["test"] == many["test"] and few["dev"] == many["dev"]
    assert few["train"] != many["train"]
    lengths = [len(line.split()) - 1 for text in many["train"] for line in text.splitlines()]
    assert 7 < max(lengths) <= 10


@pytest.mark.parametrize("flag", ["--max-digits", "--train-max-digits"])
def test_digits_per_utterance_are_bounded(tmp_path: Path, flag: str):
    """A huge count would build one utterance of that many recordings in memory: refused first."""
    cmd = [str(PYTHON), str(MAKE_CORPUS), "--fsdd", str(fsdd_recordings()), "--out", str(tmp_path / "c"),
           "--max-index", "7", flag, str(10**9)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 1 and "1 to 40" in result.stderr and str(10**9) in result.stderr
    assert not (tmp_path / "c").exists()
