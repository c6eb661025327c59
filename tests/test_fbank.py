"""Our stage-2 fbank (lhotse) against kaldi-native-fbank on the same audio."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from espnet_distill.data.features import fbank_extractor, kaldi_native_fbank


def _knf_fbank(samples: np.ndarray, sr: int) -> np.ndarray:
    cfg = fbank_extractor().config
    assert cfg.num_filters == 80 and cfg.dither == 0.0
    return kaldi_native_fbank(samples, sr)


def test_fbank_matches_kaldi_native_fbank(tiny_corpus):
    flac = sorted((tiny_corpus / "LibriSpeech" / "test-clean").rglob("*.flac"))[0]
    samples, sr = sf.read(flac, dtype="float32")
    ours = fbank_extractor().extract(samples, sr)
    ref = _knf_fbank(samples, sr)
    assert ours.shape == ref.shape and ours.shape[1] == 80
    assert np.abs(ours - ref).max() < 1e-3


def test_fbank_matches_on_a_pure_tone():
    sr = 16000
    t = np.arange(int(0.73 * sr)) / sr
    samples = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * np.random.default_rng(0).standard_normal(
        t.size
    )
    samples = samples.astype(np.float32)
    ours = fbank_extractor().extract(samples, sr)
    ref = _knf_fbank(samples, sr)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-3


def test_speed_perturbation_matches_kaldis_sox_pipe(tiny_features, tmp_path):
    """Speed-perturbed cuts: 3x the cuts, durations / factor, and the Kaldi wav.scp sox pipe
    produces the same number of samples as lhotse's perturbed audio."""
    import io
    import subprocess

    from espnet_distill.data import features

    out = tmp_path / "fbank"
    n = features.split_cuts(
        tiny_features / "manifests", "dev-clean", 1, out, speed_factors=(0.9, 1.0, 1.1)
    )
    features.extract(out / "split" / "cuts.1.jsonl.gz", out, 1)
    cuts = features.combine(out, n, "dev-clean")
    by_id = {c.id: c for c in cuts}
    originals = [c for c in cuts if "_sp" not in c.id]
    assert len(cuts) == 3 * len(originals)
    for c in originals:
        for factor in (0.9, 1.1):
            sp = by_id[f"{c.id}_sp{factor}"]
            assert abs(sp.duration - c.duration / factor) < 2e-3
            assert abs(sp.num_frames - round(sp.duration * 100)) <= 1
            assert sp.supervisions[0].text == c.supervisions[0].text
    features.export_kaldi_dir(cuts, tmp_path / "kaldi")
    wav_scp = dict(
        line.split(None, 1) for line in (tmp_path / "kaldi" / "wav.scp").read_text().splitlines()
    )
    sp = next(c for c in cuts if c.id.endswith("_sp0.9"))
    assert wav_scp[sp.recording.id].endswith("speed 0.9 |")
    wav = subprocess.run(
        wav_scp[sp.recording.id].rstrip("| "), shell=True, check=True, capture_output=True
    ).stdout
    samples, sr = sf.read(io.BytesIO(wav))
    assert sr == 16000
    assert abs(len(samples) - sp.recording.num_samples) <= 2


def test_global_cmvn_is_the_mean_and_std_of_every_training_frame(tiny_features):
    """Stage 2's CMVN (lhotse's one-pass accumulation) against numpy over all frames at once."""
    from lhotse import CutSet

    fbank = tiny_features / "fbank"
    cuts = CutSet.from_file(fbank / "cuts_train-clean-100.jsonl.gz")
    frames = np.concatenate([c.load_features().astype(np.float64) for c in cuts])
    stats = np.load(fbank / "cmvn.npz")
    assert int(stats["frames"]) == len(frames)
    np.testing.assert_allclose(stats["mean"], frames.mean(0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(stats["std"], frames.std(0), rtol=1e-6)
