"""kws_sv1 results (stage 4): per-system KWS accuracy, EER and minDCF with bootstrap intervals,
the paired differences behind the paper's two findings, the table and the DET curves."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
from scipy.stats import norm

from espnet_distill.kws_sv.trainer import KWS_PREDICTIONS, SV_SCORES
from espnet_distill.models.upstream import FBANK
from espnet_distill.score.results import page_header
from espnet_distill.score.verification import bootstrap_eers, min_dcf
from espnet_distill.score.wer import bootstrap_ci, paired_bootstrap_by_id
from espnet_distill.utils import atomic_write_text

MODES = ("frozen", "finetuned")


SETUPS = ("kws", "sv", "joint")


N_BOOT = 1000

# the scores the findings compare: results.json key, label, whether higher is better
COMPARED_SCORES = (("kws_accuracy", "KWS acc", True), ("eer", "EER", False))


# A KWS cut id is lhotse's "<recording>-<position in the manifest>", plus "-<window>" for the
# one-second windows of a no-word recording; Speech Commands' recording ids have no hyphen.
_CUT_ID = re.compile(r"^([^-]+)-\d+(-\d+)?$")


def kws_item(cut_id: str) -> str:
    """The test item a KWS cut id names: its recording (and window), without the manifest
    position lhotse's ``CutSet.from_manifests`` appends, which followed the order the corpus
    files were listed in (filesystem order, before the manifests were sorted): systems scored
    from two preparations of the same corpus pair item by item."""
    m = _CUT_ID.match(cut_id)
    return m[1] + (m[2] or "") if m else cut_id


def read_kws_predictions(path: Path) -> dict[str, int]:
    """``kws_predictions.txt``: test item (:func:`kws_item`) -> 1 if misclassified, else 0."""
    wrong = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"{path}:{n}: expected 'id<TAB>label<TAB>predicted', got {line!r}")
        item = kws_item(fields[0])
        if item in wrong:
            raise ValueError(f"{path}:{n}: a second line for test item {item} ({fields[0]})")
        wrong[item] = int(fields[1] != fields[2])
    return wrong


def read_sv_scores(path: Path) -> dict[tuple[str, str], tuple[float, bool]]:
    """``sv_scores.txt``: (enrolment, test) -> (score, is a target trial)."""
    trials = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if len(fields) != 4 or fields[3] not in ("target", "nontarget"):
            raise ValueError(
                f"{path}:{n}: expected 'enrol test score target|nontarget', got {line!r}"
            )
        trials[fields[0], fields[1]] = (float(fields[2]), fields[3] == "target")
    return trials


def kws_interval(row: dict) -> tuple[float, float] | None:
    """95% bootstrap interval of the KWS accuracy (%), test utterances resampled."""
    if "kws_items" not in row:
        return None
    lo, hi = bootstrap_ci(
        np.array(list(row["kws_items"].values())), np.ones(len(row["kws_items"])), n_boot=N_BOOT
    )
    return 100 - hi, 100 - lo


def _paired_eers(rows: list[dict]) -> np.ndarray | None:
    """Bootstrap EERs (%) of ``rows`` on their shared trials, paired; None unless all have the
    same scored trials."""
    if any("sv_items" not in r for r in rows) or any(
        r["sv_items"].keys() != rows[0]["sv_items"].keys() for r in rows
    ):
        return None
    keys = sorted(rows[0]["sv_items"])
    labels = np.array([rows[0]["sv_items"][k][1] for k in keys])
    return 100 * bootstrap_eers(
        [np.array([r["sv_items"][k][0] for k in keys]) for r in rows], labels, n_boot=N_BOOT
    )


def eer_interval(row: dict) -> tuple[float, float] | None:
    """95% bootstrap interval of the EER (%), trials resampled (stratified)."""
    eers = _paired_eers([row])
    return None if eers is None else tuple(np.percentile(eers[:, 0], [2.5, 97.5]).tolist())


def paired_difference(a: dict, b: dict, key: str) -> dict[str, float] | None:
    """``b`` - ``a`` on ``key`` (kws_accuracy or eer, points) with its paired 95% bootstrap
    interval and ``p_not_better``: the share of resamples where ``b`` is not better than ``a``;
    None without both systems' per-item scores on the same items."""
    if key == "kws_accuracy":
        if "kws_items" not in a or "kws_items" not in b:
            return None
        r = paired_bootstrap_by_id(
            {u: (e, 1) for u, e in a["kws_items"].items()},
            {u: (e, 1) for u, e in b["kws_items"].items()},
            n_boot=N_BOOT,
        )
        if r is None:
            return None
        # error-rate difference -> accuracy difference
        return {
            "delta": b[key] - a[key],
            "low": -r["delta_high"],
            "high": -r["delta_low"],
            "p_not_better": r["p_not_better"],
        }
    eers = _paired_eers([a, b])
    if eers is None:
        return None
    diff = eers[:, 1] - eers[:, 0]
    low, high = np.percentile(diff, [2.5, 97.5])
    return {
        "delta": b[key] - a[key],
        "low": float(low),
        "high": float(high),
        "p_not_better": float((diff >= 0).mean()),
    }


