"""Shallow fusion: the LM is one more weighted scorer; its part of each hypothesis's score is the
LM log-probability recomputed over the whole sentence, and a weight of 0 changes nothing."""

from __future__ import annotations

import pytest
import torch

from asr.decode.beam import beam_search
from asr.decode.options import DecodeOptions
from asr.config import LMConfig, LMModelConfig
from asr.decode.scorers import next_token_log_probs
from asr.decode.search import beam_scorers, search_encoded
from asr.nn.lm import TransformerLM
from asr.text.tokenizer import SOS_EOS_ID

VOCAB = 12
LENGTHS = torch.tensor([24, 15, 9])


@pytest.fixture(scope="module")
def setup(tiny_model):
    model = tiny_model(VOCAB, seed=4)
    generator = torch.Generator().manual_seed(3)
    memory = torch.randn(len(LENGTHS), int(LENGTHS.max()), 32, generator=generator)
    memory = memory * (torch.arange(memory.shape[1]) < LENGTHS[:, None])[..., None]
    torch.manual_seed(5)
    lm = TransformerLM(LMConfig(model=LMModelConfig(d_model=32, heads=4, layers=2, ff_dim=64, dropout=0.0)), VOCAB).eval()
    with torch.no_grad():
        lm.output.weight.mul_(4.0)  # a peaked LM: it has opinions
    return model, memory, lm


def _sentence_log_prob(log_probs_of, tokens: list[int]) -> float:
    inputs = torch.tensor([[SOS_EOS_ID, *tokens]])
    targets = torch.tensor([*tokens, SOS_EOS_ID])
    return float(log_probs_of(inputs)[0].gather(1, targets[:, None]).sum())


@pytest.mark.parametrize("method, ctc_weight", [("attention_beam", 0.0), ("joint_beam", 0.3)])
def test_scores_add_the_weighted_lm_log_prob_of_the_whole_sentence(setup, method, ctc_weight):
    model, memory, lm = setup
    options = DecodeOptions(method=method, beam=4, ctc_weight=ctc_weight, lm_weight=0.7)
    with torch.inference_mode():
        scorers = beam_scorers(model, options, LENGTHS, lm)
        assert set(scorers) == ({"decoder", "lm"} if ctc_weight == 0 else {"decoder", "ctc", "lm"})
        results = beam_search(scorers, memory, LENGTHS, options)
        for n, hyps in enumerate(results):
            for hyp in hyps:
                lm_part = _sentence_log_prob(lambda x: next_token_log_probs(lm(x)), hyp.tokens)
                decoder = _sentence_log_prob(
                    lambda x: next_token_log_probs(model.decoder(x, memory[n : n + 1, : LENGTHS[n]], LENGTHS[n : n + 1])[0]),
                    hyp.tokens,
                )
                assert hyp.attention == pytest.approx(decoder, abs=1e-3)
                ctc = hyp.ctc if ctc_weight else 0.0
                expected = (1 - ctc_weight) * decoder + ctc_weight * ctc + 0.7 * lm_part
                assert hyp.score == pytest.approx(expected, abs=1e-3)


def test_an_lm_of_weight_zero_changes_nothing_and_a_weighty_one_changes_the_words(setup):
    model, memory, lm = setup
    with torch.inference_mode():
        plain = search_encoded(model, memory, LENGTHS, DecodeOptions(beam=4))
        zero = search_encoded(model, memory, LENGTHS, DecodeOptions(beam=4, lm_weight=0.0), lm)
        assert [[h.tokens for h in hyps] for hyps in plain] == [[h.tokens for h in hyps] for hyps in zero]
        fused = search_encoded(model, memory, LENGTHS, DecodeOptions(beam=4, lm_weight=2.0), lm)
    best_plain, best_fused = [h[0].tokens for h in plain], [h[0].tokens for h in fused]
    assert best_plain != best_fused

    def lm_score(tokens):
        with torch.no_grad():
            return _sentence_log_prob(lambda x: next_token_log_probs(lm(x)), tokens)

    # What fusion picks, the LM likes better than what the recogniser picked alone.
    assert sum(map(lm_score, best_fused)) > sum(map(lm_score, best_plain))


def test_decoding_imports_nothing_of_the_lm_training_package():
    """Data flows one way: asr.decode scores with asr.nn.lm's model, never reaches into asr.lm."""
    import ast
    from pathlib import Path

    import asr.decode

    found = []
    for path in sorted(Path(asr.decode.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}: {n}" for n in names if n == "asr.lm" or n.startswith("asr.lm.")]
    assert found == []
