"""The cross-modal KD ablation: every KD configuration's WER (per seed, their mean and spread)
against the no-KD baseline with a paired bootstrap (Bisani and Ney 2004) and the smallest effect
the design detects (seeds and test set, :mod:`espnet_distill.score.power`), as a table and a bar
plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from espnet_distill.score.power import detectable_effect, paired_difference_se
from espnet_distill.score.wer import paired_bootstrap


def read_scores(decode_dir: Path) -> tuple[dict, dict[str, tuple[int, int]]]:
    """wer.json and {utt: (errors, reference words)} of a scored decode dir."""
    score = decode_dir / "score"
    for name in ("wer.json", "per_utt.tsv"):
        if not (score / name).is_file():
            raise FileNotFoundError(f"{score / name} does not exist (stage 9 scores {decode_dir})")
    per_utt = {}
    lines = (score / "per_utt.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    for n, line in enumerate(lines[1:], 2):
        row = dict(zip(header, line.split("\t"), strict=False))
        try:
            errors = int(row["sub"]) + int(row["del"]) + int(row["ins"])
            per_utt[row["id"]] = (errors, int(row["ref_words"]))
        except (KeyError, ValueError):
            raise ValueError(f"{score / 'per_utt.tsv'}:{n}: bad row {line!r}") from None
    return json.loads((score / "wer.json").read_text()), per_utt


def experiment_dir(exp_dir: Path, tag: str, seed: int | None) -> Path:
    return exp_dir / (f"am_{tag}" if seed is None else f"am_{tag}_seed{seed}")


def ablation_rows(
    exp_dir: Path, tags: list[str], baseline: str, method: str, part: str, seeds: list[int | None]
) -> list[dict]:
    """One row per tag: WERs per seed, their mean, and the paired test against the baseline
    (utterance errors summed over seeds, i.e. each seed's decode is one more sample) with the
    per-seed differences, their standard error (seed spread + test set) and the smallest
    difference detectable at 80% power (``detectable``)."""

    def load(tag: str) -> list[tuple[dict, dict]]:
        return [
            read_scores(experiment_dir(exp_dir, tag, s) / f"decode_{part}_{method}") for s in seeds
        ]

    base = load(baseline)
    base_wers = [r[0]["err"] for r in base]
    rows = []
    for tag in tags:
        runs = base if tag == baseline else load(tag)
        row = {
            "tag": tag,
            "wers": [r[0]["err"] for r in runs],
            "ci": [(r[0]["ci_low"], r[0]["ci_high"]) for r in runs],
        }
        row["wer"] = float(np.mean(row["wers"]))
        if tag != baseline:
            base_errs, sys_errs, words = [], [], []
            for (_, b), (_, s) in zip(base, runs, strict=True):
                if set(b) != set(s):
                    raise ValueError(f"{tag} and {baseline} scored different utterances of {part}")
                for utt in sorted(b):
                    base_errs.append(b[utt][0])
                    sys_errs.append(s[utt][0])
                    words.append(b[utt][1])
            paired = paired_bootstrap(np.array(base_errs), np.array(sys_errs), np.array(words))
            paired["seed_deltas"] = [w - b for w, b in zip(row["wers"], base_wers, strict=True)]
            paired["se"] = paired_difference_se(paired["seed_deltas"], paired["delta_se"])
            paired["detectable"] = detectable_effect(paired["se"])
            row["paired"] = paired
        rows.append(row)
    return rows


def table_markdown(
    tables: dict[tuple[str, str], list[dict]], baseline: str, seeds: list[int | None]
) -> str:
    seed_note = (
        f" over seeds {', '.join(str(s) for s in seeds)} (mean WER; per seed in brackets)"
        if seeds != [None]
        else ""
    )
    seed_sources = (
        "the seed spread of each configuration's per-seed differences and the test set's "
        "bootstrap spread"
        if len(seeds) > 1
        else "the test set's bootstrap spread alone (one seed: no seed spread measured, so it "
        "is an underestimate)"
    )
    lines = [
        f"Baseline `{baseline}`{seed_note}. Delta: configuration - baseline (WER points), "
        "95% paired-bootstrap interval; p: probability that the configuration is not better "
        "(Bisani and Ney 2004; < 0.05: significantly better). Detectable: the smallest "
        "difference this design finds with 80% power (two-sided, 0.05), from "
        f"{seed_sources}.",
        "",
    ]
    for (method, part), rows in tables.items():
        lines += [
            f"### {method}, {part}",
            "",
            "|configuration|WER|95% CI|delta|delta 95% CI|p (not better)|detectable|",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            wer = f"{r['wer']:.1f}"
            if len(r["wers"]) > 1:
                spread = float(np.std(r["wers"], ddof=1))
                wer += f" ± {spread:.1f} (" + ", ".join(f"{w:.1f}" for w in r["wers"]) + ")"
            lo, hi = r["ci"][0]
            ci = f"[{lo:.1f}, {hi:.1f}]" if len(r["ci"]) == 1 else "per seed"
            if "paired" in r:
                p = r["paired"]
                lines.append(
                    f"|{r['tag']}|{wer}|{ci}|{p['delta']:+.1f}|"
                    f"[{p['delta_low']:+.1f}, {p['delta_high']:+.1f}]|{p['p_not_better']:.3f}|"
                    f"{p['detectable']:.1f}|"
                )
            else:
                lines.append(f"|{r['tag']}|{wer}|{ci}|baseline| | | |")
        detectable = [r["paired"]["detectable"] for r in rows if "paired" in r]
        if detectable:
            lines += [
                "",
                f"Smallest detectable difference here: {min(detectable):.1f}-"
                f"{max(detectable):.1f} WER points.",
            ]
        lines.append("")
    return "\n".join(lines)


def plot(tables: dict[tuple[str, str], list[dict]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(tables.items())
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, ((method, part), rows) in zip(axes[0], panels, strict=True):
        x = np.arange(len(rows))
        wers = [r["wer"] for r in rows]
        lo = [min(c[0] for c in r["ci"]) for r in rows]
        hi = [max(c[1] for c in r["ci"]) for r in rows]
        ax.bar(
            x,
            wers,
            yerr=[np.subtract(wers, lo), np.subtract(hi, wers)],
            capsize=3,
            color=["grey" if "paired" not in r else "tab:blue" for r in rows],
        )
        ax.set_xticks(x, [r["tag"] for r in rows], rotation=60, ha="right", fontsize=8)
        ax.set_ylabel("WER (%)")
        ax.set_title(f"{method}, {part}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
