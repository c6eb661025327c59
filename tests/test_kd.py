"""Cross-modal KD: unit conversions of text and alignments."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest
from lhotse import CutSet

from espnet_distill.kd.units import TextToUnits, UnitTables, read_units, tokens_of_frames

from .conftest import train_tiny_am
from .figures import figure


def test_tokens_of_frames_merges_runs_and_skips_silence():
    frames = np.array([0, 0, 5, 5, 5, 7, 0, 7, 7, 3, 0])
    tokens, index = tokens_of_frames(frames, silence={0})
    assert tokens.tolist() == [5, 7, 7, 3]
    assert index.tolist() == [-1, -1, 0, 0, 0, 1, -1, 2, 2, 3, -1]
    tokens, index = tokens_of_frames(np.zeros(0, dtype=int), silence={0})
    assert tokens.size == 0 and index.size == 0


def test_read_units_refuses_gaps(tmp_path):
    (tmp_path / "u.txt").write_text("a 0\nb 2\n")
    with pytest.raises(ValueError, match=r"u.txt: unit ids must be 0..1"):
        read_units(tmp_path / "u.txt")


def test_every_unit_has_the_files_stage_4_writes_and_the_vocabulary_the_converter_reads(aligned):
    """The registry's paths are where stage 4 wrote each unit, and a config naming another unit
    is refused with its key."""
    from espnet_distill.align.targets import UNITS, unit_named

    targets = aligned[0] / "targets"
    assert list(UNITS) == ["senone", "monophone", "subword"]
    for unit in UNITS.values():
        scp, vocabulary = unit.frames(targets), unit.vocabulary(targets)
        assert scp.is_file() and vocabulary.is_file()
        # every frame id of the first cut is in the unit's vocabulary
        ids = next(iter(kaldiio.load_scp(str(scp)).values()))
        assert 0 <= ids.min() and ids.max() < len(read_units(vocabulary))
    with pytest.raises(ValueError, match=r"model.kd_heads: unknown unit 'letter', expected one of"):
        unit_named("letter", "model.kd_heads")


@pytest.fixture(scope="module")
def converter(aligned):
    exp, lang_dir, _, bpe = aligned
    return TextToUnits(UnitTables(lang_dir, exp, bpe))


def _tokens(targets: dict, silence: dict) -> dict[str, list[int]]:
    return {u: tokens_of_frames(targets[u], silence[u])[0].tolist() for u in targets}


def test_text_units_agree_with_the_alignment(aligned, converter):
    """Transcripts converted to units = stage 4's frame targets collapsed to tokens, wherever the
    alignment has no inner pause, starts and ends in silence and uses first pronunciations.

    That realisation is built on purpose (the aligner given log-likelihoods of one path, then
    stage 4's target writer), for the first training transcripts; the stored targets of the tiny
    corpus are checked wherever EM happened to give it (how often varies by machine)."""
    from espnet_distill.align.targets import UnitTargets
    from espnet_distill.align.trainer import GmmSystem, Lang

    from .conftest import constructed_alignment, without_repeats

    exp, lang_dir, cuts_file, bpe = aligned
    lang = Lang.load(lang_dir)
    tri = GmmSystem.load(exp / "tri", lang)
    units = UnitTargets(lang_dir, lang.phones, lang.real_phones, tri.tm, tri.tree.num_pdfs, bpe)
    sil_mono = {converter.monophone_ids["SIL"], converter.monophone_ids["SPN"]}
    silence = {"senone": converter.silence["senone"], "monophone": sil_mono, "subword": {0}}
    cuts = [c for c in CutSet.from_file(cuts_file) if "_sp" not in c.id]
    for cut in cuts[:5]:
        text = cut.supervisions[0].text
        ali = constructed_alignment(text, lang_dir, lang, tri)
        targets = dict(zip(("senone", "monophone", "subword"), units(ali.tids, text), strict=True))
        tokens = _tokens(targets, silence)
        # a phone that ends one word and starts the next ("ONE KNOWS") is one run of frames
        assert tokens["monophone"] == without_repeats(converter("monophone", text)), text
        assert tokens["subword"] == without_repeats(converter("subword", text)), text
        assert tokens["senone"] == converter("senone", text), text

    stored = {u: kaldiio.load_scp(str(exp / "targets" / f"{u}.scp")) for u in silence}
    same_phones = checked = 0
    for cut in cuts:
        if cut.id not in stored["senone"]:
            continue
        text = cut.supervisions[0].text
        runs = without_repeats(stored["monophone"][cut.id].tolist())
        tokens = _tokens({u: stored[u][cut.id] for u in stored}, silence)
        if tokens["monophone"] != converter("monophone", text):
            continue  # another pronunciation variant was aligned
        same_phones += 1
        assert tokens["subword"] == without_repeats(converter("subword", text)), cut.id
        if runs[0] in sil_mono and runs[-1] in sil_mono and not sil_mono & set(runs[1:-1]):
            assert tokens["senone"] == converter("senone", text), cut.id
            checked += 1
    figure("kd.stored_alignments_with_text_phones", same_phones, "none (informational)", "-")
    figure("kd.stored_alignments_without_pauses", checked, "none (informational)", "-")


def test_words_without_pronunciation_are_named(converter):
    with pytest.raises(KeyError, match="no pronunciation of .*QWXZ"):
        converter("monophone", "HELLO QWXZ")
    with pytest.raises(ValueError, match="unknown unit 'letter'"):
        converter("letter", "HELLO")


def test_unit_lm_learns_a_deterministic_grammar_and_is_causal(tmp_path):
    """Sequences 0 1 2 0 1 2 ...: a trained LM predicts each next unit almost surely."""
    import torch

    from espnet_distill.lm.unit_lm import load_unit_lm
    from espnet_distill.train.lm_trainer import DEFAULT_LM_CONFIG, train_unit_lm

    seqs = [[k % 3 for k in range(start, start + n)] for start in range(3) for n in range(4, 12)]
    config = {
        **DEFAULT_LM_CONFIG,
        "lm_conf": {"unit": 32, "nlayers": 1, "dropout_rate": 0.0},
        "optim": {"lr": 0.01, "weight_decay": 0.0, "warmup_steps": 5},
        "train": {**DEFAULT_LM_CONFIG["train"], "max_epochs": 40, "max_tokens": 60},
    }
    model = train_unit_lm(config, 3, seqs, seqs[:6], tmp_path / "lm")
    lm = load_unit_lm(model, num_units=3)
    units = torch.tensor([[0, 1, 2, 0, 1], [1, 2, 0, -1, -1]])
    lens = torch.tensor([5, 3])
    logp = lm.next_unit_log_probs(units, lens)
    assert logp.shape == (2, 5, 3)
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(2, 5))
    # after the first unit the grammar is deterministic
    least = min(
        float(logp[b, k, units[b, k]].detach().exp())
        for b, n in enumerate(lens.tolist())
        for k in range(1, n)
    )
    assert figure("kd.deterministic_grammar_least_next_prob", least, "> 0.9", "~1/3") > 0.9
    # causal and padding-free: the prediction at k sees units < k only
    changed = units.clone()
    changed[0, 3:] = torch.tensor([2, 2])
    torch.testing.assert_close(lm.next_unit_log_probs(changed, lens)[0, :4], logp[0, :4])
    alone = lm.next_unit_log_probs(units[1:, :3], lens[1:])
    torch.testing.assert_close(alone[0], logp[1, :3])
    ppl = float((tmp_path / "lm" / "ppl.yaml").read_text().split("valid_perplexity:")[1].split()[0])
    # the first unit (1 of 3) and the length are not predictable: ideal ~1.25; a unigram ~3.3
    assert figure("kd.deterministic_grammar_valid_ppl", ppl, "< 2.0", "~3.3 (a unigram)") < 2.0
    with pytest.raises(ValueError, match=r"model.pt: the LM has 3 units, the unit inventory 5"):
        load_unit_lm(model, num_units=5)


@pytest.fixture(scope="module")
def lm_text_lang(aligned, tiny_features, tiny_corpus, tmp_path_factory):
    """A phone lang dir whose lexicon covers the LM text too (as the recipe's does), the LM text's
    sentences (the first 3000), and a converter over both (same phones as the aligned lang dir)."""
    from espnet_distill.bin.prepare_lang import main as prepare_lang_main
    from espnet_distill.lm.ngram import read_text_lines

    exp, _, _, bpe = aligned
    out = tmp_path_factory.mktemp("lm_lang")
    sentences = [s.strip() for s in read_text_lines([tiny_corpus / "librispeech-lm-norm.txt.gz"])][
        :3000
    ]
    (out / "lm.txt").write_text("\n".join(sentences) + "\n")
    words = [str(tiny_features / "lang_bpe_64" / "words.txt"), str(out / "lm.txt")]
    assert prepare_lang_main(["--words", *words, "--lang-dir", str(out / "lang")]) == 0
    return out / "lang", sentences, TextToUnits(UnitTables(out / "lang", exp, bpe))


@pytest.fixture(scope="module")
def unit_lm_dir(aligned, lm_text_lang, tmp_path_factory):
    """Stage-5 unit LMs of the three units, trained on the tiny LM text minus its first 100
    sentences (held out as valid text): <dir>/<unit>/{model.pt,ppl.yaml}."""
    from espnet_distill.bin import train_unit_lm

    exp, _, _, bpe = aligned
    lang_dir, sentences, _ = lm_text_lang
    out = tmp_path_factory.mktemp("unit_lm")
    (out / "train.txt").write_text("\n".join(sentences[100:]) + "\n")
    (out / "valid").write_text("".join(f"v{i} {s}\n" for i, s in enumerate(sentences[:100])))
    for unit in ("senone", "monophone", "subword"):
        argv = [
            "--unit",
            unit,
            "--lang-dir",
            str(lang_dir),
            "--align-dir",
            str(exp),
            "--bpe-model",
            str(bpe),
            "--text",
            str(out / "train.txt"),
            "--valid-text",
            str(out / "valid"),
            "--exp-dir",
            str(out / unit),
            "--override",
            "train.max_epochs=3",
            "lm_conf.unit=64",
            "lm_conf.nlayers=1",
            "train.max_tokens=4000",
            "optim.warmup_steps=10",
            "optim.lr=0.005",
        ]
        assert train_unit_lm.main(argv) == 0
    return out


@pytest.mark.parametrize("unit", ["senone", "monophone", "subword"])
def test_unit_lms_beat_a_unigram_on_held_out_text(lm_text_lang, unit_lm_dir, unit):
    """Stage-5 unit LM on the tiny LM text: its valid perplexity is below the unigram's."""
    import math
    from collections import Counter

    import yaml

    _, sentences, converter = lm_text_lang
    ppl = yaml.safe_load((unit_lm_dir / unit / "ppl.yaml").read_text())["valid_perplexity"]

    def seqs(texts):
        out = []
        for t in texts:
            try:
                out.append(converter(unit, t))
            except KeyError:
                pass
        return out

    train, valid = seqs(sentences[100:]), seqs(sentences[:100])
    n_units = len(converter.names[unit])
    counts = Counter(u for s in train for u in s)
    counts["</s>"] = len(train)
    total = sum(counts.values()) + n_units + 1  # add-one smoothing over units and </s>
    nll = -sum(math.log((counts[u] + 1) / total) for s in valid for u in [*s, "</s>"])
    unigram = math.exp(nll / sum(len(s) + 1 for s in valid))
    ratio = figure(f"kd.{unit}_lm_ppl_over_unigram", ppl / unigram, "< 0.8", ">= 1 (a unigram)")
    assert ratio < 0.8


def test_hierarchical_kd_training_runs_and_keeps_lms_out_of_the_model(
    aligned, lm_text_lang, unit_lm_dir, tiny_features, tmp_path
):
    """Senone/monophone/subword KD heads at blocks 1/1/2 of the tiny model: KD losses are logged
    and fall, the saved model has the heads but no LM weights, and it decodes."""
    import torch

    from espnet_distill.models.acoustic_model import load_model

    from .conftest import tiny_am_config

    exp, lang_dir, cuts_file, _ = aligned
    cfg = tiny_am_config(
        "model.kd_heads={senone: {layer: 1}, monophone: {layer: 1}, subword: {layer: 2}}",
        "model.label_interpolation={weight: 0.2}",
        "train.max_epochs=3",
        "train.average_best=1",
    )
    model_file = train_tiny_am(
        cfg,
        tmp_path / "am",
        tiny_features,
        cuts_file,
        targets_dir=exp / "targets",
        unit_lm_dir=unit_lm_dir,
        phone_lang_dir=lang_dir,
    )
    model, _ = load_model(model_file)
    assert set(model.kd_heads) == {"senone", "monophone", "subword"}
    state = torch.load(model_file, weights_only=False)["state_dict"]
    assert not any("espnet_lm" in k for k in state)  # teachers are not part of the model
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((tmp_path / "am" / "tensorboard").glob("events*"))))
    events.Reload()
    for unit in ("senone", "monophone", "subword"):
        values = [e.value for e in events.Scalars(f"valid_kd_{unit}_loss")]
        assert len(values) == 3 and values[-1] < values[0], (unit, values)
    feats = torch.randn(1, 100, 80)
    scores, lens = model.senone_scores(feats, torch.tensor([100]))
    assert scores.shape[1] == int(lens[0])


