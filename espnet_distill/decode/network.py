"""The network side of decoding: a model's CTC log-probs or senone scores over a cut manifest,
computed once, then searched with every setting (:mod:`espnet_distill.decode.searches`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from espnet_distill.data.datamodule import make_loader
from espnet_distill.models.acoustic_model import load_model


def network_outputs(
    model_file: Path, cuts: Path, device: str, max_duration: float
) -> tuple[dict, float]:
    """{utt id: (T', V) log-probs as numpy}, and the audio duration in seconds."""
    model, _ = load_model(model_file, device)
    loader = make_loader(
        cuts, None, max_duration, train=False, num_workers=0, audio=model.takes_audio
    )
    outputs, seconds = {}, 0.0
    for batch in tqdm(loader, desc=f"network {cuts.name}", unit="batch"):
        feats, lens = batch["feats"].to(device), batch["feat_lens"].to(device)
        log_probs, out_lens = model.log_probs(feats, lens)
        for utt, lp, n in zip(batch["ids"], log_probs.cpu(), out_lens.tolist(), strict=True):
            outputs[utt] = lp[:n].numpy()
        # the cuts' durations: lens counts fbank frames or, with an SSL front-end, samples
        seconds += float(batch["durations"].sum())
    return outputs, seconds


def hybrid_scores(
    model_file: Path, cuts: Path, num_pdfs: int, device: str, max_duration: float
) -> dict[str, np.ndarray]:
    """{utt id: (T, num_pdfs) pseudo log-likelihoods} of a network with a senone head."""
    model, _ = load_model(model_file, device)
    if model.senone_head is None:
        raise ValueError("the model has no senone head (a CTC-only model decodes with decode_ctc)")
    if model.senone_head.num_classes != num_pdfs:
        raise ValueError(
            f"the model has {model.senone_head.num_classes} senones, the tree of "
            f"the graph {num_pdfs}"
        )
    loader = make_loader(
        cuts, None, max_duration, train=False, num_workers=0, audio=model.takes_audio
    )
    scores = {}
    for batch in tqdm(loader, desc=f"network {cuts.name}", unit="batch"):
        out, lens = model.senone_scores(batch["feats"].to(device), batch["feat_lens"].to(device))
        for utt, s, n in zip(batch["ids"], out.cpu(), lens.tolist(), strict=True):
            scores[utt] = s[:n].numpy()
    return scores
