"""The recipes' stage entry points, ``python -m espnet_distill.bin.<step>``: each is argument
parsing plus a call into the library. The flag convention they share (CONTRIBUTING.md) is here:

- ``--out-dir DIR`` for what a step writes (``--results-file`` for a RESULTS.md, ``--out-file``
  for another single file); inputs ``--train-cuts`` / ``--valid-cuts`` / ``--test-cuts``;
- booleans take ``true`` or ``false`` as Kaldi's scripts do (:func:`str2bool`);
- ``--ngpu N`` (0: CPU) picks the device; ``--seed N`` wherever a step draws random numbers;
- bad input ends a step with one line ``<step>: <message>`` (:func:`one_line_errors`);
- ``--config FILE`` plus ``--override section.key=value`` (YAML values) for the trained steps.
"""

from __future__ import annotations

import argparse
import functools
import logging
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from espnet_distill.config import apply_overrides, load_config, merge_config


def make_parser(doc: str | None, *paths: str, config: bool = False) -> argparse.ArgumentParser:
    """A parser whose ``--help`` shows the script's docstring as written (Usage lines kept), with
    the required path flags ``paths`` (:func:`add_paths`) and, with ``config``, the trained
    steps' config options (:func:`add_config_options`)."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if config:
        add_config_options(parser)
    add_paths(parser, *paths)
    return parser


def finished(output: Path) -> bool:
    """True (and a log line saying so) when ``output``, the file a step writes last, exists: the
    step was done before and does nothing now."""
    if output.is_file():
        logging.getLogger("espnet_distill.bin").info("%s exists: skipping", output)
        return True
    return False


class MissingInput(FileNotFoundError):
    """An input of a step does not exist (the message names it)."""


def require(*paths: Path | None, files: bool = False) -> None:
    """Raises :class:`MissingInput` ``<path> does not exist`` for the first of ``paths`` that
    does not (``files``: that is not a file); None entries (options not given) are skipped."""
    for path in paths:
        if path is not None and not (path.is_file() if files else path.exists()):
            raise MissingInput(f"{path} does not exist")


def one_line_errors(
    *errors: type[BaseException],
) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorates a step's ``main``: an exception of ``errors`` or :class:`MissingInput` (bad
    input, named in its message) ends the step with the one line ``<step>: <message>`` on stderr
    and exit status 1, not a traceback."""

    def decorate(main: Callable[..., int]) -> Callable[..., int]:
        step = Path(sys.modules[main.__module__].__file__ or main.__module__).stem

        @functools.wraps(main)
        def run(argv: list[str] | None = None) -> int:
            try:
                return main(argv)
            except (MissingInput, *errors) as err:
                print(f"{step}: {err}", file=sys.stderr)
                return 1

        return run

    return decorate


def str2bool(value: str) -> bool:
    """A boolean option value as Kaldi's scripts take it: ``true`` or ``false``."""
    if value not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got '{value}'")
    return value == "true"


def add_bool(parser: argparse.ArgumentParser, flag: str, help: str, default: bool = False) -> None:
    parser.add_argument(
        flag,
        type=str2bool,
        default=default,
        metavar="true|false",
        help=f"{help} ({str(default).lower()})",
    )


# What the shared path flags mean, so that every step's --help says it the same way.
PATH_FLAGS = {
    "--train-cuts": "training cuts (lhotse manifest)",
    "--valid-cuts": "validation cuts (lhotse manifest)",
    "--test-cuts": "test cuts (lhotse manifest)",
    "--cuts": "the cuts to process (lhotse manifest)",
    "--manifest-dir": "lhotse manifests of stage 1",
    "--lang-dir": "lang dir of stage 3 (BPE model, lexicon, symbol tables)",
    "--exp-dir": "experiment dir (models, logs)",
    "--out-dir": "where this step writes",
    "--out-file": "the file this step writes",
    "--results-file": "the RESULTS.md to write",
    "--kaldi-dir": "Kaldi-style data dir to export",
}


def add_paths(parser: argparse.ArgumentParser, *flags: str, required: bool = True) -> None:
    """Path-valued flags, with the shared meaning of those in :data:`PATH_FLAGS`."""
    for flag in flags:
        parser.add_argument(flag, type=Path, required=required, help=PATH_FLAGS.get(flag))


def add_graph_backend(parser: argparse.ArgumentParser) -> None:
    """The WFST searches' backend options (decode_ctc's tlg, decode_hclg): kaldi-decoder or k2,
    and k2's lattice rescoring with a word n-gram at the tuned ``--lm-scales``."""
    parser.add_argument(
        "--graph-backend", choices=["kaldi", "k2"], default="kaldi", help="WFST search library"
    )
    parser.add_argument(
        "--rescore-lm", type=Path, help="ARPA word n-gram rescoring the k2 lattices (e.g. 4-gram)"
    )
    parser.add_argument(
        "--lm-scales", type=float, nargs="+", default=[1.0], help="rescoring LM weights tried"
    )


def add_config_options(
    parser: argparse.ArgumentParser, required: bool = True, seed_key: str = "train.seed"
) -> None:
    """``--config``, ``--override`` and ``--seed`` (which overrides the config's ``seed_key``)."""
    parser.add_argument("--config", type=Path, required=required, help="YAML config")
    parser.add_argument(
        "--override",
        nargs="*",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="config overrides (YAML values)",
    )
    parser.add_argument("--seed", type=int, help=f"random seed (overrides {seed_key})")


def read_config(
    args: argparse.Namespace, defaults: dict | None = None, seed_key: str = "train.seed"
) -> dict:
    """The defaults, then ``--config`` (with its ``base:`` chain), then ``--override`` and
    ``--seed``. Raises ValueError (naming the file) on a bad config."""
    config = merge_config(defaults or {}, load_config(args.config) if args.config else {})
    overrides = list(args.override)
    if args.seed is not None:
        overrides.append(f"{seed_key}={args.seed}")
    return apply_overrides(config, overrides)


def named_values(specs: list[str], flag: str, what: str = "VALUE") -> dict[str, str]:
    """``NAME=VALUE`` arguments as {name: value}; ValueError naming ``flag`` on a malformed one."""
    out = {}
    for spec in specs:
        name, _, value = spec.partition("=")
        if not name or not value:
            raise ValueError(f"{flag} expects NAME={what}, got '{spec}'")
        out[name] = value
    return out


def named_files(specs: list[str], flag: str, what: str = "FILE") -> dict[str, Path]:
    """``NAME=FILE`` arguments as {name: path}; ValueError when one is malformed or not a file."""
    out = {name: Path(value) for name, value in named_values(specs, flag, what).items()}
    for name, path in out.items():
        if not path.is_file():
            raise ValueError(f"{flag} {name}={path}: no such file")
    return out


def device_of(ngpu: int) -> str:
    """The torch device of ``--ngpu``."""
    return "cuda" if ngpu > 0 else "cpu"


def record_command(exp_dir: Path, module: str, argv: list[str] | None, name: str) -> None:
    """``<exp_dir>/<name>``: the exact command of this run, to rerun it by hand."""
    cmd = shlex.join([sys.executable, "-m", module, *(argv or sys.argv[1:])])
    exp_dir.mkdir(parents=True, exist_ok=True)
    (exp_dir / name).write_text(f"#!/usr/bin/env bash\n# the exact command of this run\n{cmd}\n")
