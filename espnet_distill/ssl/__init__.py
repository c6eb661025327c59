"""The self-supervised task (ssl1 recipe): HuBERT pretraining targets and training, distillation
into students, SUPERB-style probes and their report."""
