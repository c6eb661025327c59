"""espnet_distill.models."""
