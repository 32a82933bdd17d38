from pathlib import Path

import pytest

from asr.config import ConfigError, ExperimentConfig, LMConfig, load_config, load_lm_config, save_config, to_dict
from asr.model import ASRModel

CONFIGS = sorted(Path(__file__).parents[1].joinpath("configs").glob("*.yaml"))


def test_shipped_configs_exist():
    assert {p.stem for p in CONFIGS} >= {
        "tiny", "transformer_100h", "conformer_100h", "transformer_960h", "conformer_960h"
    }


# What each LibriSpeech config follows (ESPnet's file, at a commit) and the reference's settings
# it must match. Batch: ESPnet's numel batch_bins over ~37k bins per second (37.25k) of LibriSpeech audio
# (16k samples + 5000 x ~3.4 tokens, with padding), times accum_grad; epochs: ESPnet's x 3 where
# it trains on the 3x speed-perturbed copy (one random speed per utterance per epoch here).
REFERENCES = {
    "transformer_100h": ("train_asr_conformer_lr2e-3_warmup15k_amp_nondeterministic.yaml", "d1198b4002ae",
                         dict(batch=16e6 / 37.25e3 * 4, epochs=70 * 3, lr=2e-3, warmup=15000, dropout=0.1,
                              masks=(2, 27, 5, 0.05, 0), warp=True, encoder="transformer")),
    "conformer_100h": ("train_asr_conformer_lr2e-3_warmup15k_amp_nondeterministic.yaml", "d1198b4002ae",
                       dict(batch=16e6 / 37.25e3 * 4, epochs=70 * 3, lr=2e-3, warmup=15000, dropout=0.1,
                            masks=(2, 27, 5, 0.05, 0), warp=True, encoder="conformer")),
    "conformer_960h": ("train_asr_conformer10_hop_length160.yaml", "bac23cb630e8",
                       dict(batch=35e6 / 37.25e3 * 4, epochs=50 * 3, lr=2.5e-3, warmup=40000, dropout=0.1,
                            masks=(2, 27, 10, 0.05, 0), warp=True, encoder="conformer")),
    "transformer_960h": ("train_asr_transformer.yaml", "06feeead9b12",
                         dict(batch=16e6 / 37.25e3 * 4, epochs=60, lr=1e-3, warmup=25000, dropout=0.1,
                              masks=(2, 30, 2, 0.0, 40), warp=True, encoder="transformer")),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_librispeech_configs_match_the_espnet_config_they_name(name):
    path = Path(__file__).parents[1] / "configs" / f"{name}.yaml"
    reference, commit, want = REFERENCES[name]
    comment = path.read_text().split("\ndata:")[0]
    assert reference in comment and commit in comment, "name the followed file and its commit"
    assert "Differences, and why" in comment and "WER" in comment
    config = load_config(path)
    train, aug, enc = config.train, config.augment, config.model.encoder
    effective = config.data.max_batch_seconds * train.accum_steps * train.gpus
    assert effective == pytest.approx(want["batch"], rel=0.03)
    assert (train.epochs, train.lr, train.warmup_steps) == (want["epochs"], want["lr"], want["warmup"])
    assert enc.dropout == config.model.decoder.dropout == want["dropout"] and enc.type == want["encoder"]
    masks = (aug.freq_masks, aug.freq_mask_width, aug.time_masks, aug.time_mask_ratio)
    assert masks == want["masks"][:4] and (aug.time_mask_ratio > 0 or aug.time_mask_width == want["masks"][4])
    assert aug.spec_augment and aug.time_warp == want["warp"] and aug.time_warp_window == 5
    assert aug.speed_perturb and aug.speeds == (0.9, 1.0, 1.1)
    assert train.keep_best == 10 and config.data.vocab_size == 5000 and train.precision == "bf16"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_loads_and_builds_a_model(path):
    config = load_config(path)
    model = ASRModel(config, vocab_size=64)
    assert model.encoder.subsampling.project.out_features == config.model.d_model
    assert path.read_text().startswith("#"), "each config says in a comment what it is for"


def test_100h_config_has_the_common_librispeech_100h_size():
    config = load_config(Path("configs/transformer_100h.yaml"))
    assert (config.model.encoder.layers, config.model.decoder.layers) == (12, 6)
    assert (config.model.d_model, config.model.encoder.heads, config.model.encoder.ff_dim) == (256, 4, 2048)
    big = load_config(Path("configs/transformer_960h.yaml"))
    assert (big.model.d_model, big.model.encoder.heads) == (512, 8)


def test_unknown_key_is_rejected_by_its_dotted_name(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  encoder:\n    layer: 3\n")
    with pytest.raises(ConfigError, match=r"model\.encoder\.layer\b.*valid keys here: .*layers"):
        load_config(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("model:\n  d_model: big\n", r"model\.d_model: expected an integer, got 'big'"),
        ("train:\n  precision: fp8\n", r"train\.precision: 'fp8' is not one of 'fp32', 'bf16', 'fp16'"),
        ("augment:\n  spec_augment: 1\n", r"augment\.spec_augment: expected true or false"),
        ("model:\n  encoder:\n    subsampling: 5\n", r"model\.encoder\.subsampling: 5 is not one of 4, 6, 8"),
        ("model: 3\n", r"model: expected a mapping"),
    ],
)
def test_mistyped_values_are_rejected_by_name(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_dotted_overrides_replace_values_with_yaml_types():
    config = load_config(
        Path("configs/tiny.yaml"),
        ["model.encoder.layers=6", "train.lr=1e-4", "augment.speed_perturb=true", "data.tokenizer=x/y"],
    )
    assert config.model.encoder.layers == 6
    assert config.train.lr == pytest.approx(1e-4)
    assert config.augment.speed_perturb is True
    assert config.data.tokenizer == "x/y"
    assert config.model.decoder.layers == 2  # untouched values keep the file's


def test_override_of_an_unknown_key_fails():
    with pytest.raises(ConfigError, match=r"model\.encoder\.depth"):
        load_config(None, ["model.encoder.depth=3"])
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        load_config(None, ["model.encoder.layers"])


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_save_and_load_round_trip(tmp_path):
    config = load_config(Path("configs/transformer_100h.yaml"), ["train.betas=[0.8, 0.9]"])
    save_config(config, tmp_path / "resolved.yaml")
    again = load_config(tmp_path / "resolved.yaml")
    assert again == config and isinstance(again, ExperimentConfig)
    assert to_dict(again)["train"]["betas"] == [0.8, 0.9]


LM_CONFIGS = sorted(Path(__file__).parents[1].joinpath("configs", "lm").glob("*.yaml"))


@pytest.mark.parametrize("path", LM_CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_lm_config_loads_and_builds_an_lm(path):
    from asr.nn.lm import TransformerLM

    config = load_lm_config(path)
    lm = TransformerLM(config, vocab_size=64)
    assert len(lm.blocks) == config.model.layers and lm.blocks[0].cross_attn is None
    assert {p.stem for p in LM_CONFIGS} >= {"tiny", "librispeech"}


def test_the_lm_section_is_strict_and_takes_dotted_overrides(tmp_path):
    config = load_lm_config(Path("configs/lm/tiny.yaml"), ["lm.model.layers=3", "lm.data.text=[a.txt, b.txt.gz]"])
    assert (config.model.layers, config.model.d_model, config.data.text) == (3, 128, ("a.txt", "b.txt.gz"))
    assert config.train.lr == pytest.approx(2e-3) and config.train.seed == LMConfig().train.seed
    with pytest.raises(ConfigError, match=r"unknown config key lm\.train\.keep_best"):
        load_lm_config(None, ["lm.train.keep_best=3"])  # an `asr train` key the LM has no use for
    with pytest.raises(ConfigError, match=r"lm\.data\.batch_tokens=1 is out of range"):
        load_lm_config(None, ["lm.data.batch_tokens=1"])
    (tmp_path / "asr.yaml").write_text("train: {lr: 0.1}\n")
    with pytest.raises(ConfigError, match=r"asr.yaml: unknown config key train; valid keys here: lm"):
        load_lm_config(tmp_path / "asr.yaml")


def test_docs_list_every_lm_key_with_its_default():
    import yaml

    from asr.config import LMExperimentConfig

    page = (Path(__file__).parents[1] / "docs" / "training.md").read_text()
    block = page.split("## Language models", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(block) == to_dict(LMExperimentConfig())
