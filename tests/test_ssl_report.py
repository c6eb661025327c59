"""ssl1 results: the table's rows from probe results, and each paper's claim read off them."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from espnet_distill.score.wer import bootstrap_ci, paired_bootstrap
from espnet_distill.ssl.report import (
    above_fbank,
    above_fbank_table,
    markdown_table,
    paired_significance,
    paper_claims,
    read_test_scores,
    results_rows,
    score_interval,
)

# upstream, parameters, CPU seconds, then test and dev scores: ASR WER, PR PER, SID accuracy.
# FBANK (the features alone) worst on every task.
# DKD: better ASR than KD on test, worse on dev. Deep: better on ASR, not on PR; wide: better on
# SID on dev only.
UPSTREAMS = """
fbank                 0  0.1   50 52   30 31   60 61
teacher       8_000_000  4.0   40 42   20 21   90 88
distilhubert  2_000_000  1.0   45 47   22 23   85 84
lstm_kd       1_000_000  0.5   44 45   25 26   70 71
lstm_dkd      1_000_000  0.5   43 46   24 25   72 70
deep          2_000_000  1.6   41 43   23 24   80 79
wide          2_000_000  0.8   48 49   22 23   78 82
"""
ROWS = [line.split() for line in UPSTREAMS.strip().splitlines()]
PARAMS = {name: int(params) for name, params, *_ in ROWS}
SECONDS = {name: float(seconds) for name, _, seconds, *_ in ROWS}
SCORES = {  # upstream: {task: (metric, test, dev)}
    name: {
        task: (metric, float(scores[2 * k]), float(scores[2 * k + 1]))
        for k, (task, metric) in enumerate([("asr", "WER"), ("pr", "PER"), ("sid", "accuracy")])
    }
    for name, _, _, *scores in ROWS
}


def _rows(tmp_path):
    for name, tasks in SCORES.items():
        for task, (metric, test, dev) in tasks.items():
            d = tmp_path / name / task
            d.mkdir(parents=True)
            (d / "result.yaml").write_text(
                yaml.safe_dump({"metric": metric, "test": test, "dev": dev})
            )
    return results_rows(list(SCORES), PARAMS, SECONDS, tmp_path, ["asr", "pr", "sid"])


def test_rows_hold_the_ratios_and_scores(tmp_path):
    rows = {r["upstream"]: r for r in _rows(tmp_path)}
    assert rows["distilhubert"]["params_vs_teacher"] == 0.25
    assert rows["distilhubert"]["speedup_vs_teacher"] == 4.0
    assert rows["wide"]["sid"] == {"metric": "accuracy", "test": 78.0, "dev": 82.0}
    table = markdown_table(list(rows.values()), ["asr", "pr", "sid"])
    assert "|lstm_dkd|1.00|0.12|8.0x|43.0 (46.0)|24.0 (25.0)|72.0 (70.0)|" in table


def test_the_asr_probes_wer_gets_its_own_column(tmp_path):
    """ASR results carrying the WER of their CER-chosen epoch add a column; rows without it
    show a dash."""
    for name, wer in (("teacher", {"dev": 95.5, "test": 97.3}), ("distilhubert", None)):
        d = tmp_path / name / "asr"
        d.mkdir(parents=True)
        result = {"metric": "CER", "test": 40.0, "dev": 42.0, **({"wer": wer} if wer else {})}
        (d / "result.yaml").write_text(yaml.safe_dump(result))
    rows = results_rows(["teacher", "distilhubert"], PARAMS, SECONDS, tmp_path, ["asr", "pr"])
    table = markdown_table(rows, ["asr", "pr"]).splitlines()
    assert table[0].endswith("|ASR CER test (dev)|ASR WER test (dev)|PR  test (dev)|")
    assert table[2].endswith("|40.0 (42.0)|97.3 (95.5)|-|")
    assert table[3].endswith("|40.0 (42.0)|-|-|")


def test_further_test_sets_get_their_own_columns(tmp_path):
    """test-other (the held-out engine) scored by the ASR probe: its CER and WER beside
    test-clean's; an upstream probed without it shows dashes."""
    for name, other in (("teacher", {"test-other": {"test": 61.5, "wer": 99.0}}), ("wide", None)):
        d = tmp_path / name / "asr"
        d.mkdir(parents=True)
        result = {"metric": "CER", "test": 40.0, "dev": 42.0, "wer": {"dev": 95.5, "test": 97.3}}
        (d / "result.yaml").write_text(yaml.safe_dump({**result, "other_tests": other}))
    rows = results_rows(["teacher", "wide"], PARAMS, SECONDS, tmp_path, ["asr"])
    table = markdown_table(rows, ["asr"]).splitlines()
    assert table[0].endswith(
        "|ASR CER test (dev)|ASR WER test (dev)|ASR CER test-other|ASR WER test-other|"
    )
    assert table[2].endswith("|40.0 (42.0)|97.3 (95.5)|61.5|99.0|")
    assert table[3].endswith("|40.0 (42.0)|97.3 (95.5)|-|-|")


