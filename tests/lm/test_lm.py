"""The Transformer LM: cached steps == full recomputation, training (the shared train_step and
loop) lowers perplexity and prefers the training sentences, lm.pt is a verified checkpoint that
rebuilds the LM from its config, batching covers every sentence once, .gz text is read."""

from __future__ import annotations

import dataclasses
import gzip
import random

import pytest
import torch
import yaml
from rich.console import Console

from asr.checkpoint import CheckpointError, content_hash
from asr.config import LMConfig, LMModelConfig, load_lm_config, to_dict
from asr.decode.lm import LMError, LMScorer, load_fusion_lm
from asr.decode.scorers import Selection, next_token_log_probs
from asr.experiment import load_lm
from asr.lm.data import LMData, text_sentences, token_batches
from asr.lm.train import train_lm
from asr.nn.lm import TransformerLM
from asr.text.tokenizer import BLANK_ID, SOS_EOS_ID, load_tokenizer, train_tokenizer
from asr.train.state import Position

QUIET = Console(quiet=True)
SENTENCES = [
    "THE CAT SAT ON THE MAT", "A DOG RAN IN THE PARK", "THE BIRD SANG A SONG", "MY FRIEND READ A BOOK",
    "THE SUN IS HOT TODAY", "WE ATE BREAD AND JAM", "SHE PLAYS THE PIANO", "THE CAR IS RED",
]  # fmt: skip
SHAPE = LMModelConfig(d_model=32, heads=4, layers=2, ff_dim=64, dropout=0.0)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    train_tokenizer(SENTENCES * 3, root / "tok", vocab_size=40)
    return root / "tok"


@pytest.fixture(scope="module")
def trained(tokenizer_dir, tmp_path_factory):
    """An LM trained on SENTENCES by train_lm, from a config file with an lm section."""
    root = tmp_path_factory.mktemp("trained")
    (root / "sentences.txt").write_text("\n".join(SENTENCES) + "\n")
    config = {"lm": {"data": {"tokenizer": str(tokenizer_dir), "text": [str(root / "sentences.txt")], "batch_tokens": 200},
                     "model": {"d_model": 64, "heads": 4, "layers": 2, "ff_dim": 128, "dropout": 0.0},
                     "train": {"epochs": 40, "lr": 3e-3, "warmup_steps": 20, "log_every": 5}}}  # fmt: skip
    (root / "lm.yaml").write_text(yaml.safe_dump(config))
    summary = train_lm(load_lm_config(root / "lm.yaml"), root / "lm", console=QUIET)
    return root / "lm", summary


def _lm(vocab: int = 30, seed: int = 0) -> TransformerLM:
    torch.manual_seed(seed)
    return TransformerLM(LMConfig(model=SHAPE), vocab).eval()


def test_cached_steps_give_the_same_logits_as_the_whole_prefix_for_a_batch():
    lm = _lm()
    tokens = torch.randint(3, 30, (3, 7))
    tokens[:, 0] = SOS_EOS_ID
    full = lm(tokens)  # (3, 7, V)
    cache = lm.init_cache(torch.zeros(3, 1, 32), torch.ones(3, dtype=torch.long), capacity=2)  # grows twice
    for t in range(7):
        logits, cache = lm.step(tokens[:, t], cache)
        torch.testing.assert_close(logits, full[:, t], atol=1e-5, rtol=1e-5)
    assert cache.steps == 7 and cache.self_kv.shape[0] == 8  # one preallocated buffer, doubled when full
    # Reordering rows of the cache reorders the hypotheses, nothing else.
    rows = torch.tensor([2, 2, 0])
    again, _ = lm.step(torch.tensor([5, 5, 5]), cache)
    step_after, _ = lm.step(torch.tensor([5, 5, 5]), cache.select_hypotheses(rows))
    torch.testing.assert_close(step_after, again[rows])


