"""A value of a YAML config, for the recipes' shell logic (e.g. asr1 stage 8: does the trained
model have a senone head?). Prints the value as YAML; the exit status is 0 when it is set (not
missing, null, false or empty), 1 when it is not, 2 when the config cannot be read.

Usage:
    python -m espnet_distill.bin.config_value --config exp/am/config.yaml --key model.senone_head
"""

from __future__ import annotations

import sys

import yaml

from espnet_distill.bin import make_parser
from espnet_distill.config import load_config


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, "--config")
    parser.add_argument("--key", required=True, help="dotted path, e.g. model.senone_head")
    args = parser.parse_args(argv)
    try:
        node = load_config(args.config)
    except (OSError, ValueError) as err:
        print(f"config_value: {err}", file=sys.stderr)
        return 2
    for part in args.key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    print(yaml.safe_dump(node, default_flow_style=True).removesuffix("...\n").strip())
    return 0 if node else 1


if __name__ == "__main__":
    sys.exit(main())
