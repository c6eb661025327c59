"""espnet_distill.bin."""
