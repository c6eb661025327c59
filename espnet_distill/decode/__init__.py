"""Decoding: CTC greedy and prefix beam search with word n-gram fusion."""

# Stage 8's decoders; a decode dir is named decode_<set>_<method> (egs/TEMPLATE/asr1/asr.sh).
DECODE_METHODS = ("greedy", "beam_lm", "tlg", "hclg")
