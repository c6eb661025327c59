"""Decoding graphs and WFST decoding.

One small interface, so that another FST toolkit (k2, once it has a wheel for this stack) can be
dropped in: :func:`espnet_distill.graph.tlg.compile_tlg` writes ``<graph_dir>/TLG.fst`` and
``words.txt`` from a lang dir and an ARPA LM; :class:`espnet_distill.graph.tlg.TlgDecoder` turns a
(T, V) matrix of CTC log-probabilities into words. Today's backend is kaldifst (OpenFst) for graph
construction and kaldi-decoder's FasterDecoder for the search.
"""
