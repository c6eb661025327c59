"""SUPERB-style probing of a frozen upstream (s3prl's recipe, scaled to a CPU).

The upstream's layers are combined by a learnable softmax-weighted sum (each layer layer-normed
first, as s3prl's featurizer); a small downstream model is trained on top:

- ``asr``: 2-layer BiLSTM + CTC over characters (``|`` between words); greedy decoding, WER;
- ``pr``: linear + CTC over phones (the lexicon's first pronunciation of each word), PER;
- ``sid``: mean pooling over the utterance + linear, over the speakers; accuracy.

Tasks read lhotse cuts (16 kHz audio); ``sid`` uses the training speakers' own utterances, split
per speaker into train / dev / test (:func:`speaker_split`), as SUPERB's SID splits VoxCeleb1.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch
import yaml
from lhotse import CutSet
from torch import nn

from espnet_distill.lang.phone_lang import read_lexicon
from espnet_distill.models.rnn import lstm_over_lengths
from espnet_distill.models.upstream import WeightedSum, load_upstream
from espnet_distill.nn import frame_mask, greedy_ctc
from espnet_distill.utils import atomic_output, atomic_write_text

log = logging.getLogger(__name__)

TASKS = ("asr", "pr", "sid")
# ASR selects its epoch on CER and reports the WER too: on an hour of speech a small probe's WER
# sits near 100%, where an empty output (100%) beats one that spells words half right (>100%)
TASK_METRIC = {"asr": "CER", "pr": "PER", "sid": "accuracy"}
HIGHER_IS_BETTER = {"accuracy": True, "CER": False, "WER": False, "PER": False}
TEST_SCORES = "test_scores.tsv"  # per test utterance: id, errors, reference length (probe_ssl)


def other_test_scores(name: str) -> str:
    """The per-utterance scores file of a further test set (e.g. test-other), as TEST_SCORES."""
    return f"test_scores_{name}.tsv"


WORD_SEP = "|"


class CtcProbe(nn.Module):
    """``blstm_layers`` BiLSTM layers (0: a linear probe) and a linear CTC output (blank 0)."""

    def __init__(self, dim: int, vocab_size: int, blstm_layers: int = 2, hidden: int = 128) -> None:
        super().__init__()
        self.rnn = (
            nn.LSTM(dim, hidden, num_layers=blstm_layers, batch_first=True, bidirectional=True)
            if blstm_layers
            else None
        )
        self.out = nn.Linear(2 * hidden if blstm_layers else dim, vocab_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.rnn is not None:
            x = lstm_over_lengths(self.rnn, x, lengths)
        return self.out(x).log_softmax(-1)

    @staticmethod
    def loss(
        log_probs: torch.Tensor, lengths: torch.Tensor, targets: list[list[int]]
    ) -> torch.Tensor:
        flat = torch.tensor([t for seq in targets for t in seq], dtype=torch.long)
        target_lens = torch.tensor([len(seq) for seq in targets])
        return nn.functional.ctc_loss(
            log_probs.transpose(0, 1),
            flat,
            lengths,
            target_lens,
            blank=0,
            reduction="sum",
            zero_infinity=True,
        ) / len(targets)


class SidProbe(nn.Module):
    """Mean over the valid frames, then a linear layer over the speakers."""

    def __init__(self, dim: int, num_speakers: int) -> None:
        super().__init__()
        self.out = nn.Linear(dim, num_speakers)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = frame_mask(x.shape[1], lengths).unsqueeze(-1).to(x.dtype)
        pooled = (x * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.out(pooled)


class Vocabulary:
    """Symbols of a CTC task, id 0 the blank."""

    def __init__(self, symbols: list[str]) -> None:
        self.symbols = ["<blank>", *symbols]
        self.index = {s: i for i, s in enumerate(self.symbols)}

    def encode(self, symbols: list[str]) -> list[int]:
        return [self.index[s] for s in symbols if s in self.index]

    def decode(self, ids: list[int]) -> list[str]:
        return [self.symbols[i] for i in ids]


def chars_of(text: str) -> list[str]:
    """``AB C`` -> ``A B | C``: the ASR probe's symbols."""
    return list(text.strip().replace(" ", WORD_SEP))


def words_of_chars(symbols: list[str]) -> str:
    return " ".join("".join(symbols).replace(WORD_SEP, " ").split())


