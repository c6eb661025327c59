"""espnet_distill.train."""