def test_claims_follow_the_direction_of_each_comparison(tmp_path):
    claims = paper_claims(
        _rows(tmp_path), {"distilhubert": 2, "deep": 4, "wide": 1}, ["asr", "pr", "sid"]
    )
    text = "\n".join(claims)
    # first, whether the teacher holds more than its input features (FBANK is worst here)
    assert claims[0].startswith("- The teacher above FBANK")
    assert (
        "ASR WER teacher 40.0 vs fbank 50.0 (dev 42.0 vs 52.0): holds on test and dev" in claims[0]
    )
    assert "SID accuracy teacher 90.0 vs fbank 60.0 (dev 88.0 vs 61.0): holds on test" in claims[0]
    assert "75% fewer parameters, 4.0x the teacher's speed" in claims[1]
    lstm_dkd = next(c for c in claims if c.startswith("- lstm_dkd vs DistilHuBERT"))
    assert "1.00M vs 2.00M: holds" in lstm_dkd
    assert (
        "ASR WER lstm_dkd 43.0 vs distilhubert 45.0 (dev 46.0 vs 47.0): holds on test and dev"
        in lstm_dkd
    )
    dkd = next(c for c in claims if c.startswith("- DKD vs KD"))
    assert "ASR WER lstm_dkd 43.0 vs lstm_kd 44.0 (dev 46.0 vs 45.0): holds on test only" in dkd
    assert "PR PER lstm_dkd 24.0 vs lstm_kd 25.0 (dev 25.0 vs 26.0): holds on test and dev" in dkd
    assert (
        "SID accuracy lstm_dkd 72.0 vs lstm_kd 70.0 (dev 70.0 vs 71.0): holds on test only" in dkd
    )
    deep = next(c for c in claims if c.startswith("- Deep vs wide"))
    assert "deep: 4 layers, wide: 1" in deep
    assert "ASR WER deep 41.0 vs wide 48.0 (dev 43.0 vs 49.0): holds on test and dev" in deep
    assert "PR PER deep 23.0 vs wide 22.0 (dev 24.0 vs 23.0): does not hold" in deep
    assert "SID accuracy wide 78.0 vs deep 80.0 (dev 82.0 vs 79.0): holds on dev only" in deep
    assert text.count("\n- ") == len(claims) - 1


def test_claims_without_their_upstreams_are_left_out(tmp_path):
    rows = [r for r in _rows(tmp_path) if r["upstream"] in ("teacher", "deep", "wide")]
    claims = paper_claims(rows, {"deep": 4, "wide": 1}, ["asr", "sid"])
    assert len(claims) == 1 and claims[0].startswith("- Deep vs wide")
    assert "PR" not in claims[0]


def _test_scores(tmp_path, name: str, task: str, errors: list[int], length: int = 10) -> None:
    d = tmp_path / name / task
    d.mkdir(parents=True, exist_ok=True)
    (d / "test_scores.tsv").write_text(
        "".join(f"u{i:03d}\t{e}\t{length}\n" for i, e in enumerate(errors))
    )


