"""CTC beam search with KenLM word n-gram fusion: ours (espnet_distill.decode.ctc_beam, pure
Python) vs torchaudio's ``ctc_decoder`` (flashlight-text, C++), at the same beam, LM, LM weight
and word bonus, on the same network outputs; time ratio and WER side by side, in one run.

The network runs once (timed apart); each decoder then searches every utterance's log-probs.
Flashlight's decoder with a word LM needs a lexicon: the LM's words spelt in BPE pieces (so it
outputs lexicon words only, as TLG does), while ours spells words freely and scores unknown ones
with the LM's ``<unk>``. Flashlight's LM weight multiplies log10 KenLM scores, ours natural-log
ones: the same fusion needs flashlight's weight x ln(10).

Usage (from egs/synth/asr1):
    python ../../../bench/ctc_decode.py --model exp/full/am_kd_none_seed1234/model.pt \\
        --cuts data/full/fbank/cuts_test-clean.jsonl.gz --lang-dir data/full/lang_bpe_100 \\
        --lm data/full/lm/word_3gram.bin --arpa data/full/lm/word_3gram.arpa [--beam 10]
"""

from __future__ import annotations

import argparse
import gzip
import math
import tempfile
import time
from pathlib import Path

import torch
from lhotse import CutSet

from espnet_distill.decode.network import network_outputs
from espnet_distill.decode.searches import CtcBeamLm, decode_all
from espnet_distill.lang.bpe import BpeTokenizer
from espnet_distill.score.wer import score_corpus
from espnet_distill.utils import module_at_commit


def arpa_words(arpa: Path) -> list[str]:
    """The unigrams of an ARPA file (plain or .gz), without <s>, </s>, <unk>."""
    opener = gzip.open if arpa.suffix == ".gz" else open
    words, in_unigrams = [], False
    with opener(arpa, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line == "\\1-grams:":
                in_unigrams = True
            elif line.startswith("\\") and in_unigrams:
                break
            elif in_unigrams and line:
                word = line.split("\t")[1] if "\t" in line else line.split()[1]
                if word not in ("<s>", "</s>", "<unk>"):
                    words.append(word)
    return words


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--cuts", type=Path, required=True)
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--lm", type=Path, required=True, help="KenLM binary or ARPA")
    parser.add_argument("--arpa", type=Path, required=True, help="the same LM as ARPA (its words)")
    parser.add_argument("--beam", type=int, default=10)
    parser.add_argument("--lm-weight", type=float, default=0.5, help="ours: x natural-log LM score")
    parser.add_argument("--word-bonus", type=float, default=1.5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--before",
        default="e5fa30d",
        help="git commit of the prefix search to time beside (before its speed-up; '': none)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from torchaudio.models.decoder import ctc_decoder

    tokenizer = BpeTokenizer(args.lang_dir / "bpe.model")
    pieces = [tokenizer.sp.id_to_piece(i) for i in range(tokenizer.vocab_size)]
    t0 = time.perf_counter()
    outputs, audio_seconds = network_outputs(args.model, args.cuts, "cpu", 300)
    network_time = time.perf_counter() - t0
    refs = {s.id: s.text for c in CutSet.from_file(args.cuts) for s in c.supervisions}

    ours = CtcBeamLm(tokenizer, args.lm, args.beam)
    t0 = time.perf_counter()
    ours_hyps = decode_all(outputs, ours, args.lm_weight, args.word_bonus)
    ours_time = time.perf_counter() - t0
    rows = [("ours (Python prefix search)", ours_time, ours_hyps)]
    if args.before:  # the same search at an earlier commit, on the same outputs
        with tempfile.TemporaryDirectory() as tmp:
            module = module_at_commit("espnet_distill/decode/ctc_beam.py", args.before, Path(tmp))
            old = module.CtcPrefixBeamSearch(
                pieces,
                tokenizer.blank_id,
                args.beam,
                lm=module.WordLmScorer(str(args.lm)),
                lm_weight=args.lm_weight,
                word_bonus=args.word_bonus,
            )
            t0 = time.perf_counter()
            before_hyps = {u: tokenizer.decode(old(lp)) for u, lp in sorted(outputs.items())}
            before_time = time.perf_counter() - t0
        rows.append((f"ours at {args.before} (before the speed-up)", before_time, before_hyps))

    with tempfile.TemporaryDirectory() as tmp:
        lexicon = Path(tmp) / "lexicon.txt"
        words = arpa_words(args.arpa)
        lexicon.write_text(
            "".join(f"{w} {' '.join(tokenizer.sp.encode(w, out_type=str))}\n" for w in words)
        )
        flashlight = ctc_decoder(
            lexicon=str(lexicon),
            tokens=pieces,
            lm=str(args.lm),
            beam_size=args.beam,
            lm_weight=args.lm_weight * math.log(10),
            word_score=args.word_bonus,
            blank_token=pieces[tokenizer.blank_id],
            sil_token="<unk>",
            unk_word="<unk>",
        )
        t0 = time.perf_counter()
        fl_hyps = {}
        for utt, lp in sorted(outputs.items()):
            best = flashlight(torch.from_numpy(lp)[None].float())[0][0]
            fl_hyps[utt] = " ".join(best.words)
        fl_time = time.perf_counter() - t0

    def wer(hyps: dict[str, str]) -> float:
        return score_corpus(refs, hyps).totals()["err"]

    print(
        f"{len(outputs)} utterances, {audio_seconds:.0f} s of audio; network {network_time:.1f} s "
        f"(RTF {network_time / audio_seconds:.4f}); beam {args.beam}, LM weight {args.lm_weight} "
        f"(natural log), word bonus {args.word_bonus}; {len(words)} lexicon words"
    )
    print("| search | time (s) | RTF | WER |")
    print("|---|---|---|---|")
    rows.append(("torchaudio ctc_decoder (flashlight)", fl_time, fl_hyps))
    for name, t, hyps in rows:
        print(f"| {name} | {t:.1f} | {t / audio_seconds:.4f} | {wer(hyps):.1f} |")
    print(f"time ratio ours / flashlight: {ours_time / fl_time:.2f}")
    if args.before:
        same = sum(ours_hyps[u] == before_hyps[u] for u in ours_hyps)
        print(
            f"time ratio ours / ours at {args.before}: {ours_time / before_time:.2f}; "
            f"identical hypotheses: {same} of {len(ours_hyps)}"
        )


if __name__ == "__main__":
    main()
