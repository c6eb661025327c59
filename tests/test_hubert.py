"""HuBERT teacher loading (espnet_distill/models/hubert.py): tiny random checkpoints in the torchaudio,
Hugging Face and fairseq formats; our hidden states must equal the originating library's."""

from __future__ import annotations

import re

import pytest
import torch

from espnet_distill.models.hubert import (
    CheckpointMismatch,
    HubertModel,
    load_hubert,
    receptive_field,
)
from espnet_distill.ssl.trainer import MASKING

CONV = [(32, 10, 5), (32, 3, 2), (32, 2, 2)]


def tiny_config(layer_norm_first: bool = False, mode: str = "group_norm") -> dict:
    no_dropout = ("projection_dropout", "attention_dropout", "ff_interm_dropout", "dropout")
    return dict(
        extractor_mode=mode,
        extractor_conv_layer_config=CONV,
        extractor_conv_bias=False,
        encoder_embed_dim=128,
        encoder_pos_conv_kernel=16,
        encoder_pos_conv_groups=4,
        encoder_num_layers=3,
        encoder_num_heads=2,
        encoder_ff_interm_features=256,
        encoder_layer_norm_first=layer_norm_first,
        encoder_layer_drop=0.0,
        **{f"encoder_{name}": 0.0 for name in no_dropout},
    )


def _audio(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    wave = torch.randn(2, 4000, generator=g)
    return wave, torch.tensor([4000, 3000])


def _random_model(seed: int = 1, **kw) -> HubertModel:
    torch.manual_seed(seed)
    model = HubertModel(tiny_config(**kw), num_classes=10, final_dim=16).eval()
    with torch.no_grad():  # layer norms away from 1/0, so a swapped norm shows
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.3)
    return model


@pytest.mark.parametrize("layer_norm_first", [False, True])
def test_torchaudio_state_dict_architecture_is_read_from_the_shapes(tmp_path, layer_norm_first):
    """A torchaudio Wav2Vec2Model state dict (no config) and a HuBERTPretrainModel one: the same
    hidden states as torchaudio's own extract_features."""
    import torchaudio

    cfg = tiny_config(layer_norm_first=layer_norm_first)
    torch.manual_seed(0)
    ref = torchaudio.models.wav2vec2_model(**cfg, aux_num_out=None).eval()
    torch.save(ref.state_dict(), tmp_path / "w2v.pt")
    # pre-LN is only inferred for non-768-d models; the tiny post-LN one needs its config
    ours = load_hubert(tmp_path / "w2v.pt", config=None if layer_norm_first else cfg)
    assert (
        ours.config["encoder_num_heads"] == 2 and ours.config["extractor_conv_layer_config"] == CONV
    )
    wave, lens = _audio()
    with torch.no_grad():
        states, out_lens = ours.hidden_states(wave, lens)
        ref_states, ref_lens = ref.extract_features(wave, lens)
    assert len(states) == 4 and torch.equal(out_lens, ref_lens)
    for layer in range(1, 4):  # torchaudio's intermediate outputs = ours
        torch.testing.assert_close(states[layer], ref_states[layer - 1])
    with torch.no_grad():  # the encoder output: a pre-LN model's final norm on the last layer
        last, _ = ref(wave, lens)
        final = ours.final_output(states[3])
    valid = torch.arange(last.shape[1])[None] < ref_lens[:, None]
    torch.testing.assert_close(final[valid], last[valid])
    assert torch.equal(final, states[3]) is not layer_norm_first

    pretrain = torchaudio.models.hubert_pretrain_model(
        **cfg,
        **{**MASKING, "mask_prob": 0.0},  # the pretraining stage's settings, nothing masked
        skip_masked=False,
        skip_nomask=False,
        num_classes=10,
        final_dim=16,
        feature_grad_mult=None,
    )
    torch.save(pretrain.state_dict(), tmp_path / "pretrain.pt")
    with_head = load_hubert(tmp_path / "pretrain.pt", config=cfg)
    assert with_head.num_classes == 10
    torch.testing.assert_close(
        with_head.label_embeddings, pretrain.logit_generator.label_embeddings
    )


