"""asr.data.manifest: strict records, duplicate ids, round trip."""

import json

import pytest

from asr.data.manifest import ManifestError, Utterance, read_manifest, write_manifest

UTT = Utterance("1-2-0000", "/a.flac", 1.5, 16000, "1", "2", "HELLO")


def test_round_trip_and_numeric_speaker_ids(tmp_path):
    path = tmp_path / "m.jsonl"
    write_manifest([UTT], path)
    assert read_manifest(path) == [UTT]
    record = {**json.loads(path.read_text()), "speaker": 1, "chapter": 2, "duration": 2}
    path.write_text(json.dumps(record) + "\n")
    (utt,) = read_manifest(path)
    assert (utt.speaker, utt.chapter, utt.duration) == ("1", "2", 2.0) and isinstance(utt.duration, float)


@pytest.mark.parametrize(
    "change, message",
    [({"duration": None}, "duration must be a number"), ({"duration": "2"}, "duration must be a number"),
     ({"duration": float("nan")}, "duration must be a number"), ({"sample_rate": 0}, "sample_rate must be a positive"),
     ({"text": None}, "text must be a string, got null"), ({"audio": " "}, "audio is empty")],
)  # fmt: skip
def test_wrong_values_name_file_line_and_field(tmp_path, change, message):
    path = tmp_path / "m.jsonl"
    good = json.dumps(UTT.__dict__)
    path.write_text(good.replace("0000", "0001") + "\n" + json.dumps({**UTT.__dict__, **change}) + "\n")
    with pytest.raises(ManifestError, match=f"m.jsonl:2: {message}"):
        read_manifest(path)


def test_duplicate_ids_name_both_lines(tmp_path):
    path = tmp_path / "m.jsonl"
    write_manifest([UTT, Utterance("x", "/b.flac", 1.0, 16000, "1", "2", ""), UTT], path)
    with pytest.raises(ManifestError, match=r"m\.jsonl:3: duplicate id '1-2-0000' \(first at line 1\)"):
        read_manifest(path)