def test_kd_losses_by_hand():
    import math

    import torch

    from espnet_distill.kd.losses import kd_kl_sum, label_interpolation_sum

    student = torch.tensor([[[1.0, 0.0, -1.0], [0.0, 2.0, 0.0], [5.0, 5.0, 5.0]]])  # (1, 3, 3)
    teacher = torch.log(torch.tensor([[[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]]))
    mask = torch.tensor([[True, True, False]])  # the third frame has no teacher (silence)

    def softmax(xs, t):
        e = [math.exp(x / t) for x in xs]
        return [v / sum(e) for v in e]

    def kl(q, p):
        return sum(a * math.log(a / b) for a, b in zip(q, p, strict=True))

    for t in (1.0, 2.0):
        expected = 0.0
        for f in range(2):
            q = softmax(teacher[0, f].tolist(), t)
            p = softmax(student[0, f].tolist(), t)
            expected += t * t * kl(q, p)
        assert float(kd_kl_sum(student, teacher, mask, t)) == pytest.approx(expected, rel=1e-5)

    # label interpolation, T = 1: (1 - w) CE(one-hot) + w KL on teacher frames, CE elsewhere
    targets = torch.tensor([[0, 2, 1]])
    w = 0.3
    expected = 0.0
    for f in range(3):
        p = softmax(student[0, f].tolist(), 1.0)
        ce = -math.log(p[targets[0, f]])
        if mask[0, f]:
            q = softmax(teacher[0, f].tolist(), 1.0)
            expected += (1 - w) * ce + w * kl(q, p)
        else:
            expected += ce
    got = label_interpolation_sum(student, targets, teacher, mask, w)
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # and its gradient equals that of the cross-entropy to the mixed target (KL = CE - entropy)
    s1 = student.clone().requires_grad_()
    label_interpolation_sum(s1, targets, teacher, mask, w).backward()
    s2 = student.clone().requires_grad_()
    mixed = (1 - w) * torch.nn.functional.one_hot(targets, 3).float() + w * teacher.exp()
    mixed[0, 2] = torch.nn.functional.one_hot(targets[0, 2], 3).float()
    (-(mixed * s2.log_softmax(-1)).sum()).backward()
    torch.testing.assert_close(s1.grad, s2.grad)
    with pytest.raises(ValueError, match="temperature must be positive"):
        kd_kl_sum(student, teacher, mask, 0.0)


def test_lm_teacher_gives_each_frame_its_token_prediction():
    import torch

    from espnet_distill.kd.teacher import LmTeacher
    from espnet_distill.lm.unit_lm import UnitLM

    torch.manual_seed(0)
    lm = UnitLM(6, "lstm", {"unit": 16, "nlayers": 1})
    teacher = LmTeacher(lm, silence={0})
    frames = torch.tensor([[0, 3, 3, 5, 0, 5, 2, 2], [4, 4, 1, -1, -1, -1, -1, -1]])
    log_probs, mask = teacher(frames)
    assert mask.tolist() == [
        [False, True, True, True, False, True, True, True],
        [True, True, True, False, False, False, False, False],
    ]
    # tokens: [3, 5, 5, 2] and [4, 1]; frame -> its token's LM prediction given the tokens before
    expected = lm.next_unit_log_probs(
        torch.tensor([[3, 5, 5, 2], [4, 1, -1, -1]]), torch.tensor([4, 2])
    )
    for b, row in enumerate([[None, 0, 0, 1, None, 2, 3, 3], [0, 0, 1]]):
        for f, k in enumerate(row):
            if k is not None:
                torch.testing.assert_close(log_probs[b, f], expected[b, k])
    assert not any(p.requires_grad for p in lm.parameters())  # a frozen teacher


def _kd_model(**extra):
    import torch

    from espnet_distill.models.acoustic_model import AcousticModel

    torch.manual_seed(0)
    conf = {
        "output_size": 16,
        "attention_heads": 2,
        "linear_units": 32,
        "num_blocks": 3,
        "input_layer": "conv2d",
        "dropout_rate": 0.0,
        "positional_dropout_rate": 0.0,
        "attention_dropout_rate": 0.0,
    }
    return AcousticModel(
        vocab_size=7,
        input_size=20,
        encoder_conf=conf,
        num_senones=5,
        kd_heads={
            "monophone": {"num_units": 4, "layer": 1, "temperature": 2.0},
            "subword": {"num_units": 6, "layer": 3},
        },
        **extra,
    )


def _kd_batch():
    import torch

    feats = torch.randn(2, 41, 20)
    lens = torch.tensor([41, 33])
    ys, ys_lens = torch.tensor([[1, 2, 3], [4, 5, -1]]), torch.tensor([3, 2])
    senones = torch.randint(0, 5, (2, 41))
    senones[1, 33:] = -1

    def teacher(v):
        lp = torch.randn(2, 41, v).log_softmax(-1)
        mask = torch.rand(2, 41) > 0.3
        mask[1, 33:] = False
        return lp, mask

    return (
        feats,
        lens,
        ys,
        ys_lens,
        senones,
        {"monophone": teacher(4), "subword": teacher(6), "senone": teacher(5)},
    )


def test_kd_heads_train_only_the_layers_below_them():
    """A head at block 1 reaches block 1 and the front-end only; no KD loss touches the main
    outputs (their targets and weights stay the hard labels')."""
    import torch

    model = _kd_model()
    feats, lens, ys, ys_lens, senones, teachers = _kd_batch()
    out = model(feats, lens, ys, ys_lens, senones, teachers)
    assert {"ctc", "senone", "kd_monophone", "kd_subword", "loss"} <= set(out)
    out["kd_monophone"].backward()

    def touched(module):
        return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())

    enc = model.encoder
    assert touched(model.kd_heads["monophone"]) and touched(enc.encoders[0]) and touched(enc.embed)
    assert not touched(enc.encoders[1]) and not touched(enc.encoders[2])
    assert not touched(model.ctc) and not touched(model.senone_head)
    assert not touched(model.kd_heads["subword"])
    # the main losses do not depend on the teachers
    with torch.no_grad():
        again = model(feats, lens, ys, ys_lens, senones, {})
    for name in ("ctc", "senone"):
        torch.testing.assert_close(again[name], out[name].detach())


