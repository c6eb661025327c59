"""Decoding: CTC greedy and prefix beam search with word n-gram fusion."""
