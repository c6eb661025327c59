"""A keyword and speaker front-end on wav files with an exported KWS/SV system: ``system.onnx``
or ``system.int8.onnx`` (runs on onnxruntime and numpy alone: this process never imports torch)
or the training's ``system.pt`` (PyTorch).

--task kws: one line per file, ``<file>\\t<keyword>\\t<probability>``.
--task sv --enroll A.wav --test B.wav: ``<A>\\t<B>\\t<cosine score>\\t<accept|reject>``, accepted
when the score reaches the system's threshold (the equal-error point of its test trials) or
--threshold.

Files must be 16 kHz mono; another rate, an empty or too short file, or a system without the task
ends with one line naming the file.

Usage:
    python -m espnet_distill.bin.infer --model exp/export/.../system.int8.onnx --task kws a.wav b.wav
    python -m espnet_distill.bin.infer --model system.onnx --task sv --enroll a.wav --test b.wav
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from espnet_distill.bin import make_parser, one_line_errors
from espnet_distill.deploy.runtime import TASK_OUTPUT, OnnxSystem, read_wav
from espnet_distill.ort import SAMPLE_RATE


def open_system(path: Path):  # noqa: ANN201 (an OnnxSystem or a TorchSystem)
    """The system at ``path``: an ``.onnx`` on onnxruntime, else a ``system.pt`` on PyTorch."""
    if not path.is_file():
        raise ValueError(f"{path}: no such model file")
    if path.suffix == ".onnx":
        return OnnxSystem(path)
    from espnet_distill.deploy.export import TorchSystem  # imports torch: only for a .pt

    return TorchSystem(path)


@one_line_errors(ValueError)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--model", type=Path, required=True, help="system.onnx, .int8.onnx or .pt")
    parser.add_argument("--task", choices=sorted(TASK_OUTPUT), required=True)
    parser.add_argument("wavs", nargs="*", type=Path, help="--task kws: the files to label")
    parser.add_argument("--enroll", type=Path, help="--task sv: the enrolment file")
    parser.add_argument("--test", type=Path, help="--task sv: the test file")
    parser.add_argument("--threshold", type=float, help="--task sv: instead of the system's")
    args = parser.parse_args(argv)
    system = open_system(args.model)
    if TASK_OUTPUT[args.task] not in system.outputs:
        raise ValueError(
            f"{args.model}: a {'+'.join(system.meta['tasks'])} system has no {args.task} output"
        )
    if system.meta["sample_rate"] != SAMPLE_RATE:
        raise ValueError(f"{args.model}: a {system.meta['sample_rate']} Hz model")
    min_samples = int(system.meta["min_samples"])
    if args.task == "kws":
        if not args.wavs:
            raise ValueError("--task kws: give the wav files to label")
        for wav in args.wavs:
            probs = system.run("kws", read_wav(wav, min_samples))
            best = int(np.argmax(probs))
            print(f"{wav}\t{system.meta['keywords'][best]}\t{probs[best]:.4f}")
        return 0
    if args.enroll is None or args.test is None:
        raise ValueError("--task sv: give --enroll and --test")
    a, b = (system.run("sv", read_wav(w, min_samples)) for w in (args.enroll, args.test))
    score = float(a @ b)  # the embeddings are length-normalised: their cosine
    threshold = args.threshold if args.threshold is not None else system.meta["sv_threshold"]
    if threshold is None:
        raise ValueError(f"{args.model}: no SV threshold stored: give --threshold")
    decision = "accept" if score >= threshold else "reject"
    print(f"{args.enroll}\t{args.test}\t{score:.4f}\t{decision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
