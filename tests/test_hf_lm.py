"""A Hugging Face causal LM as the subword teacher (espnet_distill/lm/hf_lm.py), on tiny randomly
initialised Llama checkpoints that the tests save, with a tokenizer converted from the BPE model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from espnet_distill.kd.units import read_units
from espnet_distill.lang.bpe import train_bpe
from espnet_distill.lm.hf_lm import HfUnitLM

SENTENCES = [
    "THE CAT SAT ON THE MAT",
    "A DOG RAN IN THE PARK",
    "WE SAW THE SEA AT DAWN",
    "SHE READ A BOOK ABOUT STARS",
    "THEY WALKED HOME IN THE RAIN",
    "HE SANG A SONG FOR HER",
]


@pytest.fixture(scope="module")
def bpe_lang(tmp_path_factory) -> Path:
    lang = tmp_path_factory.mktemp("lang_bpe")
    train_bpe(SENTENCES * 20, lang, vocab_size=40)
    return lang


def save_tiny_llama(out: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """A 1-layer Llama with random weights and the tokenizer of ``tokenizer_dir``."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def sentencepiece_tokenizer(bpe_model: Path, out: Path) -> Path:
    """A Llama (sentencepiece) tokenizer converted from the recipe's BPE model."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(bpe_model, out / "tokenizer.model")
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {"tokenizer_class": "LlamaTokenizer", "add_bos_token": False, "add_eos_token": False}
        )
    )
    return out


@pytest.fixture(scope="module")
def hf_dir(bpe_lang, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("hf")
    return save_tiny_llama(
        base / "llama", sentencepiece_tokenizer(bpe_lang / "bpe.model", base / "tok")
    )


def _reference_log_probs(hf_dir: Path, names: list[str], units: list[int]) -> torch.Tensor:
    """Independent computation: the LM's logits after <s> + pieces, restricted to the pieces of
    the units (the blank left out) and renormalised; rows predict units 0..n (n: EOS)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(hf_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, local_files_only=True).eval()
    ids = [tok.bos_token_id] + tok.convert_tokens_to_ids([names[u] for u in units])
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    cols = tok.convert_tokens_to_ids(names[1:]) + [tok.eos_token_id]  # names[0] is <blk>
    return logits[:, cols].log_softmax(-1)  # (n + 1, num_units - 1 + 1)


def test_hf_teacher_matches_the_lm_restricted_to_the_units(bpe_lang, hf_dir):
    names = read_units(bpe_lang / "tokens.txt")
    lm = HfUnitLM(hf_dir, names)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(bpe_lang / "bpe.model"))
    a, b = sp.encode("THE CAT RAN HOME"), sp.encode("SHE SAW A DOG IN THE RAIN")
    units = torch.nn.utils.rnn.pad_sequence(
        [torch.tensor(a), torch.tensor(b)], batch_first=True, padding_value=-1
    )
    lens = torch.tensor([len(a), len(b)])
    with torch.no_grad():
        got = lm.next_unit_log_probs(units, lens)
        nll, count = lm.nll(units, lens)
    assert got.shape == (2, len(b), len(names))
    assert torch.isinf(got[..., 0]).all()  # the blank is never a next unit
    for row, seq in enumerate([a, b]):
        ref = _reference_log_probs(hf_dir, names, seq)
        # next-unit distribution: renormalised over the units alone (no EOS)
        torch.testing.assert_close(
            got[row, : len(seq), 1:], ref[:-1, :-1].log_softmax(-1), atol=1e-4, rtol=1e-4
        )
    # the NLL: over units + EOS, EOS included; padding of the shorter row does not count
    by_hand = 0.0
    for seq in (a, b):
        ref = _reference_log_probs(hf_dir, names, seq)
        by_hand -= sum(float(ref[k, u - 1]) for k, u in enumerate(seq)) + float(ref[-1, -1])
    assert int(count) == len(a) + len(b) + 2
    assert float(nll) == pytest.approx(by_hand, rel=1e-4)


