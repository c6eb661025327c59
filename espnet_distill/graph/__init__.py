"""Decoding graphs and WFST decoding.

One small interface, shared by two search backends over the same OpenFst graphs:
:func:`espnet_distill.graph.tlg.compile_tlg` writes ``<graph_dir>/TLG.fst`` and ``words.txt``
from a lang dir and an ARPA LM; :class:`espnet_distill.graph.tlg.TlgDecoder` turns a (T, V) matrix
of CTC log-probabilities into words. The graphs are built with kaldifst (OpenFst) and searched by
kaldi-decoder's FasterDecoder, or by k2 (:mod:`espnet_distill.graph.k2_backend`, optional:
``tools/install_k2.sh``), which also keeps lattices for whole-lattice rescoring with a larger
n-gram.
"""
