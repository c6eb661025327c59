"""Lang dirs (asr1 stage 3): BPE and phone units, lexicons, lexicon FSTs with disambiguation
symbols, HMM topologies, and the symbol tables every later stage reads."""
