"""asr.data.screen: unusable training audio is left out, listed, and the list reused."""

import numpy as np
import soundfile as sf

from asr.audio import NONFINITE, SILENT
from asr.data.manifest import Utterance, write_manifest
from asr.data.screen import usable_utterances


def _utt(tmp_path, name: str, wave: np.ndarray, text: str = "HELLO") -> Utterance:
    path = tmp_path / f"{name}.wav"
    sf.write(path, wave, 16000, subtype="FLOAT")
    return Utterance(name, str(path), len(wave) / 16000, 16000, "s", "c", text)


def test_bad_audio_is_left_out_and_listed_then_the_list_is_reused(tmp_path):
    tone = (0.3 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    nan = tone.copy()
    nan[10] = np.nan
    utts = [_utt(tmp_path, "good", tone), _utt(tmp_path, "nan", nan), _utt(tmp_path, "quiet", np.zeros(8000, np.float32)),
            _utt(tmp_path, "quiet-no-text", np.zeros(8000, np.float32), text="")]  # fmt: skip
    (tmp_path / "broken.wav").write_bytes(b"RIFF....not audio")
    utts.append(Utterance("broken", str(tmp_path / "broken.wav"), 1.0, 16000, "s", "c", "HI"))
    manifest, report = tmp_path / "m.jsonl", tmp_path / "rejected.tsv"
    write_manifest(utts, manifest)
    kept = usable_utterances(manifest, report)
    assert [u.id for u in kept] == ["good", "quiet-no-text"]  # silence is fine without words
    rows = [line.split("\t") for line in report.read_text().splitlines()[2:]]
    assert [(r[0], r[2]) for r in rows] == [("nan", NONFINITE), ("quiet", SILENT), ("broken", "unreadable audio")]
    # The list is reused while the manifest is unchanged, even if the audio changed since...
    sf.write(tmp_path / "nan.wav", tone, 16000, subtype="FLOAT")
    assert [u.id for u in usable_utterances(manifest, report)] == ["good", "quiet-no-text"]
    # ...and made again when the manifest changes.
    write_manifest(utts[:2], manifest)
    assert [u.id for u in usable_utterances(manifest, report)] == ["good", "nan"]
