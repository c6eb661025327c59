"""HMM topologies in Kaldi's ``topo`` text format.

A topology entry lists phones and their HMM states; each emitting state names a pdf class and its
transitions (destination state, probability); the last state is the non-emitting final state.
Default: 3-state left-to-right with self-loops for every phone (``--num_states``), silence phones
may get another count (``--num_sil_states``). :func:`read_topo` parses any Kaldi topo file whose
states are numbered in order, so Kaldi's 5-state ergodic silence model reads too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class HmmState:
    """One state: its pdf class (None for the final state) and (destination, probability) arcs."""

    pdf_class: int | None
    transitions: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class Topology:
    """Phone id -> list of states (shared objects between the phones of one entry)."""

    entries: list[tuple[list[int], list[HmmState]]]

    def states(self, phone: int) -> list[HmmState]:
        """The states of ``phone``'s HMM; a clear error for a phone no entry lists."""
        for phones, states in self.entries:
            if phone in phones:
                return states
        raise KeyError(f"topology: phone id {phone} is in no <TopologyEntry>")

    def num_pdf_classes(self, phone: int) -> int:
        """Number of distinct pdf classes of ``phone`` (3 for the default topology)."""
        return len({s.pdf_class for s in self.states(phone) if s.pdf_class is not None})

    def to_kaldi(self) -> str:
        """Kaldi's text form (what ``utils/gen_topo.pl`` writes)."""
        out = ["<Topology>"]
        for phones, states in self.entries:
            out += ["<TopologyEntry>", "<ForPhones>", " ".join(map(str, phones)), "</ForPhones>"]
            for i, st in enumerate(states):
                if st.pdf_class is None:
                    out.append(f"<State> {i} </State>")
                    continue
                arcs = " ".join(f"<Transition> {d} {p:g}" for d, p in st.transitions)
                out.append(f"<State> {i} <PdfClass> {st.pdf_class} {arcs} </State>")
            out.append("</TopologyEntry>")
        out.append("</Topology>")
        return "\n".join(out) + "\n"


def left_to_right(num_states: int, self_loop_prob: float = 0.75) -> list[HmmState]:
    """``num_states`` emitting states, each with a self-loop and a forward arc, then the final."""
    if num_states < 1:
        raise ValueError(f"an HMM needs at least one emitting state, got {num_states}")
    states = [
        HmmState(i, [(i, self_loop_prob), (i + 1, 1.0 - self_loop_prob)]) for i in range(num_states)
    ]
    return [*states, HmmState(None)]


def make_topology(
    nonsil_phones: list[int], sil_phones: list[int], num_states: int = 3, num_sil_states: int = 3
) -> Topology:
    """Left-to-right topologies (see :func:`left_to_right`) for non-silence and silence phones."""
    entries = [(sorted(nonsil_phones), left_to_right(num_states))]
    if sil_phones:
        entries.append((sorted(sil_phones), left_to_right(num_sil_states)))
    return Topology(entries)


def read_topo(path: Path) -> Topology:
    """Parse a Kaldi topo file; a clear error naming the file on anything unexpected."""
    text = path.read_text(encoding="utf-8")
    entries = []
    for body in re.findall(r"<TopologyEntry>(.*?)</TopologyEntry>", text, re.S):
        found = re.search(r"<ForPhones>(.*?)</ForPhones>", body, re.S)
        if not found:
            raise ValueError(f"{path}: a <TopologyEntry> without <ForPhones>")
        phones = [int(p) for p in found.group(1).split()]
        states: list[HmmState] = []
        for n, st in enumerate(re.findall(r"<State>(.*?)</State>", body, re.S)):
            tokens = st.split()
            if int(tokens[0]) != n:
                raise ValueError(f"{path}: states must be numbered in order, got {tokens[0]}")
            pdf = None
            if "<PdfClass>" in tokens:
                pdf = int(tokens[tokens.index("<PdfClass>") + 1])
            arcs = [
                (int(tokens[i + 1]), float(tokens[i + 2]))
                for i, t in enumerate(tokens)
                if t == "<Transition>"
            ]
            states.append(HmmState(pdf, arcs))
        if not states or states[-1].pdf_class is not None:
            raise ValueError(f"{path}: an entry must end with a final (non-emitting) state")
        entries.append((phones, states))
    if not entries:
        raise ValueError(f"{path}: no <TopologyEntry> found")
    return Topology(entries)
