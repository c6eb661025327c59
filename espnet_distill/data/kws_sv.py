"""Speech Commands and VoxCeleb1 -> lhotse manifests through lhotse's own recipes, after checks
that name what is wrong (lhotse's recipes raise a bare KeyError or download when a file is
missing), and the two things the recipes leave out: the 35-word test split (Speech Commands'
``testing_list.txt``) and a trial list read offline (VoxCeleb1's ``veri_test.txt``; lhotse
downloads its own copy).

Outputs under ``output_dir``:

- ``speechcommands_{recordings,supervisions}_{train,valid,test,test35}.jsonl.gz``: lhotse's
  train / valid / test (the 12-class test set) and the 35-word test split;
- ``voxceleb_{recordings,supervisions}_{train,test}.jsonl.gz`` and ``voxceleb_trials.txt``
  (``veri_test.txt`` once every trial is checked; :func:`read_trials` reads it).
"""

from __future__ import annotations

import logging
from pathlib import Path

from lhotse import (
    CutSet,
    Recording,
    RecordingSet,
    SupervisionSegment,
    SupervisionSet,
    load_manifest,
)
from lhotse.qa import fix_manifests, validate_recordings_and_supervisions
from lhotse.recipes import prepare_speechcommands
from lhotse.recipes.voxceleb import _prepare_voxceleb_v1

from espnet_distill.data.librispeech import CorpusError, write_manifests
from espnet_distill.data.synth_kws_sv import CORE_WORDS, KEYWORDS
from espnet_distill.utils import atomic_write_text

log = logging.getLogger(__name__)

SILENCE, UNKNOWN, BACKGROUND = "_silence_", "_unknown_", "_background_noise_"
# v0.01 has 30 words: v0.02 added five
WORDS = {
    "1": tuple(
        w for w in KEYWORDS if w not in ("backward", "follow", "forward", "learn", "visual")
    ),
    "2": KEYWORDS,
}


def kws_label(text: str, task: str) -> str:
    """The class of a Speech Commands supervision: ``12class`` (SUPERB: the 10 core words,
    ``_unknown_`` for the others, ``_silence_`` for no word) or ``35class`` (the word)."""
    if task == "35class":
        if not text:
            raise ValueError("the 35-class task has no silence class")
        return text
    if task != "12class":
        raise ValueError(f"unknown task '{task}', expected 12class or 35class")
    return text if text in CORE_WORDS else SILENCE if not text else UNKNOWN


def _write(
    manifests: dict[str, tuple[RecordingSet, SupervisionSet]], output_dir: Path, prefix: str
) -> dict[str, int]:
    for split, (recordings, supervisions) in manifests.items():
        # sorted by id: lhotse lists the files in the order of a set, which changes with
        # PYTHONHASHSEED from run to run, and with it the cut ids and the training order
        recordings = RecordingSet.from_recordings(sorted(recordings, key=lambda r: r.id))
        supervisions = SupervisionSet.from_segments(sorted(supervisions, key=lambda s: s.id))
        write_manifests(recordings, supervisions, output_dir, prefix, split)
    return {split: len(supervisions) for split, (_, supervisions) in manifests.items()}


def check_speech_commands(corpus_dir: Path, version: str = "2") -> None:
    """Both parts, the split lists and every file they name, and only known folders; else one
    :class:`CorpusError` listing every problem."""
    corpus_dir = Path(corpus_dir)
    if version not in WORDS:
        raise ValueError(f"unknown Speech Commands version '{version}', expected 1 or 2")
    main = corpus_dir / f"speech_commands_v0.0{version}"
    test = corpus_dir / f"speech_commands_test_set_v0.0{version}"
    problems = [f"{d} missing" for d in (main, test) if not d.is_dir()]
    if problems:
        raise CorpusError(f"Speech Commands dir {corpus_dir} is incomplete: " + "; ".join(problems))
    for name in ("validation_list.txt", "testing_list.txt", f"{BACKGROUND}/running_tap.wav"):
        if not (main / name).is_file():
            problems.append(f"{main / name} missing")
    known = {
        "main": set(WORDS[version]) | {BACKGROUND},
        "test": set(CORE_WORDS) | {SILENCE, UNKNOWN},
    }
    for part, d in (("main", main), ("test", test)):
        unknown = sorted(p.name for p in d.iterdir() if p.is_dir() and p.name not in known[part])
        if unknown:
            problems.append(
                f"{d}: unknown keyword folder(s) {', '.join(unknown)} (v0.0{version} "
                f"has {len(WORDS[version])} words)"
            )
    for name in ("validation_list.txt", "testing_list.txt"):
        if (main / name).is_file():
            lines = (main / name).read_text().split()
            missing = [
                f"{name}:{i} {rel}" for i, rel in enumerate(lines, 1) if not (main / rel).is_file()
            ]
            if missing:
                problems.append(
                    f"{main / name} names {len(missing)} missing file(s): "
                    + ", ".join(missing[:5])
                    + (" ..." if len(missing) > 5 else "")
                )
    if problems:
        raise CorpusError(f"Speech Commands dir {corpus_dir}: " + "; ".join(problems))


