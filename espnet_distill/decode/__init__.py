"""espnet_distill.decode."""
