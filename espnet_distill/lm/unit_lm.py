"""Neural LMs over KD units (senones, monophones, subwords): espnet2's LSTM or Transformer LM.

Token ids: unit ``u`` is token ``u + 1``; 0 is padding (espnet2's ``ignore_id``) and the last id,
``num_units + 1``, is ``<sos/eos>`` (espnet2's convention), so the LM's vocabulary has
``num_units + 2`` entries. :meth:`UnitLM.next_unit_log_probs` gives, for every position k of a unit
sequence, log P(unit_k = . | units < k) over the units alone (renormalised without padding and
``<sos/eos>``): the soft labels of cross-modal KD.
"""

from __future__ import annotations

from pathlib import Path

import torch
from espnet2.lm.espnet_model import ESPnetLanguageModel
from espnet2.lm.seq_rnn_lm import SequentialRNNLM
from espnet2.lm.transformer_lm import TransformerLM

from espnet_distill.lm.hf_lm import HfUnitLM

ARCHITECTURES = {"lstm": SequentialRNNLM, "transformer": TransformerLM}


class UnitLM(torch.nn.Module):
    """``arch`` "lstm" (``lm_conf``: unit, nlayers, dropout_rate, ...) or "transformer"."""

    def __init__(self, num_units: int, arch: str = "lstm", lm_conf: dict | None = None) -> None:
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(
                f"unknown LM architecture '{arch}', expected one of "
                f"{', '.join(sorted(ARCHITECTURES))}"
            )
        self.num_units = num_units
        self.vocab_size = num_units + 2
        conf = dict(lm_conf or {})
        if arch == "lstm":
            conf.setdefault("ignore_id", 0)
        self.espnet_lm = ESPnetLanguageModel(
            ARCHITECTURES[arch](self.vocab_size, **conf), self.vocab_size, ignore_id=0
        )

    @staticmethod
    def to_tokens(units: torch.Tensor) -> torch.Tensor:
        """Unit ids padded with -1 -> token ids padded with 0."""
        return torch.where(units >= 0, units + 1, torch.zeros_like(units))

    def nll(self, units: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed negative log-likelihood of the batch (``<eos>`` included) and its token count."""
        if units.numel() and int(units.max()) >= self.num_units:
            raise ValueError(f"unit id {int(units.max())} outside the LM's {self.num_units} units")
        nll, n = self.espnet_lm.nll(self.to_tokens(units), lens)
        return nll.sum(), n.sum()

    def next_unit_log_probs(self, units: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """(B, L) units padded with -1 -> (B, L, num_units): log P(unit_k | units < k)."""
        tokens = self.to_tokens(units)
        sos = self.vocab_size - 1
        x = torch.nn.functional.pad(tokens, [1, 0], value=sos)[:, :-1] if tokens.size(1) else tokens
        logits, _ = self.espnet_lm.lm(x, None)
        return logits[..., 1 : 1 + self.num_units].log_softmax(-1)


def load_unit_lm(path: Path, num_units: int | None = None) -> UnitLM | HfUnitLM:
    """A stage-5 unit LM in eval mode; ``num_units`` (the unit inventory's size) must match.

    ``model.pt`` holds a trained :class:`UnitLM`, or (``kind: hf``) the path of a Hugging Face
    causal LM and the unit names it was checked against (:class:`HfUnitLM`).
    """
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if num_units is not None and blob["num_units"] != num_units:
        raise ValueError(
            f"{path}: the LM has {blob['num_units']} units, the unit inventory {num_units}"
        )
    if blob.get("kind") == "hf":
        return HfUnitLM(Path(blob["path"]), blob["unit_names"]).eval()
    lm = UnitLM(blob["num_units"], blob["config"]["arch"], blob["config"]["lm_conf"])
    lm.load_state_dict(blob["state_dict"])
    return lm.eval()
