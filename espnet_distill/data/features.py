"""Stage 2: 80-d log-mel fbank with lhotse (lilcom storage), global CMVN, Kaldi-style data dirs.

Work is split like Kaldi's: ``split`` writes N cut lists, N ``extract`` jobs run through run.pl or
slurm.pl, ``combine`` joins their outputs. A cut whose audio cannot be decoded is skipped and listed
in the job's rejected file (nothing is dropped silently).
"""

from __future__ import annotations

import logging
from pathlib import Path

import kaldiio
import numpy as np
import torch
from lhotse import (
    CutSet,
    Fbank,
    FbankConfig,
    LilcomChunkyWriter,
    RecordingSet,
    SupervisionSet,
    load_manifest_lazy,
)
from lhotse.kaldi import export_to_kaldi
from tqdm import tqdm

from espnet_distill.utils import add_rejected, atomic_output, atomic_write_text, out_of_space

log = logging.getLogger(__name__)

NUM_MEL_BINS = 80


def fbank_extractor(num_mel_bins: int = NUM_MEL_BINS) -> Fbank:
    """Kaldi-compatible fbank: 25 ms window, 10 ms shift, povey window, no dither."""
    return Fbank(FbankConfig(num_mel_bins=num_mel_bins, dither=0.0, snip_edges=False))


def knf_options(sample_rate: int = 16000) -> object:
    """kaldi-native-fbank's ``FbankOptions`` with our extractor's options set one by one."""
    import kaldi_native_fbank as knf

    cfg = fbank_extractor().config
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = sample_rate
    opts.frame_opts.frame_length_ms = cfg.frame_length * 1000
    opts.frame_opts.frame_shift_ms = cfg.frame_shift * 1000
    opts.frame_opts.dither = cfg.dither
    opts.frame_opts.snip_edges = cfg.snip_edges
    opts.frame_opts.preemph_coeff = cfg.preemph_coeff
    opts.frame_opts.remove_dc_offset = cfg.remove_dc_offset
    opts.frame_opts.window_type = cfg.window_type
    opts.mel_opts.num_bins = cfg.num_filters
    opts.mel_opts.low_freq = cfg.low_freq
    opts.mel_opts.high_freq = cfg.high_freq
    return opts


def kaldi_native_fbank(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """The same features computed by kaldi-native-fbank (the reference of tests and bench/)."""
    import kaldi_native_fbank as knf

    fb = knf.OnlineFbank(knf_options(sample_rate))
    fb.accept_waveform(sample_rate, samples)
    fb.input_finished()
    return np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])


def kaldi_dir_name(part: str) -> str:
    """'train-clean-100' -> 'train_clean_100' (Kaldi/ESPnet data dir names)."""
    return part.replace("-", "_")


def split_cuts(
    manifest_dir: Path,
    part: str,
    nj: int,
    out_dir: Path,
    prefix: str = "librispeech",
    speed_factors: tuple[float, ...] = (),
) -> int:
    """Cuts of one part (one per supervision) split into ``nj`` lists ``split/cuts.J.jsonl.gz``.

    ``speed_factors`` (e.g. 0.9 1.1) add speed-perturbed copies of every cut (Kaldi's and ESPnet's
    ``speed_perturb``: tempo and pitch change together); their ids end in ``_sp<factor>``.
    """
    recordings = load_manifest_lazy(manifest_dir / f"{prefix}_recordings_{part}.jsonl.gz")
    supervisions = load_manifest_lazy(manifest_dir / f"{prefix}_supervisions_{part}.jsonl.gz")
    cuts = CutSet.from_manifests(
        recordings=recordings, supervisions=supervisions
    ).trim_to_supervisions(keep_overlapping=False)
    cuts = cuts.to_eager()
    originals = cuts
    for factor in speed_factors:
        if factor != 1.0:
            cuts = cuts + originals.perturb_speed(factor)
    nj = max(1, min(nj, len(cuts)))
    (out_dir / "split").mkdir(parents=True, exist_ok=True)
    for j, piece in enumerate(cuts.split(nj), start=1):
        piece.to_file(out_dir / "split" / f"cuts.{j}.jsonl.gz")
    return nj


def extract(cuts_file: Path, out_dir: Path, job: int) -> None:
    """One job: fbank for each cut -> ``feats.J.lca`` (lilcom) + ``cuts.J.jsonl.gz``."""
    torch.set_num_threads(1)
    extractor = fbank_extractor()
    cuts = CutSet.from_file(cuts_file)
    done_cuts, rejected = [], []
    # The cut list is written last and atomically: it marks the job as finished; a partial
    # archive from a killed job is simply overwritten by the rerun.
    # an absolute path in the cuts: they load from any directory (another recipe decoding them)
    archive = (out_dir / f"feats.{job}.lca").resolve()
    with LilcomChunkyWriter(archive) as storage:
        for cut in tqdm(cuts, desc=f"fbank job {job}", mininterval=5):
            try:
                done_cuts.append(cut.compute_and_store_features(extractor, storage))
            except Exception as err:  # noqa: BLE001  # any decode error: skip the cut, say why
                if out_of_space(err, archive):  # not the cut's fault: stop, naming the archive
                    raise
                source = cut.recording.sources[0].source if cut.has_recording else cut.id
                detail = " ".join(str(err).split())[:300]  # one line, however long the error
                rejected.append(
                    f"{source}: cannot compute features ({type(err).__name__}: {detail})"
                )
                log.warning("skipping %s", rejected[-1])
    atomic_write_text(out_dir / f"rejected.{job}.txt", "".join(f"{r}\n" for r in rejected))
    final = out_dir / f"cuts.{job}.jsonl.gz"
    with atomic_output(final) as tmp:
        CutSet.from_cuts(done_cuts).to_file(tmp)
    log.info("job %d: %d cuts with features, %d rejected", job, len(done_cuts), len(rejected))


