"""WER scoring against independent implementations (jiwer) and hand-checked examples."""

from __future__ import annotations

import random

import jiwer
import kaldialign
import numpy as np
import pytest

from espnet_distill.score.wer import bootstrap_ci, sclite_block, score_corpus, score_utterance


def _random_words(rng: random.Random, n: int) -> str:
    vocab = ["A", "B", "C", "D", "EE", "FFF"]
    return " ".join(rng.choice(vocab) for _ in range(n))


@pytest.mark.parametrize("seed", range(5))
def test_corpus_wer_equals_jiwer_on_random_strings(seed):
    rng = random.Random(seed)
    refs = {f"u{i}": _random_words(rng, rng.randint(1, 15)) for i in range(40)}
    hyps = {u: _random_words(rng, rng.randint(0, 15)) for u in refs}
    tot = score_corpus(refs, hyps).totals()
    ids = sorted(refs)
    # jiwer cannot take empty hypotheses in a list; score those by hand as all deletions.
    out = jiwer.process_words(
        [refs[u] for u in ids], [hyps[u] if hyps[u] else "<empty>" for u in ids]
    )
    n_words = sum(len(refs[u].split()) for u in ids)
    errors = out.substitutions + out.deletions + out.insertions
    # Each "<empty>" placeholder aligns as 1 substitution + (n-1) deletions: still n errors.
    assert tot["n_err"] == errors
    assert tot["err"] == pytest.approx(100.0 * errors / n_words)
    assert tot["wrd"] == n_words


def test_hand_checked_alignment_and_sclite_block():
    u = score_utterance(
        "utt1", "THE CAT SAT ON THE MAT".split(), "THE BAT SAT THE MAT TODAY".split()
    )
    assert (u.corr, u.sub, u.dele, u.ins) == (4, 1, 1, 1)
    block = sclite_block(u)
    assert "Scores: (#C #S #D #I) 4 1 1 1" in block
    ref_line = next(line for line in block.splitlines() if line.startswith("REF:"))
    hyp_line = next(line for line in block.splitlines() if line.startswith("HYP:"))
    assert ref_line.split()[1:] == ["the", "CAT", "sat", "ON", "the", "mat", "*****"]
    assert hyp_line.split()[1:] == ["the", "BAT", "sat", "**", "the", "mat", "TODAY"]


def test_missing_hypothesis_counts_as_deletions():
    s = score_corpus({"a": "X Y", "b": "Z"}, {"a": "X Y"})
    assert s.missing_hyps == ["b"]
    assert s.totals()["n_err"] == 1


def test_bootstrap_interval_brackets_the_estimate_and_is_seeded():
    rng = np.random.default_rng(0)
    words = rng.integers(5, 30, size=200)
    errors = rng.binomial(words, 0.2)
    wer = 100 * errors.sum() / words.sum()
    lo, hi = bootstrap_ci(errors, words, seed=3)
    assert lo < wer < hi
    assert (lo, hi) == bootstrap_ci(errors, words, seed=3)
    # Width shrinks roughly with sqrt(n): 4x the utterances, about half the width.
    lo4, hi4 = bootstrap_ci(np.tile(errors, 4), np.tile(words, 4), seed=3)
    assert 0.35 < (hi4 - lo4) / (hi - lo) < 0.65


def test_paired_bootstrap_properties():
    import numpy as np

    from espnet_distill.score.wer import paired_bootstrap

    rng = np.random.default_rng(1)
    words = rng.integers(5, 20, size=60)
    base = rng.integers(0, 6, size=60)
    same = paired_bootstrap(base, base, words)
    assert same["delta"] == 0.0 and same["p_not_better"] == 1.0  # never better than itself
    better = paired_bootstrap(base, np.maximum(base - 2, 0), words)
    assert better["delta"] < 0 and better["delta_high"] < 0 and better["p_not_better"] == 0.0
    # one error fixed in one utterance of 60: the system is not better exactly in the resamples
    # that miss that utterance, probability (59/60)^60 = 0.364
    one = base.copy()
    one[np.argmax(base)] -= 1
    small = paired_bootstrap(base, one, words)
    assert small["delta"] == pytest.approx(-100.0 / words.sum())
    assert small["delta_low"] <= small["delta"] <= small["delta_high"] <= 0.0
    assert small["p_not_better"] == pytest.approx((59 / 60) ** 60, abs=0.05)
    # never worse in any resample; a tie counts as both not better and not worse
    assert better["p_not_worse"] == small["p_not_worse"] == same["p_not_worse"] == 1.0
    assert paired_bootstrap(one, base, words)["p_not_worse"] == small["p_not_better"]
    with pytest.raises(ValueError, match="same non-empty utterance list"):
        paired_bootstrap(base, base[:-1], words)


@pytest.mark.parametrize(
    ("ref", "hyp", "counts"),
    [
        (["x", "*"], ["x"], (1, 0, 1, 0)),  # a literal "*" deleted: it is a word, not a gap
        (["x"], ["x", "*"], (1, 0, 0, 1)),
        (["*"], ["*"], (1, 0, 0, 0)),
        (["a"], ["*"], (0, 1, 0, 0)),
    ],
)
def test_a_literal_gap_symbol_is_a_word(ref, hyp, counts):
    u = score_utterance("u", ref, hyp)
    assert (u.corr, u.sub, u.dele, u.ins) == counts
    # the independent count: jiwer's edit operations
    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    assert (out.hits, out.substitutions, out.deletions, out.insertions) == counts
    assert f"Scores: (#C #S #D #I) {' '.join(map(str, counts))}" in sclite_block(u)


