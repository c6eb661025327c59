"""The ASR task (asr1 recipe): acoustic-model training with CTC, hybrid senone outputs and the
hierarchical KD heads."""