def test_kd_head_loss_is_the_masked_kl_of_its_block_output():
    import torch

    from espnet_distill.kd.losses import kd_kl_sum

    model = _kd_model().eval()
    feats, lens, ys, ys_lens, senones, teachers = _kd_batch()
    out = model(feats, lens, ys, ys_lens, senones, teachers)
    _, enc_lens, layers = model.encode_layers(feats, lens)
    logits, out_lens = model.kd_heads["monophone"](layers[1], enc_lens)
    n = logits.size(1)
    lp, mask = teachers["monophone"]
    valid = torch.arange(n)[None, :] < out_lens[:, None]
    expected = kd_kl_sum(logits, lp[:, :n], mask[:, :n] & valid, 2.0) / (2 * 4)
    torch.testing.assert_close(out["kd_monophone"], expected)


def test_label_interpolation_replaces_the_senone_cross_entropy():
    import torch

    from espnet_distill.kd.losses import label_interpolation_sum

    model = _kd_model(label_interpolation={"weight": 0.4}).eval()
    feats, lens, ys, ys_lens, senones, teachers = _kd_batch()
    out = model(feats, lens, ys, ys_lens, senones, teachers)
    enc, enc_lens = model.encode(feats, lens)
    logits, out_lens = model.senone_head(enc, enc_lens)
    n = logits.size(1)
    valid = torch.arange(n)[None, :] < out_lens[:, None]
    lp, mask = teachers["senone"]
    expected = label_interpolation_sum(
        logits, senones[:, :n].masked_fill(~valid, -1), lp[:, :n], mask[:, :n] & valid, 0.4
    ) / (2 * 4)
    torch.testing.assert_close(out["senone"], expected)
    with pytest.raises(ValueError, match="needs the senone teacher"):
        model(feats, lens, ys, ys_lens, senones, {})