def test_empty_references_report_their_errors_not_zero_percent(tmp_path, caplog):
    from espnet_distill.score.wer import write_report

    score = score_corpus({"a": "", "b": ""}, {"a": "X", "b": "Y"})
    tot = score.totals()
    assert tot["n_err"] == 2 and tot["wrd"] == 0
    assert tot["err"] == tot["ins"] == float("inf")  # 2 errors / 0 words, never 0.0%
    with caplog.at_level("WARNING"):
        written = write_report(score, tmp_path, "empty")
    assert "no reference words, 2 inserted words" in caplog.text
    assert (tmp_path / "result.txt").read_text().startswith("%WER inf [ 2 / 0, 2 ins")
    assert written["ci_low"] == written["ci_high"] == float("inf")
    # nothing to get wrong and nothing wrong: 0%
    assert score_corpus({"a": ""}, {"a": ""}).totals()["err"] == 0.0


@pytest.mark.parametrize(
    ("decode_dir", "test_set"),
    [
        ("decode_test-clean_beam_lm", "test-clean"),
        ("decode_test-clean_greedy", "test-clean"),
        ("decode_dev_clean_2_hclg", "dev_clean_2"),
        ("decode_test-other_tlg", "test-other"),
        ("decode_test-other_tlg_k2", "test-other"),
        ("decode_dev_clean_2_hclg_k2", "dev_clean_2"),
    ],
)
def test_results_name_the_test_set_of_a_decode_dir(tmp_path, decode_dir, test_set):
    """A wer.json without its name (older runs): the set comes from the decode dir's name."""
    import json

    from espnet_distill.score.results import collect

    score = tmp_path / "am" / decode_dir / "score"
    score.mkdir(parents=True)
    (score / "wer.json").write_text(json.dumps({"err": 1.0}))
    assert list(collect(tmp_path)) == [test_set]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bootstrap_interval_agrees_with_kaldialigns_compute_wer_bootci(seed):
    """kaldialign.bootstrap_wer_ci (Kaldi's compute-wer-bootci: 10k resamples, mean +- 1.96 sd)
    on utterances with known error counts. Ours (1000 resamples, percentiles) works on the
    per-utterance counts every scorer here has (CER, PER, SID errors), so it stays; the two agree
    to 0.25 points on these data (5 seeds), tested at 0.6. Resampling errors and words apart, or
    not at all, moves an end by 1-3 points."""
    rng = np.random.default_rng(seed)
    words = rng.integers(5, 25, 80)
    errors = rng.binomial(words, 0.3)
    refs = [["w"] * int(w) for w in words]
    hyps = [["x"] * int(e) + ["w"] * int(w - e) for w, e in zip(words, errors, strict=True)]
    theirs = kaldialign.bootstrap_wer_ci(refs, hyps, replications=10000, seed=seed)
    lo, hi = bootstrap_ci(errors, words, n_boot=1000, seed=seed)
    assert lo == pytest.approx(100 * theirs["ci95min"], abs=0.6)
    assert hi == pytest.approx(100 * theirs["ci95max"], abs=0.6)


def test_results_compare_k2_and_rescored_systems_with_their_partners(tmp_path):
    """RESULTS.md's partner table: tlg_k2 against tlg and tlg_k2_rescore against tlg_k2, each
    from scored decode dirs. The counts are known: the rescored system fixes 3 of 4 sentences'
    single error (20 words in all: 20% -> 5%) and shares one hypothesis with its partner."""
    from espnet_distill.score.results import partner_comparisons, write_results
    from espnet_distill.score.wer import write_report

    refs = {f"u{i}": "a b c d e" for i in range(4)}
    one_error = {u: "a b c d x" for u in refs}
    systems = {
        "tlg": one_error,
        "tlg_k2": one_error,
        "tlg_k2_rescore": {**refs, "u3": one_error["u3"]},
        "greedy": refs,  # no partner: not in the table
    }
    for method, hyps in systems.items():
        decode_dir = tmp_path / "am" / f"decode_dev_{method}"
        (decode_dir / "score").mkdir(parents=True)
        (decode_dir / "text").write_text("".join(f"{u} {h}\n" for u, h in hyps.items()))
        write_report(score_corpus(refs, hyps), decode_dir / "score", "dev")
    rows = [r for r in partner_comparisons(tmp_path) if r.startswith("|am/")]
    assert len(rows) == 2
    k2_row, rescore_row = (r.split("|")[1:-1] for r in rows)
    assert k2_row[:5] == ["am/decode_dev_tlg_k2", "decode_dev_tlg", "20.00", "20.00", "+0.00"]
    assert k2_row[-1] == "4/4 (100%)"
    assert rescore_row[:5] == [
        "am/decode_dev_tlg_k2_rescore",
        "decode_dev_tlg_k2",
        "20.00",
        "5.00",
        "-15.00",
    ]
    assert rescore_row[-1] == "1/4 (25%)"
    # significantly better: not better only on resamples without u0-u2, (1/4)^4 = 0.004 of them
    assert float(rescore_row[6]) < 0.02 and float(rescore_row[7]) == 1.0
    assert "## k2 vs kaldi-decoder" in write_results(tmp_path, tmp_path / "RESULTS.md", "t")