def test_the_scorer_scores_whole_prefixes_from_the_cache_and_never_proposes_blank():
    lm = _lm()
    scorer = LMScorer(lm, capacity=1)
    state = scorer.init(torch.zeros(2, 4, 32), torch.tensor([4, 3]), group=2)
    path = torch.tensor([[7, 9, 4], [3, 3, 8], [5, 6, 7], [9, 9, 9]])  # one row per hypothesis
    for t in range(path.shape[1]):
        scores = scorer.score(state, None)
        assert scores.tokens[:, BLANK_ID].isneginf().all()
        state = scorer.select(scores.state, Selection(torch.arange(4), path[:, t], path[:, t]))
    inputs = torch.cat([torch.full((4, 1), SOS_EOS_ID), path], dim=1)
    full = next_token_log_probs(lm(inputs))[:, :-1].gather(2, path[:, :, None]).sum(dim=(1, 2))
    torch.testing.assert_close(state.total, full, atol=1e-4, rtol=1e-4)
    kept = scorer.select_utterances(state, torch.tensor([1]))
    torch.testing.assert_close(kept.total, full[2:])


def test_training_lowers_perplexity_and_prefers_the_training_sentences(trained):
    lm_dir, summary = trained
    epochs = [r for r in map(yaml.safe_load, (lm_dir / "log.jsonl").read_text().splitlines()) if r["event"] == "epoch"]
    assert len(epochs) == 40 and epochs[0]["loss"] > 3.0 and summary.loss < 0.5  # log(40) = 3.7 at the start
    lm, tokenizer = load_lm(lm_dir)

    @torch.no_grad()
    def log_prob(sentence: str) -> float:
        ids = tokenizer.encode(sentence)
        log_probs = next_token_log_probs(lm(torch.tensor([[SOS_EOS_ID, *ids]])))[0]  # (L+1, V)
        return float(log_probs.gather(1, torch.tensor([*ids, SOS_EOS_ID])[:, None]).sum())

    for sentence in SENTENCES[:4]:
        words = sentence.split()
        assert log_prob(sentence) > log_prob(" ".join(words[1:] + words[:1])) + 2.0


def test_lm_pt_holds_the_resolved_config_and_is_verified(trained, tmp_path):
    lm_dir, summary = trained
    lm, _ = load_lm(lm_dir)
    assert lm.config == summary.model.config == load_lm_config(lm_dir / "config.yaml")
    assert (lm.config.model.d_model, lm.config.train.epochs) == (64, 40)
    for name, param in summary.model.state_dict().items():
        assert torch.equal(lm.state_dict()[name], param), name
    state = torch.load(lm_dir / "lm.pt", weights_only=True)
    assert state["config"] == to_dict(lm.config) and state["vocab_size"] == lm.vocab_size
    copy = tmp_path / "copy"
    (copy / "tokenizer").mkdir(parents=True)
    for path in (lm_dir / "tokenizer").iterdir():
        (copy / "tokenizer" / path.name).write_bytes(path.read_bytes())
    state["model"]["output.bias"][0] += 1.0  # one changed weight
    torch.save(state, copy / "lm.pt")
    with pytest.raises(CheckpointError, match="do not match the checkpoint's hash"):
        load_lm(copy)
    old = {"config": dataclasses.asdict(SHAPE) | {"vocab_size": 40}, "model": state["model"], "options": {}}
    torch.save(old, copy / "lm.pt")  # what asr/lm/train.py wrote before LMs used asr.checkpoint
    with pytest.raises(CheckpointError, match=f"{copy / 'lm.pt'}: an LM in the format of older asr versions"):
        load_lm(copy)
    del old["options"]
    torch.save({**old, "sha256": content_hash(old)}, copy / "lm.pt")
    with pytest.raises(CheckpointError, match="not a language model, or its config is unusable"):
        load_lm(copy)


