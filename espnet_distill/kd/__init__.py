"""Cross-modal knowledge distillation from unit language models into acoustic models."""
