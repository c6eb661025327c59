"""ssl1 results: parameters, CPU inference time relative to the teacher (measured in one run on
the same audio), probing scores per task, and the deep-vs-wide plot."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import yaml
from lhotse import CutSet
from torch import nn

from espnet_distill.models.hubert import HubertModel
from espnet_distill.models.students import DistilHubert
from espnet_distill.models.upstream import FBANK, load_upstream, upstream_parameters
from espnet_distill.score.power import detectable_effect
from espnet_distill.score.results import page_header
from espnet_distill.score.wer import bootstrap_ci, paired_bootstrap_by_id
from espnet_distill.ssl.probe import HIGHER_IS_BETTER, TEST_SCORES
from espnet_distill.utils import atomic_write_text


@torch.no_grad()
def inference_seconds(
    models: dict[str, nn.Module], waves: list[torch.Tensor], rounds: int = 3, threads: int = 1
) -> dict[str, float]:
    """CPU seconds of ``hidden_states`` over ``waves`` (one utterance at a time) per model: the
    minimum over ``rounds``, the models interleaved in each round so that they share the
    machine's state, their order rotating from round to round, each timed pass right after an
    untimed one of the same model; ``threads`` intra-op threads."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        best = {name: float("inf") for name in models}
        names = list(models)
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                model = models[name].eval()
                # an untimed pass first: a model run right after another one is slower for a while
                # (measured: an LSTM student right after a transformer took 1.5x its settled time)
                # and oneDNN builds its kernels per input shape on first use
                for wave in waves:
                    model.hidden_states(wave[None])
                start = time.perf_counter()
                for wave in waves:
                    model.hidden_states(wave[None])
                best[name] = min(best[name], time.perf_counter() - start)
        return best
    finally:
        torch.set_num_threads(old)


def results_rows(
    names: list[str],
    params: dict[str, int],
    seconds: dict[str, float],
    probe_dir: Path,
    tasks: list[str],
    teacher: str = "teacher",
) -> list[dict]:
    """One row per upstream: params, ratios to the teacher, and each task's test (dev) score."""
    rows = []
    for name in names:
        row = {
            "upstream": name,
            "params_M": round(params[name] / 1e6, 3),
            "params_vs_teacher": round(params[name] / params[teacher], 3),
            "speedup_vs_teacher": round(seconds[teacher] / seconds[name], 2),
        }
        for task in tasks:
            path = probe_dir / name / task / "result.yaml"
            if path.is_file():
                r = yaml.safe_load(path.read_text())
                row[task] = {"metric": r["metric"], "test": r["test"], "dev": r["dev"]}
                if "wer" in r:  # the ASR probe's secondary score
                    row[task]["wer"] = r["wer"]
                if r.get("other_tests"):  # further test sets, e.g. test-other
                    row[task]["other_tests"] = r["other_tests"]
        rows.append(row)
    return rows


def markdown_table(rows: list[dict], tasks: list[str]) -> str:
    """The results table; a task whose rows carry a secondary WER (ASR) gets a column for it, and
    one for each further test set (e.g. test-other: its score, and WER for ASR)."""
    metric = {t: next((r[t]["metric"] for r in rows if t in r), "") for t in tasks}
    with_wer = {t for t in tasks if any("wer" in r.get(t, {}) for r in rows)}
    others = {
        t: list(dict.fromkeys(n for r in rows for n in r.get(t, {}).get("other_tests", {})))
        for t in tasks
    }
    head = ["upstream", "params (M)", "params / teacher", "CPU speed-up"]
    for t in tasks:
        head.append(f"{t.upper()} {metric[t]} test (dev)")
        if t in with_wer:
            head.append(f"{t.upper()} WER test (dev)")
        for name in others[t]:
            head.append(f"{t.upper()} {metric[t]} {name}")
            if t in with_wer:
                head.append(f"{t.upper()} WER {name}")
    lines = ["|" + "|".join(head) + "|", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        cells = [
            r["upstream"],
            f"{r['params_M']:.2f}",
            f"{r['params_vs_teacher']:.2f}",
            f"{r['speedup_vs_teacher']:.1f}x",
        ]
        for t in tasks:
            cells.append(f"{r[t]['test']:.1f} ({r[t]['dev']:.1f})" if t in r else "-")
            if t in with_wer:
                wer = r.get(t, {}).get("wer")
                cells.append(f"{wer['test']:.1f} ({wer['dev']:.1f})" if wer else "-")
            for name in others[t]:
                other = r.get(t, {}).get("other_tests", {}).get(name)
                cells.append(f"{other['test']:.1f}" if other else "-")
                if t in with_wer:
                    cells.append(f"{other['wer']:.1f}" if other and "wer" in other else "-")
        lines.append("|" + "|".join(cells) + "|")
    return "\n".join(lines) + "\n"


def read_test_scores(path: Path) -> dict[str, tuple[int, int]]:
    """A probe's ``test_scores.tsv``: utterance id -> (errors, reference length)."""
    scores = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"{path}:{n}: expected 'id<TAB>errors<TAB>length', got {line!r}")
        scores[fields[0]] = (int(fields[1]), int(fields[2]))
    return scores