def test_claims_say_whether_the_test_difference_is_significant(tmp_path):
    """Paired bootstrap over the probes' per-utterance test errors: a consistent gain is
    significant, noise is not, and a consistent loss is called the opposite."""
    rows = _rows(tmp_path)
    rng = np.random.default_rng(0)
    _test_scores(tmp_path, "deep", "asr", [3] * 200)  # better on every utterance
    _test_scores(tmp_path, "wide", "asr", [5] * 200)
    noise = rng.integers(0, 6, size=200)
    _test_scores(tmp_path, "lstm_dkd", "pr", list(noise))
    _test_scores(tmp_path, "lstm_kd", "pr", list(np.roll(noise, 1)))  # same errors, shuffled
    _test_scores(tmp_path, "wide", "sid", [1] * 60 + [0] * 140, length=1)  # SID: wrong or right
    _test_scores(tmp_path, "deep", "sid", [1] * 20 + [0] * 180, length=1)
    claims = "\n".join(paper_claims(rows, {"deep": 4, "wide": 1}, ["asr", "pr", "sid"], tmp_path))
    # identical differences on every utterance: no spread, so any difference is detectable
    assert (
        "(dev 43.0 vs 49.0): holds on test and dev, on test significant (paired bootstrap, "
        "200 test utterances, p = 0.000, detectable 0.0)" in claims
    )
    expected = paired_bootstrap(np.roll(noise, 1), noise, np.full(200, 10), n_boot=2000)
    assert 0.05 < expected["p_not_better"] < 0.95
    # detectable: 2.80 x the paired bootstrap's spread (one seed: the test set's alone)
    assert (
        f"PR PER lstm_dkd 24.0 vs lstm_kd 25.0 (dev 25.0 vs 26.0): holds on test and dev, on "
        f"test not significant (paired bootstrap, 200 test utterances, "
        f"p = {expected['p_not_better']:.3f}, detectable {2.8016 * expected['delta_se']:.1f})"
    ) in claims
    assert (
        "SID accuracy wide 78.0 vs deep 80.0 (dev 82.0 vs 79.0): holds on dev only, on test "
        "the opposite is significant (paired bootstrap, 200 test utterances, p = 1.000, "
        "detectable "
    ) in claims
    # no per-utterance scores, or scores of different utterances: no significance claimed
    assert "ASR WER lstm_dkd 43.0 vs lstm_kd 44.0 (dev 46.0 vs 45.0): holds on test only;" in claims
    _test_scores(tmp_path, "lstm_kd", "asr", [1] * 10)
    _test_scores(tmp_path, "lstm_dkd", "asr", [1] * 11)
    assert paired_significance(tmp_path, "asr", "lstm_dkd", "lstm_kd") is None


def test_ties_do_not_make_the_opposite_significant(tmp_path):
    """Accuracy on a few dozen utterances: the claimed-better upstream never wins a resample
    (p_not_better = 1) but ties in the resamples that miss its 2 extra errors, (42/44)^44 = 13% of
    them: that is not a significant loss; identical scores are no difference at all."""
    right = [0] * 40
    _test_scores(tmp_path, "wide", "sid", [1, 1, 0, 0] + right, length=1)
    _test_scores(tmp_path, "deep", "sid", [0, 0, 0, 0] + right, length=1)
    verdict = paired_significance(tmp_path, "sid", "wide", "deep")
    assert verdict.startswith("not significant (paired bootstrap, 44 test utterances, p = 1.000,")
    r = paired_bootstrap(np.array([0] * 44), np.array([1, 1] + [0] * 42), np.ones(44), n_boot=2000)
    assert r["p_not_worse"] == pytest.approx((42 / 44) ** 44, abs=0.03)
    _test_scores(tmp_path, "deep", "sid", [1, 1, 0, 0] + right, length=1)
    assert paired_significance(tmp_path, "sid", "wide", "deep").startswith("not significant")
    # 5 extra errors: misses all five in (39/44)^44 = 0.5% of resamples: significantly worse
    _test_scores(tmp_path, "wide", "sid", [1] * 5 + [0] * 39, length=1)
    _test_scores(tmp_path, "deep", "sid", [0] * 44, length=1)
    verdict = paired_significance(tmp_path, "sid", "wide", "deep")
    assert verdict.startswith(
        "the opposite is significant (paired bootstrap, 44 test utterances, p = 1.000, detectable "
    )
    assert "; p of the opposite = 0.0" in verdict


def test_a_malformed_test_scores_line_names_the_file_and_line(tmp_path):
    bad = tmp_path / "test_scores.tsv"
    bad.write_text("u1\t2\t10\nu2 3 10\n")
    with pytest.raises(ValueError, match=r"test_scores.tsv:2: expected 'id<TAB>errors<TAB>length'"):
        read_test_scores(bad)


