"""Experiment configs: YAML with ``base:`` inheritance, recursive merge, ``a.b=value`` overrides,
and the project-wide lists that several stages read (the decoding methods)."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

# stage 8's decoding methods, in the order RESULTS.md lists them
DECODE_METHODS = ("greedy", "beam_lm", "tlg", "hclg")
# stage 8's decode dir suffixes: a WFST method by kaldi-decoder (its own name), by k2 (``_k2``), and
# k2's TLG lattices rescored with the larger word n-gram (``_k2_rescore``; HCLG lattices, not
# determinized, hold millions of arcs an utterance: the recipe does not rescore them)
DECODE_DIR_METHODS = ("greedy", "beam_lm", "tlg", "tlg_k2", "tlg_k2_rescore", "hclg", "hclg_k2")
# the searches' defaults: decode_ctc / decode_hclg take them, and asr.sh declares the same values
# (tests/test_bad_input.py checks); graph_beam 12 vs 16: WER +0.1, search 4.5x faster
# (bench/hclg_rtf.py); hclg_beam 11 is 2x faster than 13
DECODE_DEFAULTS = {"beam": 10, "graph_beam": 12.0, "hclg_beam": 13.0, "max_active": 7000}


def merge_config(base: dict, override: dict) -> dict:
    """Recursive dict update (override wins)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: Path, _seen: tuple[Path, ...] = ()) -> dict:
    """A YAML config; a top-level ``base: other.yaml`` (relative to this file) is read first and
    this file's keys override it, so ablation configs state only what they change."""
    path = path.resolve()
    if path in _seen:
        raise ValueError(f"{path}: 'base' chain loops ({' -> '.join(p.name for p in _seen)})")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a mapping of config sections")
    base = config.pop("base", None)
    if base is None:
        return config
    return merge_config(load_config(path.parent / base, (*_seen, path)), config)


def apply_overrides(config: dict, overrides: list[str]) -> dict:
    """``train.max_epochs=3`` style overrides; values are parsed as YAML."""
    config = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override '{item}' is not of the form section.key=value")
        dotted, value = item.split("=", 1)
        node = config
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    return config


# Stage 8's decoders; a decode dir is named decode_<set>_<method> (egs/TEMPLATE/asr1/asr.sh).
