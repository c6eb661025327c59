"""ssl1 stage 6: the results table (parameters, CPU speed-up vs the teacher measured in this run
on the same audio, probing scores), the deep-vs-wide plot and RESULTS.md.

Usage:
    python -m espnet_distill.bin.ssl_results --upstream teacher=exp/ssl/teacher/model.pt \\
        distilhubert=exp/ssl/distilhubert/model.pt lstm_dkd=exp/ssl/lstm_dkd/model.pt ... \\
        --probe-dir exp/ssl/probe --tasks asr pr sid --timing-cuts data/fbank/cuts_dev-clean.jsonl.gz \\
        --out-dir exp/ssl/results --results-file RESULTS.md
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import yaml
from lhotse import CutSet

from espnet_distill.bin import add_paths, make_parser
from espnet_distill.models.hubert import HubertModel
from espnet_distill.models.students import DistilHubert
from espnet_distill.models.upstream import load_upstream, upstream_parameters
from espnet_distill.score.results import environment
from espnet_distill.ssl.report import (
    deep_vs_wide_plot,
    inference_seconds,
    markdown_table,
    paper_claims,
    results_rows,
)
from espnet_distill.utils import atomic_write_text, setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--upstream", nargs="+", required=True, help="name=path; one is 'teacher'")
    add_paths(parser, "--probe-dir", "--timing-cuts", "--out-dir")
    parser.add_argument("--tasks", nargs="+", default=["asr", "pr", "sid"])
    parser.add_argument("--timing-utts", type=int, default=20)
    add_paths(parser, "--results-file", required=False)
    parser.add_argument("--title", default="ssl1 results")
    args = parser.parse_args(argv)
    setup_logging()
    paths = dict(item.split("=", 1) for item in args.upstream)
    if "teacher" not in paths:
        print("ssl_results: one --upstream must be teacher=PATH", file=sys.stderr)
        return 1
    models = {name: load_upstream(Path(p)) for name, p in paths.items()}
    cuts = list(CutSet.from_file(args.timing_cuts))[: args.timing_utts]
    waves = [torch.from_numpy(c.load_audio()[0].astype(np.float32)) for c in cuts]
    seconds = inference_seconds(models, waves)
    params = {name: upstream_parameters(m) for name, m in models.items()}
    rows = results_rows(list(models), params, seconds, args.probe_dir, args.tasks)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows, args.tasks)
    audio = sum(len(w) for w in waves) / 16000
    (args.out_dir / "table.md").write_text(table)
    (args.out_dir / "summary.yaml").write_text(
        yaml.safe_dump(
            {
                "rows": rows,
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
        deep_vs_wide_plot(
            rows, depths, args.tasks, args.out_dir / "deep_vs_wide.png", args.probe_dir
        )
    print(table, end="")
    if args.results_file:
        body = [
            f"# {args.title}",
            "",
            "## Environment",
            *environment(),
            "",
            "## Upstreams: parameters, speed, SUPERB-style probing",
            "",
            f"CPU speed-up: teacher's time / the upstream's on the same {len(waves)} utterances "
            f"({audio:.0f} s of audio), one thread, measured in this run. Scores: test (dev); "
            "probes on the frozen upstream with a learnt weighted sum of its layers.",
            "",
            table,
        ]
        if (args.out_dir / "deep_vs_wide.png").is_file():
            body += ["", f"![deep vs wide]({args.out_dir / 'deep_vs_wide.png'})", ""]
        claims = paper_claims(rows, depths, args.tasks, args.probe_dir)
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
                "upstream is not worse, is below 0.05). One seed of each upstream and probe: "
                "the test covers the test set's sampling noise, not the training seed's.",
                "",
                *claims,
                "",
            ]
        atomic_write_text(args.results_file, "\n".join(body) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