def test_score_interval_is_the_bootstrap_of_the_test_scores_in_the_metrics_terms(tmp_path):
    """Error rates: the utterance bootstrap of errors / length; accuracy: 100 minus the error
    rate's interval, flipped; none without the file."""
    errors = [0, 1, 3, 2, 5, 0, 1, 4] * 10
    _test_scores(tmp_path, "deep", "pr", errors)
    _test_scores(tmp_path, "deep", "sid", [e % 2 for e in errors], length=1)
    lengths = np.array([10] * len(errors))  # what _test_scores writes
    lo, hi = bootstrap_ci(np.array(errors), lengths)
    assert score_interval(tmp_path, "deep", "pr", "PER") == (lo, hi)
    sid_lo, sid_hi = bootstrap_ci(np.array([e % 2 for e in errors]), np.ones(len(errors)))
    assert score_interval(tmp_path, "deep", "sid", "accuracy") == (100 - sid_hi, 100 - sid_lo)
    assert score_interval(tmp_path, "wide", "pr", "PER") is None


def test_above_fbank_is_the_gain_in_the_metrics_direction_with_its_paired_test(tmp_path):
    """Error rates: FBANK's minus the upstream's; accuracy: the upstream's minus FBANK's; the
    interval and p are the paired bootstrap's of the per-utterance errors, turned into gains."""
    rows = _rows(tmp_path)
    rng = np.random.default_rng(0)
    fbank_errors = rng.integers(2, 8, size=150)
    teacher_errors = np.maximum(fbank_errors - rng.integers(0, 3, size=150), 0)
    _test_scores(tmp_path, "fbank", "pr", list(fbank_errors))
    _test_scores(tmp_path, "teacher", "pr", list(teacher_errors))
    gains = {
        (g["upstream"], g["task"]): g for g in above_fbank(rows, ["asr", "pr", "sid"], tmp_path)
    }
    assert ("fbank", "pr") not in gains and len(gains) == 6 * 3
    assert gains["teacher", "pr"]["gain"] == 10.0 and gains["teacher", "pr"]["dev_gain"] == 10.0
    assert gains["wide", "sid"]["gain"] == 18.0 and gains["wide", "asr"]["gain"] == 2.0
    ref = paired_bootstrap(fbank_errors, teacher_errors, np.full(150, 10), n_boot=2000)
    g = gains["teacher", "pr"]
    assert (g["low"], g["high"]) == pytest.approx((-ref["delta_high"], -ref["delta_low"]), abs=0.01)
    assert g["p"] == ref["p_not_better"] and g["utterances"] == 150 and g["high"] > g["low"] > 0
    assert "p" not in gains["teacher", "asr"]  # no per-utterance scores: no test
    table = above_fbank_table(list(gains.values()), ["asr", "pr", "sid"])
    assert table.splitlines()[0] == (
        "|upstream|ASR WER above FBANK: test [95% CI] (dev)|PR PER above FBANK: test [95% CI] "
        "(dev)|SID accuracy above FBANK: test [95% CI] (dev)|"
    )
    teacher = next(x for x in table.splitlines() if x.startswith("|teacher|"))
    assert teacher.startswith(
        f"|teacher|+10.0 (+10.0)|+10.0 [{g['low']:+.1f}, {g['high']:+.1f}], p < 0.001 (+10.0)|"
    )
    assert above_fbank([r for r in rows if r["upstream"] != "fbank"], ["asr"]) == []


def test_distilhuberts_claim_says_how_much_of_the_teachers_gain_over_fbank_it_keeps(tmp_path):
    """Teacher 10 WER points above FBANK, DistilHuBERT 5: half of it kept."""
    claims = paper_claims(_rows(tmp_path), {}, ["asr", "pr", "sid"])
    distil = next(c for c in claims if c.startswith("- DistilHuBERT"))
    assert "ASR WER 45.0 vs 40.0 (50% of the teacher's 10.0 points above FBANK kept)" in distil
    assert "PR PER 22.0 vs 20.0 (80% of the teacher's 10.0 points above FBANK kept)" in distil
