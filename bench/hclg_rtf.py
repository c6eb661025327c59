"""WFST decoding speed: real-time factor of the search, and the graph's size.

Runs on a finished recipe (stages 4, 6 and 7): decodes a test set over HCLG with the stage-4
triphone GMM-HMM or (``--system hybrid``) the network's senone head, or over TLG with the
network's CTC output (``--system ctc``), timing the acoustic scoring and the search separately;
the real-time factor is seconds of compute per second of audio, measured in one run on the same
utterances. Acoustic scale (and blank penalty, beam) are the ones the recipe chose on dev.
The performance issue's target: search RTF <= 0.02.

``--backend kaldi k2`` searches the same scores with kaldi-decoder and with k2, side by side:
each one's graph load time, search RTF, WER, and the share of utterances whose hypothesis is
identical to kaldi-decoder's (the k2 backend's parity check on real scores).

Usage:
    python bench/hclg_rtf.py --recipe egs/synth/asr1 --size demo [--part test-clean] \\
        [--system hybrid|ctc --am am_train_conformer_ctc_senone] [--beam 11] [--backend kaldi k2] \\
        [--max-active 7000 100000]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml
from lhotse import CutSet

from espnet_distill.align.features import load_align_features
from espnet_distill.align.trainer import GmmSystem, Lang
from espnet_distill.decode.network import hybrid_scores, network_outputs
from espnet_distill.decode.searches import Hclg, Tlg, WfstSearch
from espnet_distill.score.wer import score_corpus


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipe", type=Path, default=Path("egs/synth/asr1"))
    parser.add_argument("--size", default="demo")
    parser.add_argument("--part", default="test-clean")
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--beam", type=float, help="search beam (default: the recipe's)")
    parser.add_argument(
        "--beams",
        type=float,
        nargs="+",
        help="--system ctc: several beams, each with its RTF and WER",
    )
    parser.add_argument(
        "--max-active",
        type=int,
        nargs="+",
        help="HCLG: one or more max-active settings (default: the recipe's); a large one shows "
        "whether two backends' differences are pruning (they converge) or the search itself",
    )
    parser.add_argument("--system", choices=["gmm", "hybrid", "ctc"], default="gmm")
    parser.add_argument(
        "--backend", nargs="+", choices=["kaldi", "k2"], default=["kaldi"], help="search libraries"
    )
    parser.add_argument(
        "--am",
        default="am_train_conformer_ctc_senone",
        help="experiment dir (under exp/<size>) of the network",
    )
    args = parser.parse_args()
    if args.system == "ctc":
        tlg_rtf(args)
        return
    r = args.recipe.resolve()
    data, exp = r / "data" / args.size, r / "exp" / args.size
    graph_dir = data / f"graph_hclg_{args.order}gram"
    system_dir = exp / "align" / "tri" if args.system == "gmm" else exp / args.am
    best = system_dir / "decode_dev-clean_hclg" / "best.yaml"
    chosen = yaml.safe_load(best.read_text()) if best.is_file() else {}
    scale = chosen.get("acoustic_scale", 0.1)
    beam = float(args.beam or chosen.get("graph_beam", 13.0))
    max_actives = args.max_active or [chosen.get("max_active", 7000)]
    lang = Lang.load(data / "lang_phone")
    tri = GmmSystem.load(exp / "align" / "tri", lang)
    os.chdir(r)  # cut manifests hold paths relative to the recipe
    cuts = CutSet.from_file(data / "fbank" / f"cuts_{args.part}.jsonl.gz").to_eager()
    audio = sum(c.duration for c in cuts)
    refs = {s.id: s.text for c in cuts for s in c.supervisions}
    t0 = time.perf_counter()
    if args.system == "gmm":
        feats = load_align_features(cuts)
        scores = {c.id: tri.gmm.loglikes(feats[c.id]) for c in cuts}
    else:
        cuts_file = data / "fbank" / f"cuts_{args.part}.jsonl.gz"
        scores = hybrid_scores(system_dir / "model.pt", cuts_file, tri.tree.num_pdfs, "cpu", 60.0)
    t_acoustic = time.perf_counter() - t0
    print(graph_summary(graph_dir / "HCLG.fst"))
    print(
        f"{args.system} system; {args.part}: {len(cuts)} utterances, {audio:.0f} s of audio, "
        f"acoustic scale {scale}, beam {beam}; acoustic scoring RTF {t_acoustic / audio:.4f}"
    )
    for max_active in max_actives:
        rows = compare_backends(
            lambda backend, max_active=max_active: Hclg(
                graph_dir, tri.tm, beam, max_active, args.system, backend
            ),
            args.backend,
            (scale,),
            scores,
            refs,
            audio,
        )
        print_rows(f"beam {beam:g}, max-active {max_active}", rows)


def graph_summary(fst_file: Path) -> str:
    import kaldifst

    graph = kaldifst.StdVectorFst.read(str(fst_file))
    arcs = sum(graph.num_arcs(s) for s in range(graph.num_states))
    size_mb = fst_file.stat().st_size / 2**20
    return f"{fst_file}: {graph.num_states} states, {arcs} arcs, {size_mb:.1f} MB"


def compare_backends(
    make_search: Callable[[str], WfstSearch],
    backends: list[str],
    weights: tuple[float, ...],
    scores: dict[str, np.ndarray],
    refs: dict[str, str],
    audio: float,
) -> list[tuple]:
    """(backend, graph load s, search RTF, WER, share identical to the first backend's) rows."""
    rows, first = [], None
    for backend in backends:
        t0 = time.perf_counter()
        search = make_search(backend)
        t_load = time.perf_counter() - t0
        text = search.for_weights(*weights)
        t0 = time.perf_counter()
        hyps = {utt: text(s) for utt, s in scores.items()}
        t_search = time.perf_counter() - t0
        first = first or hyps
        same = sum(hyps[u] == first[u] for u in hyps) / len(hyps)
        wer = score_corpus(refs, hyps).totals()["err"]
        rows.append((backend, t_load, t_search / audio, wer, same))
    return rows


def print_rows(setting: str, rows: list[tuple]) -> None:
    print(f"| {setting}: backend | graph load (s) | search RTF | WER | identical to {rows[0][0]} |")
    print("|---|---|---|---|---|")
    for backend, t_load, rtf, wer, same in rows:
        print(f"| {backend} | {t_load:.1f} | {rtf:.4f} | {wer:.1f} | {same:.1%} |")


def tlg_rtf(args: argparse.Namespace) -> None:
    r = args.recipe.resolve()
    data, am_dir = r / "data" / args.size, r / "exp" / args.size / args.am
    chosen = yaml.safe_load((am_dir / "decode_dev-clean_tlg" / "best.yaml").read_text())
    graph_dir = (
        r / chosen["graph"] if not Path(chosen["graph"]).is_absolute() else Path(chosen["graph"])
    )
    beams = args.beams or [float(args.beam or chosen["graph_beam"])]
    os.chdir(r)
    cuts_file = data / "fbank" / f"cuts_{args.part}.jsonl.gz"
    cuts = CutSet.from_file(cuts_file)
    audio = sum(c.duration for c in cuts)
    refs = {s.id: s.text for c in cuts for s in c.supervisions}
    t0 = time.perf_counter()
    outputs, _ = network_outputs(am_dir / "model.pt", cuts_file, "cpu", 60.0)
    t_network = time.perf_counter() - t0
    print(graph_summary(graph_dir / "TLG.fst"))
    print(
        f"ctc system {args.am}; {args.part}: {len(outputs)} utterances, {audio:.0f} s of audio, "
        f"acoustic scale {chosen['acoustic_scale']}, blank penalty {chosen['blank_penalty']}; "
        f"network RTF {t_network / audio:.4f}"
    )
    weights = (chosen["acoustic_scale"], chosen["blank_penalty"])
    max_active = chosen.get("max_active", 7000)
    for beam in beams:
        rows = compare_backends(
            lambda backend, beam=beam: Tlg(graph_dir, beam, max_active, backend),
            args.backend,
            weights,
            outputs,
            refs,
            audio,
        )
        print_rows(f"beam {beam:g}", rows)


if __name__ == "__main__":
    main()