def collect(
    finetune_dir: Path, upstreams: list[str], modes: list[str] = MODES, setups: list[str] = SETUPS
) -> list[dict]:
    """One row per (upstream, mode, setup) that has results.json; missing ones are listed."""
    rows, missing = [], []
    for upstream in upstreams:
        for mode in modes:
            if upstream == FBANK and mode != "frozen":  # the features alone: nothing to fine-tune
                continue
            for setup in setups:
                path = finetune_dir / upstream / mode / setup / "results.json"
                if path.is_file():
                    row = {
                        "upstream": upstream,
                        "mode": mode,
                        "setup": setup,
                        **json.loads(path.read_text()),
                    }
                    if (path.parent / KWS_PREDICTIONS).is_file():
                        row["kws_items"] = read_kws_predictions(path.parent / KWS_PREDICTIONS)
                    if (path.parent / SV_SCORES).is_file():
                        row["sv_items"] = read_sv_scores(path.parent / SV_SCORES)
                    rows.append(row)
                else:
                    missing.append(str(path))
    if missing:
        print(
            f"kws_sv_results: {len(missing)} system(s) without results, e.g. {missing[0]}",
            file=sys.stderr,
        )
    return rows


def min_dcf_p05(row: dict) -> float | None:
    """minDCF at p_target 0.05: from results.json, or (results of an older run) from the
    system's trial scores; None without either."""
    if "min_dcf_p05" in row:
        return row["min_dcf_p05"]
    if "sv_items" not in row:
        return None
    scores, target = zip(*row["sv_items"].values(), strict=True)
    return round(min_dcf(np.array(scores), np.array(target), p_target=0.05), 4)


