import math
import random

import pytest
import soundfile as sf
import torch

from asr.data.batching import DurationBatchSampler
from asr.data.dataset import SpeechDataset, collate
from asr.data.manifest import Utterance, write_manifest
from asr.data.manifest import manifest_texts
from asr.text.tokenizer import train_tokenizer

_rng = random.Random(0)
DURATIONS = [_rng.uniform(1.0, 20.0) for _ in range(257)]
BUDGET = 60.0


def sampler(world_size: int = 1, rank: int = 0, epoch: int = 0, **kwargs) -> DurationBatchSampler:
    kwargs = {"seed": 11, "bucket_size": 20, **kwargs}
    s = DurationBatchSampler(DURATIONS, BUDGET, rank=rank, world_size=world_size, **kwargs)
    s.set_epoch(epoch)
    return s


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("epoch", [0, 1])
def test_every_utterance_once_per_epoch_and_equal_counts(world_size, epoch):
    shares = [list(sampler(world_size, rank, epoch)) for rank in range(world_size)]
    used = [i for share in shares for batch in share for i in batch]
    assert sorted(used) == list(range(len(DURATIONS)))
    assert len({len(share) for share in shares}) == 1
    for rank in range(world_size):
        assert len(sampler(world_size, rank, epoch)) == len(shares[rank])


def test_equal_counts_by_splitting_when_batches_do_not_divide():
    for world_size in (2, 3, 4, 5, 7):
        total = len(sampler(world_size).epoch_batches(0))
        assert total % world_size == 0
    assert len(sampler(1).epoch_batches(0)) % 7 != 0  # so some world sizes above needed splits


def test_batches_respect_budget_and_group_similar_lengths():
    batches = list(sampler())
    assert all(sum(DURATIONS[i] for i in b) <= BUDGET for b in batches)
    # batches are full: greedy packing leaves at most one utterance's worth of slack
    assert sum(DURATIONS) / (len(batches) * BUDGET) > 0.75
    # bucketing by duration keeps padding small compared with random batches
    padded = sum(max(DURATIONS[i] for i in b) * len(b) for b in batches)
    assert sum(DURATIONS) / padded > 0.8


def test_oversize_utterance_forms_its_own_batch():
    durations = [5.0, 100.0, 5.0, 5.0, 30.0]
    batches = list(DurationBatchSampler(durations, 20.0, seed=0))
    assert [1] in batches and [4] in batches
    assert sorted(i for b in batches for i in b) == list(range(5))


def test_same_epoch_same_batches_on_every_rank_and_run():
    first = sampler(3, rank=0, epoch=4).epoch_batches(4)
    assert sampler(3, rank=2, epoch=4).epoch_batches(4) == first  # computed locally by each rank
    assert list(sampler(3, rank=1, epoch=4)) == first[1::3]


def test_epochs_differ_in_order_and_content():
    epoch0, epoch1 = sampler(epoch=0).epoch_batches(0), sampler(epoch=1).epoch_batches(1)
    assert epoch0 != epoch1
    contents = [{tuple(sorted(b)) for b in batches} for batches in (epoch0, epoch1)]
    assert contents[0] != contents[1]  # not just reordered
    assert sampler(seed=12).epoch_batches(0) != epoch0


def test_no_shuffle_goes_from_short_to_long_and_is_fixed():
    batches = list(sampler(shuffle=False, epoch=3))
    assert batches == list(sampler(shuffle=False, epoch=0))
    flat = [i for b in batches for i in b]
    assert flat == sorted(range(len(DURATIONS)), key=DURATIONS.__getitem__)


def test_skip_resumes_at_the_remaining_batches():
    s = sampler(2, rank=1, epoch=5)
    full = list(s)
    s.skip(4)
    assert len(s) == len(full) - 4
    assert list(s) == full[4:]
    s.set_epoch(6)  # a new epoch starts from its first batch again
    assert len(s) == len(sampler(2, rank=1, epoch=6))


def test_too_few_utterances_for_the_ranks_is_an_error():
    with pytest.raises(ValueError, match="3 ranks"):
        len(DurationBatchSampler([1.0, 1.0], 10.0, seed=0, world_size=3))
    with pytest.raises(ValueError, match="rank"):
        DurationBatchSampler([1.0], 10.0, seed=0, rank=2, world_size=2)


def test_dataloader_with_workers_over_speech_dataset(tmp_path):
    words = "ALPHA BRAVO CHARLIE DELTA ECHO FOXTROT GOLF HOTEL INDIA JULIET".split()
    utterances = []
    for i in range(24):
        seconds = 0.2 + 0.05 * (i % 7)
        t = torch.arange(int(seconds * 16000)) / 16000
        path = tmp_path / f"u{i}.wav"
        sf.write(path, (0.3 * torch.sin(2 * math.pi * (200 + 20 * i) * t)).numpy(), 16000)
        text = " ".join(words[(i + k) % len(words)] for k in range(3))
        utterances.append(Utterance(f"u{i}", str(path), seconds, 16000, "s", "c", text))
    write_manifest(utterances, tmp_path / "train.jsonl")
    tokenizer = train_tokenizer(manifest_texts([tmp_path / "train.jsonl"]), tmp_path / "tok", vocab_size=40)
    dataset = SpeechDataset(utterances, tokenizer, sample_rate=16000)
    durations = [u.duration for u in utterances]
    batch_sampler = DurationBatchSampler(durations, 1.0, seed=1, bucket_size=5)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=batch_sampler, num_workers=2, collate_fn=collate
    )
    seen = []
    for batch, indices in zip(loader, batch_sampler):
        assert batch.ids == [utterances[i].id for i in indices]
        assert batch.wave_lengths.tolist() == [int(utterances[i].duration * 16000) for i in indices]
        for row, i in enumerate(indices):
            tokens = batch.tokens[row, : batch.token_lengths[row]].tolist()
            assert tokens == tokenizer.encode(utterances[i].text)
        seen += batch.ids
    assert len(seen) == 24 and sorted(seen) == sorted(u.id for u in utterances)
