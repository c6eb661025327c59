"""Self-supervised speech models: HuBERT teachers, distilled students, SUPERB-style probes."""
