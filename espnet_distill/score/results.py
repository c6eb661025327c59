"""RESULTS.md in ESPnet's format: environment, commands, one sclite table per test set."""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

from espnet_distill.config import DECODE_DIR_METHODS
from espnet_distill.score.kd_ablation import read_scores
from espnet_distill.score.wer import paired_bootstrap_by_id, read_text_file
from espnet_distill.utils import REPO_ROOT, atomic_write_text

# the sections of the KD ablation drivers' tables (local/run_kd_ablation.sh --table_name)
ABLATION_TITLES = {
    "kd_ablation": "Cross-modal KD ablation",
    "kd_ablation_ssl": "KD from the SSL teacher: MVQ codebooks and hints",
}

# a decode dir's method suffix -> the one it is compared with on the same scores: k2 against
# kaldi-decoder on the same graph, and the rescored lattices against their own one-best
PARTNER_METHOD = {"_tlg_k2": "_tlg", "_hclg_k2": "_hclg", "_tlg_k2_rescore": "_tlg_k2"}


def _version(pkg: str) -> str:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "n/a"


def environment() -> list[str]:
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "log", "-1", "--format=%h %cd", "--date=short"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        commit = "unknown"
    return [
        f"- date: `{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}`",
        f"- python: `{platform.python_version()}`, OS: `{platform.platform()}`, CPUs: `{_cpu_count()}`",
        "- packages: "
        + ", ".join(
            f"{p} `{_version(p)}`"
            for p in ("torch", "espnet", "lhotse", "kaldialign", "sentencepiece")
        ),
        f"- espnet_distill commit: `{commit}`",
    ]


def page_header(title: str) -> list[str]:
    """The lines a results page starts with: its title and its Environment section."""
    return [f"# {title}", "", "## Environment", *environment(), ""]


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0))


def test_set_of(decode_dir_name: str) -> str:
    """The test set of a decode dir ``decode_<set>_<method>`` (set names may hold ``_``, methods
    too: ``beam_lm``, ``tlg_k2``); the whole rest when no known method ends it."""
    name = decode_dir_name.removeprefix("decode_")
    for method in sorted(DECODE_DIR_METHODS, key=len, reverse=True):  # tlg_k2 before tlg
        if name.endswith(f"_{method}"):
            return name.removesuffix(f"_{method}")
    return name


def collect(exp_root: Path) -> dict[str, list[tuple[str, dict]]]:
    """{test set: [(row name, wer.json), ...]} from exp/**/decode_<set>_<method>/score/wer.json.

    Row names are the decode dir relative to ``exp_root`` (``am_<tag>/decode_...`` for networks,
    ``align/tri/decode_..._hclg`` for the stage-4 GMM-HMM).
    """
    tables: dict[str, list[tuple[str, dict]]] = {}
    for wer_file in sorted(exp_root.glob("**/decode_*/score/wer.json")):
        decode_dir = wer_file.parent.parent
        stats = json.loads(wer_file.read_text())
        test_set = stats.get("name") or test_set_of(decode_dir.name)
        row = decode_dir.relative_to(exp_root).as_posix()
        tables.setdefault(test_set, []).append((row, stats))
    return tables


def overlap_note(o: dict) -> str:
    """One line on a set's overlap with the LM text (``lm.overlap``), for its WER table."""
    from espnet_distill.lm.overlap import WARN_SHARE

    line = (
        f"LM text overlap: {o['verbatim']} of {o['sentences']} sentences "
        f"({o['verbatim_share']:.1%}) occur verbatim in the word LM's text"
    )
    if "ngrams_in_lm_share" in o:
        line += (
            f"; {o['ngrams_in_lm_share']:.1%} of its word {o['ngram_order']}-grams are in the LM"
        )
    if o["verbatim_share"] > WARN_SHARE:
        return (
            f"{line}. **Above {WARN_SHARE:.0%}: the WERs of decoders with the word LM "
            "(beam_lm, tlg, hclg) are optimistic on this set.**"
        )
    return line + "."


