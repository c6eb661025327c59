"""espnet_distill.utils: outputs appear only when complete."""

from __future__ import annotations

import subprocess
import sys

import pytest

from espnet_distill.utils import atomic_output, atomic_write_text


def test_atomic_output_renames_on_success_and_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "sub" / "cuts.jsonl.gz"
    with atomic_output(final) as tmp:
        assert tmp.name.endswith(".cuts.jsonl.gz") and tmp.parent == final.parent
        tmp.write_text("complete")
    assert final.read_text() == "complete"
    with pytest.raises(RuntimeError), atomic_output(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert final.read_text() == "complete"  # the old file stands; no temporary is left behind
    assert sorted(p.name for p in final.parent.iterdir()) == ["cuts.jsonl.gz"]


def test_atomic_write_text(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "x\n")
    assert (tmp_path / "a.txt").read_text() == "x\n"


def test_full_disk_is_one_error_line():
    """/dev/full answers every write with ENOSPC, as a full disk does."""
    code = (
        "from espnet_distill.utils import setup_logging\nsetup_logging()\n"
        "with open('/dev/full', 'w') as f:\n    f.write('x' * 100000)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ["-c: cannot write: No space left on device"]
