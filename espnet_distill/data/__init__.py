"""Corpus synthesis, lhotse manifests, features and data loading."""