def paired_test(probe_dir: Path, task: str, better: str, worse: str) -> dict | None:
    """Paired bootstrap (utterances resampled together, 2000 resamples) of ``better`` against
    ``worse`` on the task's test set, from their ``test_scores.tsv``: ``paired_bootstrap``'s
    result (in error points, ``better`` minus ``worse``) and ``utterances``; None without both
    files or on different utterance lists."""
    paths = [probe_dir / name / task / TEST_SCORES for name in (better, worse)]
    if not all(p.is_file() for p in paths):
        return None
    a, b = (read_test_scores(p) for p in paths)
    r = paired_bootstrap_by_id(b, a, n_boot=2000)
    return None if r is None else {**r, "utterances": len(a)}


def paired_significance(probe_dir: Path, task: str, better: str, worse: str) -> str | None:
    """:func:`paired_test` of ``better`` against ``worse`` in words; None without it."""
    r = paired_test(probe_dir, task, better, worse)
    if r is None:
        return None
    p = r["p_not_better"]
    detectable = detectable_effect(r["delta_se"])  # one seed: the test set's spread alone
    span = f"{r['utterances']} test utterances, p = {p:.3f}, detectable {detectable:.1f}"
    if p < 0.05:
        return f"significant (paired bootstrap, {span})"
    # not "p > 0.95": resamples where the two tie count as not better, and with accuracy on a few
    # dozen utterances ties are common; the opposite is significant only if it holds strictly
    if r["p_not_worse"] < 0.05:
        return (
            f"the opposite is significant (paired bootstrap, {span}; "
            f"p of the opposite = {r['p_not_worse']:.3f})"
        )
    return f"not significant (paired bootstrap, {span})"


def above_fbank(rows: list[dict], tasks: list[str], probe_dir: Path | None = None) -> list[dict]:
    """How far each upstream's scores are above FBANK's (SUPERB's baseline: the features alone),
    per task: ``gain`` on test and ``dev_gain``, in the metric's units, positive where the
    upstream is better; with ``probe_dir``, the test gain's paired 95% interval (``low``,
    ``high``) and ``p``, the share of resamples where the upstream is not better than FBANK.
    Empty without an FBANK row."""
    by_name = {r["upstream"]: r for r in rows}
    base = by_name.get(FBANK)
    if base is None:
        return []
    gains = []
    for r in rows:
        for task in tasks:
            if r is base or task not in r or task not in base:
                continue
            sign = 1 if HIGHER_IS_BETTER[r[task]["metric"]] else -1
            gain = {
                "upstream": r["upstream"],
                "task": task,
                "metric": r[task]["metric"],
                "gain": round(sign * (r[task]["test"] - base[task]["test"]), 2),
                "dev_gain": round(sign * (r[task]["dev"] - base[task]["dev"]), 2),
            }
            # error points of the upstream minus FBANK's: its gain is their negative (accuracy's
            # test scores are one error or none an utterance, so the same holds for SID)
            t = paired_test(probe_dir, task, r["upstream"], FBANK) if probe_dir else None
            if t is not None:
                gain.update(
                    low=round(-t["delta_high"], 2),
                    high=round(-t["delta_low"], 2),
                    p=t["p_not_better"],
                    utterances=t["utterances"],
                )
            gains.append(gain)
    return gains


