"""kws_sv1 results: the table from results.json files, and the paper's findings read off it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from espnet_distill.kws_sv.report import (
    collect,
    kws_item,
    markdown_table,
    paired_difference,
    paper_claims,
    read_kws_predictions,
    read_sv_scores,
)
from espnet_distill.score.verification import equal_error_rate
from espnet_distill.score.wer import paired_bootstrap

RESULTS = {  # (upstream, mode, setup): results.json
    ("teacher", "frozen", "joint"): {"kws_accuracy": 80.0, "eer": 20.0, "min_dcf": 0.9},
    ("teacher", "finetuned", "joint"): {"kws_accuracy": 90.0, "eer": 10.0, "min_dcf": 0.7},
    ("teacher", "finetuned", "kws"): {"kws_accuracy": 91.0},
    ("student", "frozen", "joint"): {"kws_accuracy": 70.0, "eer": 12.0, "min_dcf": 0.8},
    ("student", "finetuned", "joint"): {"kws_accuracy": 88.5, "eer": 13.25, "min_dcf": 0.75},
}
PARAMS = {"teacher": 8_000_000, "student": 2_000_000, "fbank": 0}


def _rows(tmp_path):
    for (upstream, mode, setup), result in RESULTS.items():
        d = tmp_path / upstream / mode / setup
        d.mkdir(parents=True)
        blob = {**result, "upstream_parameters": PARAMS[upstream]}
        (d / "results.json").write_text(json.dumps(blob))
    return collect(tmp_path, ["teacher", "student"])


def test_collect_lists_what_exists(tmp_path, capsys):
    rows = _rows(tmp_path)
    assert len(rows) == len(RESULTS)
    assert "7 system(s) without results" in capsys.readouterr().err
    table = markdown_table(rows)
    assert "|student|2.00|finetuned|joint KWS+SV|88.50|13.25|0.750|-|" in table
    assert "|teacher|8.00|finetuned|KWS only|91.00|-|-|-|" in table


def test_findings_compare_student_with_teacher_and_finetuned_with_frozen(tmp_path):
    claims = paper_claims(_rows(tmp_path))
    assert len(claims) == 2
    assert claims[0].startswith("- student vs teacher, joint and fine-tuned")
    assert (
        "25% of the teacher's parameters, KWS accuracy -1.50 (88.50 vs 90.00), EER +3.25"
        in claims[0]
    )
    # teacher joint: both better fine-tuned; student joint: KWS better, EER worse (13.25 > 12)
    assert "better in 3 of 4 comparisons" in claims[1]
    assert "student joint EER 13.25 vs 12.00 (not)" in claims[1]
    assert "teacher joint KWS acc 90.00 vs 80.00;" in claims[1]


def _per_item_files(tmp_path) -> dict:
    """kws_predictions.txt and sv_scores.txt for the joint systems, their scores in results.json:
    200 KWS test utterances, 100 target and 300 non-target trials."""
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(100, bool), np.zeros(300, bool)]
    trials = [(f"e{i}", f"t{i}") for i in range(400)]
    wrong = {  # misclassified KWS test utterances of each joint system
        ("fbank", "frozen"): set(range(100)),
        ("teacher", "frozen"): set(range(40)),
        ("teacher", "finetuned"): set(range(20)),
        ("student", "frozen"): set(range(60)),
        ("student", "finetuned"): set(range(15, 38)),
    }
    separation = {
        ("fbank", "frozen"): 0.3,
        ("teacher", "frozen"): 1.0,
        ("teacher", "finetuned"): 4.0,
        ("student", "frozen"): 2.0,
        ("student", "finetuned"): None,
    }
    scores = {}
    for (upstream, mode), bad in wrong.items():
        d = tmp_path / upstream / mode / "joint"
        d.mkdir(parents=True)
        (d / "kws_predictions.txt").write_text(
            "".join(f"u{i:03d}\tyes\t{'no' if i in bad else 'yes'}\n" for i in range(200))
        )
        if (upstream, mode) == ("student", "finetuned"):  # the frozen one's scores, jittered
            s = scores["student", "frozen"] + rng.normal(0, 0.2, len(labels))
        else:
            s = rng.normal(labels * separation[upstream, mode], 1.0)
        s = np.round(s, 6)
        scores[upstream, mode] = s
        (d / "sv_scores.txt").write_text(
            "".join(
                f"{a} {b} {x:.6f} {'target' if y else 'nontarget'}\n"
                for (a, b), x, y in zip(trials, s, labels, strict=True)
            )
        )
        (d / "results.json").write_text(
            json.dumps(
                {
                    "kws_accuracy": 100 - len(bad) / 2,
                    "eer": round(100 * equal_error_rate(s, labels), 2),
                    "min_dcf": 0.5,
                    "upstream_parameters": PARAMS[upstream],
                }
            )
        )
    return {"labels": labels, "scores": scores, "wrong": wrong}


def test_per_item_scores_give_intervals_and_paired_tests(tmp_path):
    made = _per_item_files(tmp_path)
    rows = collect(tmp_path, ["teacher", "student"], setups=["joint"])
    at = {(r["upstream"], r["mode"]): r for r in rows}
    assert (
        read_kws_predictions(tmp_path / "teacher/finetuned/joint/kws_predictions.txt")["u019"] == 1
    )
    # KWS: 90% of 200; the interval by the binomial's normal approximation, +-4.2
    table = markdown_table(rows)
    row = next(line for line in table.splitlines() if line.startswith("|teacher|8.00|finetuned|"))
    low, high = map(float, row.split("|")[5].split("[")[1].rstrip("]").split(","))
    assert (
        row.split("|")[5].startswith("90.00 [") and abs(low - 85.8) < 1.2 and abs(high - 94.2) < 1.2
    )
    # student vs teacher, fine-tuned: 23 errors vs 20, 5 shared wrong ... the paired bootstrap
    kws = paired_difference(at["teacher", "finetuned"], at["student", "finetuned"], "kws_accuracy")
    errors = {k: np.array([int(i in made["wrong"][k]) for i in range(200)]) for k in made["wrong"]}
    ref = paired_bootstrap(
        errors["teacher", "finetuned"], errors["student", "finetuned"], np.ones(200), n_boot=1000
    )
    assert kws["delta"] == pytest.approx(-1.5)
    assert (kws["low"], kws["high"]) == pytest.approx((-ref["delta_high"], -ref["delta_low"]))
    assert kws["p_not_better"] == ref["p_not_better"]
    # SV: the fine-tuned teacher separates better than the frozen one: significant
    eer = paired_difference(at["teacher", "frozen"], at["teacher", "finetuned"], "eer")
    assert eer["delta"] < 0 and eer["high"] < 0 and eer["p_not_better"] < 0.05
    claims = paper_claims(rows)
    assert "KWS accuracy -1.50 (88.50 vs 90.00; paired 95% CI of the difference [" in claims[0]
    assert f"[{kws['low']:+.2f}, {kws['high']:+.2f}]: no significant difference)" in claims[0]
    # the fine-tuned student's SV is its frozen one's (separation 2.0) against the fine-tuned
    # teacher's 4.0: worse, and the interval says so
    eer_gap = paired_difference(at["teacher", "finetuned"], at["student", "finetuned"], "eer")
    assert eer_gap["low"] > 0 and f"{eer_gap['high']:+.2f}]: significantly worse)" in claims[0]
    assert "significantly (p < 0.05) in " in claims[1]
    assert "teacher joint KWS acc 90.00 vs 80.00 (p = 0.000)" in claims[1]
    # the student's fine-tuned SV scores are its frozen ones, jittered: not significant
    p = paired_difference(at["student", "frozen"], at["student", "finetuned"], "eer")[
        "p_not_better"
    ]
    assert 0.05 < p < 0.95 and f"(p = {p:.3f})" in claims[1]


def test_malformed_per_item_lines_name_the_file_and_line(tmp_path):
    kws, sv = tmp_path / "kws_predictions.txt", tmp_path / "sv_scores.txt"
    kws.write_text("u1\tyes\tno\nu2\tyes\n")
    sv.write_text("a b 0.5 target\na c 0.1 impostor\n")
    with pytest.raises(
        ValueError, match="kws_predictions.txt:2: expected 'id<TAB>label<TAB>predicted'"
    ):
        read_kws_predictions(kws)
    with pytest.raises(ValueError, match="sv_scores.txt:2: expected 'enrol test score target"):
        read_sv_scores(sv)


def test_kws_items_pair_across_manifest_orders(tmp_path):
    """Two preparations of one corpus listed its files in another order, so lhotse's cut ids
    (recording, manifest position, window) differ in the position only: the items pair by
    recording and window; a repeated item is an error."""
    assert kws_item("_unknown__eight_cceb0dc7_nohash_0-239") == "_unknown__eight_cceb0dc7_nohash_0"
    assert kws_item("_silence__silence_10-61-0") == "_silence__silence_10-0"
    assert kws_item("_silence__silence_10-2-1") == "_silence__silence_10-1"
    assert kws_item("u019") == "u019"  # not lhotse's form: kept
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("yes_x_nohash_0-5\tyes\tyes\n_silence__silence_0-100-0\t_silence_\tup\n")
    b.write_text("_silence__silence_0-0-0\t_silence_\t_silence_\nyes_x_nohash_0-1\tyes\tno\n")
    assert read_kws_predictions(a) == {"yes_x_nohash_0": 0, "_silence__silence_0-0": 1}
    assert read_kws_predictions(b) == {"yes_x_nohash_0": 1, "_silence__silence_0-0": 0}
    b.write_text("yes_x_nohash_0-1\tyes\tno\nyes_x_nohash_0-7\tyes\tno\n")
    with pytest.raises(ValueError, match="b.txt:2: a second line for test item yes_x_nohash_0"):
        read_kws_predictions(b)


def test_kws_cut_ids_do_not_depend_on_the_manifest_order(tmp_path):
    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet

    from espnet_distill.data.kws_sv import load_split_cuts

    recs = [
        Recording(id=f"r{i}", sources=[], sampling_rate=16000, num_samples=16000, duration=1.0)
        for i in range(4)
    ]
    sups = SupervisionSet.from_segments(
        SupervisionSegment(id=r.id, recording_id=r.id, start=0, duration=1.0) for r in recs
    )
    ids = []
    for order, name in ((recs, "a"), (recs[::-1], "b")):
        RecordingSet.from_recordings(order).to_file(tmp_path / f"{name}_recordings_test.jsonl.gz")
        sups.to_file(tmp_path / f"{name}_supervisions_test.jsonl.gz")
        ids.append(sorted(c.id for c in load_split_cuts(tmp_path, name, "test")))
    assert ids[0] == ids[1]


def _brute_force_min_dcf(scores: np.ndarray, labels: np.ndarray, p_target: float) -> float:
    """minDCF by trying every score as the threshold (accept score >= threshold) and accepting
    nothing; normalised by the best trial-independent cost."""
    best = p_target  # accept nothing: every target missed
    for t in scores:
        p_miss = np.mean(scores[labels] < t)
        p_fa = np.mean(scores[~labels] >= t)
        best = min(best, p_target * p_miss + (1 - p_target) * p_fa)
    return best / min(p_target, 1 - p_target)


def test_fbank_is_a_frozen_row_and_the_upstreams_are_measured_above_it(tmp_path, capsys):
    """FBANK (the heads on the features alone) is frozen only: its fine-tuned systems are not
    missing; each frozen upstream's gain over it gets the paired test's p; minDCF at p_target
    0.05 (older results.json lack it) comes from the trial scores, as a brute-force threshold
    search gives it."""
    made = _per_item_files(tmp_path)
    rows = collect(tmp_path, ["fbank", "teacher", "student"], setups=["joint"])
    assert "without results" not in capsys.readouterr().err  # fbank has no fine-tuned systems
    assert [(r["upstream"], r["mode"]) for r in rows][0] == ("fbank", "frozen")
    table = markdown_table(rows)
    at = {(r["upstream"], r["mode"]): r for r in rows}
    for key in at:
        expected = _brute_force_min_dcf(made["scores"][key], made["labels"], 0.05)
        line = next(x for x in table.splitlines() if x.startswith(f"|{key[0]}|") and key[1] in x)
        assert float(line.split("|")[-2]) == pytest.approx(expected, abs=5e-4), key
    claims = "\n".join(paper_claims(rows))
    above = next(c for c in paper_claims(rows) if c.startswith("- Above FBANK, frozen"))
    kws = paired_difference(at["fbank", "frozen"], at["teacher", "frozen"], "kws_accuracy")
    assert kws["p_not_better"] == 0.0  # 40 errors, all among FBANK's 100
    assert "teacher joint KWS acc 80.00 vs 50.00 (+30.00, p = 0.000)" in above
    eer = paired_difference(at["fbank", "frozen"], at["student", "frozen"], "eer")
    gain = at["fbank", "frozen"]["eer"] - at["student", "frozen"]["eer"]
    assert (
        gain > 0
        and "student joint EER " in above
        and f"({gain:+.2f}, p = {eer['p_not_better']:.3f})" in above
    )
    assert "fbank" not in claims.split("Fine-tuned vs frozen")[-1]  # no fine-tuned FBANK compared
