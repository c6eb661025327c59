"""Language models: word n-grams (KenLM); unit LMs come with the cross-modal KD recipe."""
