"""Small helpers shared by every stage: atomic writes, disk-full errors, logging set-up.

Seeding is the trainers' (``train/loop.begin_run``)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffixes, so writers that infer the format from
    the name still work) and rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp{os.getpid()}.{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        if err.filename is None:  # a failed write() names no file: say which output it was
            err.filename = str(path)
        raise
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` via a temporary file and a rename, so a killed job never leaves a
    half-written file that a rerun would trust."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def add_rejected(path: Path, lines: list[str]) -> int:
    """Append ``lines`` (``<item>: <reason>``) to a part's rejected list, leaving out those already
    in it (a rerun of a step adds nothing twice); written via a rename. Returns the list's length.

    Each part has one such list, ``<data_dir>/manifests/rejected_<part>.txt``: corpus preparation,
    validation and feature extraction (stages 1-2) all add what they drop, with the reason."""
    path = Path(path)
    old = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    have = set(old)
    new = [line for line in dict.fromkeys(lines) if line not in have]
    if new or not path.is_file():
        atomic_write_text(path, "".join(f"{line}\n" for line in old + new))
    return len(old) + len(new)


def load_kaldi_matrix(rxfile: str) -> object:
    """``kaldiio.load_mat(rxfile)`` (``ark:offset`` or a file), with a failure that says what is
    wrong: ``ValueError('<rxfile>: <why>')`` instead of kaldiio's bare ``AssertionError``."""
    import kaldiio

    try:
        return kaldiio.load_mat(rxfile)
    except (AssertionError, UnicodeDecodeError, ValueError, RuntimeError, EOFError, OSError) as err:
        path, _, offset = rxfile.rpartition(":")
        if not offset.isdigit():
            path, offset = rxfile, ""
        if not Path(path).is_file():
            why = "the archive does not exist"
        elif offset and int(offset) >= Path(path).stat().st_size:
            why = f"offset {offset} is past the end of the {Path(path).stat().st_size}-byte archive"
        else:
            detail = " ".join(str(err).split())[:200] or "a bad header or a truncated matrix"
            why = f"no Kaldi matrix{' at offset ' + offset if offset else ''} ({detail})"
        raise ValueError(f"{rxfile}: {why}") from None


def save_torch(obj: object, path: Path) -> None:
    """``torch.save`` through a temporary name and a rename. The bytes depend on ``obj`` alone:
    torch names the zip archive's records after the file, so saving to a buffer first keeps the
    temporary name (and so the process id) out of the file."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_output(path) as tmp:
        tmp.write_bytes(buf.getvalue())


# write failures that are the machine's, not the code's: one line instead of a traceback
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES}
# of those, the ones no input item can cause (a read can fail with EACCES, never with ENOSPC)
_OUT_OF_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def out_of_space(err: BaseException, path: Path) -> bool:
    """True when ``err`` is a full disk, a quota or a read-only file system: a loop that skips bad
    items must stop instead. The error then names ``path`` if it named no file."""
    if not isinstance(err, OSError) or err.errno not in _OUT_OF_SPACE_ERRNOS:
        return False
    if err.filename is None:
        err.filename = str(path)
    return True


def _storage_excepthook(kind: type, err: BaseException, tb: object) -> None:
    if isinstance(err, OSError) and err.errno in _STORAGE_ERRNOS:
        prog = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "python"
        where = f" ({err.filename})" if err.filename else ""
        print(f"{prog}: cannot write: {os.strerror(err.errno)}{where}", file=sys.stderr)
        sys.exit(1)
    sys.__excepthook__(kind, err, tb)


def setup_logging(verbose: bool = False) -> None:
    """Log lines with time, level and source; a full disk or a read-only output dir ends the
    program with one error line naming the file."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] %(message)s",
    )
    sys.excepthook = _storage_excepthook


def module_at_commit(relpath: str, commit: str, workdir: Path) -> object:
    """The module ``relpath`` (e.g. ``espnet_distill/decode/ctc_beam.py``) as it was at git
    ``commit``, imported from a copy in ``workdir``: the reference a pure speed change is checked
    against (tests, bench/). ``LookupError`` when this checkout's history lacks the commit."""
    import importlib.util
    import subprocess

    shown = subprocess.run(
        ["git", "show", f"{commit}:{relpath}"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    if shown.returncode != 0:
        raise LookupError(f"git show {commit}:{relpath}: {shown.stderr.strip()}")
    name = f"_{Path(relpath).stem}_at_{commit}"
    path = Path(workdir) / f"{name}.py"
    path.write_text(shown.stdout)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
