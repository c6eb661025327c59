"""ssl1: k-means frame labels for HuBERT pretraining, one per 20 ms model frame.

Iteration 1 clusters MFCCs (39-d, every second 10 ms frame); iteration 2 (``--teacher``) clusters
a layer of a HuBERT trained on the first labels. The k-means model is fitted on the training cuts
only (seeded); every cut of ``--cuts`` gets labels in ``labels.npz`` (cut id -> int16 array);
``kmeans.yaml`` records the settings and the cluster sizes, ``centers.npy`` the centroids.

Usage:
    python -m espnet_distill.bin.ssl_labels --fit-cuts data/fbank/cuts_train-clean-100.jsonl.gz \\
        --cuts data/fbank/cuts_train-clean-100.jsonl.gz data/fbank/cuts_dev-clean.jsonl.gz \\
        --num-clusters 100 --out-dir exp/ssl/labels_mfcc [--teacher exp/ssl/hubert_it1/model.pt --layer 4]
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import yaml
from lhotse import CutSet

from espnet_distill.bin import add_paths, finished, make_parser, one_line_errors, require
from espnet_distill.models.hubert import receptive_field
from espnet_distill.ssl.targets import cut_features, fit_kmeans, model_frames, to_model_frames
from espnet_distill.utils import atomic_output, setup_logging

log = logging.getLogger(__name__)


@one_line_errors()
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument(
        "--fit-cuts", type=Path, required=True, help="cuts the k-means is fitted on"
    )
    parser.add_argument("--cuts", type=Path, nargs="+", required=True, help="cuts to label")
    parser.add_argument("--num-clusters", type=int, default=100)
    parser.add_argument("--max-frames", type=int, default=200_000, help="k-means sample")
    parser.add_argument(
        "--teacher", type=Path, help="HuBERT whose layer is clustered (iteration 2)"
    )
    parser.add_argument("--layer", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    add_paths(parser, "--out-dir")
    args = parser.parse_args(argv)
    setup_logging()
    final = args.out_dir / "labels.npz"
    if finished(final):
        return 0
    require(args.fit_cuts, *args.cuts, args.teacher)
    teacher = None
    if args.teacher:
        from espnet_distill.models.hubert import load_hubert

        teacher = load_hubert(args.teacher)
        if not 0 <= args.layer <= teacher.num_layers:
            print(
                f"ssl_labels: --layer {args.layer}: the teacher has layers 0..{teacher.num_layers}",
                file=sys.stderr,
            )
            return 1
    step = 1 if teacher is not None else 2  # features at 50 or 100 frames a second
    field = receptive_field(teacher.config) if teacher is not None else 400
    fit = cut_features(CutSet.from_file(args.fit_cuts), teacher, args.layer, "k-means features")
    km = fit_kmeans(
        [f[::step] for f in fit.values()], args.num_clusters, args.seed, args.max_frames
    )
    labels, skipped = {}, 0
    for cuts_file in args.cuts:
        cuts = CutSet.from_file(cuts_file)
        feats = (
            fit
            if cuts_file == args.fit_cuts
            else cut_features(cuts, teacher, args.layer, f"features {cuts_file.name}")
        )
        for cut in cuts:
            n = model_frames(cut.num_samples, field)
            if n == 0:
                skipped += 1  # shorter than the CNN's receptive field: no frame to label
                continue
            frame_labels = km.predict(feats[cut.id].astype(np.float32))
            labels[cut.id] = to_model_frames(frame_labels, n, step).astype(np.int16)
    if skipped:
        log.warning(
            "%d cuts shorter than the CNN's receptive field (%d samples) have no labels",
            skipped,
            field,
        )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    sizes = np.bincount(np.concatenate(list(labels.values())), minlength=args.num_clusters)
    (args.out_dir / "kmeans.yaml").write_text(
        yaml.safe_dump(
            {
                "features": f"layer {args.layer} of {args.teacher}"
                if teacher is not None
                else "mfcc39",
                "num_clusters": args.num_clusters,
                "seed": args.seed,
                "labelled_cuts": len(labels),
                "skipped_cuts": skipped,
                "empty_clusters": int((sizes == 0).sum()),
                "largest_cluster_share": round(float(sizes.max() / sizes.sum()), 4),
            },
            sort_keys=False,
        )
    )
    np.save(args.out_dir / "centers.npy", km.cluster_centers_)  # to label more audio the same way
    with atomic_output(final) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **labels)
    log.info("labels of %d cuts -> %s", len(labels), final)
    return 0


if __name__ == "__main__":
    sys.exit(main())
