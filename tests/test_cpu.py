"""asr.cpu: each CPU speedup computes what the plain torch call computes; the switch
(ASR_CPU_FAST, set_fast, fast) sends every layer to the plain torch call; the library never
changes the allocator by itself."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from asr import cpu
from asr.nn.attention import MultiHeadAttention


# --------------------------------------------------------------------------- few-row linear layers


@pytest.mark.parametrize("rows", [1, 2, 3, cpu.FEW_ROWS, cpu.FEW_ROWS + 1, 40])
@pytest.mark.parametrize("bias", [True, False])
def test_few_rows_equal_f_linear(rows: int, bias: bool):
    torch.manual_seed(rows)
    weight, b = torch.randn(3000, 96), torch.randn(3000) if bias else None
    x = torch.randn(rows, 1, 96)  # (N, 1, D): a decoding step's rows
    out = cpu.linear(x, weight, b)
    assert out.shape == (rows, 1, 3000) and out.is_contiguous()
    torch.testing.assert_close(out, F.linear(x, weight, b), rtol=1e-5, atol=1e-5)


def test_one_row_is_not_mixed_with_the_padding_row():
    weight = torch.randn(500, 8)
    x = torch.randn(1, 8)
    out = cpu.linear(x, weight)
    assert out.shape == (1, 500)
    torch.testing.assert_close(out, x @ weight.t(), rtol=1e-5, atol=1e-5)


def test_linear_keeps_nn_linear_parameters_and_gradients():
    torch.manual_seed(0)
    plain, ours = nn.Linear(16, 32), cpu.Linear(16, 32)
    ours.load_state_dict(plain.state_dict())
    assert list(ours.state_dict()) == ["weight", "bias"]
    x = torch.randn(2, 16, requires_grad=True)  # few rows: the weight @ x.T form
    ours(x).square().sum().backward()
    expected = torch.autograd.grad(plain(x).square().sum(), [x, plain.weight, plain.bias])
    for got, want in zip([x.grad, ours.weight.grad, ours.bias.grad], expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- dropout


def test_keep_mask_keeps_one_minus_p_of_the_elements_independently():
    torch.manual_seed(0)
    keep = cpu.keep_mask(torch.Size([1000, 1000]), 0.1)
    assert keep.dtype == torch.bool and keep.shape == (1000, 1000)
    rate = keep.float().mean().item()
    assert abs(rate - 0.9) < 2e-3  # 6.7 standard deviations of a million draws
    # Neighbours are independent: P(both kept) = 0.81, along rows and down columns.
    assert abs((keep[:, 1:] & keep[:, :-1]).float().mean().item() - 0.81) < 3e-3
    assert abs((keep[1:] & keep[:-1]).float().mean().item() - 0.81) < 3e-3
    assert abs(cpu.keep_mask(torch.Size([200_000]), 0.5).float().mean().item() - 0.5) < 5e-3


def test_the_seed_of_torch_fixes_the_mask_and_successive_masks_differ():
    torch.manual_seed(3)
    first, second = cpu.keep_mask(torch.Size([4096]), 0.3), cpu.keep_mask(torch.Size([4096]), 0.3)
    torch.manual_seed(3)
    assert torch.equal(cpu.keep_mask(torch.Size([4096]), 0.3), first)
    assert not torch.equal(first, second)


def test_dropout_scales_kept_values_like_torch_and_its_gradient_is_the_mask():
    p = 0.1
    x = torch.randn(64, 33, requires_grad=True)
    torch.manual_seed(5)
    out = cpu.dropout(x, p, training=True)
    torch.manual_seed(5)
    mask = cpu.dropout(torch.ones(64, 33), p, training=True)
    scale = torch.ones(()).div_(1 - p)  # what torch's dropout multiplies by: noise.div_(1 - p)
    assert set(mask.unique().tolist()) == {0.0, scale.item()}
    torch.testing.assert_close(out, x * mask, rtol=0, atol=0)
    out.backward(torch.full_like(out, 2.0))
    torch.testing.assert_close(x.grad, 2.0 * mask, rtol=0, atol=0)


def test_dropout_matches_torch_in_distribution():
    torch.manual_seed(1)
    x = torch.randn(400_000)
    ours, torchs = cpu.dropout(x, 0.2, True), F.dropout(x, 0.2, True)
    for stat in (lambda t: (t == 0).float().mean(), lambda t: t.pow(2).mean()):
        assert abs(stat(ours).item() - stat(torchs).item()) < 1e-2


def test_identity_in_eval_and_at_p_zero_and_all_dropped_at_p_one():
    x = torch.randn(5, 7)
    module = cpu.Dropout(0.1).eval()
    assert module(x) is x
    assert cpu.dropout(x, 0.0, training=True) is x
    assert torch.equal(cpu.dropout(x, 1.0, training=True), torch.zeros_like(x))


# --------------------------------------------------------------------------- the allocator


def test_thresholds_are_raised_once_and_kept(monkeypatch):
    calls = []
    monkeypatch.setattr(cpu, "_LIBC", object())  # glibc or not, the logic is the same
    monkeypatch.setattr(cpu, "_kept", False)
    monkeypatch.setattr(cpu, "_mallopt", lambda settings: calls.append(dict(settings)))
    cpu.keep_freed_memory()
    cpu.keep_freed_memory()  # a second command or call: nothing more to do
    assert calls == [cpu.KEEP]


def test_without_glibc_it_changes_nothing(monkeypatch):
    monkeypatch.setattr(cpu, "_LIBC", None)
    monkeypatch.setattr(cpu, "_kept", False)
    monkeypatch.setattr(cpu, "_mallopt", lambda settings: (_ for _ in ()).throw(AssertionError("mallopt without glibc")))
    cpu.keep_freed_memory()
    assert cpu._kept is False


def test_glibc_accepts_the_settings():
    if cpu._LIBC is None:  # then keep_freed_memory is a no-op (the test above)
        assert platform.libc_ver()[0] != "glibc"
        return
    assert all(cpu._LIBC.mallopt(p, v) == 1 for p, v in cpu.KEEP.items())


def test_decoding_through_the_library_leaves_the_allocator_alone(monkeypatch, tiny_model):
    from asr.decode.options import DecodeOptions
    from asr.decode.search import decode_batch

    monkeypatch.setattr(cpu, "_kept", False)
    monkeypatch.setattr(cpu, "_mallopt", lambda settings: (_ for _ in ()).throw(AssertionError("mallopt by the library")))
    decode_batch(tiny_model(12), torch.randn(2, 8000), torch.tensor([8000, 5000]), DecodeOptions(method="joint_beam", beam=3))
    assert cpu._kept is False


def test_with_the_switch_off_keep_freed_memory_changes_nothing(monkeypatch):
    monkeypatch.setattr(cpu, "_LIBC", object())
    monkeypatch.setattr(cpu, "_kept", False)
    monkeypatch.setattr(cpu, "_mallopt", lambda settings: (_ for _ in ()).throw(AssertionError("mallopt with the switch off")))
    with cpu.fast(False):
        assert cpu.keep_freed_memory() is False


# --------------------------------------------------------------------------- the switch


@pytest.mark.parametrize("rows", [1, 2, cpu.FEW_ROWS])
def test_switched_off_linear_and_dropout_are_torchs_own_calls(rows: int):
    weight, bias, x = torch.randn(700, 24), torch.randn(700), torch.randn(rows, 24)
    with cpu.fast(False):
        assert torch.equal(cpu.linear(x, weight, bias), F.linear(x, weight, bias))  # bit for bit: the same kernel
        torch.manual_seed(4)
        dropped = cpu.Dropout(0.3).train()(x)
    torch.manual_seed(4)
    assert torch.equal(dropped, F.dropout(x, 0.3, True))
    torch.testing.assert_close(cpu.linear(x, weight, bias), F.linear(x, weight, bias), rtol=1e-5, atol=1e-5)


def test_switched_off_training_attention_is_sdpa_with_its_own_dropout():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, heads=4, dropout=0.5).train()
    x, memory = torch.randn(3, 7, 16), torch.randn(3, 9, 16)
    keys, values = attn.project_kv(memory)
    with cpu.fast(False):
        torch.manual_seed(7)
        out, _ = attn(x, (keys, values))
    q = attn._split(attn.query(x))
    torch.manual_seed(7)
    expected = F.scaled_dot_product_attention(q, keys, values, dropout_p=0.5)
    torch.testing.assert_close(out, attn.out(expected.transpose(1, 2).reshape(3, 7, 16)), rtol=0, atol=0)
    assert cpu.attention_by_parts(q, None, False, 0.5)  # with the switch on, the explicit products


def test_a_model_decodes_and_scores_the_same_with_the_switch_off(tiny_model):
    from asr.decode.options import DecodeOptions
    from asr.decode.search import decode_batch

    model = tiny_model(12)
    waves, lengths = torch.randn(2, 8000), torch.tensor([8000, 5000])
    targets, target_lengths = torch.randint(3, 12, (2, 3)), torch.tensor([3, 2])  # 8 decoder rows: few
    options = DecodeOptions(method="joint_beam", beam=3)
    runs = []
    for on in (True, False):
        with cpu.fast(on), torch.no_grad():
            hyps = decode_batch(model, waves, lengths, options)
            loss = model(waves, lengths, targets, target_lengths).loss
        runs.append(([[h.tokens for h in nbest] for nbest in hyps], [[h.score for h in nbest] for nbest in hyps], loss))
    (tokens_on, scores_on, loss_on), (tokens_off, scores_off, loss_off) = runs
    assert tokens_on == tokens_off and any(tokens_on[0])
    torch.testing.assert_close(torch.tensor(scores_on), torch.tensor(scores_off), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loss_on, loss_off, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("value", "fast"), [("0", False), ("1", True), (" 1 ", True), (None, True)])
def test_the_environment_variable_sets_the_switch(monkeypatch, value: str | None, fast: bool):
    monkeypatch.delenv(cpu.ENV, raising=False)
    if value is not None:
        monkeypatch.setenv(cpu.ENV, value)
    assert cpu._from_env() is fast


def test_a_bad_value_of_the_environment_variable_is_named(monkeypatch):
    monkeypatch.setenv(cpu.ENV, "yes")
    with pytest.raises(ValueError, match=r"ASR_CPU_FAST='yes': expected 1 .* or 0"):
        cpu._from_env()


def test_the_environment_variable_is_read_when_asr_is_imported():
    env = {**os.environ, cpu.ENV: "0"}
    code = "import asr.api; from asr import cpu; print(cpu.is_fast())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
