"""asr.decode.budget and asr.memory: the decoding memory estimate and the refusal."""

import pytest

from asr.config import ExperimentConfig
from asr.decode.budget import check_decode_memory, decode_bytes
from asr.decode.options import DecodeOptions
from asr.memory import MemoryBudgetError, available_bytes

CONFIG = ExperimentConfig()
TEN_SECONDS = 160000


def test_the_estimate_grows_with_batch_beam_and_length():
    base = decode_bytes(CONFIG, 5000, DecodeOptions(beam=10, batch_size=8), 8, TEN_SECONDS)
    assert decode_bytes(CONFIG, 5000, DecodeOptions(beam=10), 16, TEN_SECONDS) > 1.9 * base
    assert decode_bytes(CONFIG, 5000, DecodeOptions(beam=20), 8, TEN_SECONDS) > 1.5 * base  # the search part: beam^2 in joint CTC
    assert decode_bytes(CONFIG, 5000, DecodeOptions(beam=10), 8, 2 * TEN_SECONDS) > 1.9 * base  # at least linear in T
    greedy = decode_bytes(CONFIG, 5000, DecodeOptions(method="ctc_greedy", beam=10), 8, TEN_SECONDS)
    assert greedy < base


def test_ordinary_decoding_fits_and_an_absurd_one_is_refused():
    # transformer_100h-sized, batch 8, beam 10, 10 s: the bound (hypotheses as long as the input)
    # is about 1.5 GB, the search's usual peak a third of that
    check_decode_memory(CONFIG, 5000, DecodeOptions(beam=10), 8, TEN_SECONDS)
    assert decode_bytes(CONFIG, 5000, DecodeOptions(beam=10), 8, TEN_SECONDS) < 2 * 2**30
    with pytest.raises(MemoryBudgetError, match=r"joint_beam decoding of a batch of 1024 \(beam 200.*lower --batch-size or --beam"):
        check_decode_memory(CONFIG, 5000, DecodeOptions(beam=200, batch_size=1024), 1024, 60 * TEN_SECONDS)


def test_available_memory_respects_the_address_space_limit():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    free = available_bytes()
    assert free > 0
    resource.setrlimit(resource.RLIMIT_AS, (free + 2**40 if soft == resource.RLIM_INFINITY else soft, hard))
    try:
        assert available_bytes() <= free + 2**40
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
