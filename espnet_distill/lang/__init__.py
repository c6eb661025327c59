"""espnet_distill.lang."""