def above_fbank_table(gains: list[dict], tasks: list[str]) -> str:
    """:func:`above_fbank` as a table: an upstream a row, a task a column."""
    tasks = [t for t in tasks if any(g["task"] == t for g in gains)]
    metric = {g["task"]: g["metric"] for g in gains}
    head = ["upstream"] + [
        f"{t.upper()} {metric[t]} above FBANK: test [95% CI] (dev)" for t in tasks
    ]
    lines = ["|" + "|".join(head) + "|", "|" + "|".join("---" for _ in head) + "|"]
    at = {(g["upstream"], g["task"]): g for g in gains}
    for name in dict.fromkeys(g["upstream"] for g in gains):
        cells = [name]
        for t in tasks:
            g = at.get((name, t))
            if g is None:
                cells.append("-")
                continue
            cell = f"{g['gain']:+.1f}"
            if "p" in g:
                p = f"p = {g['p']:.3f}" if g["p"] > 0 else "p < 0.001"
                cell += f" [{g['low']:+.1f}, {g['high']:+.1f}], {p}"
            cells.append(f"{cell} ({g['dev_gain']:+.1f})")
        lines.append("|" + "|".join(cells) + "|")
    return "\n".join(lines) + "\n"


def _verdict(
    rows: dict[str, dict], task: str, better: str, worse: str, probe_dir: Path | None = None
) -> str | None:
    """'holds on test and dev' / 'test only' / 'dev only' / 'does not hold' for ``better``
    scoring better than ``worse`` on ``task``, with the scores and, given the ``probe_dir``, the
    test difference's significance; None without both scores."""
    a, b = rows.get(better, {}).get(task), rows.get(worse, {}).get(task)
    if a is None or b is None:
        return None
    sign = 1 if HIGHER_IS_BETTER[a["metric"]] else -1
    wins = [split for split in ("test", "dev") if sign * (a[split] - b[split]) > 0]
    if len(wins) == 2:
        where = "holds on test and dev"
    else:
        where = f"holds on {wins[0]} only" if wins else "does not hold"
    significance = paired_significance(probe_dir, task, better, worse) if probe_dir else None
    return (
        f"{task.upper()} {a['metric']} {better} {a['test']:.1f} vs {worse} {b['test']:.1f} "
        f"(dev {a['dev']:.1f} vs {b['dev']:.1f}): {where}"
        + (f", on test {significance}" if significance else "")
    )


