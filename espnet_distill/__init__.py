"""espnet_distill: Kaldi/ESPnet-style ASR recipes for knowledge-distillation research."""

__version__ = "0.1.0"
