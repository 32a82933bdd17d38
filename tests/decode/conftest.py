"""What the search tests share: a peaked tiny random model, encoder output for four utterances
of different lengths, the slow references the searches are checked against, and the scorers
of each search."""

import dataclasses
import itertools
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from asr.decode.beam import beam_search
from asr.decode.scorers import Scores, Selection, next_token_log_probs
from asr.decode.search import beam_scorers
from asr.nn.masks import utterance_rows
from asr.text.tokenizer import SOS_EOS_ID

VOCAB = 12
D_MODEL = 32
LENGTHS = torch.tensor([30, 21, 14, 7])


@pytest.fixture(scope="session")
def lengths() -> torch.Tensor:
    return LENGTHS


@pytest.fixture(scope="session")
def model(tiny_model):
    return tiny_model(VOCAB, seed=4)


@pytest.fixture(scope="session")
def memory() -> torch.Tensor:
    """Encoder output (4, 30, D), zero after each utterance's length."""
    generator = torch.Generator().manual_seed(2)
    memory = torch.randn(len(LENGTHS), int(LENGTHS.max()), D_MODEL, generator=generator)
    return memory * (torch.arange(memory.shape[1]) < LENGTHS[:, None])[..., None]


class FullRecomputeScorer:
    """Reference decoder scorer: ``decoder.forward`` over each hypothesis's whole prefix at every
    step, no cache, the encoder output copied to every hypothesis (no folding)."""

    partial = False
    max_token_score = 0.0

    def __init__(self, decoder):
        self.decoder = decoder

    def init(self, memory, memory_lengths, group):
        prefixes = torch.full((memory.shape[0] * group, 1), SOS_EOS_ID, dtype=torch.long)
        total = torch.zeros(prefixes.shape[0])
        return SimpleNamespace(memory=memory, lengths=memory_lengths, group=group, prefixes=prefixes, total=total)

    def score(self, state, candidates):
        logits, _ = self.decoder(
            state.prefixes,
            state.memory.repeat_interleave(state.group, 0),
            state.lengths.repeat_interleave(state.group, 0),
        )
        totals = state.total[:, None] + next_token_log_probs(logits[:, -1])
        tokens = totals if candidates is None else totals.gather(1, candidates)
        return Scores(tokens, totals[:, SOS_EOS_ID], (state, totals))

    def select(self, scored_state, selection: Selection):
        state, totals = scored_state
        prefixes = torch.cat([state.prefixes[selection.rows], selection.tokens[:, None]], dim=1)
        total = totals[selection.rows, selection.tokens]
        return SimpleNamespace(memory=state.memory, lengths=state.lengths, group=state.group, prefixes=prefixes, total=total)

    def select_utterances(self, state, keep):
        rows = utterance_rows(keep, state.group)
        return SimpleNamespace(
            memory=state.memory[keep], lengths=state.lengths[keep], group=state.group,
            prefixes=state.prefixes[rows], total=state.total[rows],
        )  # fmt: skip


@pytest.fixture(scope="session")
def full_recompute_scorer():
    return FullRecomputeScorer


def _scorers(model, options, lengths, joint: bool, decoder=None):
    method = "joint_beam" if joint else "attention_beam"
    scorers = dict(beam_scorers(model, dataclasses.replace(options, method=method), lengths))
    if decoder is not None:
        scorers["decoder"] = (decoder, scorers["decoder"][1])
    return scorers


@pytest.fixture(scope="session")
def scorers_of():
    """(model, options, lengths, joint, decoder=None) -> the {name: (scorer, weight)} of
    attention_beam or joint_beam, optionally with another decoder scorer."""
    return _scorers


@pytest.fixture(scope="session")
def run_beam():
    """(model, memory, lengths, options, joint, decoder=None, extra=None) -> beam search results."""

    def run(model, memory, lengths, options, joint, decoder=None, extra=None):
        scorers = _scorers(model, options, lengths, joint, decoder)
        scorers.update(extra or {})
        with torch.inference_mode():
            return beam_search(scorers, memory, lengths, options)

    return run


@pytest.fixture(scope="session")
def assert_same():
    def check(results_a, results_b):
        def tokens(results):
            return [[h.tokens for h in hyps] for hyps in results]

        assert tokens(results_a) == tokens(results_b)
        for hyps_a, hyps_b in zip(results_a, results_b):
            for a, b in zip(hyps_a, hyps_b):
                assert a.score == pytest.approx(b.score, abs=1e-4)

    return check


@pytest.fixture(scope="session")
def teacher_forced():
    """(model, memory (T, D), length, tokens) -> decoder log P(tokens, <eos>) by one full pass."""

    def score(model, memory, length, tokens) -> float:
        inputs = torch.tensor([[SOS_EOS_ID] + tokens])
        logits, _ = model.decoder(inputs, memory[None, :length], torch.tensor([length]))
        log_probs = next_token_log_probs(logits[0])
        return float(log_probs.gather(1, torch.tensor([tokens + [SOS_EOS_ID]]).T).sum())

    return score


@pytest.fixture(scope="session")
def ctc_log_prob():
    """(model, memory (T, D), length, tokens) -> CTC log P(tokens) by F.ctc_loss."""

    def score(model, memory, length, tokens) -> float:
        log_probs = model.ctc_log_probs(memory[None, :length])  # (1, T, V)
        return -float(
            F.ctc_loss(
                log_probs.transpose(0, 1),
                torch.tensor([tokens or [3]]),  # an empty target still needs a (1, 1) tensor
                torch.tensor([length]),
                torch.tensor([len(tokens)]),
                blank=0,
                reduction="sum",
            )
        )

    return score



def _collapse(path: tuple[int, ...]) -> tuple[int, ...]:
    out, previous = [], None
    for label in path:
        if label != previous and label != 0:
            out.append(label)
        previous = label
    return tuple(out)


@pytest.fixture(scope="session")
def sequence_probs():
    """Brute force over every CTC path of a (T, V) log-prob matrix (blank 0): label sequence ->
    probability."""

    def probs(log_probs: torch.Tensor) -> dict[tuple[int, ...], float]:
        frames, vocab = log_probs.shape
        x = log_probs.double()
        totals: dict[tuple[int, ...], float] = {}
        for path in itertools.product(range(vocab), repeat=frames):
            p = math.exp(sum(x[t, c].item() for t, c in enumerate(path)))
            key = _collapse(path)
            totals[key] = totals.get(key, 0.0) + p
        return totals

    return probs
