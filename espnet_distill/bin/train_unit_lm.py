"""Stage 5 (KD): train the LM of one unit (senone, monophone, subword) on text only.

The LM text (never dev/test text) is converted to units by :class:`~espnet_distill.kd.units.
TextToUnits` (sentences with a word that has no pronunciation are skipped for the phone units and
counted in the log); the valid set's transcripts give the perplexity written to ``ppl.yaml``.

Usage:
    python -m espnet_distill.bin.train_unit_lm --unit senone --lang-dir data/lang_phone \\
        --align-dir exp/align --bpe-model data/lang_bpe_100/bpe.model \\
        --text corpus/librispeech-lm-norm.txt.gz --valid-text data/dev_clean/text \\
        --config conf/lm_unit_lstm.yaml --exp-dir exp/unit_lm/senone [--override train.max_epochs=3]

With ``--unit subword --hf-model DIR``, a Hugging Face causal LM (whose tokenizer holds the BPE
pieces) is the subword LM instead: nothing is trained; its valid perplexity is written and
``model.pt`` names it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from tqdm import tqdm

from espnet_distill.align.targets import UNITS
from espnet_distill.bin import (
    add_config_options,
    add_paths,
    make_parser,
    one_line_errors,
    read_config,
    require,
)
from espnet_distill.kd.units import TextToUnits, UnitTables
from espnet_distill.lm.ngram import read_text_lines
from espnet_distill.score.wer import read_text_file
from espnet_distill.train.lm_trainer import DEFAULT_LM_CONFIG, register_hf_lm, train_unit_lm
from espnet_distill.utils import setup_logging

log = logging.getLogger(__name__)


def convert(
    converter: TextToUnits, unit: str, sentences: list[str], desc: str
) -> tuple[list[list[int]], int]:
    """Unit sequences of the sentences, and how many were skipped (no pronunciation)."""
    out, skipped = [], 0
    for text in tqdm(sentences, desc=desc, mininterval=5, disable=None):
        try:
            seq = converter(unit, text)
        except KeyError:
            skipped += 1
            continue
        if seq:
            out.append(seq)
    return out, skipped


@one_line_errors(ValueError, OSError)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--unit", choices=list(UNITS), required=True)
    add_paths(parser, "--lang-dir", "--align-dir", "--bpe-model", "--exp-dir")
    parser.add_argument("--text", type=Path, nargs="+", required=True, help="LM text (plain/.gz)")
    parser.add_argument("--valid-text", type=Path, required=True, help="Kaldi text (utt words)")
    add_config_options(parser, required=False)
    parser.add_argument("--hf-model", type=Path, help="Hugging Face causal LM dir (subword only)")
    args = parser.parse_args(argv)
    if args.hf_model and args.unit != "subword":
        parser.error("--hf-model is a subword LM: it needs --unit subword")
    setup_logging()
    needed = [
        args.lang_dir / "lexicon.txt",
        args.align_dir / "tri" / "tree.json",
        UNITS[args.unit].vocabulary(args.align_dir / "targets"),
        args.bpe_model,
        args.valid_text,
        *args.text,
        args.config,
    ]
    require(*needed, files=True)
    config = read_config(args, DEFAULT_LM_CONFIG)
    converter = TextToUnits(UnitTables(args.lang_dir, args.align_dir, args.bpe_model))
    num_units = len(converter.names[args.unit])
    sentences = [line.strip() for line in read_text_lines(args.text)]
    valid = [text for text in read_text_file(args.valid_text).values() if text]
    train_seqs, skipped = (
        ([], 0)
        if args.hf_model
        else convert(converter, args.unit, sentences, f"{args.unit} LM text")
    )
    valid_seqs, valid_skipped = convert(converter, args.unit, valid, f"{args.unit} valid text")
    log.info(
        "%s units: %d training sentences (%d skipped: words without pronunciation), "
        "%d valid sentences (%d skipped)",
        args.unit,
        len(train_seqs),
        skipped,
        len(valid_seqs),
        valid_skipped,
    )
    if args.hf_model:
        register_hf_lm(args.hf_model, converter.names["subword"], valid_seqs, args.exp_dir)
    else:
        train_unit_lm(config, num_units, train_seqs, valid_seqs, args.exp_dir)
    print(f"{args.unit} LM: {(args.exp_dir / 'ppl.yaml').read_text().strip()}".replace("\n", ", "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