def markdown_table(rows: list[dict]) -> str:
    """The table; scores with per-item files get their 95% bootstrap interval in brackets."""
    lines = [
        "|upstream|params (M)|upstream|training|KWS accuracy (%) [95% CI]|SV EER (%) [95% CI]|"
        "SV minDCF (0.01)|SV minDCF (0.05)|",
        "|---|---|---|---|---|---|---|---|",
    ]

    def cell(value: float, interval: tuple[float, float] | None) -> str:
        return f"{value:.2f}" + (f" [{interval[0]:.1f}, {interval[1]:.1f}]" if interval else "")

    for r in rows:
        kws = cell(r["kws_accuracy"], kws_interval(r)) if "kws_accuracy" in r else "-"
        eer = cell(r["eer"], eer_interval(r)) if "eer" in r else "-"
        dcf = f"{r['min_dcf']:.3f}" if "min_dcf" in r else "-"
        dcf05 = min_dcf_p05(r)
        dcf05 = "-" if dcf05 is None else f"{dcf05:.3f}"
        training = "joint KWS+SV" if r["setup"] == "joint" else f"{r['setup'].upper()} only"
        lines.append(
            f"|{r['upstream']}|{r['upstream_parameters'] / 1e6:.2f}|{r['mode']}|"
            f"{training}|{kws}|{eer}|{dcf}|{dcf05}|"
        )
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
        parts = [
            f"{r['upstream_parameters'] / t['upstream_parameters']:.0%} of the teacher's parameters"
        ]
        for key, label, higher in (("kws_accuracy", "KWS accuracy", True), ("eer", "EER", False)):
            if key in r and key in t:
                d = paired_difference(t, r, key)
                ci = ""
                if d:
                    lo, hi = (d["low"], d["high"]) if higher else (-d["high"], -d["low"])
                    verdict = (
                        "significantly better"
                        if lo > 0
                        else "significantly worse"
                        if hi < 0
                        else "no significant difference"
                    )
                    ci = (
                        f"; paired 95% CI of the difference [{d['low']:+.2f}, {d['high']:+.2f}]: "
                        f"{verdict}"
                    )
                parts.append(f"{label} {r[key] - t[key]:+.2f} ({r[key]:.2f} vs {t[key]:.2f}{ci})")
        lines.append(
            f"- {name} vs {teacher}, joint and fine-tuned (paper: about 25% of the size, "
            f"KWS accuracy -0.1, EER +0.9): " + ", ".join(parts) + "."
        )
    wins, total, tested, significant, cases = 0, 0, 0, 0, []
    for (name, mode, setup), r in at.items():
        frozen = at.get((name, "frozen", setup))
        if mode != "finetuned" or frozen is None:
            continue
        for key, label, higher in COMPARED_SCORES:
            if key in r and key in frozen:
                better = r[key] > frozen[key] if higher else r[key] < frozen[key]
                wins, total = wins + better, total + 1
                d = paired_difference(frozen, r, key)
                if d is not None:
                    tested, significant = tested + 1, significant + (d["p_not_better"] < 0.05)
                cases.append(
                    f"{name} {setup} {label} {r[key]:.2f} vs {frozen[key]:.2f}"
                    + ("" if better else " (not)")
                    + (f" (p = {d['p_not_better']:.3f})" if d else "")
                )
    above = []
    for (name, mode, setup), r in at.items():
        base = at.get((FBANK, "frozen", setup))
        if name == FBANK or mode != "frozen" or base is None:
            continue
        for key, label, higher in COMPARED_SCORES:
            if key in r and key in base:
                gain = (r[key] - base[key]) * (1 if higher else -1)
                d = paired_difference(base, r, key)
                above.append(
                    f"{name} {setup} {label} {r[key]:.2f} vs {base[key]:.2f} ({gain:+.2f}"
                    + (f", p = {d['p_not_better']:.3f}" if d else "")
                    + ")"
                )
    if above:
        lines.append(
            "- Above FBANK, frozen (how much a frozen upstream adds to the heads on its input "
            "features; gains positive where the upstream is better): " + "; ".join(above) + "."
        )
    if total:
        sig = (
            f", significantly (p < 0.05) in {significant} of the {tested} tested" if tested else ""
        )
        lines.append(
            f"- Fine-tuned vs frozen (paper: fine-tuning clearly better): better in "
            f"{wins} of {total} comparisons{sig}: " + "; ".join(cases) + "."
        )
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
        ax.plot(
            norm.ppf(p_fa),
            norm.ppf(p_miss),
            "-" if r["mode"] == "finetuned" else "--",
            label=f"{r['upstream']} {r['mode']} {r['setup']} (EER {r['eer']:.1f}%)",
        )
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


def write_results(
    finetune_dir: Path,
    upstreams: list[str],
    modes: list[str],
    setups: list[str],
    out_dir: Path,
    results_file: Path | None,
    title: str,
    notes: str,
) -> str:
    """Stage 4: ``out_dir/table.md`` and ``det.png`` from the systems' results under
    ``finetune_dir``, and RESULTS.md (``results_file``) with the paper's findings; returns the
    table. ValueError when there are no results."""
    rows = collect(finetune_dir, upstreams, modes, setups)
    if not rows:
        raise ValueError(f"no results.json under {finetune_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows)
    atomic_write_text(out_dir / "table.md", table)
    plot = out_dir / "det.png"
    if any("det" in r for r in rows):
        det_plot(rows, plot)
    claims = paper_claims(rows)
    if results_file:
        body = [
            *page_header(title),
            "## Keyword spotting and speaker verification",
            "",
            "KWS: accuracy on the 12-class test set (10 words, unknown, silence). SV: EER and "
            "minDCF (p_target 0.01, and 0.05 as VoxCeleb papers add) on the trial list, cosine "
            "scoring. Frozen: only the heads and the layer weights are trained; fine-tuned: the "
            "upstream too. Joint: one model for both tasks. fbank: SUPERB's FBANK baseline, the "
            "heads on the input features alone (frozen: it has no weights).",
            "",
            table,
            "",
            notes,
            "",
            *(
                [
                    "## The paper's findings in this run",
                    "",
                    "Differences with paired bootstrap tests where the systems' per-item scores "
                    "exist (KWS: test utterances resampled; SV: trials, stratified, resampled; "
                    f"{N_BOOT} resamples; p: the share where the claimed-better system is not "
                    "better). SV trials share speakers, so its intervals are a lower bound; one "
                    "training seed per system.",
                    "",
                    *claims,
                    "",
                ]
                if claims
                else []
            ),
            f"![DET curves]({plot})" if plot.is_file() else "",
            "",
        ]
        atomic_write_text(results_file, "\n".join(body))
    return table
