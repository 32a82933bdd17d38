"""int8 inference: linear layers quantised, outputs close to fp32, the fp32 model untouched,
searches on the int8 model mostly agreeing with fp32."""

import pytest
import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

from asr.nn.int8 import Int8Error, int8_copy
from asr.cpu import Linear


def test_every_linear_layer_becomes_int8_and_the_original_stays_fp32(tiny_model):
    model = tiny_model(24)
    quantized = int8_copy(model)
    linears = [m for m in quantized.modules() if isinstance(m, torch.nn.Linear)]
    int8 = [m for m in quantized.modules() if isinstance(m, DynamicInt8Linear)]
    assert not linears and len(int8) == sum(isinstance(m, torch.nn.Linear) for m in model.modules()) > 10
    assert isinstance(model.decoder.output, Linear)  # the fp32 model was not changed


def test_int8_outputs_are_close_to_fp32(tiny_model):
    model = tiny_model(24)
    quantized = int8_copy(model)
    waves = torch.randn(2, 16000) * 0.1
    lengths = torch.tensor([16000, 12000])
    with torch.inference_mode():
        memory, enc_lengths = model.encode(waves, lengths)
        memory8, enc_lengths8 = quantized.encode(waves, lengths)
        assert torch.equal(enc_lengths, enc_lengths8)
        relative = (memory8 - memory).norm() / memory.norm()
        assert 0 < relative < 0.05  # changed (really int8) but close
        tokens = torch.randint(3, 24, (2, 5))
        logits = model.decoder(tokens, memory, enc_lengths)[0]
        logits8 = quantized.decoder(tokens, memory8, enc_lengths8)[0]
        agree = (logits.argmax(-1) == logits8.argmax(-1)).float().mean()
        assert agree >= 0.9


def test_a_tied_output_layer_gets_its_own_int8_copy():
    from tests.support.experiments import tiny_model

    model = tiny_model(24)
    model.decoder.output.weight = model.decoder.embed.weight  # tie, as Whisper does
    quantized = int8_copy(model)
    assert isinstance(quantized.decoder.output, DynamicInt8Linear)
    assert quantized.decoder.embed.weight.dtype == torch.float32
    assert torch.equal(quantized.decoder.embed.weight, model.decoder.embed.weight)


def test_int8_refuses_a_model_on_another_device(tiny_model):
    model = tiny_model(24)
    model.to("meta")
    with pytest.raises(Int8Error, match="CPU only"):
        int8_copy(model)


def test_precision_int8_decodes_with_the_int8_copy_made_once(tiny_model):
    from asr.decode.options import DecodeOptions
    from asr.decode.task import DecodingTask
    from asr.nn.int8 import int8_model

    model = tiny_model(24)
    waves, lengths = torch.randn(2, 16000) * 0.1, torch.tensor([16000, 9000])
    task = DecodingTask.build(model, DecodeOptions(method="joint_beam", beam=4, precision="int8"))
    assert task.model is int8_model(model) is not model  # one copy, reused
    assert DecodingTask.build(model, DecodeOptions(method="ctc_greedy", precision="int8")).model is task.model
    int8 = task.decode(waves, lengths)
    fp32 = DecodingTask.build(model, DecodeOptions(method="joint_beam", beam=4)).decode(waves, lengths)
    assert len(int8) == len(fp32) == 2
    assert int8[0][0].score != fp32[0][0].score  # really another model's arithmetic
