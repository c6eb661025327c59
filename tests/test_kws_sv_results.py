"""kws_sv1 results: the table from results.json files, and the paper's findings read off it."""

from __future__ import annotations

import json

from espnet_distill.bin.kws_sv_results import collect, markdown_table, paper_claims

RESULTS = {  # (upstream, mode, setup): results.json
    ("teacher", "frozen", "joint"): {"kws_accuracy": 80.0, "eer": 20.0, "min_dcf": 0.9},
    ("teacher", "finetuned", "joint"): {"kws_accuracy": 90.0, "eer": 10.0, "min_dcf": 0.7},
    ("teacher", "finetuned", "kws"): {"kws_accuracy": 91.0},
    ("student", "frozen", "joint"): {"kws_accuracy": 70.0, "eer": 12.0, "min_dcf": 0.8},
    ("student", "finetuned", "joint"): {"kws_accuracy": 88.5, "eer": 13.25, "min_dcf": 0.75},
}
PARAMS = {"teacher": 8_000_000, "student": 2_000_000}


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
    assert "|student|2.00|finetuned|joint KWS+SV|88.50|13.25|0.750|" in table
    assert "|teacher|8.00|finetuned|KWS only|91.00|-|-|" in table


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
