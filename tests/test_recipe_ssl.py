"""The ssl1 recipe end to end on the tiny corpus (data from a copy of asr1 beside it): labels,
teacher pretraining, five students, three probes each (and of FBANK), the results table and plot, the export
stage; a rerun redoes nothing."""

from __future__ import annotations

import pytest
import yaml

from .test_recipe import _recipe_copy, _run


@pytest.mark.slow  # about 6 minutes: CI runs it (make test-slow)
def test_tiny_ssl_recipe_end_to_end(tiny_corpus, tmp_path):
    d = _recipe_copy(tmp_path, tiny_corpus).parent / "ssl1"  # reads ../asr1's data
    out = _run(d)
    exp = d / "exp" / "tiny"
    kmeans = yaml.safe_load((exp / "labels" / "kmeans.yaml").read_text())
    assert kmeans["num_clusters"] == 20 and kmeans["labelled_cuts"] == 58  # 48 train + 10 dev
    students = ["distilhubert", "lstm_kd", "lstm_dkd", "deep", "wide"]
    for name in ["teacher", *students]:
        assert (exp / name / "model.pt").is_file(), name
        for task in ("asr", "pr", "sid"):
            result = yaml.safe_load((exp / "probe" / name / task / "result.yaml").read_text())
            assert result["metric"] == {"asr": "CER", "pr": "PER", "sid": "accuracy"}[task]
            assert result["skipped_cuts"] == 0, (name, task)  # new dev/test words pronounced too
            scores = (exp / "probe" / name / task / "test_scores.tsv").read_text().splitlines()
            assert len(scores) > 0 and all(len(s.split("\t")) == 3 for s in scores)
            # the held-out engine: ASR and PR score test-other's 10 utterances too, SID not
            other = exp / "probe" / name / task / "test_scores_test-other.tsv"
            assert other.is_file() == (task != "sid"), (name, task)
            if task != "sid":
                assert len(other.read_text().splitlines()) == 10
                assert set(result["other_tests"]) == {"test-other"}
    for task in ("asr", "pr", "sid"):  # SUPERB's FBANK baseline, probed as the others
        fbank = yaml.safe_load((exp / "probe" / "fbank" / task / "result.yaml").read_text())
        assert fbank["upstream"] == "fbank" and fbank["layer_weights"] == [1.0], task
    assert "4 layers of width" in out and "1 layers of width" in out  # deep / wide at equal size
    summary = yaml.safe_load((exp / "results" / "summary.yaml").read_text())
    rows = {r["upstream"]: r for r in summary["rows"]}
    assert set(rows) == {"fbank", "teacher", *students}
    assert rows["fbank"]["params_M"] == 0 and len(summary["above_fbank"]) == 6 * 3
    assert rows["teacher"]["params_vs_teacher"] == 1.0
    assert rows["distilhubert"]["params_vs_teacher"] < 1.0
    assert (exp / "results" / "deep_vs_wide.png").is_file()
    results = (d / "RESULTS_tiny.md").read_text()
    assert "|lstm_dkd|" in results and "CPU speed-up" in results and "ASR WER test" in results
    assert "(paired bootstrap, " in results  # the claims' test differences get a p-value
    assert "## Above FBANK" in results and "|fbank|0.00|0.00|" in results
    assert "|ASR CER test-other|ASR WER test-other|" in results and "|PR PER test-other|" in results
    for name in ["teacher", *students]:  # stage 7: deployable files, each checked against PyTorch
        export = yaml.safe_load((exp / "export" / name / "export.yaml").read_text())["artifacts"]
        assert export["onnx_fp32"]["max_abs_diff"] < 1e-4, name  # the bound export_model enforces
        assert export["onnx_int8"]["mb"] < export["onnx_fp32"]["mb"], name
        lstm = name.startswith("lstm")
        assert ("torch_int8" in export, "hf" in export) == (lstm, not lstm), name
        if not lstm:  # read back by load_hubert: the same float weights, so float rounding only
            assert export["hf"]["max_abs_diff"] < 1e-4, name
            assert (exp / "export" / name / "hf" / "model.safetensors").is_file(), name
    again = _run(d)
    assert "Stage 7: exp/tiny/export/lstm_dkd/export.yaml exists: skipping" in again
    assert "Stage 4: exp/tiny/lstm_dkd/model.pt exists: skipping" in again
    assert "Stage 2: exp/tiny/labels/labels.npz exists: skipping" in again
