"""Scoring and reports: WER with bootstrap intervals, verification metrics, RESULTS.md."""