def test_ablation_configs_resolve_through_their_base():
    """Every KD ablation config builds; each has exactly the outputs its name says."""
    from espnet_distill.asr.trainer import DEFAULT_CONFIG
    from espnet_distill.config import load_config, merge_config
    from espnet_distill.models.acoustic_model import build_model, kd_heads_of

    from .conftest import REPO

    conf = REPO / "egs" / "synth" / "asr1" / "conf"
    expected = {
        "none": set(),
        "label_interp": set(),
        "aux_senone": {"senone"},
        "aux_monophone": {"monophone"},
        "aux_subword": {"subword"},
        "hier": {"senone", "monophone", "subword"},
        "hier_no_senone": {"monophone", "subword"},
        "hier_no_monophone": {"senone", "subword"},
        "hier_no_subword": {"senone", "monophone"},
    }
    sizes = {"senone": 50, "monophone": 40, "subword": 100}
    for name, heads in expected.items():
        cfg = merge_config(DEFAULT_CONFIG, load_config(conf / f"train_kd_{name}.yaml"))
        assert set(kd_heads_of(cfg["model"])) == heads, name
        assert bool(cfg["model"].get("label_interpolation")) == (name == "label_interp")
        model = build_model(cfg, 100, 50, sizes)
        assert set(model.kd_heads) == heads
    hier = load_config(conf / "train_kd_hier.yaml")["model"]["kd_heads"]
    assert hier["senone"]["layer"] < hier["monophone"]["layer"] < hier["subword"]["layer"]


