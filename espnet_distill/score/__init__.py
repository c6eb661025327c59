"""espnet_distill.score."""