def test_hf_teacher_is_causal(bpe_lang, hf_dir):
    names = read_units(bpe_lang / "tokens.txt")
    lm = HfUnitLM(hf_dir, names)
    units = torch.tensor([[5, 9, 12, 7]])
    changed = units.clone()
    changed[0, 2] = 20
    with torch.no_grad():
        x = lm.next_unit_log_probs(units, torch.tensor([4]))
        y = lm.next_unit_log_probs(changed, torch.tensor([4]))
    torch.testing.assert_close(x[0, :3], y[0, :3])  # position 2 is predicted before it is seen
    assert not torch.allclose(x[0, 3], y[0, 3])


def test_hf_lm_with_another_vocabulary_is_refused(bpe_lang, tmp_path):
    """A tokenizer of other pieces (here: whole words) cannot teach the BPE units."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for s in SENTENCES for w in s.split()})
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    tok.save_pretrained(tmp_path / "tok")
    hf = save_tiny_llama(tmp_path / "words_lm", tmp_path / "tok")
    names = read_units(bpe_lang / "tokens.txt")
    with pytest.raises(
        ValueError,
        match=r"words_lm: the tokenizer's vocabulary does not match "
        r"the subword units: \d+ of \d+ pieces missing",
    ):
        HfUnitLM(hf, names)
    with pytest.raises(FileNotFoundError, match="not a Hugging Face model directory"):
        HfUnitLM(tmp_path / "tok", names)


def test_stage5_registers_an_hf_subword_lm_and_the_teacher_loads_it(
    aligned, hf_dir, tmp_path, capsys
):
    """train_unit_lm --hf-model: the recipe's own BPE model converted to an HF tokenizer, a tiny
    Llama over it; ppl.yaml holds its perplexity; load_unit_lm gives the HF LM back; a vocabulary
    of another BPE model is refused with a one-line error."""
    import yaml

    from espnet_distill.bin import train_unit_lm
    from espnet_distill.kd.teacher import LmTeacher
    from espnet_distill.lm.unit_lm import load_unit_lm

    exp, lang, _, bpe = aligned
    hf = save_tiny_llama(tmp_path / "llama", sentencepiece_tokenizer(bpe, tmp_path / "tok"))
    text = tmp_path / "text"
    text.write_text("".join(f"u{i} {s}\n" for i, s in enumerate(SENTENCES)))
    argv = [
        "--unit",
        "subword",
        "--lang-dir",
        str(lang),
        "--align-dir",
        str(exp),
        "--bpe-model",
        str(bpe),
        "--text",
        str(text),
        "--valid-text",
        str(text),
    ]
    assert (
        train_unit_lm.main([*argv, "--exp-dir", str(tmp_path / "lm"), "--hf-model", str(hf)]) == 0
    )
    ppl = yaml.safe_load((tmp_path / "lm" / "ppl.yaml").read_text())
    names = read_units(exp / "targets" / "units" / "subword.txt")
    # a random LM is about uniform over the units and EOS (the blank excluded)
    assert 0.5 * len(names) < ppl["valid_perplexity"] < 2 * len(names)
    lm = load_unit_lm(tmp_path / "lm" / "model.pt", num_units=len(names))
    assert isinstance(lm, HfUnitLM)
    frames = torch.tensor([[0, 0, 7, 7, 7, 9, 9, 0, 4, -1]])
    log_probs, mask = LmTeacher(lm, silence={0})(frames)
    assert mask.tolist() == [[False, False, True, True, True, True, True, False, True, False]]
    ref = lm.next_unit_log_probs(torch.tensor([[7, 9, 4]]), torch.tensor([3]))[0]
    torch.testing.assert_close(log_probs[0, [2, 5, 8]], ref)
    # another BPE model's pieces (hf_dir's tokenizer): refused, one line naming the LM dir
    assert (
        train_unit_lm.main([*argv, "--exp-dir", str(tmp_path / "bad"), "--hf-model", str(hf_dir)])
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "does not match the subword units" in err and str(hf_dir) in err
    assert not (tmp_path / "bad" / "model.pt").exists()