def test_config_base_loops_and_bad_yaml_are_named(tmp_path):
    from espnet_distill.config import load_config

    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ValueError, match=r"a.yaml: 'base' chain loops"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ValueError, match=r"c.yaml: not valid YAML"):
        load_config(tmp_path / "c.yaml")


def _fake_decode(d, errors, words, name):
    """A scored decode dir as stage 9 writes it (wer.json, per_utt.tsv)."""
    import json

    score = d / "score"
    score.mkdir(parents=True)
    rows = ["id\tref_words\tcorr\tsub\tdel\tins"]
    rows += [
        f"u{i}\t{w}\t{w - e}\t{e}\t0\t0" for i, (e, w) in enumerate(zip(errors, words, strict=True))
    ]
    (score / "per_utt.tsv").write_text("\n".join(rows) + "\n")
    err = 100.0 * sum(errors) / sum(words)
    (score / "wer.json").write_text(
        json.dumps({"err": err, "ci_low": err - 2, "ci_high": err + 2, "name": name})
    )


def test_kd_ablation_table_against_the_baseline(tmp_path, capsys):
    import numpy as np

    from espnet_distill.bin import kd_ablation
    from espnet_distill.score.wer import paired_bootstrap

    rng = np.random.default_rng(0)
    words = rng.integers(5, 15, size=40)
    base = rng.integers(1, 5, size=40)
    # per seed: kd_hier gains 1 error an utterance with seed 1, 2 with seed 2
    systems = {
        "kd_none": (base, base),
        "kd_hier": (np.maximum(base - 1, 0), np.maximum(base - 2, 0)),
        "kd_li": (base, base),
    }
    for tag, per_seed in systems.items():
        for seed, errs in zip((1, 2), per_seed, strict=True):
            for part in ("dev-clean", "test-clean"):
                _fake_decode(
                    tmp_path / f"am_{tag}_seed{seed}" / f"decode_{part}_hclg", errs, words, part
                )
    out = tmp_path / "kd_ablation"
    argv = [
        "--exp-dir",
        str(tmp_path),
        "--baseline",
        "kd_none",
        "--tags",
        "kd_hier",
        "kd_li",
        "--seeds",
        "1",
        "2",
        "--methods",
        "hclg",
        "--out-dir",
        str(out),
    ]
    assert kd_ablation.main(argv) == 0
    table = (out / "table.md").read_text()
    rows = {ln.split("|")[1]: ln.split("|") for ln in table.splitlines() if ln.startswith("|kd_")}
    assert rows["kd_none"][4] == "baseline"
    # paired over both seeds: the utterance errors of the two seeds are pooled
    hier = np.concatenate(systems["kd_hier"])
    expected = paired_bootstrap(np.tile(base, 2), hier, np.tile(words, 2))
    assert rows["kd_hier"][4] == f"{expected['delta']:+.1f}" and float(rows["kd_hier"][6]) == 0.0
    assert rows["kd_li"][4] == "+0.0" and float(rows["kd_li"][6]) == 1.0
    # mean ± seed spread of the WERs, and the detectable difference from the per-seed deltas'
    # spread (sd / sqrt(2) over 2 seeds) and the test set's: 2.80 x their root sum of squares
    wer = [100 * e.sum() / words.sum() for e in systems["kd_hier"]]
    assert rows["kd_hier"][2].startswith(f"{np.mean(wer):.1f} ± {np.std(wer, ddof=1):.1f} (")
    base_wer = 100 * base.sum() / words.sum()
    seed_sd = np.std([w - base_wer for w in wer], ddof=1)
    se = np.sqrt(seed_sd**2 / 2 + expected["delta_se"] ** 2)
    assert float(rows["kd_hier"][7]) == pytest.approx(2.8016 * se, abs=0.051)
    assert float(rows["kd_li"][7]) == 0.0  # identical systems: no spread at all
    assert "Smallest detectable difference here: " in table
    assert (out / "ablation.png").stat().st_size > 1000
    # a missing decode is named
    import shutil

    shutil.rmtree(tmp_path / "am_kd_li_seed2" / "decode_test-clean_hclg")
    assert kd_ablation.main(argv) == 1
    assert "am_kd_li_seed2/decode_test-clean_hclg" in capsys.readouterr().err