def phones_of(text: str, lexicon: dict[str, list[list[str]]]) -> list[str] | None:
    """The first pronunciation's base phones of every word; None if a word has none."""
    from espnet_distill.lang.phone_lang import base_phone

    out = []
    for word in text.split():
        if word not in lexicon:
            return None
        out.extend(base_phone(p) for p in lexicon[word][0])
    return out


def complete_lexicon(
    lexicon: dict[str, list[list[str]]], texts: Iterable[str], g2p: Callable | None = None
) -> dict[str, str]:
    """Give every word of ``texts`` that ``lexicon`` lacks a pronunciation, in place, the way the
    recipe's lexicon got its own (CMUdict, else espeak-ng G2P: :func:`build_lexicon`).

    The lang lexicon holds the training text's words only; the PR probe needs the phones of every
    dev/test utterance, and leaving out utterances with a new word would score an easier subset.
    Returns the words still without a pronunciation, with the reason for each.
    """
    from espnet_distill.lang.lexicon import build_lexicon

    missing = list(dict.fromkeys(w for text in texts for w in text.split() if w not in lexicon))
    if not missing:
        return {}
    added, failed = build_lexicon(missing, g2p=g2p, max_prons=1)
    for word, phones in added:
        lexicon.setdefault(word, []).append(phones)
    log.info(
        "PR references: %d words not in the lexicon, %d pronounced (CMUdict or G2P), %d not",
        len(missing),
        len(missing) - len(failed),
        len(failed),
    )
    return failed


def subset_hours(cuts: CutSet, hours: float, seed: int = 0) -> CutSet:
    """A seeded random subset of ``cuts`` of about ``hours`` of audio (all of them if shorter):
    probes on a large corpus train on a fixed budget, as SUPERB's probes train on 100 h of
    LibriSpeech whatever the upstream saw."""
    ids = sorted(c.id for c in cuts)
    random.Random(seed).shuffle(ids)
    duration = {c.id: c.duration for c in cuts}
    keep, total = set(), 0.0
    for cut_id in ids:
        if total >= hours * 3600:
            break
        keep.add(cut_id)
        total += duration[cut_id]
    return cuts.filter(lambda c: c.id in keep).to_eager()


def speaker_split(
    speaker_of: dict[str, str], seed: int = 0, dev: float = 0.1, test: float = 0.1
) -> dict[str, list[str]]:
    """Utterance ids split per speaker into train / dev / test (at least one each for speakers
    with 3+ utterances; others train only), seeded."""
    by_speaker: dict[str, list[str]] = defaultdict(list)
    for utt, spk in sorted(speaker_of.items()):
        by_speaker[spk].append(utt)
    rng = random.Random(seed)
    split: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    for spk in sorted(by_speaker):
        utts = by_speaker[spk]
        rng.shuffle(utts)
        if len(utts) < 3:
            split["train"].extend(utts)
            continue
        n_dev, n_test = max(1, round(dev * len(utts))), max(1, round(test * len(utts)))
        split["dev"].extend(utts[:n_dev])
        split["test"].extend(utts[n_dev : n_dev + n_test])
        split["train"].extend(utts[n_dev + n_test :])
    return split


def _text(cut) -> str:  # noqa: ANN001
    return " ".join(s.text for s in cut.supervisions)


def task_targets(
    task: str, cuts: CutSet, lexicon: dict | None = None, speakers: list[str] | None = None
) -> tuple[dict, int]:
    """Cut id -> target (ASR: chars, PR: phones, SID: speaker index); cuts without one (a word
    the lexicon lacks) are left out, their count returned."""
    out, skipped = {}, 0
    for cut in cuts:
        text = _text(cut)
        if task == "asr":
            out[cut.id] = chars_of(text)
        elif task == "pr":
            phones = phones_of(text, lexicon or {})
            if phones is None:
                skipped += 1
                continue
            out[cut.id] = phones
        else:
            out[cut.id] = (speakers or []).index(cut.supervisions[0].speaker)
    return out, skipped