def paper_claims(
    rows: list[dict], depths: dict[str, int], tasks: list[str], probe_dir: Path | None = None
) -> list[str]:
    """Each paper's claim (../shared/PAPERS.md) against this run's table, as markdown bullets;
    claims whose upstreams are not in ``rows`` are left out. ``depths``: Transformer layers of
    the equal-size students (the deep-vs-wide comparison takes the deepest and the shallowest).
    With ``probe_dir``, each comparison says whether its test difference is significant."""
    by_name = {r["upstream"]: r for r in rows}
    content = [t for t in tasks if t in ("asr", "pr")]
    lines = []
    if FBANK in by_name and "teacher" in by_name:  # what there is to distil at all
        verdicts = [v for t in tasks if (v := _verdict(by_name, t, "teacher", FBANK, probe_dir))]
        if verdicts:
            lines.append(
                "- The teacher above FBANK (SUPERB: self-supervised upstreams well above FBANK, "
                "the input features alone): " + "; ".join(verdicts) + "."
            )
    d = by_name.get("distilhubert")
    if d is not None:
        gains = {(g["upstream"], g["task"]): g["gain"] for g in above_fbank(rows, tasks)}
        changes = []
        for t in tasks:
            if t not in d or t not in by_name["teacher"]:
                continue
            teacher_score = by_name["teacher"][t]["test"]
            change = f"{t.upper()} {d[t]['metric']} {d[t]['test']:.1f} vs {teacher_score:.1f}"
            teacher_gain = gains.get(("teacher", t))
            if teacher_gain is not None and teacher_gain > 0:  # the share of the teacher's gain
                change += (
                    f" ({gains[('distilhubert', t)] / teacher_gain:.0%} of the teacher's "
                    f"{teacher_gain:.1f} points above FBANK kept)"
                )
            changes.append(change)
        changes = ", ".join(changes)
        lines.append(
            f"- DistilHuBERT (paper: 75% fewer parameters, 73% faster, most of the performance "
            f"kept): {1 - d['params_vs_teacher']:.0%} fewer parameters, "
            f"{d['speedup_vs_teacher']:.1f}x the teacher's speed; scores vs the teacher: "
            f"{changes or 'no probes'}."
        )
    for student in ("lstm_dkd", "lstm_kd"):
        s = by_name.get(student)
        if s is None or d is None:
            continue
        fewer = "holds" if s["params_M"] < d["params_M"] else "does not hold"
        asr = _verdict(by_name, "asr", student, "distilhubert", probe_dir)
        lines.append(
            f"- {student} vs DistilHuBERT (paper: fewer parameters and better ASR): parameters "
            f"{s['params_M']:.2f}M vs {d['params_M']:.2f}M: {fewer}" + (f"; {asr}." if asr else ".")
        )
    if "lstm_dkd" in by_name and "lstm_kd" in by_name:
        verdicts = [
            v for t in tasks if (v := _verdict(by_name, t, "lstm_dkd", "lstm_kd", probe_dir))
        ]
        if verdicts:
            lines.append("- DKD vs KD (paper: DKD better): " + "; ".join(verdicts) + ".")
    if len(depths) > 1:
        deep = max(depths, key=depths.get)
        wide = min(depths, key=depths.get)
        if deep in by_name and wide in by_name:
            verdicts = [v for t in content if (v := _verdict(by_name, t, deep, wide, probe_dir))]
            if "sid" in tasks and (v := _verdict(by_name, "sid", wide, deep, probe_dir)):
                verdicts.append(v)
            if verdicts:
                lines.append(
                    f"- Deep vs wide at equal size ({deep}: {depths[deep]} layers, {wide}: "
                    f"{depths[wide]}; paper: deeper better on content tasks, wider on speaker "
                    "tasks): " + "; ".join(verdicts) + "."
                )
    return lines


def score_interval(
    probe_dir: Path, name: str, task: str, metric: str, n_boot: int = 1000
) -> tuple[float, float] | None:
    """95% bootstrap interval (utterances resampled) of ``name``'s test score on ``task``, from
    its ``test_scores.tsv``, in the metric's own terms (accuracy: 100 - the error rate's
    interval, flipped); None without the file."""
    path = probe_dir / name / task / TEST_SCORES
    if not path.is_file():
        return None
    scores = list(read_test_scores(path).values())
    lo, hi = bootstrap_ci(
        np.array([e for e, _ in scores]), np.array([n for _, n in scores]), n_boot=n_boot
    )
    return (100.0 - hi, 100.0 - lo) if HIGHER_IS_BETTER[metric] else (lo, hi)