NO_DROPOUT_HF = ("hidden_dropout", "attention_dropout", "activation_dropout", "feat_proj_dropout")


def _hf_config(stable: bool, conv: list[tuple[int, int, int]] = CONV):
    """A tiny Hugging Face HuBERT config (``stable``: pre-LN layers, layer-normed CNN)."""
    from transformers import HubertConfig

    return HubertConfig(
        hidden_size=128,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=256,
        conv_dim=[c[0] for c in conv],
        conv_kernel=[c[1] for c in conv],
        conv_stride=[c[2] for c in conv],
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="layer" if stable else "group",
        do_stable_layer_norm=stable,
        conv_bias=stable,
        mask_time_prob=0.0,
        layerdrop=0.0,
        **dict.fromkeys(NO_DROPOUT_HF, 0.0),
    )


@pytest.mark.parametrize("stable", [False, True])
def test_hf_hubert_directory_gives_transformers_hidden_states(tmp_path, stable):
    from transformers import HubertModel as HfHubertModel

    torch.manual_seed(0)
    hf = HfHubertModel(_hf_config(stable)).eval()
    hf.save_pretrained(tmp_path / "hf")
    ours = load_hubert(tmp_path / "hf")
    assert ours.config["encoder_layer_norm_first"] is stable
    wave = _audio()[0][:1]  # one utterance: transformers' Hubert takes no lengths without a mask
    with torch.no_grad():
        ref = hf(wave, output_hidden_states=True).hidden_states
        states, _ = ours.hidden_states(wave)
        last = hf(wave).last_hidden_state
    assert len(states) == len(ref) == 4
    for layer, (a, b) in enumerate(zip(states, ref, strict=True)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, msg=f"layer {layer}")
    with torch.no_grad():
        torch.testing.assert_close(ours.final_output(states[-1]), last, atol=1e-5, rtol=1e-4)


# fairseq's names of the HuBERT modules (fairseq/models/wav2vec/wav2vec2.py, hubert/hubert.py),
# written out here independently of torchaudio's importer
_TO_FAIRSEQ = [
    (r"feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0."),
    (r"feature_extractor\.conv_layers\.0\.layer_norm\.", "feature_extractor.conv_layers.0.2."),
    (r"encoder\.feature_projection\.projection\.", "post_extract_proj."),
    (r"encoder\.feature_projection\.layer_norm\.", "layer_norm."),
    (r"encoder\.transformer\.pos_conv_embed\.conv\.bias", "encoder.pos_conv.0.bias"),
    (
        r"encoder\.transformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original0",
        "encoder.pos_conv.0.weight_g",
    ),
    (
        r"encoder\.transformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original1",
        "encoder.pos_conv.0.weight_v",
    ),
    (r"encoder\.transformer\.layer_norm\.", "encoder.layer_norm."),
    (r"encoder\.transformer\.layers\.(\d+)\.attention\.", r"encoder.layers.\1.self_attn."),
    (
        r"encoder\.transformer\.layers\.(\d+)\.layer_norm\.",
        r"encoder.layers.\1.self_attn_layer_norm.",
    ),
    (
        r"encoder\.transformer\.layers\.(\d+)\.feed_forward\.intermediate_dense\.",
        r"encoder.layers.\1.fc1.",
    ),
    (
        r"encoder\.transformer\.layers\.(\d+)\.feed_forward\.output_dense\.",
        r"encoder.layers.\1.fc2.",
    ),
    (
        r"encoder\.transformer\.layers\.(\d+)\.final_layer_norm\.",
        r"encoder.layers.\1.final_layer_norm.",
    ),
    (r"^final_proj\.", "final_proj."),
    (r"^label_embeddings$", "label_embs_concat"),
]


