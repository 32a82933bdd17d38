"""The precision guard: bf16 on a CPU without native bf16 runs fp32, says so once, and logs it."""

from __future__ import annotations

import json

import pytest
import torch
from rich.console import Console

from asr import experiment
from asr.config import load_config
from asr import precision
from asr.train.loop import train
from toy import toy_overrides


def test_native_bf16_is_read_from_the_capability_or_the_cpu_flags(tmp_path):
    assert precision.has_native_bf16("AVX512", {"avx512f", "avx512_bf16"})
    assert precision.has_native_bf16("AVX512", {"amx_bf16", "amx_tile"})
    assert precision.has_native_bf16("AMX", set())
    assert not precision.has_native_bf16("AVX2", {"avx2", "fma"})
    assert not precision.has_native_bf16("AVX512", {"avx512f", "avx512bw"})
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU 9000\nflags\t\t: fpu avx2 avx512_bf16\n")
    assert precision.cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16"}
    assert precision.cpu_model(cpuinfo) == "Some CPU 9000"
    assert precision.cpu_flags(tmp_path / "absent") == set()


def test_resolve_precision():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert precision.resolve_precision("bf16", cpu, native_bf16=False).used == "fp32"
    assert precision.resolve_precision("bf16", cpu, native_bf16=True).used == "bf16"
    assert precision.resolve_precision("bf16", cuda, native_bf16=False).used == "bf16"  # GPUs: untouched
    assert precision.resolve_precision("fp32", cpu, native_bf16=False).reason == ""
    with pytest.raises(precision.PrecisionError, match="fp16 needs a CUDA device"):
        precision.resolve_precision("fp16", cpu)


@pytest.mark.parametrize("native", [False, True])
def test_a_bf16_cpu_run_without_native_bf16_runs_fp32_and_says_so(toy_corpus, tmp_path, monkeypatch, native):
    monkeypatch.setattr(precision, "has_native_bf16", lambda: native)
    console = Console(record=True, width=300)
    config = load_config("configs/tiny.yaml", toy_overrides(toy_corpus, "train.max_steps=2", "train.precision=bf16"))
    train(config, tmp_path / "exp", device="cpu", console=console)
    warnings = [l for l in console.export_text().splitlines() if "no native bf16" in l]
    assert len(warnings) == (0 if native else 1)  # once, not per step
    (start,) = [json.loads(l) for l in (tmp_path / "exp" / experiment.LOG).read_text().splitlines() if '"start"' in l]
    assert start["precision_requested"] == "bf16"
    assert start["precision"] == ("bf16" if native else "fp32")
    assert ("no native bf16" in start["precision_note"]) == (not native)