class Probe(nn.Module):
    def __init__(self, task: str, num_layers: int, dim: int, num_outputs: int, conf: dict) -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"unknown probing task '{task}', expected one of {', '.join(TASKS)}")
        self.task = task
        self.featurizer = WeightedSum(num_layers)
        if task == "sid":
            self.head = SidProbe(dim, num_outputs)
        else:
            layers = conf.get("blstm_layers", 2 if task == "asr" else 0)
            self.head = CtcProbe(dim, num_outputs, layers, conf.get("hidden", 128))

    def forward(self, layers: list[torch.Tensor], lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.featurizer(layers), lengths)


def run_probe(
    upstream: nn.Module,
    task: str,
    splits: dict[str, CutSet],
    conf: dict,
    lexicon: dict | None = None,
    checkpoint: Path | None = None,
) -> dict:
    """Train the probe on ``splits["train"]`` (upstream frozen), keep the epoch best on "dev",
    score "test". Returns {metric (``TASK_METRIC``), dev, test, for ASR wer: {dev, test} of the
    same epoch, layer_weights, skipped, test_utterances: [(id, errors, reference length)],
    other_tests}: any further split (e.g. "test-other") is scored by the same epoch, as
    ``other_tests[name]`` = {test, for ASR wer, utterances}.
    With ``checkpoint``, the
    state after each epoch is written there and a rerun resumes from it (same result as a run
    that was never interrupted)."""
    from espnet_distill.data.audio import make_audio_loader
    from espnet_distill.score.wer import score_corpus

    torch.manual_seed(conf.get("seed", 0))
    if conf.get("num_threads"):  # small LSTMs run faster on one thread (many tiny matmuls)
        torch.set_num_threads(conf["num_threads"])
    upstream = upstream.eval().requires_grad_(False)
    speakers = (
        sorted({c.supervisions[0].speaker for c in splits["train"]}) if task == "sid" else None
    )
    targets, skipped = {}, 0
    for name, cuts in splits.items():
        t, s = task_targets(task, cuts, lexicon, speakers)
        targets[name], skipped = t, skipped + s
    if task == "sid":
        vocab, num_outputs = None, len(speakers)
    else:
        vocab = Vocabulary(sorted({s for seq in targets["train"].values() for s in seq}))
        num_outputs = len(vocab.symbols)
    with torch.no_grad():
        probe_states, _ = upstream.hidden_states(torch.zeros(1, 16000))
    probe = Probe(task, len(probe_states), probe_states[0].shape[-1], num_outputs, conf)
    opt = torch.optim.AdamW(probe.parameters(), lr=conf.get("lr", 1e-3))
    max_duration = conf.get("max_duration", 60)
    loaders = {
        name: make_audio_loader(
            cuts.filter(lambda c, t=targets[name]: c.id in t).to_eager(), max_duration, False
        )
        for name, cuts in splits.items()
    }
    # The upstream is frozen: its layers are computed once per utterance (float16, in memory)
    # and every epoch batches them anew (``cache: false`` recomputes them every epoch instead).
    cache: dict[str, list[tuple[str, list[torch.Tensor]]]] = {}
    rng = random.Random(conf.get("seed", 0))

    def upstream_batches(name: str) -> Iterator[tuple[list[torch.Tensor], torch.Tensor, list[str]]]:
        if not conf.get("cache", True):
            for batch in loaders[name]:
                with torch.no_grad():
                    states, lens = upstream.hidden_states(batch["audio"], batch["lengths"])
                yield states, lens, batch["ids"]
            return
        if name not in cache:
            items = []
            for batch in loaders[name]:
                with torch.no_grad():
                    states, lens = upstream.hidden_states(batch["audio"], batch["lengths"])
                for i, cut_id in enumerate(batch["ids"]):
                    n = int(lens[i])
                    items.append((cut_id, [x[i, :n].half() for x in states]))
            cache[name] = items
            log.info(
                "%s: %d utterances, %d frames of %d layers cached (float16)",
                name,
                len(items),
                sum(i[1][0].shape[0] for i in items),
                len(items[0][1]) if items else 0,
            )
        order = sorted(cache[name], key=lambda item: item[1][0].shape[0])
        budget = int(max_duration * 50)  # 50 frames a second
        groups, group, frames = [], [], 0
        for item in order:
            n = item[1][0].shape[0]
            if group and (len(group) + 1) * max(n, frames) > budget:
                groups.append(group)
                group = []
            group.append(item)
            frames = n
        if group:
            groups.append(group)
        if name == "train":
            rng.shuffle(groups)
        for group in groups:
            lens = torch.tensor([g[1][0].shape[0] for g in group])
            states = [
                nn.utils.rnn.pad_sequence([g[1][layer].float() for g in group], batch_first=True)
                for layer in range(len(group[0][1]))
            ]
            yield states, lens, [g[0] for g in group]

    def evaluate(name: str) -> tuple[float, list[tuple[str, int, int]], dict[str, float]]:
        """The split's score, per utterance (id, errors, reference length) (for SID one trial,
        wrong or right; for ASR / PR, edit errors and characters / phones: paired tests), and
        secondary scores (ASR: the WER of the same output)."""
        probe.eval()
        hyps, refs, per_utt = {}, {}, []
        words_hyp, words_ref = {}, {}
        with torch.no_grad():
            for states, lens, ids in upstream_batches(name):
                out = probe(states, lens)
                for i, cut_id in enumerate(ids):
                    ref = targets[name][cut_id]
                    if task == "sid":
                        per_utt.append((cut_id, int(int(out[i].argmax()) != ref), 1))
                        continue
                    hyp = vocab.decode(greedy_ctc(out[i : i + 1], lens[i : i + 1])[0])
                    if task == "asr":  # CER over the letters, the word separator left out
                        words_ref[cut_id] = words_of_chars(ref)
                        words_hyp[cut_id] = words_of_chars(hyp)
                        ref, hyp = ([s for s in x if s != WORD_SEP] for x in (ref, hyp))
                    refs[cut_id], hyps[cut_id] = " ".join(ref), " ".join(hyp)
        if task == "sid":
            score = 100.0 * sum(1 - e for _, e, _ in per_utt) / max(len(per_utt), 1)
            return score, per_utt, {}
        scores = score_corpus(refs, hyps)
        per_utt = [(u.id, u.errors, len(u.ref)) for u in scores.utts]
        secondary = {}
        if task == "asr":
            secondary["WER"] = score_corpus(words_ref, words_hyp).totals()["err"]
        return scores.totals()["err"], per_utt, secondary

    metric = TASK_METRIC[task]
    best, best_state, history, best_secondary = None, None, [], {}
    higher_better = HIGHER_IS_BETTER[metric]
    epochs, start, first = conf.get("epochs", 10), time.perf_counter(), 0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        # ASR probes selected their epoch on WER before they had CER: such a run cannot go on
        saved = state.get("metric", "WER" if task == "asr" else metric)
        if saved != metric:
            raise ValueError(
                f"{checkpoint}: written by a probe selecting on {saved}, this one "
                f"selects on {metric}: delete it to start the probe again"
            )
        probe.load_state_dict(state["probe"])
        opt.load_state_dict(state["optimizer"])
        best, best_state, history = state["best"], state["best_state"], state["history"]
        best_secondary = state.get("best_secondary", {})
        rng.setstate(state["python_rng"])
        torch.set_rng_state(state["torch_rng"])
        first = state["epochs_done"]
        log.info("%s: resuming after epoch %d (dev by epoch %s)", checkpoint, first, history)
    for epoch in range(first, epochs):
        probe.train()
        losses = []
        for states, lens, ids in upstream_batches("train"):
            out = probe(states, lens)
            if task == "sid":
                gold = torch.tensor([targets["train"][i] for i in ids])
                loss = nn.functional.cross_entropy(out, gold)
            else:
                loss = CtcProbe.loss(out, lens, [vocab.encode(targets["train"][i]) for i in ids])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(probe.parameters(), 5.0)
            opt.step()
            losses.append(float(loss))
        score, _, secondary = evaluate("dev")
        history.append(round(score, 2))
        elapsed = time.perf_counter() - start
        log.info(
            "%s probe epoch %d/%d: train loss %.3f, dev %.2f; elapsed %.0fs, eta %.0fs",
            task,
            epoch + 1,
            epochs,
            sum(losses) / max(len(losses), 1),
            score,
            elapsed,
            elapsed / (epoch + 1 - first) * (epochs - epoch - 1),
        )
        if best is None or (score > best if higher_better else score < best):
            best, best_state = score, {k: v.clone() for k, v in probe.state_dict().items()}
            best_secondary = secondary
        if checkpoint is not None:  # after the best is updated: this epoch may be the best
            with atomic_output(checkpoint) as tmp:
                torch.save(
                    {
                        "epochs_done": epoch + 1,
                        "probe": probe.state_dict(),
                        "optimizer": opt.state_dict(),
                        "best": best,
                        "best_state": best_state,
                        "metric": metric,
                        "best_secondary": best_secondary,
                        "history": history,
                        "python_rng": rng.getstate(),
                        "torch_rng": torch.get_rng_state(),
                    },
                    tmp,
                )
    probe.load_state_dict(best_state)
    test, test_utterances, test_secondary = evaluate("test")
    secondary = {
        m.lower(): {"dev": round(best_secondary[m], 2), "test": round(v, 2)}
        for m, v in test_secondary.items()
    }
    other_tests = {}
    for name in splits:
        if name not in ("train", "dev", "test"):
            score, utterances, other_secondary = evaluate(name)
            other_tests[name] = {
                "test": round(score, 2),
                **{m.lower(): round(v, 2) for m, v in other_secondary.items()},
                "utterances": utterances,
            }
    return {
        "task": task,
        "metric": metric,
        "dev": round(best, 2),
        "test": round(test, 2),
        **secondary,
        "dev_by_epoch": history,
        "layer_weights": [round(w, 3) for w in probe.featurizer.weights.softmax(0).tolist()],
        "skipped_cuts": skipped,
        "test_utterances": test_utterances,
        "other_tests": other_tests,
    }


