"""Our stage-2 fbank (lhotse) against kaldi-native-fbank on the same audio."""

from __future__ import annotations

import kaldi_native_fbank as knf
import numpy as np
import soundfile as sf

from espnet_distill.data.features import fbank_extractor


def _knf_fbank(samples: np.ndarray, sr: int) -> np.ndarray:
    """kaldi-native-fbank with the options of our extractor's config (set one by one)."""
    cfg = fbank_extractor().config
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = sr
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
    assert cfg.num_filters == 80 and cfg.dither == 0.0
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(sr, samples.tolist())
    fb.input_finished()
    return np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])


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