def deep_vs_wide_plot(
    rows: list[dict],
    depths: dict[str, int],
    tasks: list[str],
    out: Path,
    probe_dir: Path | None = None,
) -> None:
    """Score vs depth at equal parameters, one panel per task; with ``probe_dir``, each test
    score's 95% bootstrap interval as an error bar (an axis zoomed on a small spread would
    otherwise read as a trend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = sorted(
        (r for r in rows if r["upstream"] in depths), key=lambda r: depths[r["upstream"]]
    )
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        pts = [(depths[r["upstream"]], r[task]["test"], r["upstream"]) for r in chosen if task in r]
        if pts:
            metric = next(r[task]["metric"] for r in chosen if task in r)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-")
            for x, y, name in pts:
                ax.annotate(name, (x, y), fontsize=7, textcoords="offset points", xytext=(3, 3))
                ci = score_interval(probe_dir, name, task, metric) if probe_dir else None
                if ci is not None:
                    ax.errorbar([x], [y], yerr=[[y - ci[0]], [ci[1] - y]], color="C0", capsize=3)
            ax.set_ylabel(
                f"{metric} ({'higher' if HIGHER_IS_BETTER[metric] else 'lower'} is better)"
            )
        ax.set_xlabel("Transformer layers (equal parameters)")
        ax.set_title(task.upper())
    if probe_dir:
        fig.suptitle("test score, 95% bootstrap interval over utterances", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def write_results(
    upstreams: dict[str, Path],
    probe_dir: Path,
    timing_cuts: Path,
    out_dir: Path,
    tasks: list[str],
    timing_utts: int,
    results_file: Path | None,
    title: str,
) -> str:
    """Stage 6: ``out_dir/table.md``, ``summary.yaml`` and the deep-vs-wide plot for the
    upstreams (name -> checkpoint, one of them ``teacher``) from their probes under ``probe_dir``,
    their CPU time measured now on ``timing_cuts``; RESULTS.md (``results_file``) with the
    papers' claims. Returns the table; ValueError without a teacher."""
    if "teacher" not in upstreams:
        raise ValueError("one --upstream must be teacher=PATH")
    models = {name: load_upstream(path) for name, path in upstreams.items()}
    cuts = list(CutSet.from_file(timing_cuts))[:timing_utts]
    waves = [torch.from_numpy(c.load_audio()[0].astype(np.float32)) for c in cuts]
    seconds = inference_seconds(models, waves)
    params = {name: upstream_parameters(m) for name, m in models.items()}
    rows = results_rows(list(models), params, seconds, probe_dir, tasks)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows, tasks)
    gains = above_fbank(rows, tasks, probe_dir)  # bootstraps: once, for the summary and the page
    audio = sum(len(w) for w in waves) / 16000
    (out_dir / "table.md").write_text(table)
    (out_dir / "summary.yaml").write_text(
        yaml.safe_dump(
            {
                "rows": rows,
                "above_fbank": gains,
                "timing": {
                    "utterances": len(waves),
                    "audio_seconds": round(audio, 1),
                    "cpu_seconds": {k: round(v, 3) for k, v in seconds.items()},
                },
            },
            sort_keys=False,
        )
    )
    depths = {
        name: m.config["encoder_num_layers"]
        for name, m in models.items()
        if isinstance(m, DistilHubert)
    }
    teacher = models["teacher"]
    if isinstance(teacher, HubertModel) and len(depths) > 1:
        deep_vs_wide_plot(rows, depths, tasks, out_dir / "deep_vs_wide.png", probe_dir)
    if results_file:
        body = [
            *page_header(title),
            "## Upstreams: parameters, speed, SUPERB-style probing",
            "",
            f"CPU speed-up: teacher's time / the upstream's on the same {len(waves)} utterances "
            f"({audio:.0f} s of audio), one thread, measured in this run. Scores: test (dev); "
            "probes on the frozen upstream with a learnt weighted sum of its layers.",
            "",
            table,
        ]
        if (out_dir / "deep_vs_wide.png").is_file():
            body += ["", f"![deep vs wide]({out_dir / 'deep_vs_wide.png'})", ""]
        if gains:
            body += [
                "",
                "## Above FBANK",
                "",
                "How much of each score the upstream adds to its input features: its test score "
                "minus FBANK's (SUPERB's baseline: the probes' input features alone, probed the "
                "same way), in the metric's units, positive where the upstream is better; the "
                "paired bootstrap's 95% interval over test utterances and p, the share of 2000 "
                "resamples where the upstream is not better than FBANK; dev in parentheses.",
                "",
                above_fbank_table(gains, tasks),
            ]
        claims = paper_claims(rows, depths, tasks, probe_dir)
        if claims:
            body += [
                "",
                "## The papers' claims in this run",
                "",
                "Direction from the table above (test and dev); where the probes wrote "
                "per-utterance test scores, the test difference's paired bootstrap over "
                "utterances (Bisani and Ney 2004; p: the share of 2000 resamples where the "
                "claimed-better upstream is not better; a tie counts as not better, so the opposite is "
                "called significant only where its own p, the share where the claimed-better "
                "upstream is not worse, is below 0.05; detectable: the smallest difference, in "
                "the metric's points, that the test finds with 80% power at two-sided 0.05). One "
                "seed of each upstream and probe: the test and the detectable difference cover "
                "the test set's sampling noise, not the training seed's.",
                "",
                *claims,
                "",
            ]
        atomic_write_text(results_file, "\n".join(body) + "\n")
    return table
