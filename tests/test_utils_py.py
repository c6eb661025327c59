"""espnet_distill.utils: outputs appear only when complete."""

from __future__ import annotations

import os
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


def test_full_disk_during_feature_export_names_the_file_and_leaves_nothing(
    tiny_features, tmp_path, monkeypatch
):
    """ENOSPC in the middle of the Kaldi feats.ark: the error names it, and neither a partial
    archive nor an empty feats.scp is left for a rerun to trust."""
    import errno

    import kaldiio
    from lhotse import CutSet

    from espnet_distill.data import features

    cuts = CutSet.from_file(tiny_features / "fbank" / "cuts_dev-clean.jsonl.gz")
    real = kaldiio.WriteHelper

    class FillsUp(real):
        written = 0

        def __call__(self, key, value):
            FillsUp.written += 1
            if FillsUp.written == 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return super().__call__(key, value)

    monkeypatch.setattr(kaldiio, "WriteHelper", FillsUp)
    out = tmp_path / "dev_clean"
    with pytest.raises(OSError) as caught:
        features.export_kaldi_dir(cuts, out)
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(out.resolve() / "feats.ark")
    assert not (out / "feats.ark").exists() and not (out / "feats.scp").exists()
    assert not [f.name for f in out.iterdir() if f.name.startswith(".tmp")]
    monkeypatch.setattr(kaldiio, "WriteHelper", real)
    features.export_kaldi_dir(cuts, out)  # the rerun writes both, complete, with the final name
    feats = kaldiio.load_scp(str(out / "feats.scp"))
    assert len(feats) == len(cuts) and ".tmp" not in (out / "feats.scp").read_text()


def test_bad_kaldi_offset_says_what_is_wrong(tmp_path):
    """kaldiio's own failure here is a bare AssertionError (offset past the end) or a
    UnicodeDecodeError (an offset inside a matrix)."""
    import kaldiio
    import numpy as np

    from espnet_distill.utils import load_kaldi_matrix

    ark = tmp_path / "feats.ark"
    kaldiio.save_ark(str(ark), {"a": np.zeros((3, 4), dtype=np.float32)}, scp=str(tmp_path / "s"))
    size = ark.stat().st_size
    assert load_kaldi_matrix(f"{ark}:2").shape == (3, 4)
    with pytest.raises(
        ValueError,
        match=rf"^{ark}:99999: offset 99999 is past the end of the "
        rf"{size}-byte archive$",
    ):
        load_kaldi_matrix(f"{ark}:99999")
    with pytest.raises(ValueError, match=rf"^{ark}:7: no Kaldi matrix at offset 7 \(.+\)$"):
        load_kaldi_matrix(f"{ark}:7")
    with pytest.raises(ValueError, match=r"the archive does not exist"):
        load_kaldi_matrix(f"{tmp_path / 'nope.ark'}:2")


def test_full_disk_in_a_feature_job_stops_it_instead_of_rejecting_every_cut(
    tiny_features, tmp_path, monkeypatch
):
    """A feature job skips and lists cuts whose audio fails to decode; a full disk is no such
    cut: before, every cut after it was listed as 'cannot compute features (OSError: ...)'."""
    import errno

    from lhotse import LilcomChunkyWriter

    from espnet_distill.data import features

    def full(self, key, value):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(LilcomChunkyWriter, "write", full)
    split = tiny_features / "fbank" / "dev-clean" / "split" / "cuts.1.jsonl.gz"
    with pytest.raises(OSError) as caught:
        features.extract(split, tmp_path, 1)
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(tmp_path / "feats.1.lca")
    assert (
        not (tmp_path / "rejected.1.txt").exists() and not (tmp_path / "cuts.1.jsonl.gz").exists()
    )
