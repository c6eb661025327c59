"""The flag convention of bin/ (CONTRIBUTING.md, espnet_distill/bin/__init__.py), read from the
scripts' argparse calls, and the decoding defaults that bin/ and asr.sh share."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from espnet_distill.bin import PATH_FLAGS, config_value
from espnet_distill.config import DECODE_DEFAULTS, DECODE_DIR_METHODS, DECODE_METHODS

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(
    p for p in (ROOT / "espnet_distill" / "bin").glob("*.py") if p.name != "__init__.py"
)
# the spellings the convention replaced, and what replaced them
RETIRED = {
    "--output-dir": "--out-dir",
    "--target-dir": "--out-dir",
    "--out": "--out-dir / --out-file / --results-file",
    "--dev-cuts": "--valid-cuts",
    "--device": "--ngpu",
}
# the steps that draw random numbers (training, EM from random starts, k-means, data subsets)
RANDOM_STEPS = {
    "align",
    "fine_tune_kws_sv",
    "probe_ssl",
    "ssl_labels",
    "train_am",
    "train_ssl",
    "train_unit_lm",
}


def _flags(script: Path) -> tuple[dict[str, ast.Call], set[str]]:
    """{flag: its add_argument call}, and the names of the bin helpers the script calls."""
    flags, helpers = {}, set()
    for node in ast.walk(ast.parse(script.read_text())):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
        if name == "add_argument" and node.args and isinstance(node.args[0], ast.Constant):
            flags[node.args[0].value] = node
        elif name == "add_bool" and len(node.args) > 1:
            flags[node.args[1].value] = node
            helpers.add(name)
        elif name in ("add_paths", "make_parser"):  # make_parser(doc, *paths): add_paths
            flags.update({a.value: node for a in node.args[1:] if isinstance(a, ast.Constant)})
            helpers.add(name)
            if any(k.arg == "config" and getattr(k.value, "value", False) for k in node.keywords):
                helpers.add("add_config_options")  # make_parser(..., config=True)
        elif name == "add_config_options":
            helpers.add(name)
    return flags, helpers


def test_the_convention_is_seen_by_this_reader():
    # the reader finds the flags of a script known to have them, else the checks below prove nothing
    flags, helpers = _flags(ROOT / "espnet_distill" / "bin" / "decode_ctc.py")
    assert {"--out-dir", "--ngpu", "--graph-beam"} <= set(flags)
    assert "make_parser" in helpers


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_bin_script_follows_the_flag_convention(script: Path):
    flags, helpers = _flags(script)
    assert "make_parser" in helpers, f"{script.name}: build the parser with bin.make_parser"
    for flag, call in flags.items():
        assert flag not in RETIRED, f"{script.name}: {flag} is spelt {RETIRED[flag]}"
        assert flag == flag.lower() and "_" not in flag, f"{script.name}: {flag}"
        called = getattr(call.func, "attr", None) or getattr(call.func, "id", None)
        own_help = any(k.arg in ("nargs", "help") for k in call.keywords)
        if flag in PATH_FLAGS and not own_help:  # a shared flag says what it means the same way
            assert called in ("add_paths", "make_parser"), (
                f"{script.name}: {flag} with add_paths (its shared help)"
            )
        action = next((k.value for k in call.keywords if k.arg == "action"), None)
        if isinstance(action, ast.Constant):
            assert action.value not in ("store_true", "store_false"), (
                f"{script.name}: {flag} is a boolean: add_bool (true|false, as Kaldi's scripts)"
            )
    if script.stem in RANDOM_STEPS:
        assert "--seed" in flags or "add_config_options" in helpers, f"{script.name}: no --seed"


def _engine_default(option: str) -> str:
    text = (ROOT / "egs" / "TEMPLATE" / "asr1" / "asr.sh").read_text()
    return re.search(rf"^{option}=(\S+)", text, re.M).group(1)


@pytest.mark.parametrize("option", ["beam", "graph_beam", "hclg_beam"])
def test_asr_sh_declares_the_decoding_defaults_of_bin(option):
    assert float(_engine_default(option)) == DECODE_DEFAULTS[option]


def test_asr_sh_knows_the_decoding_methods_of_config():
    text = (ROOT / "egs" / "TEMPLATE" / "asr1" / "asr.sh").read_text()
    known = re.search(r'^known_decode_methods="([^"]+)"', text, re.M).group(1)
    assert tuple(known.split()) == DECODE_METHODS
    dir_methods = re.search(r'^decode_dir_methods="([^"]+)"', text, re.M).group(1)
    assert tuple(dir_methods.split()) == DECODE_DIR_METHODS


def test_config_value_exit_status_says_whether_the_key_is_set(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("base: base.yaml\nmodel:\n  senone_head: {upsample: 4}\n  ctc_weight: 0\n")
    (tmp_path / "base.yaml").write_text("train:\n  seed: 7\n")

    def value(key: str) -> tuple[int, str]:
        status = config_value.main(["--config", str(config), "--key", key])
        return status, capsys.readouterr().out.strip()

    assert value("model.senone_head") == (0, "{upsample: 4}")
    assert value("train.seed") == (0, "7")  # read through the base chain
    assert value("model.ctc_weight") == (1, "0")
    assert value("model.missing") == (1, "null")
    assert config_value.main(["--config", str(tmp_path / "none.yaml"), "--key", "a"]) == 2
    assert "none.yaml" in capsys.readouterr().err