def partner_comparisons(exp_root: Path) -> list[str]:
    """Table rows of every scored decode dir with a partner (:data:`PARTNER_METHOD`) scored on
    the same utterances: both WERs, the paired bootstrap of the difference (Bisani and Ney) and
    the share of utterances whose hypotheses are the same word for word."""
    rows = []
    for wer_file in sorted(exp_root.glob("**/decode_*/score/wer.json")):
        system = wer_file.parent.parent
        suffix = next((m for m in PARTNER_METHOD if system.name.endswith(m)), None)
        if suffix is None:
            continue
        base = system.with_name(system.name.removesuffix(suffix) + PARTNER_METHOD[suffix])
        if not (base / "score" / "wer.json").is_file():
            continue
        (base_wer, base_utts), (system_wer, system_utts) = read_scores(base), read_scores(system)
        r = paired_bootstrap_by_id(base_utts, system_utts)
        if r is None:
            continue
        base_hyps, system_hyps = read_text_file(base / "text"), read_text_file(system / "text")
        same = sum(
            base_hyps.get(u, "").split() == system_hyps.get(u, "").split() for u in base_utts
        )
        rows.append(
            f"|{system.relative_to(exp_root).as_posix()}|{base.name}|{base_wer['err']:.2f}"
            f"|{system_wer['err']:.2f}|{r['delta']:+.2f}|[{r['delta_low']:+.2f}, {r['delta_high']:+.2f}]"
            f"|{r['p_not_better']:.3f}|{r['p_not_worse']:.3f}|{same}/{len(base_utts)} "
            f"({same / len(base_utts):.0%})|"
        )
    if not rows:
        return []
    return [
        "## k2 vs kaldi-decoder, and lattice rescoring",
        "",
        "Each system against its partner decoded from the same scores: `*_k2` against",
        "kaldi-decoder on the same graph, `*_k2_rescore` against the one-best of its own lattices",
        "(the graph's n-gram). Δ: system - partner WER (points) with the paired bootstrap's 95%",
        "interval over utterances (1000 resamples); p(not better) < 0.05: the system is",
        "significantly better, p(not worse) < 0.05: significantly worse. Same: utterances whose",
        "hypotheses are identical. Each system's weights were tuned on dev on its own.",
        "",
        "|decode|partner|partner WER|WER|Δ|95% CI of Δ|p(not better)|p(not worse)|same|",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def write_results(
    exp_root: Path, out: Path, title: str, notes: str = "", overlap: dict | None = None
) -> str:
    """Write RESULTS.md from every scored decode dir under ``exp_root``; returns the text.
    ``overlap``: set -> its overlap with the LM text (``lm.overlap``), noted under its WERs."""
    lines = [
        f"# {title}",
        "",
        "<!-- Generated by espnet_distill.bin.make_results; do not edit. -->",
        "",
    ]
    lines += ["## Environment", *environment(), ""]
    if notes:
        lines += [notes.strip(), ""]
    commands = []
    for exp in sorted(p for p in exp_root.iterdir() if (p / "train.sh").is_file()):
        commands += [f"- {exp.name}: `{(exp / 'train.sh').read_text().splitlines()[-1]}`"]
        model = exp / "model.pt"
        if (exp / "config.yaml").is_file():
            commands += [
                f"  - config: `{exp / 'config.yaml'}`"
                + (f", model: `{model}`" if model.is_file() else "")
            ]
    if commands:
        lines += ["## Training commands", *commands, ""]
    settings = []
    for best in sorted(exp_root.glob("**/decode_*/best.yaml")):
        chosen = yaml.safe_load(best.read_text())
        where = f", tuned on `{chosen['tuned_on']}`" if "tuned_on" in chosen else ""
        skip = {"tuned_on", "tuned_wer"}
        described = ", ".join(f"{k} `{v}`" for k, v in chosen.items() if k not in skip)
        settings.append(f"- {best.parent.relative_to(exp_root).as_posix()}: {described}{where}")
    if settings:
        lines += [
            "## Decoding settings",
            "",
            "greedy: CTC best path. beam_lm: CTC prefix beam search with word n-gram shallow fusion.",
            "tlg: WFST search (kaldi-decoder) over T o L o G (CTC topology, BPE lexicon, word",
            "n-gram); only lexicon words can be output. hclg: WFST search over H o C o L o G",
            "(HMM, triphone context, phone lexicon, word n-gram) with the stage-4 triphone",
            "GMM-HMM (align/tri: Kaldi's tri1 baseline) or the network's senone head (am_*:",
            "hybrid, log posterior - log prior). *_k2: the same graph searched by k2.",
            "tlg_k2_rescore: k2's TLG lattices rescored with the larger word n-gram",
            "`rescore_lm` (the 3-gram's scores replaced by it at weight lm_scale).",
            "Weights were chosen on the dev set.",
            "",
            *settings,
            "",
        ]
    quality = sorted(exp_root.glob("**/quality_*/summary.yaml"))
    if quality:
        lines += [
            "## Alignment quality (stage 4)",
            "",
            "Triphone forced alignment of TTS audio vs the engine's own phone timings",
            "(espnet_distill.bin.eval_alignment; Kaldi CTM times, signed error > 0: late).",
            "",
            "|alignment|engine|voice|#Utt|#Boundaries|within tol.|median abs|mean signed|matched|",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for summary_file in quality:
            q = yaml.safe_load(summary_file.read_text())
            lines.append(
                f"|{summary_file.parent.relative_to(exp_root).as_posix()}|{q['engine']}|{q['voice']}"
                f"|{q['utterances']}|{q['boundaries']}|{q['within_tolerance']:.1%} "
                f"(≤ {q['tolerance_ms']:g} ms)|{q['median_abs_error_ms']} ms"
                f"|{q['mean_signed_error_ms']:+.1f} ms|{q['phones_matched']:.1%}|"
            )
        lines.append("")
    for table in sorted(exp_root.glob("**/kd_ablation*/table.md")):
        name = table.parent.name
        lines += [
            f"## {ABLATION_TITLES.get(name, f'KD ablation ({name})')}",
            "",
            f"From `{table.relative_to(exp_root).as_posix()}` (espnet_distill.bin.kd_ablation);"
            f" plot: `{(table.parent / 'ablation.png').relative_to(exp_root).as_posix()}`.",
            "",
            table.read_text().strip(),
            "",
        ]
    lines += partner_comparisons(exp_root)
    for test_set, rows in collect(exp_root).items():
        lines += [f"## WER: {test_set}", ""]
        if overlap and test_set in overlap:
            lines += [overlap_note(overlap[test_set]), ""]
        lines += [
            "|decode|#Snt|#Wrd|Corr|Sub|Del|Ins|Err|S.Err|95% CI|",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, s in rows:
            lines.append(
                f"|{name}|{s['snt']}|{s['wrd']}|{s['corr']:.1f}|{s['sub']:.1f}|{s['del']:.1f}|{s['ins']:.1f}"
                f"|{s['err']:.1f}|{s['s_err']:.1f}|[{s['ci_low']:.1f}, {s['ci_high']:.1f}]|"
            )
        lines.append("")
    text = "\n".join(lines)
    atomic_write_text(out, text)
    return text
