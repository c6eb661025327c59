"""LibriSpeech-layout corpora -> lhotse manifests, with every bad item named and counted.

lhotse's ``prepare_librispeech`` stops on the first malformed line (empty transcript, undecodable
bytes, unreadable audio) with an error that names neither the file nor the line. We check each line
and each audio header first, keep the good ones through lhotse's own ``parse_utterance`` (so the
manifests are exactly lhotse's), and write the rest to ``rejected_<part>.txt`` with a reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from lhotse import RecordingSet, SupervisionSet
from lhotse.qa import fix_manifests, validate_recordings_and_supervisions
from lhotse.recipes.librispeech import parse_utterance

from espnet_distill.data.validate import audio_header
from espnet_distill.utils import atomic_output, atomic_write_text

log = logging.getLogger(__name__)


class CorpusError(RuntimeError):
    """The corpus directory is missing or incomplete; the message lists what is missing."""


@dataclass
class PartReport:
    part: str
    kept: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (item, reason)


def check_corpus_dir(corpus_dir: Path, parts: list[str]) -> None:
    """Fail before any work if the corpus dir or one of the requested splits is absent or empty."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus dir {corpus_dir} does not exist")
    problems = []
    for part in parts:
        part_dir = corpus_dir / part
        if not part_dir.is_dir():
            problems.append(f"split {part} missing ({part_dir})")
        elif next(part_dir.rglob("*.trans.txt"), None) is None:
            problems.append(f"split {part} has no *.trans.txt files ({part_dir})")
    if problems:
        raise CorpusError(f"corpus dir {corpus_dir} is incomplete: " + "; ".join(problems))


def _check_line(part_dir: Path, trans: Path, lineno: int, raw: bytes) -> tuple[str | None, str]:
    """Returns (line, '') for a good line, or (None, reason)."""
    where = f"{trans}:{lineno}"
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return (
            None,
            f"{where}: transcript line is not valid UTF-8 ({err.reason} at byte {err.start})",
        )
    fields = line.strip().split(maxsplit=1)
    if not fields:
        return None, f"{where}: blank line"
    if len(fields) == 1:
        return None, f"{where}: empty transcript for {fields[0]}"
    utt_id = fields[0]
    audio = part_dir / Path(utt_id.replace("-", "/")).parent / f"{utt_id}.flac"
    _, problem = audio_header(audio)
    if problem:
        return None, f"{audio}: {problem}"
    return line, ""


def write_manifests(
    recordings: RecordingSet, supervisions: SupervisionSet, output_dir: Path, prefix: str, part: str
) -> None:
    """``<prefix>_{supervisions,recordings}_<part>.jsonl.gz``, each written to a temporary name
    and renamed, recordings last: their file's existence marks the part as done."""
    output_dir.mkdir(parents=True, exist_ok=True)
    for manifest, kind in ((supervisions, "supervisions"), (recordings, "recordings")):
        with atomic_output(output_dir / f"{prefix}_{kind}_{part}.jsonl.gz") as tmp:
            manifest.to_file(tmp)


def prepare_part(
    corpus_dir: Path, part: str, output_dir: Path, prefix: str = "librispeech"
) -> PartReport:
    """Write ``<prefix>_{recordings,supervisions}_<part>.jsonl.gz`` and ``rejected_<part>.txt``.

    Every audio file of the split ends up in the manifests or in the rejected list: lines that
    cannot be used, audio files no transcript line names, and a repeated utterance id (the same
    line twice, or in two ``.trans.txt`` files: the first one is kept, the repeat is listed with
    both places).
    """
    part_dir = Path(corpus_dir) / part
    report = PartReport(part)
    recordings, supervisions = [], []
    first_seen: dict[str, str] = {}  # utterance id -> file:line that named it first
    named: set[str] = set()  # ids of every line, good or rejected
    for trans in sorted(part_dir.rglob("*.trans.txt")):
        for lineno, raw in enumerate(trans.read_bytes().splitlines(), start=1):
            line, reason = _check_line(part_dir, trans, lineno, raw)
            if raw.split():  # its audio is accounted for, here or by this line's rejection
                named.add(raw.split()[0].decode("utf-8", "replace"))
            if line is None:
                report.rejected.append((reason.split(":")[0], reason))
                log.warning("skipping: %s", reason)
                continue
            utt_id = line.split(maxsplit=1)[0]
            if utt_id in first_seen:
                reason = (
                    f"{trans}:{lineno}: duplicated utterance id {utt_id} (first at "
                    f"{first_seen[utt_id]}, which is kept)"
                )
                report.rejected.append((str(trans), reason))
                log.warning("skipping: %s", reason)
                continue
            first_seen[utt_id] = f"{trans}:{lineno}"
            result = parse_utterance(part_dir, line, {})
            if result is None:  # lhotse found no audio (checked above, but keep its contract)
                report.rejected.append((str(trans), f"{trans}:{lineno}: lhotse could not parse"))
                continue
            recordings.append(result[0])
            supervisions.append(result[1])
    for audio in sorted(part_dir.rglob("*.flac")):
        if audio.stem not in named:
            reason = (
                f"{audio}: no transcript line names {audio.stem} (in {audio.parent}/*.trans.txt)"
            )
            report.rejected.append((str(audio), reason))
            log.warning("skipping: %s", reason)
    if not recordings:
        raise CorpusError(f"{part_dir}: no usable utterances ({len(report.rejected)} rejected)")
    recording_set, supervision_set = fix_manifests(
        RecordingSet.from_recordings(recordings), SupervisionSet.from_segments(supervisions)
    )
    validate_recordings_and_supervisions(recording_set, supervision_set)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    rejected_file = output_dir / f"rejected_{part}.txt"
    atomic_write_text(rejected_file, "".join(f"{reason}\n" for _, reason in report.rejected))
    write_manifests(recording_set, supervision_set, output_dir, prefix, part)
    report.kept = len(supervision_set)
    log.info(
        "%s: %d utterances prepared, %d rejected (listed in %s); validation follows",
        part,
        report.kept,
        len(report.rejected),
        rejected_file,
    )
    return report