def combine(out_dir: Path, nj: int, part: str, rejected_list: Path | None = None) -> CutSet:
    """Join the jobs' cuts into ``cuts_<part>.jsonl.gz``; their rejects are added to the part's
    rejected list (``rejected_list``, stage 1's ``manifests/rejected_<part>.txt``; default:
    ``<out_dir>/rejected.txt``)."""
    cuts = CutSet.from_cuts(
        c for j in range(1, nj + 1) for c in CutSet.from_file(out_dir / f"cuts.{j}.jsonl.gz")
    )
    rejected = [
        line
        for j in range(1, nj + 1)
        for line in (out_dir / f"rejected.{j}.txt").read_text().splitlines()
    ]
    rejected_list = rejected_list or out_dir / "rejected.txt"
    total = add_rejected(rejected_list, rejected)
    final = out_dir.parent / f"cuts_{part}.jsonl.gz"
    with atomic_output(final) as tmp:
        cuts.to_file(tmp)
    log.info(
        "%s: %d cuts with features, %d rejected by feature extraction (%s: %d in all)",
        part,
        len(cuts),
        len(rejected),
        rejected_list,
        total,
    )
    return cuts


def compute_global_cmvn(cuts: CutSet, out: Path) -> dict[str, np.ndarray]:
    """Per-dimension mean and standard deviation over all frames of ``cuts`` -> ``out`` (npz).

    lhotse's one-pass float64 accumulation (Chan, Golub and LeVeque); on the demo's training set
    it gives the same float32 values as summing x and x^2 did here before."""
    frames = sum(c.num_frames or 0 for c in cuts)
    if frames == 0:
        raise ValueError("cannot compute CMVN: no frames")
    log.info("global CMVN over %d frames of %d cuts", frames, len(cuts))
    stats = cuts.compute_global_feature_stats()
    # a constant bin (digital silence) would divide by zero
    mean, std = stats["norm_means"], np.maximum(stats["norm_stds"], 1e-5)
    with atomic_output(out) as tmp:
        np.savez(tmp, mean=mean.astype(np.float32), std=std.astype(np.float32), frames=frames)
    return {"mean": mean, "std": std}


def export_kaldi_dir(cuts: CutSet, data_dir: Path) -> None:
    """wav.scp, text, utt2spk, spk2utt (lhotse's exporter) and feats.scp/ark (kaldiio) for ``cuts``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    recordings = RecordingSet.from_recordings(c.recording for c in cuts)
    supervisions = SupervisionSet.from_segments(s for c in cuts for s in c.supervisions)
    export_to_kaldi(
        recordings, supervisions, data_dir, map_underscores_to=None, prefix_spk_id=False
    )
    # lhotse pipes every file through ffmpeg; Kaldi's LibriSpeech recipe decodes FLAC with flac.
    wav_scp = []
    for rec in sorted(recordings, key=lambda r: r.id):
        src = rec.sources[0].source
        entry = f"flac -c -d -s {src} |" if src.endswith(".flac") else src
        speeds = [t.factor for t in rec.transforms or [] if type(t).__name__ == "Speed"]
        if speeds:  # speed-perturbed copy: the same sox pipe as Kaldi's perturb_data_dir_speed.sh
            entry = entry if entry.endswith("|") else f"cat {entry} |"
            entry += "".join(f" sox -t wav - -t wav - speed {f} |" for f in speeds)
        wav_scp.append(f"{rec.id} {entry}")
    atomic_write_text(data_dir / "wav.scp", "\n".join(wav_scp) + "\n")
    spk2utt: dict[str, list[str]] = {}
    for sup in sorted(supervisions, key=lambda s: s.id):
        spk2utt.setdefault(sup.speaker, []).append(sup.id)
    atomic_write_text(
        data_dir / "spk2utt",
        "".join(f"{spk} {' '.join(utts)}\n" for spk, utts in sorted(spk2utt.items())),
    )
    # written under temporary names and renamed: a full disk leaves no partial archive behind
    ark = data_dir.resolve() / "feats.ark"
    with atomic_output(data_dir / "feats.scp") as tmp_scp, atomic_output(ark) as tmp_ark:
        with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer:
            for cut in sorted(cuts, key=lambda c: c.supervisions[0].id):
                writer(cut.supervisions[0].id, cut.load_features())
        entries = tmp_scp.read_text().replace(f" {tmp_ark}:", f" {ark}:")
        tmp_scp.write_text(entries)
