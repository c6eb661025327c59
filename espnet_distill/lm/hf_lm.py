"""A Hugging Face causal LM as the subword teacher of cross-modal KD.

Any ``AutoModelForCausalLM`` checkpoint directory (GPT-2, Llama, ... in transformers' format,
loaded from disk only) can stand in for the trained subword LM of stage 5, provided its tokenizer
holds every BPE piece of the recipe's ``bpe.model`` (e.g. a tokenizer converted from that very
sentencepiece model): unit ``u`` (the piece ``names[u]``) is the LM token ``tokenizer(names[u])``.
The LM's predictions are restricted to those tokens and renormalised, as :class:`UnitLM` does
with its padding and ``<sos/eos>``, so teachers of either kind give distributions over the units.

A sequence starts from the tokenizer's BOS token (its EOS where it has none, as GPT-2 does); the
EOS token ends it for the perplexity. ``<blk>`` (the CTC blank, id 0) never occurs in unit
sequences: it gets no LM token and probability 0.
"""

from __future__ import annotations

from pathlib import Path

import torch

from espnet_distill.lang.bpe import BLANK, UNK


class HfUnitLM(torch.nn.Module):
    """The :class:`~espnet_distill.lm.unit_lm.UnitLM` interface over a transformers causal LM."""

    def __init__(self, path: Path, unit_names: list[str]) -> None:
        super().__init__()
        from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy; only when used

        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: not a Hugging Face model directory (no config.json)")
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.path = path
        self.num_units = len(unit_names)
        self.lm = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).eval()
        vocab = tokenizer.get_vocab()
        ids, missing = [], []
        for name in unit_names:
            if name == BLANK:
                ids.append(-1)  # not a unit of text: its column is masked below
            elif name == UNK and tokenizer.unk_token_id is not None:
                ids.append(tokenizer.unk_token_id)
            elif name in vocab:
                ids.append(vocab[name])
            else:
                missing.append(name)
        if missing:
            shown = " ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
            raise ValueError(
                f"{path}: the tokenizer's vocabulary does not match the subword units: "
                f"{len(missing)} of {len(unit_names)} pieces missing ({shown})"
            )
        if len(set(i for i in ids if i >= 0)) != len([i for i in ids if i >= 0]):
            raise ValueError(f"{path}: two subword units map to one LM token")
        lm_vocab = self.lm.get_output_embeddings().weight.shape[0]
        if max(ids) >= lm_vocab:
            raise ValueError(f"{path}: token id {max(ids)} outside the LM's {lm_vocab} outputs")
        bos = (
            tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        )
        if bos is None or tokenizer.eos_token_id is None:
            raise ValueError(f"{path}: the tokenizer has no BOS or EOS token to start a sequence")
        self.bos, self.eos = int(bos), int(tokenizer.eos_token_id)
        self.register_buffer("unit_token", torch.tensor(ids).clamp(min=0), persistent=False)
        self.register_buffer("unit_valid", torch.tensor(ids) >= 0, persistent=False)

    def _logits(self, units: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """(B, L) units padded with -1 -> LM logits (B, L + 1, V) after BOS + units."""
        tokens = self.unit_token[units.clamp(min=0)]
        x = torch.cat([torch.full_like(tokens[:, :1], self.bos), tokens], dim=1)
        mask = torch.arange(x.size(1), device=x.device)[None] <= lens[:, None]
        return self.lm(input_ids=x, attention_mask=mask.long()).logits.float()

    def _unit_log_probs(self, logits: torch.Tensor, with_eos: bool) -> torch.Tensor:
        columns = logits[..., self.unit_token].masked_fill(~self.unit_valid, float("-inf"))
        if with_eos:
            columns = torch.cat([columns, logits[..., self.eos : self.eos + 1]], dim=-1)
        return columns.log_softmax(-1)

    def next_unit_log_probs(self, units: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """(B, L) units padded with -1 -> (B, L, num_units): log P(unit_k | units < k)."""
        if units.size(1) == 0:
            return units.new_zeros((*units.shape, self.num_units), dtype=torch.float)
        return self._unit_log_probs(self._logits(units, lens)[:, :-1], with_eos=False)

    def nll(self, units: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed NLL (over the units and EOS, renormalised; EOS included) and the token count."""
        if units.numel() and int(units.max()) >= self.num_units:
            raise ValueError(f"unit id {int(units.max())} outside the LM's {self.num_units} units")
        log_probs = self._unit_log_probs(self._logits(units, lens), with_eos=True)
        target = torch.nn.functional.pad(units, [0, 1], value=-1)
        target[torch.arange(len(lens)), lens] = self.num_units  # EOS after the last unit
        valid = target >= 0
        picked = log_probs.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return -torch.where(valid, picked, torch.zeros_like(picked)).sum(), valid.sum()