def probe_upstream(
    upstream_file: Path,
    task: str,
    cuts: dict[str, Path],
    conf: dict,
    lexicon_file: Path | None,
    out_dir: Path,
) -> dict:
    """ssl1 stage 5 for one upstream and task: the probe of :func:`run_probe` on the cut
    manifests ``cuts`` ({"train", "dev", "test"}, and further test sets by name, e.g.
    "test-other"; SID splits the speakers of "train" instead and scores no further set), after
    ``conf["max_train_hours"]`` of training cuts (seeded) when set. Writes
    ``out_dir/result.yaml`` (further sets under ``other_tests``), ``out_dir/`` :data:`TEST_SCORES`
    and ``test_scores_<name>.tsv`` per further set; returns the result."""
    lexicon = None
    if task == "pr":
        lexicon = read_lexicon(lexicon_file)
    upstream = load_upstream(upstream_file)
    train = CutSet.from_file(cuts["train"]).to_eager()
    if conf.get("max_train_hours"):
        total = sum(c.duration for c in train) / 3600
        train = subset_hours(train, conf["max_train_hours"], seed=conf.get("seed", 0))
        log.info(
            "probe training cuts: %d (%.2f h) of %.2f h (max_train_hours %s)",
            len(train),
            sum(c.duration for c in train) / 3600,
            total,
            conf["max_train_hours"],
        )
    if task == "sid":
        split = speaker_split(
            {c.id: c.supervisions[0].speaker for c in train}, seed=conf.get("seed", 0)
        )
        splits = {
            k: train.filter(lambda c, ids=set(v): c.id in ids).to_eager() for k, v in split.items()
        }
    else:
        splits = {
            "train": train,
            **{
                name: CutSet.from_file(path).to_eager()
                for name, path in cuts.items()
                if name != "train"
            },
        }
    if lexicon is not None:
        texts = (s.text for part in splits.values() for c in part for s in c.supervisions)
        for word, why in complete_lexicon(lexicon, texts).items():
            log.warning("no pronunciation for %s (%s): its utterances are skipped", word, why)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = run_probe(upstream, task, splits, conf, lexicon, checkpoint=out_dir / "checkpoint.pt")
    if result["skipped_cuts"]:
        log.warning(
            "%d cuts had no %s target (a word without pronunciation) and were skipped",
            result["skipped_cuts"],
            task,
        )
    utterances = result.pop("test_utterances")
    atomic_write_text(out_dir / TEST_SCORES, "".join(f"{u}\t{e}\t{n}\n" for u, e, n in utterances))
    for name, other in result["other_tests"].items():
        lines = (f"{u}\t{e}\t{n}\n" for u, e, n in other.pop("utterances"))
        atomic_write_text(out_dir / other_test_scores(name), "".join(lines))
    if not result["other_tests"]:
        del result["other_tests"]
    atomic_write_text(
        out_dir / "result.yaml",
        yaml.safe_dump({"upstream": str(upstream_file), **result}, sort_keys=False),
    )
    return result
