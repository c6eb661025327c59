"""Running the recipe steps from tests with keyword options instead of spelled-out argv lists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def cli_args(**options: object) -> list[str]:
    """Keyword options as a step's flags: ``lang_dir=p`` -> ``--lang-dir p``; a list or tuple
    gives several values, a bool ``true`` / ``false`` (the flag convention), None leaves it out."""
    argv: list[str] = []
    for name, value in options.items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        flag = "--" + name.replace("_", "-")
        argv += [flag, *(str(v).lower() if isinstance(v, bool) else str(v) for v in values)]
    return argv


def run(argv: list[str | Path]) -> subprocess.CompletedProcess:
    """A command with its output captured as text."""
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True)


def run_step(step: str, *args: str, **options: object) -> subprocess.CompletedProcess:
    """``python -m espnet_distill.bin.<step> ARGS OPTIONS`` in a new process."""
    return run([sys.executable, "-m", f"espnet_distill.bin.{step}", *args, *cli_args(**options)])
