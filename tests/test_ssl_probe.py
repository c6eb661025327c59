"""SUPERB-style probing (espnet_distill/ssl/probe.py)."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
import torch
import yaml
from lhotse import CutSet

from espnet_distill.data.features import kaldi_native_fbank
from espnet_distill.models.hubert import HubertModel
from espnet_distill.models.upstream import (
    FBANK,
    FbankUpstream,
    WeightedSum,
    load_upstream,
    upstream_parameters,
)
from espnet_distill.nn import greedy_ctc
from espnet_distill.ssl.probe import (
    chars_of,
    complete_lexicon,
    phones_of,
    run_probe,
    speaker_split,
    subset_hours,
    words_of_chars,
)

from .figures import figure
from .test_hubert import tiny_config


def test_weighted_sum_starts_as_the_mean_of_normalised_layers():
    layers = [torch.randn(2, 5, 8) * s + s for s in (1.0, 3.0, 10.0)]
    ws = WeightedSum(3)
    normed = [
        (x - x.mean(-1, keepdim=True)) / (x.var(-1, unbiased=False, keepdim=True) + 1e-5).sqrt()
        for x in layers
    ]
    torch.testing.assert_close(ws(layers), sum(normed) / 3, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        ws.weights.copy_(torch.tensor([0.0, 100.0, 0.0]))
    torch.testing.assert_close(ws(layers), normed[1], atol=1e-4, rtol=1e-4)


def test_ctc_greedy_collapses_repeats_and_blanks():
    ids = torch.tensor([[0, 3, 3, 0, 3, 2, 2, 0, 1]])
    log_probs = torch.nn.functional.one_hot(ids, 4).float().log()
    assert greedy_ctc(log_probs, torch.tensor([9])) == [[3, 3, 2, 1]]
    assert greedy_ctc(log_probs, torch.tensor([4])) == [[3]]


def test_symbols_of_text():
    assert chars_of("AB C") == ["A", "B", "|", "C"]
    assert words_of_chars(["|", "A", "B", "|", "|", "C"]) == "AB C"
    lexicon = {"AB": [["EY1_B", "B_E"], ["AH0"]], "C": [["S_S"]]}
    assert phones_of("AB C", lexicon) == ["EY1", "B", "S"]
    assert phones_of("AB D", lexicon) is None


def test_complete_lexicon_pronounces_new_words_like_the_lang_lexicon():
    """Words the lang lexicon lacks get CMUdict's first variant, else the G2P's; a word neither
    can pronounce is returned with its reason (its utterances are then skipped and counted)."""

    def g2p(words: list[str]) -> tuple[dict, dict]:
        assert "WORLD" not in words  # CMUdict has it: the G2P is asked only for the rest
        return {"ZORBLAX": ["Z", "AO", "R"]}, {"QXQ": "espeak-ng returned no phonemes"}

    lexicon = {"HELLO": [["HH", "AH", "L", "OW"]]}
    failed = complete_lexicon(lexicon, ["HELLO WORLD", "ZORBLAX QXQ WORLD"], g2p=g2p)
    assert failed == {"QXQ": "espeak-ng returned no phonemes"}
    assert lexicon["WORLD"] == [["W", "ER", "L", "D"]] and lexicon["ZORBLAX"] == [["Z", "AO", "R"]]
    assert lexicon["HELLO"] == [["HH", "AH", "L", "OW"]]  # the lang lexicon's own kept
    assert phones_of("HELLO ZORBLAX", lexicon) == ["HH", "AH", "L", "OW", "Z", "AO", "R"]
    assert phones_of("QXQ", lexicon) is None
    assert complete_lexicon(lexicon, ["HELLO WORLD"], g2p=g2p) == {}


def test_speaker_split_is_per_speaker_disjoint_and_seeded():
    speaker_of = {f"s{s}-u{u}": f"s{s}" for s in range(4) for u in range(10)}
    speaker_of["lone-u0"] = "lone"
    split = speaker_split(speaker_of, seed=3)
    parts = [set(split[k]) for k in ("train", "dev", "test")]
    assert sum(map(len, parts)) == len(speaker_of) and not (
        parts[0] & parts[1] or parts[1] & parts[2]
    )
    for s in range(4):
        assert sum(u.startswith(f"s{s}-") for u in split["test"]) == 1
    assert "lone-u0" in split["train"]
    assert speaker_split(speaker_of, seed=3) == split


def _random_upstream_and_speaker_splits(tiny_features):
    """A random tiny HuBERT and the tiny corpus split per speaker into train / dev / test."""
    torch.manual_seed(0)
    conv = [(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2
    upstream = HubertModel(dict(tiny_config(), extractor_conv_layer_config=conv))
    cuts = CutSet.from_file(tiny_features / "fbank" / "cuts_train-clean-100.jsonl.gz").to_eager()
    split = speaker_split(
        {c.id: c.supervisions[0].speaker for c in cuts}, seed=0, dev=0.25, test=0.25
    )
    splits = {
        k: cuts.filter(lambda c, ids=set(v): c.id in ids).to_eager() for k, v in split.items()
    }
    return upstream, cuts, splits


def test_probes_train_on_a_frozen_upstream(tiny_features, caplog):
    """The speaker-ID probe on a random upstream fits its training utterances far above chance;
    the ASR probe runs and scores CER and WER (a random upstream learns little). Held out, a
    random upstream's SID on 12 test utterances is at chance for some corpus seeds (measured
    2-3 of 12 right, docs/test_spread.md): recorded, not asserted."""
    upstream, cuts, splits = _random_upstream_and_speaker_splits(tiny_features)
    sid = run_probe(upstream, "sid", splits, {"epochs": 8, "lr": 0.01, "max_duration": 30})
    uncached = run_probe(
        upstream, "sid", splits, {"epochs": 8, "lr": 0.01, "max_duration": 30, "cache": False}
    )
    assert uncached["metric"] == "accuracy" and len(uncached["dev_by_epoch"]) == 8
    speakers = len({c.supervisions[0].speaker for c in cuts})
    assert sid["metric"] == "accuracy"
    chance = 100 / speakers
    figure("ssl.sid_probe_test_accuracy_over_chance", sid["test"] / chance, "none", "~1 (chance)")
    # scored on its own 24 training utterances after 40 epochs: measured 58-63% (6 speakers,
    # chance 17% +- 8); a probe that does not learn (no gradient, shuffled labels) stays near 17%
    train = {name: splits["train"] for name in ("train", "dev", "test")}
    fit = run_probe(upstream, "sid", train, {"epochs": 40, "lr": 0.03, "max_duration": 30})
    assert figure("ssl.sid_probe_train_accuracy", fit["test"], "> 35", "~17 (chance)") > 35
    assert abs(sum(sid["layer_weights"]) - 1) < 1e-2 and len(sid["layer_weights"]) == 4
    with caplog.at_level(logging.INFO, logger="espnet_distill.ssl.probe"):
        asr = run_probe(upstream, "asr", splits, {"epochs": 1, "max_duration": 30, "hidden": 16})
    assert asr["metric"] == "CER" and asr["test"] >= 0 and len(asr["dev_by_epoch"]) == 1
    assert set(asr["wer"]) == {"dev", "test"} and asr["wer"]["test"] >= 0
    # the CER counts letters: each test utterance's reference length is its text's, spaces out
    letters = {
        c.id: len(" ".join(s.text for s in c.supervisions).replace(" ", "")) for c in splits["test"]
    }
    assert {u: n for u, _, n in asr["test_utterances"]} == letters
    # per test utterance: (id, errors, reference length), which add up to the test score
    for result, count in ((asr, lambda e, n: e), (sid, lambda e, n: n - e)):
        ids, errors, lengths = zip(*result["test_utterances"], strict=True)
        assert sorted(ids) == sorted(c.id for c in splits["test"])
        assert round(100 * sum(map(count, errors, lengths)) / sum(lengths), 2) == result["test"]
    assert max(n for _, _, n in sid["test_utterances"]) == 1
    # progress: the cached layers, then one line an epoch with the dev score the result keeps
    assert f"train: {len(splits['train'])} utterances" in caplog.text
    assert "asr probe epoch 1/1: train loss" in caplog.text
    assert f"dev {asr['dev_by_epoch'][0]:.2f}; elapsed" in caplog.text


def test_probe_resumes_from_its_checkpoint_to_the_same_result(tiny_features, tmp_path, caplog):
    """A probe stopped after 1 of 4 epochs and rerun ends as one that ran 4 epochs at once."""
    upstream, _, splits = _random_upstream_and_speaker_splits(tiny_features)
    conf = {"lr": 0.01, "max_duration": 30}
    whole = run_probe(upstream, "sid", splits, {**conf, "epochs": 4})
    ckpt = tmp_path / "checkpoint.pt"
    first = run_probe(upstream, "sid", splits, {**conf, "epochs": 1}, checkpoint=ckpt)
    assert first["dev_by_epoch"] == whole["dev_by_epoch"][:1]
    # the checkpoint's best counts its own epoch (a kill right after it must not lose that epoch)
    state = torch.load(ckpt, weights_only=False)
    assert state["epochs_done"] == 1 and round(state["best"], 2) == state["history"][0]
    with caplog.at_level(logging.INFO, logger="espnet_distill.ssl.probe"):
        resumed = run_probe(upstream, "sid", splits, {**conf, "epochs": 4}, checkpoint=ckpt)
    assert "resuming after epoch 1" in caplog.text
    assert "sid probe epoch 1/4" not in caplog.text and "sid probe epoch 2/4" in caplog.text
    assert resumed == whole
    # killed after the last epoch's checkpoint, before result.yaml: the rerun only scores
    assert run_probe(upstream, "sid", splits, {**conf, "epochs": 4}, checkpoint=ckpt) == whole


def test_probe_refuses_a_checkpoint_chosen_on_another_metric(tiny_features, tmp_path):
    """An ASR checkpoint from before CER (no "metric": its epochs were chosen on WER) is not
    resumed into a CER probe: the error names the file and the two metrics."""
    upstream, _, splits = _random_upstream_and_speaker_splits(tiny_features)
    ckpt = tmp_path / "checkpoint.pt"
    conf = {"epochs": 1, "max_duration": 30, "hidden": 16}
    run_probe(upstream, "asr", splits, conf, checkpoint=ckpt)
    state = torch.load(ckpt, weights_only=False)
    assert state["metric"] == "CER"
    del state["metric"]
    torch.save(state, ckpt)
    message = f"{ckpt}: written by a probe selecting on WER, this one selects on CER"
    with pytest.raises(ValueError, match=re.escape(message)):
        run_probe(upstream, "asr", splits, {**conf, "epochs": 2}, checkpoint=ckpt)


def test_subset_hours_is_a_seeded_budget_of_audio():
    from lhotse.testing.dummies import dummy_cut

    cuts = CutSet.from_cuts(dummy_cut(i, duration=float(10 + i % 7)) for i in range(200))
    sub = subset_hours(cuts, 0.25, seed=1)  # 900 s of 2,590 s
    durations = sorted(c.duration for c in sub)
    total = sum(durations)
    assert total >= 900 and total - max(durations) < 900  # the budget, reached by the last cut
    assert [c.id for c in subset_hours(cuts, 0.25, seed=1)] == [c.id for c in sub]
    assert {c.id for c in subset_hours(cuts, 0.25, seed=2)} != {c.id for c in sub}
    assert len(subset_hours(cuts, 10.0)) == 200


def _kaldi_deltas(x: np.ndarray, window: int = 2) -> np.ndarray:
    """The delta formula (Kaldi, HTK): sum_n n (x[t+n] - x[t-n]) / (2 sum_n n^2), edges repeated."""
    padded = np.concatenate([x[:1].repeat(window, 0), x, x[-1:].repeat(window, 0)])
    t = len(x)
    num = sum(
        n * (padded[window + n : window + n + t] - padded[window - n : window - n + t])
        for n in range(1, window + 1)
    )
    return num / (2 * sum(n * n for n in range(1, window + 1)))


def test_fbank_upstream_is_kaldi_fbank_with_deltas_normalised_per_utterance():
    """SUPERB's FBANK row: kaldi-native-fbank, Kaldi's delta formula and per-utterance CMVN in
    numpy give the same 240 dims; an utterance padded in a batch gives its own frames."""
    fbank = load_upstream(FBANK)
    assert isinstance(fbank, FbankUpstream) and upstream_parameters(fbank) == 0
    g = torch.Generator().manual_seed(0)
    t = torch.arange(24000) / 16000
    tone = 0.3 * torch.sin(2 * np.pi * 300 * t) * (1 + torch.sin(2 * np.pi * 3 * t))
    long = (tone + 0.01 * torch.randn(24000, generator=g)).float()
    short = long[:9000].clone()
    batch = torch.stack([torch.nn.functional.pad(short, (0, 15000)), long])
    (states,), frames = fbank.hidden_states(batch, torch.tensor([9000, 24000]))
    assert states.shape == (2, 150, 240) and frames.tolist() == [56, 150]  # 100 frames a second
    for i, wave in enumerate((short, long)):
        static = kaldi_native_fbank(wave.numpy(), 16000)
        d1 = _kaldi_deltas(static)
        x = np.concatenate([static, d1, _kaldi_deltas(d1)], axis=1)
        ref = (x - x.mean(0)) / x.std(0)
        ours = states[i, : frames[i]].numpy()
        assert np.abs(ours - ref).max() < 1e-2, i  # normalised units; fbank agrees to 1e-3
    alone, _ = fbank.hidden_states(short[None])
    assert torch.equal(alone[0][0], states[0, :56])


def test_probe_ssl_takes_fbank_as_an_upstream_without_a_file(tiny_features, tmp_path):
    """stage 5's FBANK row: ``--upstream fbank`` is a name, not a missing file; its probe reads
    the one 240-dim state (a single layer weight of 1) and writes the usual result files."""
    from espnet_distill.bin.probe_ssl import main

    config = tmp_path / "probe.yaml"
    config.write_text("sid: {epochs: 1, lr: 0.01, max_duration: 30}\n")
    cuts = str(tiny_features / "fbank" / "cuts_train-clean-100.jsonl.gz")
    out = tmp_path / "probe" / "fbank" / "sid"
    args = ["--upstream", FBANK, "--task", "sid", "--config", str(config), "--out-dir", str(out)]
    assert main([*args, "--train-cuts", cuts, "--valid-cuts", cuts, "--test-cuts", cuts]) == 0
    result = yaml.safe_load((out / "result.yaml").read_text())
    assert result["upstream"] == "fbank" and result["layer_weights"] == [1.0]
    assert (out / "test_scores.tsv").read_text().count("\n") > 0


def test_probe_ssl_scores_further_test_sets_with_the_dev_chosen_epoch(tiny_features, tmp_path):
    """--other-test-cuts: each further set is scored by the same probe as test; given test-clean
    itself under another name, its score and per-utterance file are test's own. SID, which splits
    its own speakers, refuses them."""
    from espnet_distill.bin.probe_ssl import main

    config = tmp_path / "probe.yaml"
    config.write_text("asr: {epochs: 1, max_duration: 30, hidden: 16}\n")
    fbank = tiny_features / "fbank"
    test = str(fbank / "cuts_test-clean.jsonl.gz")
    out = tmp_path / "probe" / "fbank" / "asr"
    args = [
        *("--upstream", FBANK, "--task", "asr", "--config", str(config)),
        *("--train-cuts", str(fbank / "cuts_train-clean-100.jsonl.gz")),
        *("--valid-cuts", str(fbank / "cuts_dev-clean.jsonl.gz"), "--test-cuts", test),
    ]
    assert main([*args, "--out-dir", str(out), "--other-test-cuts", f"again={test}"]) == 0
    result = yaml.safe_load((out / "result.yaml").read_text())
    assert result["other_tests"] == {
        "again": {"test": result["test"], "wer": result["wer"]["test"]}
    }
    assert (out / "test_scores_again.tsv").read_text() == (out / "test_scores.tsv").read_text()
    sid = [*args[:3], "sid", *args[4:], "--out-dir", str(tmp_path / "sid")]
    assert main([*sid, "--other-test-cuts", f"again={test}"]) == 1
    assert main([*args, "--out-dir", str(tmp_path / "x"), "--other-test-cuts", "again"]) == 1
