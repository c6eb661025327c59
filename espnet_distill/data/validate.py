"""Data validation for lhotse manifests and Kaldi data dirs (Kaldi's validate_data_dir.sh and
fix_data_dir.sh, for both formats).

Every problem is one line ``<item>: <reason>`` naming the recording, utterance or file:line. The
checks: missing, unreadable or corrupt audio; zero or too-short duration; a sample rate or channel
count other than expected, or other than the manifest says; NaN/inf samples or feature values;
empty or non-UTF-8 transcripts; characters outside the unit inventory; duplicated or mismatched
ids; supervisions outside their recording; unsorted Kaldi files. The OOV rate against a vocabulary
(the training transcripts' words, or a lexicon) is measured and reported.

``fix=True`` keeps only clean items: manifests (or Kaldi files) are rewritten without the bad items
(write then rename) and the dropped ones are listed with their reasons in a rejected file, with the
counts in a JSON file beside it; nothing is dropped without a line saying why.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet
from lhotse.serialization import load_jsonl

from espnet_distill.utils import atomic_write_text, load_kaldi_matrix

log = logging.getLogger(__name__)

# LibriSpeech's normalised transcripts: upper-case letters, apostrophe, space
DEFAULT_CHARSET = "A-Z' "
# a number that is a word of its own (not the 8 of UTF-8 or the 2 of utt2spk)
_NUMBER = re.compile(r"(?<![\w.-])[-+]?\d+(\.\d+)?(?![\w-])")
AUDIO_SUFFIXES = (".flac", ".wav", ".sph", ".mp3", ".ogg", ".opus")


class ValidationError(RuntimeError):
    """Nothing to validate, or nothing left: a missing manifest or Kaldi file, a part whose every
    item is bad; the message names it."""


@dataclass
class Expect:
    """What clean data looks like."""

    sample_rate: int = 16000
    num_channels: int = 1
    min_duration: float = 0.1  # seconds; shorter items cannot make a 25 ms-window feature sequence
    charset: str | None = DEFAULT_CHARSET  # a regex character class body; None: no check
    check_samples: bool = True  # decode every file (finds corrupt audio and NaN/inf samples)

    def outside_charset(self, text: str) -> list[str]:
        if self.charset is None:
            return []
        return sorted(set(re.findall(f"[^{self.charset}]", text)))


@dataclass
class ValidationReport:
    name: str
    total: int = 0  # utterances (supervisions) examined
    problems: list[tuple[str, str]] = field(default_factory=list)  # (item, reason)
    oov_tokens: int = 0
    tokens: int = 0
    oov_words: Counter = field(default_factory=Counter)
    kept: int | None = None  # after fix

    def add(self, item: str, reason: str) -> None:
        self.problems.append((item, reason))

    @property
    def oov_rate(self) -> float | None:
        return self.oov_tokens / self.tokens if self.tokens else None

    def kinds(self) -> Counter:
        """Problems counted by reason: what is in parentheses or quotes (paths, ids, characters)
        taken out, numbers standing alone replaced by N (``UTF-8``, ``utt2spk`` keep theirs)."""
        return Counter(
            " ".join(_NUMBER.sub("N", re.sub(r"\(.*\)|'[^']*'", "", r)).split())
            for _, r in self.problems
        )

    def lines(self) -> list[str]:
        return [f"{item}: {reason}" for item, reason in self.problems]

    def summary(self) -> dict:
        out = {
            "name": self.name,
            "utterances": self.total,
            "problems": len(self.problems),
            "by_kind": dict(self.kinds()),
        }
        if self.kept is not None:
            out["kept"] = self.kept
        if self.oov_rate is not None:
            out["oov_rate"] = round(self.oov_rate, 5)
            out["oov_top"] = dict(self.oov_words.most_common(10))
        return out


def _text_problems(text: str | None, expect: Expect) -> str | None:
    if text is None or not text.strip():
        return "empty transcript"
    if "\ufffd" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return "transcript is not valid UTF-8 (replacement characters or surrogates)"
    bad = expect.outside_charset(text)
    if bad:
        return "characters outside the unit inventory: " + " ".join(repr(c) for c in bad)
    return None


def _count_oov(report: ValidationReport, text: str, vocab: set[str] | None) -> None:
    if vocab is None:
        return
    for word in text.split():
        report.tokens += 1
        if word not in vocab:
            report.oov_tokens += 1
            report.oov_words[word] += 1


def audio_header(path: Path) -> tuple[object | None, str | None]:
    """soundfile's header of ``path``, or (None, why there is no usable one): missing, 0 bytes,
    unreadable, 0 samples. Shared by corpus preparation and validation."""
    if not path.is_file():
        return None, "audio file missing"
    if path.stat().st_size == 0:
        return None, "empty audio file, 0 bytes"
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        return None, f"unreadable audio ({err})"
    if info.frames == 0:
        return None, "empty audio, 0 samples"
    return info, None


def check_audio_file(
    path: Path, expect: Expect, num_samples: int | None = None, sample_rate: int | None = None
) -> str | None:
    """The reason an audio file is unusable, or None. ``num_samples``/``sample_rate``: what a
    manifest claims (checked against the file's header)."""
    info, problem = audio_header(path)
    if problem:
        return f"{problem} ({path})"
    if info.samplerate != expect.sample_rate:
        return f"sample rate {info.samplerate}, expected {expect.sample_rate} ({path})"
    if sample_rate is not None and info.samplerate != sample_rate:
        return f"sample rate {info.samplerate} in the file, {sample_rate} in the manifest ({path})"
    if info.channels != expect.num_channels:
        return f"{info.channels} channels, expected {expect.num_channels} ({path})"
    if num_samples is not None and info.frames != num_samples:
        return f"{info.frames} samples in the file, {num_samples} in the manifest ({path})"
    if info.frames / info.samplerate < expect.min_duration:
        return (
            f"too short: {info.frames / info.samplerate:.3f} s < {expect.min_duration} s ({path})"
        )
    if expect.check_samples:
        try:
            samples, _ = sf.read(str(path), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError) as err:
            return f"corrupt audio, decoding failed ({path}: {err})"
        if len(samples) != info.frames:
            return f"corrupt audio: decoded {len(samples)} of {info.frames} samples ({path})"
        bad = int((~np.isfinite(samples)).sum())
        if bad:
            return f"{bad} NaN/inf samples ({path})"
    return None


def _check_recording(rec: Recording, expect: Expect) -> str | None:
    if rec.duration <= 0:
        return f"duration {rec.duration} s"
    if rec.duration < expect.min_duration:
        return f"too short: {rec.duration:.3f} s < {expect.min_duration} s"
    if rec.sampling_rate != expect.sample_rate:
        return f"sample rate {rec.sampling_rate} in the manifest, expected {expect.sample_rate}"
    if rec.num_channels != expect.num_channels:
        return f"{rec.num_channels} channels in the manifest, expected {expect.num_channels}"
    src = rec.sources[0]
    if len(rec.sources) == 1 and src.type == "file":
        return check_audio_file(Path(src.source), expect, rec.num_samples, rec.sampling_rate)
    if expect.check_samples:  # commands, URLs, several sources: lhotse decodes them
        try:
            samples = rec.load_audio()
        except Exception as err:  # noqa: BLE001 - any decoder failure is the item's problem
            return f"corrupt audio, lhotse could not load it ({type(err).__name__}: {err})"
        bad = int((~np.isfinite(samples)).sum())
        if bad:
            return f"{bad} NaN/inf samples"
    return None


def _load_raw(path: Path, kind: str, report: ValidationReport) -> tuple[dict[str, dict], int]:
    """id -> manifest dict, and the number of entries read; a repeated id is a problem (lhotse
    would silently keep one): the first is kept, the repeat listed."""
    items: dict[str, dict] = {}
    lineno = 0
    for lineno, d in enumerate(load_jsonl(path), start=1):
        if d["id"] in items:
            report.add(d["id"], f"duplicated {kind} id ({path}:{lineno}; the first is kept)")
            continue
        items[d["id"]] = d
    return items, lineno


def validate_manifests(
    recordings_file: Path,
    supervisions_file: Path,
    expect: Expect,
    vocab: set[str] | None = None,
    name: str = "",
) -> tuple[ValidationReport, RecordingSet, SupervisionSet]:
    """Check a recordings + supervisions manifest pair; returns the report and the clean subset."""
    report = ValidationReport(name or Path(supervisions_file).name)
    raw_recs, _ = _load_raw(Path(recordings_file), "recording", report)
    raw_sups, report.total = _load_raw(Path(supervisions_file), "supervision", report)
    # A bad recording is one problem per utterance it holds (named by the utterance, the reason
    # the recording's), so the counts add up: utterances = kept + problems - orphan recordings.
    good_recs: dict[str, Recording] = {}
    bad_recs: dict[str, str] = {}
    for rid, d in raw_recs.items():
        rec = Recording.from_dict(d)
        reason = _check_recording(rec, expect)
        if reason:
            bad_recs[rid] = reason
        else:
            good_recs[rid] = rec
    good_sups: list[SupervisionSegment] = []
    for sid, d in raw_sups.items():
        sup = SupervisionSegment.from_dict(d)
        rec = raw_recs.get(sup.recording_id)
        reason = None
        if rec is None:
            reason = f"recording {sup.recording_id} is not in {recordings_file}"
        elif sup.recording_id in bad_recs:
            reason = bad_recs[sup.recording_id]
            if sup.recording_id != sid:
                reason += f" (recording {sup.recording_id})"
        elif sup.start < 0 or sup.end > rec["duration"] + 0.01:
            reason = (
                f"outside its recording: {sup.start:.3f}-{sup.end:.3f} s of {rec['duration']:.3f} s"
            )
        elif sup.duration < expect.min_duration:
            reason = f"too short: {sup.duration:.3f} s < {expect.min_duration} s"
        else:
            reason = _text_problems(sup.text, expect)
        if reason:
            report.add(sid, reason)
            continue
        _count_oov(report, sup.text, vocab)
        good_sups.append(sup)
    covered = {s.recording_id for s in good_sups}
    named = {d["recording_id"] for d in raw_sups.values()}
    for rid in sorted(set(bad_recs) - named):
        report.add(rid, bad_recs[rid] + "; no supervision names it")
    for rid in sorted(set(good_recs) - covered):
        if rid not in named:
            report.add(rid, "recording has no supervision")
        del good_recs[rid]
    return (
        report,
        RecordingSet.from_recordings(good_recs.values()),
        SupervisionSet.from_segments(good_sups),
    )


def write_summary(report: ValidationReport, path: Path) -> None:
    """The report's counts (by kind of problem, OOV rate) as JSON."""
    atomic_write_text(path, json.dumps(report.summary(), indent=1) + "\n")


def write_report(report: ValidationReport, out_dir: Path, stem: str) -> tuple[Path, Path]:
    """``<stem>.rejected.txt`` (one problem a line) and ``<stem>.json`` (counts)."""
    rejected = out_dir / f"{stem}.rejected.txt"
    atomic_write_text(rejected, "".join(f"{line}\n" for line in report.lines()))
    write_summary(report, out_dir / f"{stem}.json")
    return rejected, out_dir / f"{stem}.json"


# ---------------------------------------------------------------------------- Kaldi data dirs
KALDI_FILES = (
    "wav.scp",
    "segments",
    "text",
    "utt2spk",
    "spk2utt",
    "feats.scp",
    "utt2dur",
    "reco2dur",
    "utt2lang",
    "utt2num_frames",
)


def _read_kaldi_file(path: Path, report: ValidationReport) -> tuple[dict[str, str], list[str]]:
    """key -> rest of line, and the keys in file order; bad lines are problems."""
    table: dict[str, str] = {}
    order: list[str] = []
    for lineno, raw in enumerate(path.read_bytes().splitlines(), start=1):
        where = f"{path}:{lineno}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            key = raw.split(maxsplit=1)[0].decode("utf-8", "replace") if raw.strip() else "?"
            report.add(
                where, f"line of {key} is not valid UTF-8 ({err.reason} at byte {err.start})"
            )
            table.setdefault(key, "\ufffd")  # the utterance's transcript is unusable
            continue
        fields = line.strip().split(maxsplit=1)
        if not fields:
            report.add(where, "blank line")
            continue
        key = fields[0]
        if key in table:
            report.add(where, f"duplicated id {key}")
            continue
        table[key] = fields[1] if len(fields) > 1 else ""
        order.append(key)
    return table, order


def _pipe_inputs(entry: str) -> list[Path]:
    return [Path(tok) for tok in entry.split() if tok.lower().endswith(AUDIO_SUFFIXES)]


def validate_kaldi_dir(
    data_dir: Path, expect: Expect, vocab: set[str] | None = None, fix: bool = False
) -> ValidationReport:
    """Check a Kaldi data dir (and with ``fix``, rewrite it keeping the clean utterances, the
    originals moved to ``.backup/``, like Kaldi's fix_data_dir.sh)."""
    data_dir = Path(data_dir)
    report = ValidationReport(str(data_dir))
    missing = [f for f in ("text", "utt2spk") if not (data_dir / f).is_file()]
    if not (data_dir / "wav.scp").is_file() and not (data_dir / "feats.scp").is_file():
        missing.append("wav.scp or feats.scp")
    if missing:
        raise ValidationError(f"{data_dir}: not a Kaldi data dir, missing {', '.join(missing)}")
    tables: dict[str, dict[str, str]] = {}
    for name in KALDI_FILES:
        if (data_dir / name).is_file():
            tables[name], order = _read_kaldi_file(data_dir / name, report)
            if order != sorted(order, key=lambda k: k.encode()):
                report.add(str(data_dir / name), "not sorted (Kaldi needs LC_ALL=C sort order)")
    text, utt2spk = tables["text"], tables["utt2spk"]
    bad: dict[str, str] = {}  # utterance -> first reason
    utts = sorted(set(text) | set(utt2spk))
    report.total = len(utts)
    segments = tables.get("segments")
    recording_of = (
        {u: segments[u].split()[0] for u in segments if segments[u].split()}
        if segments
        else {u: u for u in utts}
    )
    bad_recordings: dict[str, str] = {}
    if "wav.scp" in tables:
        for rec_id, entry in tables["wav.scp"].items():
            if entry.endswith("|"):
                paths = _pipe_inputs(entry)
                absent = [str(p) for p in paths if not p.is_file()]
                if absent:
                    bad_recordings[rec_id] = f"audio file missing ({', '.join(absent)})"
                elif paths:
                    reason = check_audio_file(paths[0], expect)
                    if reason:
                        bad_recordings[rec_id] = reason
            else:
                reason = check_audio_file(Path(entry), expect)
                if reason:
                    bad_recordings[rec_id] = reason
    reco2dur = {k: float(v) for k, v in tables.get("reco2dur", {}).items() if _is_float(v)}
    for utt in utts:
        reason = None
        if utt not in text:
            reason = f"in utt2spk but not in {data_dir / 'text'}"
        elif utt not in utt2spk:
            reason = f"in text but not in {data_dir / 'utt2spk'}"
        elif "feats.scp" in tables and utt not in tables["feats.scp"]:
            reason = f"no features in {data_dir / 'feats.scp'}"
        elif "wav.scp" in tables and recording_of.get(utt) not in tables["wav.scp"]:
            reason = f"recording {recording_of.get(utt)} not in {data_dir / 'wav.scp'}"
        elif recording_of.get(utt) in bad_recordings:
            reason = bad_recordings[recording_of[utt]]
        elif segments is not None:
            reason = _segment_problem(segments.get(utt, ""), reco2dur, expect)
        if reason is None:
            reason = _text_problems(text[utt], expect)
        if reason is None and "feats.scp" in tables:
            reason = _feats_problem(tables["feats.scp"][utt])
        if reason:
            bad[utt] = reason
            report.add(utt, reason)
        else:
            _count_oov(report, text[utt], vocab)
    if "spk2utt" in tables:
        from_spk2utt = {u: spk for spk, us in tables["spk2utt"].items() for u in us.split()}
        if from_spk2utt != utt2spk:
            report.add(str(data_dir / "spk2utt"), "does not match utt2spk (regenerate it)")
    if fix:
        keep = [u for u in utts if u not in bad]
        _rewrite_kaldi_dir(data_dir, tables, keep, recording_of)
        report.kept = len(keep)
        write_report(report, data_dir, "validation")
    return report


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _segment_problem(entry: str, reco2dur: dict[str, float], expect: Expect) -> str | None:
    fields = entry.split()
    if len(fields) != 3 or not _is_float(fields[1]) or not _is_float(fields[2]):
        return f"malformed segments entry '{entry}'"
    start, end = float(fields[1]), float(fields[2])
    if start < 0 or end <= start:
        return f"segment {start}-{end} s is empty or negative"
    if fields[0] in reco2dur and end > reco2dur[fields[0]] + 0.01:
        return f"outside its recording: {start:.3f}-{end:.3f} s of {reco2dur[fields[0]]:.3f} s"
    if end - start < expect.min_duration:
        return f"too short: {end - start:.3f} s < {expect.min_duration} s"
    return None


def _feats_problem(rxfile: str) -> str | None:
    try:
        mat = load_kaldi_matrix(rxfile)
    except ValueError as err:
        return f"unreadable features ({err})"
    if mat.size == 0:
        return f"empty feature matrix ({rxfile})"
    bad = int((~np.isfinite(mat)).sum())
    if bad:
        return f"{bad} NaN/inf feature values ({rxfile})"
    return None


def _rewrite_kaldi_dir(
    data_dir: Path, tables: dict[str, dict[str, str]], keep: list[str], recording_of: dict[str, str]
) -> None:
    backup = data_dir / ".backup"
    backup.mkdir(exist_ok=True)
    keep_set = set(keep)
    keep_recs = {recording_of[u] for u in keep}
    for name, table in tables.items():
        shutil.copy2(data_dir / name, backup / name)
        if name == "spk2utt":
            continue
        keys = keep_recs if name in ("wav.scp", "reco2dur") else keep_set
        lines = [f"{k} {table[k]}".rstrip() for k in sorted(table, key=str.encode) if k in keys]
        atomic_write_text(data_dir / name, "".join(f"{line}\n" for line in lines))
    spk2utt: dict[str, list[str]] = defaultdict(list)
    for utt in sorted(keep, key=str.encode):
        spk2utt[tables["utt2spk"][utt]].append(utt)
    atomic_write_text(
        data_dir / "spk2utt",
        "".join(f"{spk} {' '.join(us)}\n" for spk, us in sorted(spk2utt.items())),
    )