def test_results_md_includes_the_ablation_table(tmp_path):
    from espnet_distill.score.results import write_results

    (tmp_path / "kd_ablation").mkdir()
    (tmp_path / "kd_ablation" / "table.md").write_text("### hclg, test-clean\n|kd_hier|27.0|\n")
    text = write_results(tmp_path, tmp_path / "RESULTS.md", "t")
    assert "## Cross-modal KD ablation" in text and "|kd_hier|27.0|" in text


def test_transformer_unit_lm_is_causal_and_normalised():
    import torch

    from espnet_distill.lm.unit_lm import UnitLM

    torch.manual_seed(0)
    lm = UnitLM(
        5,
        "transformer",
        {"embed_unit": 16, "att_unit": 16, "head": 2, "unit": 32, "layer": 2, "dropout_rate": 0.0},
    ).eval()
    units = torch.tensor([[0, 1, 2, 3, 4]])
    logp = lm.next_unit_log_probs(units, torch.tensor([5]))
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(1, 5))
    changed = units.clone()
    changed[0, 3] = 0
    # prediction k sees units < k: positions 0-3 unchanged when unit 3 changes
    torch.testing.assert_close(
        lm.next_unit_log_probs(changed, torch.tensor([5]))[0, :4], logp[0, :4]
    )
    nll, n = lm.nll(units, torch.tensor([5]))
    assert n == 6 and nll > 0  # five units and <eos>
    with pytest.raises(ValueError, match="unknown LM architecture 'gru2'"):
        UnitLM(5, "gru2")
    with pytest.raises(ValueError, match="unit id 7 outside the LM's 5 units"):
        lm.nll(torch.tensor([[7]]), torch.tensor([1]))