def _fairseq_checkpoint(model: HubertModel) -> dict:
    state = {}
    for key, value in model.state_dict().items():
        key = key.removeprefix("wav2vec2.")
        for pattern, repl in _TO_FAIRSEQ:
            key, n = re.subn(pattern, repl, key)
            if n:
                break
        else:
            raise AssertionError(f"no fairseq name for {key}")
        state[key] = value
    state["mask_emb"] = torch.zeros(128)  # a pretraining parameter the teacher does not use
    cfg = model.config
    model_cfg = {
        "_name": "hubert",
        "extractor_mode": "default",
        "encoder_layers": cfg["encoder_num_layers"],
        "encoder_embed_dim": cfg["encoder_embed_dim"],
        "encoder_ffn_embed_dim": 256,
        "encoder_attention_heads": 2,
        "conv_feature_layers": "[(32, 10, 5), (32, 3, 2), (32, 2, 2)]",
        "conv_bias": False,
        "conv_pos": 16,
        "conv_pos_groups": 4,
        "layer_norm_first": cfg["encoder_layer_norm_first"],
        "final_dim": 16,
        "label_rate": 50.0,
    }
    return {
        "args": None,
        "cfg": {"_name": None, "model": model_cfg, "task": {"_name": "hubert_pretraining"}},
        "model": state,
        "optimizer_history": [],
        "extra_state": {},
    }


def test_fairseq_checkpoint_loads_with_its_prediction_head(tmp_path):
    model = _random_model()
    torch.save(_fairseq_checkpoint(model), tmp_path / "checkpoint_best.pt")
    ours = load_hubert(tmp_path / "checkpoint_best.pt")
    wave, lens = _audio()
    with torch.no_grad():
        a, _ = model.hidden_states(wave, lens)
        b, _ = ours.hidden_states(wave, lens)
        for x, y in zip(a, b, strict=True):
            torch.testing.assert_close(x, y)
        torch.testing.assert_close(model.unit_logits(a[-1]), ours.unit_logits(b[-1]))


def test_unit_logits_are_cosine_similarities_over_temperature():
    model = _random_model()
    h = torch.randn(1, 5, 128)
    logits = model.unit_logits(h)
    proj = model.final_proj(model.final_output(h))[0, 2]
    by_hand = (
        torch.stack([proj @ e / (proj.norm() * e.norm()) for e in model.label_embeddings]) / 0.1
    )
    torch.testing.assert_close(logits[0, 2], by_hand)


def test_checkpoint_of_another_architecture_names_the_keys(tmp_path):
    model = _random_model()
    blob = _fairseq_checkpoint(model)
    blob["cfg"]["model"]["encoder_layers"] = 4  # the file has 3 layers
    torch.save(blob, tmp_path / "wrong_layers.pt")
    with pytest.raises(
        CheckpointMismatch,
        match=r"wrong_layers.pt: not a checkpoint of this HuBERT "
        r"architecture: missing keys: wav2vec2\.encoder\.transformer\.layers\.3\.",
    ):
        load_hubert(tmp_path / "wrong_layers.pt")
    state = {k: v for k, v in model.wav2vec2.state_dict().items() if "layers.1.fc" not in k}
    del state["encoder.transformer.layers.1.feed_forward.output_dense.weight"]
    torch.save(state, tmp_path / "missing.pt")
    with pytest.raises(
        CheckpointMismatch,
        match=r"missing keys: wav2vec2\.encoder\.transformer\."
        r"layers\.1\.feed_forward\.output_dense\.weight",
    ):
        load_hubert(tmp_path / "missing.pt", config=model.config)
    cfg = dict(model.config, encoder_embed_dim=64, encoder_pos_conv_groups=2)
    with pytest.raises(
        CheckpointMismatch,
        match=r"shape mismatches .*projection\.weight \(128, 32\) "
        r"vs \(64, 32\)",
    ):
        load_hubert(tmp_path / "missing.pt", config=cfg)
    torch.save({"weights": [1, 2]}, tmp_path / "junk.pt")
    with pytest.raises(CheckpointMismatch, match="junk.pt: not a torchaudio state dict"):
        load_hubert(tmp_path / "junk.pt")


def test_receptive_field_and_frame_count():
    model = _random_model()
    field = receptive_field(model.config)
    assert field == 10 + (3 - 1) * 5 + (2 - 1) * 5 * 2  # 30 samples
    assert model.frames(field - 1) == 0 and model.frames(field) == 1
    with torch.no_grad():
        states, _ = model.hidden_states(torch.randn(1, 1000))
    assert states[0].shape[1] == model.frames(1000)
