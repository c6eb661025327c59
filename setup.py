"""espnet_distill: Kaldi/ESPnet-style ASR recipes for knowledge-distillation research."""

from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
requirements = [
    line.split("#")[0].strip()
    for line in (here / "requirements" / "base.txt").read_text().splitlines()
    if line.split("#")[0].strip() and not line.startswith(("pytest", "ruff"))
]

setup(
    name="espnet_distill",
    version="0.1.0",
    description="Knowledge-distillation ASR recipes (hierarchical cross-modal KD, HuBERT distillation)",
    long_description=(here / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["espnet_distill", "espnet_distill.*"]),
    install_requires=requirements,
    license="Apache-2.0",
)
