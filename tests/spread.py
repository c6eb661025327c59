"""Reruns the tests whose assertions rest on training or EM under the variations a new machine
brings, and prints each figure's range beside its threshold (``make test-spread``).

Variations (each a pytest run of SPREAD_TESTS, one after another):

- ``base``: this machine as it is;
- ``threads1``: one thread for OpenMP, OpenBLAS and MKL (CI machines and laptops differ);
- ``kernel``: other BLAS/ATen kernels than this CPU's own: ``OPENBLAS_CORETYPE`` (numpy: GMM EM,
  k-means), ``ATEN_CPU_CAPABILITY`` and ``MKL_ENABLE_INSTRUCTIONS`` (torch training), the way
  another CPU model picks other kernels at run time. Only here, never in CI;
- ``seed<N>``: another seed of the tiny corpora and of the fixtures' training runs
  (``ESPNET_DISTILL_TEST_SEED``).

The tests record their figures with :func:`tests.figures.figure`. Writes the table (markdown) to
``--out-file`` as well. Usage::

    .venv/bin/python tests/spread.py                      # all variations, about 40 min
    .venv/bin/python tests/spread.py --variations base threads1 --out-file /tmp/spread.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.figures import FIGURES_ENV, SEED_ENV  # noqa: E402

SPREAD_TESTS = [
    "tests/test_align.py",
    "tests/test_kd.py::test_text_units_agree_with_the_alignment",
    "tests/test_kd.py::test_unit_lm_learns_a_deterministic_grammar_and_is_causal",
    "tests/test_kd.py::test_unit_lms_beat_a_unigram_on_held_out_text",
    "tests/test_hybrid.py::test_hybrid_model_trains_on_the_alignment_and_decodes_over_hclg",
    "tests/test_train.py::test_training_decreases_loss_and_resumes_from_checkpoint",
    "tests/test_hf_lm.py",
    "tests/test_ssl_probe.py",
    "tests/test_ssl_train.py",
]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def variations(coretype: str, seeds: list[int]) -> dict[str, dict[str, str]]:
    out = {
        "base": {},
        "threads1": ONE_THREAD,
        "kernel": {
            "OPENBLAS_CORETYPE": coretype,
            "ATEN_CPU_CAPABILITY": "default",
            "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
        },
    }
    out.update({f"seed{s}": {SEED_ENV: str(s)} for s in seeds})
    return out


def cpu_model() -> str:
    for line in (
        Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    ):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return os.uname().machine


def blas_kernel(env: dict[str, str]) -> str:
    """The OpenBLAS kernel numpy runs under ``env`` (threadpoolctl)."""
    code = (
        "import numpy, threadpoolctl; print(' '.join(f\"{i['internal_api']}:"
        "{i.get('architecture', '-')}x{i['num_threads']}\" for i in "
        "threadpoolctl.threadpool_info()))"
    )
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return r.stdout.strip() or r.stderr.strip().splitlines()[-1]


def run_variation(name: str, extra: dict[str, str], tests: list[str], work: Path) -> dict:
    figures = work / f"{name}.jsonl"
    env = {**os.environ, **extra, FIGURES_ENV: str(figures)}
    env.pop("PYTEST_ADDOPTS", None)
    kernel = blas_kernel(env)
    print(f"[spread] {name}: {extra or 'as the machine is'} ({kernel})", flush=True)
    t0 = time.perf_counter()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--basetemp",
            str(work / name),
            *tests,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    summary = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
    print(f"[spread] {name}: {summary} in {time.perf_counter() - t0:.0f} s", flush=True)
    if r.returncode != 0:
        print(r.stdout[-4000:], file=sys.stderr)
    rows = [json.loads(ln) for ln in figures.read_text().splitlines()] if figures.exists() else []
    return {"kernel": kernel, "summary": summary, "ok": r.returncode == 0, "figures": rows}


def table(results: dict[str, dict]) -> str:
    names = list(results)
    meta: dict[str, dict] = {}
    values: dict[str, dict[str, list[float]]] = {}
    for var, res in results.items():
        for row in res["figures"]:
            meta.setdefault(row["name"], row)
            values.setdefault(row["name"], {}).setdefault(var, []).append(row["value"])
    lines = [
        "|figure|" + "|".join(names) + "|min-max|asserted|broken implementation|",
        "|---" * (len(names) + 4) + "|",
    ]
    for fig, by_var in values.items():
        seen = [v for vs in by_var.values() for v in vs]
        cells = ["/".join(f"{v:.4g}" for v in by_var.get(var, [])) or "-" for var in names]
        lines.append(
            f"|{fig}|" + "|".join(cells) + f"|{min(seen):.4g}-{max(seen):.4g}"
            f"|{meta[fig]['threshold']}|{meta[fig]['broken']}|"
        )
    lines += ["", "|variation|BLAS/OpenMP|pytest|", "|---|---|---|"]
    lines += [f"|{v}|{r['kernel']}|{r['summary']}|" for v, r in results.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variations", nargs="+", help="names to run (default: all)")
    parser.add_argument(
        "--coretype",
        default="SandyBridge",
        help="OPENBLAS_CORETYPE of the kernel variation (one this CPU runs)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tests", nargs="+", default=SPREAD_TESTS)
    parser.add_argument("--out-file", type=Path, default=REPO / "docs" / "test_spread.md")
    args = parser.parse_args(argv)
    all_vars = variations(args.coretype, args.seeds)
    chosen = args.variations or list(all_vars)
    unknown = set(chosen) - set(all_vars)
    if unknown:
        parser.error(f"unknown variations {sorted(unknown)} (known: {' '.join(all_vars)})")
    with tempfile.TemporaryDirectory(prefix="spread_") as tmp:
        results = {v: run_variation(v, all_vars[v], args.tests, Path(tmp)) for v in chosen}
    text = table(results)
    header = (
        "# Spread of the figures the tests assert on\n\n<!-- Generated by tests/spread.py; "
        f"do not edit. -->\n\nMachine: {cpu_model()}, {os.cpu_count()} CPUs. "
        f"Tests: {' '.join(args.tests)}\n\n"
    )
    args.out_file.write_text(header + text)
    print(text)
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