def test_fusion_needs_the_recogniser_s_own_tokenizer(trained, tokenizer_dir, tmp_path):
    lm_dir, _ = trained
    exp = tmp_path / "exp"
    (exp / "tokenizer").mkdir(parents=True)
    for path in tokenizer_dir.iterdir():  # as `asr train` copies it
        (exp / "tokenizer" / path.name).write_bytes(path.read_bytes())
    assert load_fusion_lm(lm_dir, exp).vocab_size == load_tokenizer(tokenizer_dir).vocab_size
    (exp / "tokenizer" / "tokenizer.model").write_bytes(b"another tokenizer")
    with pytest.raises(LMError, match="trained on another tokenizer"):
        load_fusion_lm(lm_dir, exp)


def test_an_epoch_s_batches_depend_on_seed_and_epoch_only_and_resume_where_they_stopped(tokenizer_dir, tmp_path):
    (tmp_path / "a.txt").write_text("\n".join(f"{a} {b}" for a in SENTENCES for b in SENTENCES) + "\n")
    config = load_lm_config(None, [f"lm.data.text=[{tmp_path / 'a.txt'}]", "lm.data.batch_tokens=120", "lm.data.chunk=20"])
    data = LMData(config, load_tokenizer(tokenizer_dir))

    def units(batches):
        return [b.tokens.tolist() for b in batches]

    first, again, second = units(data.batches(0)), units(data.batches(0)), units(data.batches(1))
    assert first == again and first != second and len(first) == len(second) == data.epoch_batches(5)
    rest = [units(group) for group in data.updates(Position(epoch=1, batch_in_epoch=3), accum_steps=2)]
    assert sum(rest, []) == second[3:] and all(len(group) == 2 for group in rest[:-1])
    with pytest.raises(ValueError, match="lm.data.text"):
        LMData(LMConfig(), load_tokenizer(tokenizer_dir))


def test_batches_hold_every_sentence_once_within_the_budget(tokenizer_dir):
    tokenizer = load_tokenizer(tokenizer_dir)
    sentences = [f"{a} {b}" for a in SENTENCES for b in SENTENCES]  # 64 sentences
    seen = []
    for tokens, lengths in token_batches(iter(sentences), tokenizer, 120, random.Random(0), chunk=20):
        assert tokens.shape[0] * (tokens.shape[1] + 1) <= 120 or tokens.shape[0] == 1
        seen += [tuple(row[:n].tolist()) for row, n in zip(tokens, lengths)]
    assert sorted(seen) == sorted(tuple(tokenizer.encode(s)) for s in sentences)


def test_gzipped_text_is_read_and_normalised(tmp_path):
    path = tmp_path / "corpus.txt.gz"
    with gzip.open(path, "wt") as f:
        f.write("the cat, sat.\n\n  A DOG  \n")
    assert list(text_sentences(path)) == ["THE CAT SAT", "A DOG"]
    with pytest.raises(FileNotFoundError, match="LM text not found"):
        list(text_sentences(tmp_path / "missing.txt"))


def test_max_steps_stops_mid_epoch_with_accumulation_and_still_writes_lm_pt(tokenizer_dir, tmp_path):
    (tmp_path / "a.txt").write_text("\n".join(SENTENCES * 4) + "\n")
    overrides = [f"lm.data.tokenizer={tokenizer_dir}", f"lm.data.text=[{tmp_path / 'a.txt'}]", "lm.data.batch_tokens=60",
                 "lm.model.d_model=32", "lm.model.layers=1", "lm.train.accum_steps=2", "lm.train.max_steps=3"]  # fmt: skip
    summary = train_lm(load_lm_config(None, overrides), tmp_path / "lm", console=QUIET)
    records = [yaml.safe_load(line) for line in (tmp_path / "lm" / "log.jsonl").read_text().splitlines()]
    assert records[0]["batches_per_epoch"] > 6  # 3 updates of 2 batches end inside the first epoch
    assert summary.updates == 3 and [r["event"] for r in records] == ["start", "train", "done"]
    assert 2.0 < summary.loss < 5.0  # near log(40) = 3.7 nats per unit: barely trained
    assert load_lm(tmp_path / "lm")[0].config.train.accum_steps == 2
