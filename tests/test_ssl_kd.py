"""asr1's KD from an SSL teacher: MVQ codebook KD (icefall) and hint KD (kd/codebooks.py,
asr/ssl_teacher.py)."""

from __future__ import annotations

import pytest
import torch

from espnet_distill.data.teacher_frames import IGNORE, check_teacher_frames
from espnet_distill.kd.codebooks import (
    CodebookHead,
    HintHead,
    pair_teacher_frames,
    train_quantizer,
)

from .test_hubert import tiny_config

CONV = [(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2  # HuBERT's 400-sample field, stride 320


def test_pairing_puts_two_teacher_frames_on_each_encoder_frame():
    teacher = torch.arange(2 * 7 * 1).view(2, 7, 1)  # frame t holds t (+ 7 in the second cut)
    paired = pair_teacher_frames(teacher, 3, torch.tensor([3, 2]), IGNORE)
    assert paired[0].tolist() == [[0, 1], [2, 3], [4, 5]]  # frame 6 has no encoder frame
    assert paired[1].tolist() == [[7, 8], [9, 10], [IGNORE, IGNORE]]  # past the cut's 2 frames
    short = pair_teacher_frames(teacher[:, :5], 3, torch.tensor([3, 3]), IGNORE)
    assert short[0, 2].tolist() == [4, IGNORE]  # a teacher frame it does not reach: not scored


@pytest.mark.parametrize("seconds", [0.5, 1.0, 2.37, 4.0, 9.99, 17.3])
def test_teacher_frames_cover_the_encoder_frames_of_real_cuts(seconds):
    """lhotse's fbank frames, HuBERT's CNN frames and the Conformer's subsampling of one cut:
    every encoder frame has its two teacher frames, and the counts pass the frame check."""
    from lhotse.utils import compute_num_frames

    from espnet_distill.models.hubert import HubertModel

    samples = round(seconds * 16000)
    fbank = compute_num_frames(seconds, 0.01, 16000)
    teacher = HubertModel(dict(tiny_config(), extractor_conv_layer_config=CONV)).frames(samples)
    encoder = ((fbank - 1) // 2 - 1) // 2
    assert 2 * encoder <= teacher <= 2 * encoder + 4
    check_teacher_frames("cut", teacher, fbank, "teacher.pt")


def test_a_teacher_frame_count_that_does_not_fit_is_refused_naming_the_cut():
    check_teacher_frames("spk-1-0001", 249, 500, "t.pt")  # about half: accepted
    with pytest.raises(ValueError, match=r"t.pt: spk-1-0001 has 125 teacher frames for 500"):
        check_teacher_frames("spk-1-0001", 125, 500, "t.pt")  # a 40 ms teacher


def test_codebook_loss_is_the_per_codebook_cross_entropy_by_hand():
    """JointCodebookLoss (not joint) over paired frames = sum over scored frames and the 2 x C
    codebooks of -log softmax(W_c x + b_c)[index], divided by the batch size."""
    torch.manual_seed(0)
    head = CodebookHead(6, num_codebooks=2)
    with torch.no_grad():
        head.loss_net.linear2_bias.normal_()
    enc = torch.randn(2, 3, 6)
    lens = torch.tensor([3, 2])
    indexes = torch.randint(0, 256, (2, 7, 2))
    loss = head(enc, lens, indexes)
    weight, bias = (
        head.loss_net.linear2b_weight,
        head.loss_net.linear2_bias,
    )  # (4, 256, 6), (4, 256)
    total = 0.0
    for b in range(2):
        for j in range(int(lens[b])):
            targets = torch.cat([indexes[b, 2 * j], indexes[b, 2 * j + 1]])  # 4 codebooks
            for c in range(4):
                logits = weight[c] @ enc[b, j] + bias[c]
                total -= logits.log_softmax(-1)[targets[c]]
    torch.testing.assert_close(loss, total / 2)
    with pytest.raises(ValueError, match="num_codebooks is 2 but the teacher's indexes have 3"):
        head(enc, lens, torch.zeros(2, 7, 3, dtype=torch.long))


def test_hint_loss_is_distilhubert_loss_over_the_paired_frames():
    from espnet_distill.kd.losses import layer_distillation_loss

    torch.manual_seed(1)
    head = HintHead(5, teacher_dim=3)
    enc, lens = torch.randn(2, 4, 5), torch.tensor([4, 3])
    teacher = torch.randn(2, 9, 3)
    loss, cos = head(enc, lens, teacher)
    pred = head.proj(enc).view(2, 8, 3)
    mask = torch.tensor([[True] * 8, [True] * 6 + [False] * 2])
    mean, want_cos = layer_distillation_loss(pred, teacher[:, :8], mask)
    torch.testing.assert_close(loss, mean * 7 / 2)  # 7 encoder frames over 2 cuts
    torch.testing.assert_close(cos, want_cos)


def test_quantizer_indexes_reproduce_with_the_seed():
    """Same seed, same frames: the same indexes; another seed: other codebooks (agreement near
    chance, 1/256). The codebooks reconstruct the frames better than their mean (relative error
    < 1: about 0.5 here after 40 steps a phase; an untrained quantizer gives > 1)."""
    from espnet_distill.kd.codebooks import relative_reconstruction_error

    g = torch.Generator().manual_seed(0)
    frames = torch.randn(3000, 8, generator=g) @ torch.randn(8, 16, generator=g)
    first = train_quantizer(frames, 2, seed=5, iters_per_phase=40, batch_frames=256)
    again = train_quantizer(frames, 2, seed=5, iters_per_phase=40, batch_frames=256)
    other = train_quantizer(frames, 2, seed=6, iters_per_phase=40, batch_frames=256)
    codes = first.encode(frames[:500])
    assert codes.dtype == torch.uint8 and codes.shape == (500, 2)
    assert torch.equal(codes, again.encode(frames[:500]))
    assert (codes == other.encode(frames[:500])).float().mean() < 0.1
    assert relative_reconstruction_error(first, frames) < 0.9


def _ssl_kd_model():
    """test_kd's tiny model (3 blocks, cross-modal heads at blocks 1 and 3) with the SSL heads."""
    from .test_kd import _kd_model

    return _kd_model(
        mvq_kd={"layer": 1, "num_codebooks": 2, "weight": 0.1},
        hint_kd={"layer": 2, "teacher_dim": 4, "weight": 1.0},
    )


def test_ssl_kd_heads_train_only_the_layers_below_them():
    torch.manual_seed(0)
    model = _ssl_kd_model()
    feats, lens = torch.randn(2, 41, 20), torch.tensor([41, 33])
    ys, ys_lens = torch.tensor([[1, 2, 3], [4, 5, -1]]), torch.tensor([3, 2])
    senones = torch.randint(0, 5, (2, 41))
    indexes = torch.randint(0, 256, (2, 20, 2))
    hints = torch.randn(2, 20, 4)
    out = model(feats, lens, ys, ys_lens, senones, None, indexes, hints)
    assert {"ctc", "senone", "mvq", "hint", "hint_cos", "loss"} <= set(out)
    torch.testing.assert_close(
        out["loss"], out["ctc"] + out["senone"] + 0.1 * out["mvq"] + out["hint"]
    )

    def touched(module):
        return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())

    enc = model.encoder
    out["mvq"].backward(retain_graph=True)
    assert touched(model.mvq_head) and touched(enc.encoders[0]) and touched(enc.embed)
    assert not touched(enc.encoders[1]) and not touched(enc.encoders[2])
    assert not touched(model.ctc) and not touched(model.senone_head)
    assert not touched(model.hint_head)
    model.zero_grad(set_to_none=True)
    out["hint"].backward()
    assert touched(model.hint_head) and touched(enc.encoders[1]) and not touched(enc.encoders[2])
    assert not touched(model.mvq_head) and not touched(model.ctc)
    # the main losses do not depend on the teacher
    with torch.no_grad():
        again = model(feats, lens, ys, ys_lens, senones)
    for name in ("ctc", "senone"):
        torch.testing.assert_close(again[name], out[name].detach())


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory):
    """A small random HuBERT (HuBERT's 320-sample stride, 2 layers of 32 dimensions)."""
    from espnet_distill.models.hubert import HubertModel

    torch.manual_seed(0)
    config = dict(
        tiny_config(),
        extractor_conv_layer_config=CONV,
        encoder_embed_dim=32,
        encoder_num_layers=2,
        encoder_ff_interm_features=64,
    )
    path = tmp_path_factory.mktemp("teacher") / "model.pt"
    HubertModel(config).save(path)
    return path


def test_mvq_and_hint_kd_train_and_leave_the_heads_out_of_model_pt(
    tiny_features, tiny_teacher, tmp_path
):
    """Stage 5's codebooks of the tiny corpus, then a tiny model with both SSL-teacher heads:
    their losses are logged, model.pt has neither head and decodes; a codebook manifest whose
    indexes do not fit a cut's frames is refused naming the cut."""
    import yaml
    from lhotse import CutSet

    from espnet_distill.asr.ssl_teacher import SslTeacher, extract_codebooks
    from espnet_distill.data.datamodule import make_loader
    from espnet_distill.data.teacher_frames import FIELD, codebook_table
    from espnet_distill.models.acoustic_model import load_model

    from .conftest import tiny_am_config, train_tiny_am

    fbank = tiny_features / "fbank"
    train_cuts, valid_cuts = (
        fbank / "cuts_train-clean-100.jsonl.gz",
        fbank / "cuts_dev-clean.jsonl.gz",
    )
    out = tmp_path / "codebooks"
    summary = extract_codebooks(
        SslTeacher(tiny_teacher, 2),
        train_cuts,
        [train_cuts, valid_cuts],
        out,
        num_codebooks=2,
        quantizer_cuts=20,
        iters_per_phase=20,
    )
    assert summary["num_codebooks"] == 2 and summary["layer"] == 2
    other = tmp_path / "other_teacher.pt"  # another teacher into the same dir: refused
    other.write_bytes(tiny_teacher.read_bytes())
    with pytest.raises(ValueError, match="quantizes layer 2 of .* not layer 2 of .*other_teacher"):
        extract_codebooks(SslTeacher(other, 2), train_cuts, [], out, num_codebooks=2)
    assert yaml.safe_load((out / "quantizer.yaml").read_text()) == summary
    table = codebook_table(out / "cuts_train-clean-100.jsonl.gz")
    cuts = CutSet.from_file(train_cuts)
    assert set(table) == set(cuts.ids)
    first = cuts[0]
    indexes = table[first.id].load()
    assert indexes.dtype.name == "uint8" and indexes.shape[1] == 2
    assert abs(len(indexes) - first.num_frames / 2) <= 2

    cfg = tiny_am_config(
        "model.mvq_kd={layer: 1, num_codebooks: 2, weight: 0.1}",
        "model.hint_kd={layer: 1, teacher_layer: 1, weight: 1.0}",
        "train.max_epochs=1",
        "train.average_best=1",
    )
    cfg["model"]["senone_head"] = None
    model_file = train_tiny_am(
        cfg, tmp_path / "am", tiny_features, codebook_dir=out, kd_teacher=tiny_teacher
    )
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((tmp_path / "am" / "tensorboard").glob("events*"))))
    events.Reload()
    for name in ("valid_mvq_loss", "valid_hint_loss", "valid_hint_cos"):
        assert events.Scalars(name), name  # both heads trained and validated
    state = torch.load(model_file, weights_only=False)["state_dict"]
    assert not any(k.startswith(("mvq_head.", "hint_head.")) for k in state)
    model, _ = load_model(model_file)
    assert model.mvq_head is None and model.hint_head is None
    log_probs, lens = model.log_probs(torch.randn(1, 100, 80), torch.tensor([100]))
    assert log_probs.shape[1] == int(lens[0])

    # a codebook manifest of a 40 ms teacher (every other frame): refused by cut
    halved = [
        c.with_custom(FIELD, c.custom[FIELD])
        for c in CutSet.from_file(out / "cuts_dev-clean.jsonl.gz")
    ]
    from lhotse.features.io import NumpyHdf5Writer

    bad = tmp_path / "bad"
    bad.mkdir()
    with NumpyHdf5Writer(bad / "indexes.h5") as writer:
        for c in halved:
            c.custom[FIELD] = writer.store_array(
                c.id, c.custom[FIELD].load()[::2], frame_shift=0.04, temporal_dim=0
            )
    CutSet.from_cuts(halved).to_file(bad / "cuts_dev-clean.jsonl.gz")
    loader = make_loader(
        valid_cuts,
        None,
        100.0,
        train=False,
        num_workers=0,
        codebooks=bad / "cuts_dev-clean.jsonl.gz",
    )
    with pytest.raises(ValueError, match=r"cuts_dev-clean.jsonl.gz: \S+ has \d+ teacher") as err:
        next(iter(loader))
    assert str(err.value).split(": ")[1].split(" has ")[0] in {c.id for c in halved}
