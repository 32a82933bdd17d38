"""ASRModel as a whole: padding invariance from waveforms, and the joint CTC/attention loss."""

import torch
import torch.nn.functional as F

from asr.text.tokenizer import SOS_EOS_ID

VOCAB = 13


def batch(lengths=(8000, 3300, 5600), token_lengths=(5, 2, 4)):
    waves = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        waves[i, :n] = 0.1 * torch.randn(n)
    tokens = torch.zeros(len(lengths), max(token_lengths), dtype=torch.long)
    for i, n in enumerate(token_lengths):
        tokens[i, :n] = torch.randint(3, VOCAB, (n,))
    return waves, torch.tensor(lengths), tokens, torch.tensor(token_lengths)


def test_encoding_from_waveforms_is_the_same_alone_and_padded(tiny_model):
    model = tiny_model(VOCAB, peaked=False)
    waves, lengths, _, _ = batch()
    encoded, enc_lengths = model.encode(waves, lengths)
    for i in range(len(lengths)):
        alone, alone_lengths = model.encode(waves[i : i + 1, : lengths[i]], lengths[i : i + 1])
        n = int(alone_lengths[0])
        assert n == int(enc_lengths[i])
        torch.testing.assert_close(encoded[i, :n], alone[0], atol=1e-4, rtol=1e-4)


def test_batch_losses_are_the_mean_of_per_utterance_losses(tiny_model):
    model = tiny_model(VOCAB, peaked=False)
    waves, lengths, tokens, token_lengths = batch()
    together = model(waves, lengths, tokens, token_lengths)
    alone = [
        model(waves[i : i + 1, : lengths[i]], lengths[i : i + 1], tokens[i : i + 1, : token_lengths[i]], token_lengths[i : i + 1])
        for i in range(3)
    ]
    torch.testing.assert_close(together.ctc, sum(a.ctc for a in alone) / 3, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(together.attention, sum(a.attention for a in alone) / 3, atol=1e-4, rtol=1e-4)
    assert together.tokens == int(token_lengths.sum()) + 3  # every token plus one <eos> each


def test_loss_is_the_weighted_sum_of_ctc_and_cross_entropy(tiny_model):
    model = tiny_model(VOCAB, peaked=False, ctc_weight=0.25, label_smoothing=0.0)
    waves, lengths, tokens, token_lengths = batch(lengths=(6000,), token_lengths=(4,))
    losses = model(waves, lengths, tokens, token_lengths)
    torch.testing.assert_close(losses.loss, 0.25 * losses.ctc + 0.75 * losses.attention)

    encoded, enc_lengths = model.encode(waves, lengths)
    sos = torch.tensor([[SOS_EOS_ID]])
    logits, _ = model.decoder(torch.cat([sos, tokens], 1), encoded, enc_lengths)
    targets = torch.cat([tokens, sos], 1)[0]  # the tokens, then <eos>
    expected_ce = F.cross_entropy(logits[0], targets, reduction="sum")
    torch.testing.assert_close(losses.attention, expected_ce, atol=1e-4, rtol=1e-4)
    log_probs = model.ctc_log_probs(encoded).transpose(0, 1)
    expected_ctc = F.ctc_loss(log_probs, tokens, enc_lengths, token_lengths, reduction="sum")
    torch.testing.assert_close(losses.ctc, expected_ctc, atol=1e-4, rtol=1e-4)


def test_padded_batch_losses_with_label_smoothing_match_the_losses_on_transposed_layouts(tiny_model):
    """The loss reads (T', B, V) log-probs and (B*(U+1), V) logits; the same as on (B, V, U+1) logits
    and a transposed view of (B, T', V) log-probs (how it was first written)."""
    model = tiny_model(VOCAB, peaked=False, ctc_weight=0.3, label_smoothing=0.1)
    waves, lengths, tokens, token_lengths = batch()
    losses = model(waves, lengths, tokens, token_lengths)
    encoded, enc_lengths = model.encode(waves, lengths)
    log_probs = model.ctc_log_probs(encoded).transpose(0, 1)
    expected_ctc = F.ctc_loss(log_probs, tokens, enc_lengths, token_lengths, reduction="sum", zero_infinity=True) / 3
    real = torch.arange(tokens.shape[1]) < token_lengths[:, None]
    sos = torch.full((3, 1), SOS_EOS_ID)
    logits, _ = model.decoder(torch.cat([sos, tokens.masked_fill(~real, 0)], 1), encoded, enc_lengths)
    targets = torch.cat([tokens.masked_fill(~real, -100), torch.full((3, 1), -100)], 1)
    targets[torch.arange(3), token_lengths] = SOS_EOS_ID
    expected_ce = F.cross_entropy(logits.transpose(1, 2), targets, label_smoothing=0.1, reduction="sum") / 3
    torch.testing.assert_close(losses.ctc, expected_ctc, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(losses.attention, expected_ce, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(losses.loss, 0.3 * expected_ctc + 0.7 * expected_ce, atol=1e-5, rtol=1e-5)


def test_a_few_steps_overfit_one_batch(tiny_model):
    model = tiny_model(VOCAB, peaked=False, spec_augment=False, label_smoothing=0.0).train()
    waves, lengths, tokens, token_lengths = batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        loss = model(waves, lengths, tokens, token_lengths).loss
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first
