"""The Transformer LM: cached steps == full recomputation, training lowers perplexity and
prefers the training sentences, batching covers every sentence once, .gz text is read."""

from __future__ import annotations

import gzip
import random

import pytest
import torch
from rich.console import Console

from asr.lm.data import text_sentences, token_batches
from asr.lm.model import LMConfig, TransformerLM, next_token_log_probs
from asr.lm.train import LMTrainOptions, load_lm, train_lm
from asr.text.tokenizer import SOS_EOS_ID, train_tokenizer
from asr.data.manifest import Utterance, write_manifest

QUIET = Console(quiet=True)
SENTENCES = [
    "THE CAT SAT ON THE MAT", "A DOG RAN IN THE PARK", "THE BIRD SANG A SONG", "MY FRIEND READ A BOOK",
    "THE SUN IS HOT TODAY", "WE ATE BREAD AND JAM", "SHE PLAYS THE PIANO", "THE CAR IS RED",
]  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    utts = [Utterance(f"s-1-{i}", "x.wav", 1.0, 16000, "s", "1", t) for i, t in enumerate(SENTENCES * 3)]
    write_manifest(utts, root / "m.jsonl")
    train_tokenizer([root / "m.jsonl"], root / "tok", vocab_size=40)
    return root / "tok"


def test_cached_steps_give_the_same_log_probs_as_the_whole_prefix():
    torch.manual_seed(0)
    lm = TransformerLM(LMConfig(vocab_size=30, d_model=32, heads=4, layers=2, ff_dim=64)).eval()
    tokens = torch.randint(3, 30, (3, 7))
    tokens[:, 0] = SOS_EOS_ID
    full = lm(tokens)  # (3, 7, V)
    cache = lm.empty_cache(3, tokens.device)
    for t in range(7):
        logits, cache = lm.step(tokens[:, t], cache)
        torch.testing.assert_close(logits, full[:, t], atol=1e-5, rtol=1e-5)
    # Reordering rows of the cache reorders the hypotheses, nothing else.
    rows = torch.tensor([2, 2, 0])
    step_after, _ = lm.step(torch.tensor([5, 5, 5]), cache.select(rows))
    again, _ = lm.step(torch.tensor([5, 5, 5]), cache)
    torch.testing.assert_close(step_after, again[rows])


def test_blank_is_never_a_next_unit():
    assert next_token_log_probs(torch.zeros(2, 5))[:, 0].isneginf().all()


def test_training_lowers_perplexity_and_prefers_the_training_sentences(tokenizer_dir, tmp_path):
    options = LMTrainOptions(epochs=40, batch_tokens=200, lr=3e-3, warmup_steps=20)
    shape = dict(d_model=64, heads=4, layers=2, ff_dim=128, dropout=0.0)
    summary = train_lm(lambda: iter(SENTENCES), tokenizer_dir, tmp_path / "lm", shape, options, console=QUIET)
    log = (tmp_path / "lm" / "log.jsonl").read_text().splitlines()
    assert len(log) == 40 and summary.loss < 0.5  # started near log(40) = 3.7 nats per unit
    lm, tokenizer = load_lm(tmp_path / "lm")

    @torch.no_grad()
    def log_prob(sentence: str) -> float:
        ids = tokenizer.encode(sentence)
        tokens = torch.tensor([[SOS_EOS_ID, *ids]])
        log_probs = next_token_log_probs(lm(tokens))[0]  # (L+1, V)
        targets = torch.tensor([*ids, SOS_EOS_ID])
        return float(log_probs.gather(1, targets[:, None]).sum())

    for sentence in SENTENCES[:4]:
        words = sentence.split()
        shuffled = " ".join(words[1:] + words[:1])
        assert log_prob(sentence) > log_prob(shuffled) + 2.0

    # Fusion needs the recogniser's own tokenizer.
    from asr.lm.scorer import LMError, load_fusion_lm

    exp = tmp_path / "exp"
    (exp / "tokenizer").mkdir(parents=True)
    (exp / "tokenizer" / "tokenizer.model").write_bytes((tokenizer_dir / "tokenizer.model").read_bytes())
    assert load_fusion_lm(tmp_path / "lm", exp).config.vocab_size == tokenizer.vocab_size
    (exp / "tokenizer" / "tokenizer.model").write_bytes(b"another tokenizer")
    with pytest.raises(LMError, match="trained on another tokenizer"):
        load_fusion_lm(tmp_path / "lm", exp)


def test_batches_hold_every_sentence_once_within_the_budget(tokenizer_dir):
    from asr.text.tokenizer import Tokenizer

    tokenizer = Tokenizer(tokenizer_dir)
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
