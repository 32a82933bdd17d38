"""recipes/stages.sh (a stage reruns when its inputs or options change) and
recipes/librispeech/run.sh --dry-run (a sane schedule for every config on 1, 4 and 8 GPUs)."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from asr.data.manifest import Utterance, write_manifest

REPO = Path(__file__).parents[2]


def _stage(work: Path, *command: str) -> str:
    script = f'stage=0; stop_stage=100; work="{work}"; source "{REPO}/recipes/stages.sh"; run_stage 3 "count" {" ".join(command)}'
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return result.stdout


def test_a_stage_reruns_when_its_config_or_options_change_and_only_then(tmp_path):
    config, log = tmp_path / "config.yaml", tmp_path / "runs"
    config.write_text("train: {lr: 1.0e-3}\n")
    count = f"bash -c 'echo run >> {log}' _"  # a stage whose runs we can count
    assert "=== stage 3: count" in _stage(tmp_path, count, str(config))
    assert "skipped" in _stage(tmp_path, count, str(config))
    config.write_text("train: {lr: 2.0e-3}\n")  # the file's contents changed, not its name
    out = _stage(tmp_path, count, str(config))
    assert "its inputs or options changed since it was done; running it again" in out
    assert "skipped" in _stage(tmp_path, count, str(config))
    assert "running it again" in _stage(tmp_path, count, str(config), "--beam", "20")  # an option
    assert "running it again" in _stage(tmp_path, count, f"--set=data.file={config}", "x")
    config.write_text("train: {lr: 3.0e-3}\n")  # a file given after "=" counts too
    assert "running it again" in _stage(tmp_path, count, f"--set=data.file={config}", "x")
    assert log.read_text().count("run") == 5


def _fake_manifest(path: Path, utterances: int, hours: float) -> None:
    """LibriSpeech-like durations (1.3-24.5 s, mean 12.7 s) adding up to ``hours``; no audio."""
    rng = random.Random(0)
    durations = [min(24.5, max(1.3, rng.gauss(12.7, 3.5))) for _ in range(utterances)]
    scale = hours * 3600 / sum(durations)
    write_manifest(
        (Utterance(f"u{i}", f"/none/{i}.flac", d * scale, 16000, "1", "1", "A") for i, d in enumerate(durations)),
        path,
    )


@pytest.mark.slow
def test_dry_run_prints_a_sane_schedule_for_every_config_on_1_4_and_8_gpus(tmp_path):
    manifests = tmp_path / "manifests"
    _fake_manifest(manifests / "train_100h.jsonl", 28539, 100.6)  # train-clean-100's size
    _fake_manifest(manifests / "train_960h.jsonl", 281241, 961.0)
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "300"}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    result = subprocess.run(
        ["bash", str(REPO / "recipes/librispeech/run.sh"), "--dry-run", "--work", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    blocks = result.stdout.split("=== ")[1:]
    names = [block.splitlines()[0] for block in blocks]
    assert names == [f"{c} on {n} GPU(s)" for c in ("transformer_100h", "transformer_960h", "conformer_100h", "conformer_960h") for n in (1, 4, 8)]
    totals: dict[str, set[int]] = {}
    for block in blocks:
        name = block.split(" on ")[0]
        text = " ".join(block.split())
        update = float(re.search(r"audio per update: <= (\d+) s", text).group(1))
        total, warmup = (int(x) for x in re.search(r"= (\d+) total; warmup (\d+)", text).groups())
        share = float(re.search(r"warmup \d+ \(([\d.]+)% of the run\)", text).group(1))
        assert 1500 <= update <= 4000  # 25-67 min of audio per update, whatever the GPUs
        assert 40_000 <= total <= 150_000 and share < 35.0  # warmup ends well inside the run
        totals.setdefault(name, set()).add(total)
    # The same updates on 1, 4 and 8 GPUs, within the few batches the rank split adds.
    for name, values in totals.items():
        assert max(values) <= 1.02 * min(values), (name, values)