def prepare_speech_commands(
    corpus_dir: Path, output_dir: Path, version: str = "2"
) -> dict[str, int]:
    """lhotse's train / valid / 12-class test manifests plus the 35-word ``test35`` split; returns
    the supervision count of each split."""
    corpus_dir = Path(corpus_dir)
    check_speech_commands(corpus_dir, version)
    lhotse_manifests = prepare_speechcommands(version, corpus_dir)
    manifests = {
        split: (m["recordings"], m["supervisions"]) for split, m in lhotse_manifests.items()
    }
    main = corpus_dir / f"speech_commands_v0.0{version}"
    recordings, supervisions = [], []
    for rel in sorted((main / "testing_list.txt").read_text().split()):
        rec_id = rel.replace("/", "_").removesuffix(".wav")  # lhotse's id for the same file
        recording = Recording.from_file(main / rel, recording_id=rec_id)
        recordings.append(recording)
        word, name = rel.split("/")
        supervisions.append(
            SupervisionSegment(
                id=rec_id,
                recording_id=rec_id,
                start=0.0,
                duration=recording.duration,
                channel=0,
                language="English",
                speaker=name.split("_")[0],
                text=word,
            )
        )
    test35 = fix_manifests(
        RecordingSet.from_recordings(recordings), SupervisionSet.from_segments(supervisions)
    )
    validate_recordings_and_supervisions(*test35)
    manifests["test35"] = test35
    counts = _write(manifests, Path(output_dir), "speechcommands")
    log.info("Speech Commands v0.0%s: %s", version, counts)
    return counts


def check_voxceleb1(root: Path) -> None:
    """``wav/``, ``vox1_meta.csv`` naming every speaker dir, and ``veri_test.txt``."""
    root = Path(root)
    problems = [
        f"{root / n} missing"
        for n in ("wav", "vox1_meta.csv", "veri_test.txt")
        if not (root / n).exists()
    ]
    if not problems:
        meta = {
            line.split("\t")[0] for line in (root / "vox1_meta.csv").read_text().splitlines()[1:]
        }
        absent = sorted(
            p.name for p in (root / "wav").iterdir() if p.is_dir() and p.name not in meta
        )
        if absent:
            problems.append(f"{root / 'vox1_meta.csv'} lacks speaker(s) {', '.join(absent[:10])}")
    if problems:
        raise CorpusError(f"VoxCeleb1 dir {root} is incomplete: " + "; ".join(problems))


def read_trials(path: Path, recording_ids: set[str]) -> list[tuple[int, str, str]]:
    """``<1|0> <spk/video/nnnnn.wav> <spk/video/nnnnn.wav>`` lines -> (label, enrol id, test id)
    with lhotse's recording ids (``spk-video-nnnnn``). A malformed line, or a trial naming an
    utterance not in ``recording_ids``, is an error naming the line: a trial list is never
    silently shortened (it would change the EER)."""
    trials, bad = [], []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3 or fields[0] not in ("0", "1"):
            bad.append(f"{path}:{lineno}: expected '<1|0> <wav> <wav>', got '{line.strip()}'")
            continue
        ids = [w.removesuffix(".wav").replace("/", "-") for w in fields[1:]]
        missing = [w for w, i in zip(fields[1:], ids, strict=True) if i not in recording_ids]
        if missing:
            bad.append(f"{path}:{lineno}: {' and '.join(missing)} not in the corpus")
            continue
        trials.append((int(fields[0]), ids[0], ids[1]))
    if bad:
        raise CorpusError(
            f"{len(bad)} bad trial line(s): "
            + "; ".join(bad[:5])
            + (" ..." if len(bad) > 5 else "")
        )
    if not trials:
        raise CorpusError(f"{path}: no trials")
    return trials


def prepare_voxceleb1(root: Path, output_dir: Path, num_jobs: int = 1) -> dict[str, int]:
    """lhotse's VoxCeleb1 train ("dev" speakers) and test manifests, and the trials of
    ``veri_test.txt`` over the test manifests; returns the counts."""
    root = Path(root)
    check_voxceleb1(root)
    lhotse_manifests = _prepare_voxceleb_v1(root, num_jobs)
    manifests = {}
    for split in ("train", "test"):
        m = lhotse_manifests[split]
        manifests[split] = fix_manifests(m["recordings"], m["supervisions"])
        validate_recordings_and_supervisions(*manifests[split])
    trials = read_trials(root / "veri_test.txt", set(manifests["test"][0].ids))
    counts = _write(manifests, Path(output_dir), "voxceleb")
    # the checked list, verbatim: later stages read it with read_trials against the manifests
    atomic_write_text(
        Path(output_dir) / "voxceleb_trials.txt", (root / "veri_test.txt").read_text()
    )
    counts["trials"] = len(trials)
    counts["target_trials"] = sum(t for t, _, _ in trials)
    log.info("VoxCeleb1: %s", counts)
    return counts


def load_split_cuts(manifest_dir: Path, prefix: str, split: str) -> CutSet:
    """The cuts of one split of stage 1's manifests (``<prefix>_{recordings,supervisions}_<split>``),
    in recording-id order."""
    files = [
        manifest_dir / f"{prefix}_{kind}_{split}.jsonl.gz"
        for kind in ("recordings", "supervisions")
    ]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"{f} is missing: run stage 1 (prepare_kws_sv)")
    # sorted: the cut ids lhotse makes end in the recording's position, which would otherwise
    # follow the order the corpus files were listed in (the filesystem's)
    recordings = RecordingSet.from_recordings(sorted(load_manifest(files[0]), key=lambda r: r.id))
    return CutSet.from_manifests(
        recordings=recordings, supervisions=load_manifest(files[1])
    ).to_eager()
