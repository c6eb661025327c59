"""Decoding: CTC greedy and prefix beam search with word n-gram fusion, WFST search over TLG and
HCLG graphs, and the tuning of their weights on a dev set (the method list: config.DECODE_METHODS)."""
