"""kws_sv1 stage 4: the results table ({teacher, student} x {frozen, fine-tuned} x {single-task,
joint}: upstream parameters, KWS accuracy, SV EER and minDCF), the DET curves (PNG) and
RESULTS.md, from ``<finetune-dir>/<upstream>/<frozen|finetuned>/<kws|sv|joint>/results.json``.

Usage:
    python -m espnet_distill.bin.kws_sv_results --finetune-dir exp/demo/finetune \\
        --upstreams teacher distilhubert --out-dir exp/demo/results --results-file RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scipy.stats import norm

from espnet_distill.score.results import environment
from espnet_distill.utils import atomic_write_text, setup_logging

MODES = ("frozen", "finetuned")
SETUPS = ("kws", "sv", "joint")


def collect(finetune_dir: Path, upstreams: list[str], modes: list[str] = MODES,
            setups: list[str] = SETUPS) -> list[dict]:  # fmt: skip
    """One row per (upstream, mode, setup) that has results.json; missing ones are listed."""
    rows, missing = [], []
    for upstream in upstreams:
        for mode in modes:
            for setup in setups:
                path = finetune_dir / upstream / mode / setup / "results.json"
                if path.is_file():
                    rows.append({"upstream": upstream, "mode": mode, "setup": setup,
                                 **json.loads(path.read_text())})  # fmt: skip
                else:
                    missing.append(str(path))
    if missing:
        print(f"kws_sv_results: {len(missing)} system(s) without results, e.g. {missing[0]}",
              file=sys.stderr)  # fmt: skip
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = ["|upstream|params (M)|upstream|training|KWS accuracy (%)|SV EER (%)|SV minDCF (0.01)|",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        kws = f"{r['kws_accuracy']:.2f}" if "kws_accuracy" in r else "-"
        eer = f"{r['eer']:.2f}" if "eer" in r else "-"
        dcf = f"{r['min_dcf']:.3f}" if "min_dcf" in r else "-"
        training = "joint KWS+SV" if r["setup"] == "joint" else f"{r['setup'].upper()} only"
        lines.append(f"|{r['upstream']}|{r['upstream_parameters'] / 1e6:.2f}|{r['mode']}|"
                     f"{training}|{kws}|{eer}|{dcf}|")  # fmt: skip
    return "\n".join(lines) + "\n"


def paper_claims(rows: list[dict], teacher: str = "teacher") -> list[str]:
    """Kerpicci et al.'s two findings against this run's rows, as markdown bullets: the distilled
    student loses little against the teacher (joint, fine-tuned; the paper: 0.1% KWS accuracy,
    0.9% EER at about a quarter of the size) and fine-tuning beats a frozen upstream."""
    at = {(r["upstream"], r["mode"], r["setup"]): r for r in rows}
    lines = []
    for (name, mode, setup), r in at.items():
        t = at.get((teacher, mode, setup))
        if name == teacher or t is None or (mode, setup) != ("finetuned", "joint"):
            continue
        parts = [f"{r['upstream_parameters'] / t['upstream_parameters']:.0%} of the teacher's "
                 "parameters"]  # fmt: skip
        if "kws_accuracy" in r:
            parts.append(f"KWS accuracy {r['kws_accuracy'] - t['kws_accuracy']:+.2f} "
                         f"({r['kws_accuracy']:.2f} vs {t['kws_accuracy']:.2f})")  # fmt: skip
        if "eer" in r:
            parts.append(f"EER {r['eer'] - t['eer']:+.2f} ({r['eer']:.2f} vs {t['eer']:.2f})")
        lines.append(f"- {name} vs {teacher}, joint and fine-tuned (paper: about 25% of the size, "
                     f"KWS accuracy -0.1, EER +0.9): " + ", ".join(parts) + ".")  # fmt: skip
    wins, total, cases = 0, 0, []
    for (name, mode, setup), r in at.items():
        frozen = at.get((name, "frozen", setup))
        if mode != "finetuned" or frozen is None:
            continue
        for key, label, higher in (("kws_accuracy", "KWS acc", True), ("eer", "EER", False)):
            if key in r and key in frozen:
                better = r[key] > frozen[key] if higher else r[key] < frozen[key]
                wins, total = wins + better, total + 1
                cases.append(f"{name} {setup} {label} {r[key]:.2f} vs {frozen[key]:.2f}"
                             + ("" if better else " (not)"))  # fmt: skip
    if total:
        lines.append(f"- Fine-tuned vs frozen (paper: fine-tuning clearly better): better in "
                     f"{wins} of {total} comparisons: " + "; ".join(cases) + ".")  # fmt: skip
    return lines


def det_plot(rows: list[dict], out: Path) -> None:
    """DET curves (probit axes) of every system with SV results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ticks = [0.01, 0.02, 0.05, 0.1, 0.2, 0.4]
    for r in rows:
        if "det" not in r:
            continue
        p_fa = [min(max(p, 1e-4), 1 - 1e-4) for p in r["det"]["p_fa"]]
        p_miss = [min(max(p, 1e-4), 1 - 1e-4) for p in r["det"]["p_miss"]]
        ax.plot(norm.ppf(p_fa), norm.ppf(p_miss), "-" if r["mode"] == "finetuned" else "--",
                label=f"{r['upstream']} {r['mode']} {r['setup']} (EER {r['eer']:.1f}%)")  # fmt: skip
    ax.set_xticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    lim = norm.ppf([0.005, 0.6])
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.plot(lim, lim, color="grey", lw=0.5)
    ax.set_xlabel("false alarm probability (%)")
    ax.set_ylabel("miss probability (%)")
    ax.set_title("speaker verification DET")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--finetune-dir", type=Path, required=True)
    parser.add_argument("--upstreams", nargs="+", required=True, help="e.g. teacher distilhubert")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=SETUPS)
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--results-file", type=Path)
    parser.add_argument("--title", default="kws_sv1 results")
    parser.add_argument("--notes", default="", help="a paragraph under the table")
    args = parser.parse_args(argv)
    setup_logging()
    rows = collect(args.finetune_dir, args.upstreams, args.modes, args.setups)
    if not rows:
        print(f"kws_sv_results: no results.json under {args.finetune_dir}", file=sys.stderr)
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows)
    atomic_write_text(args.out_dir / "table.md", table)
    plot = args.out_dir / "det.png"
    if any("det" in r for r in rows):
        det_plot(rows, plot)
    print(table, end="")
    claims = paper_claims(rows)
    if args.results_file:
        body = [f"# {args.title}", "", "## Environment", *environment(), "",
                "## Keyword spotting and speaker verification", "",
                "KWS: accuracy on the 12-class test set (10 words, unknown, silence). SV: EER and "
                "minDCF (p_target 0.01) on the trial list, cosine scoring. Frozen: only the heads "
                "and the layer weights are trained; fine-tuned: the upstream too. Joint: one model "
                "for both tasks.", "", table, "", args.notes, "",
                *(["## The paper's findings in this run", "",
                   "Direction only (one seed, small test sets).", "", *claims, ""]
                  if claims else []),
                f"![DET curves]({plot})" if plot.is_file() else "", ""]  # fmt: skip
        atomic_write_text(args.results_file, "\n".join(body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
