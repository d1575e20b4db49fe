"""GPU figures for prmflow's ``hf`` sampler backend and its PRM trainer, in one device-agnostic run.

One command for a machine with a GPU but without vLLM, Beam or DuckDB (this script and what it imports
need only torch, transformers and prmflow's pure modules; tests/prm/test_device_imports.py pins that).
The data comes from ``bench/prm.py --prepare DIR`` run elsewhere. Parts, in order of priority:

a. environment: torch / transformers versions, the device, CPU cores;
b. the hf sampler on ``builtin:arith-tiny``, the same arith prompts x 4 samples with fixed seeds on the
   device and on the CPU (all cores): generated tokens/s each, their ratio, and how many completions
   are token-identical (each row's random stream is on the host, so the devices differ only where
   their logits differ enough to move a draw across a token boundary);
c. the five PRMs of bench/prm.md trained and evaluated on the device with the CPU table's
   hyperparameters (8 epochs, lr 1e-3, batch 16, seed 0; bf16 autocast on a GPU);
d. training throughput: the gold PRM for one epoch on the CPU (all cores) vs the device;
e. the hf sampler on RANDOM-INIT weights of SmolLM2-135M's shape (config + tokenizer only; throughput,
   not quality), float32 and bfloat16, two batch sizes;
f. the PRM trainer with that random-init body as base, one epoch on the gold export: steps/s, tokens/s,
   peak GPU memory;
g. budget permitting: gold and the best pseudo-label source for 32 epochs, to see whether issue 12's
   goals move with training budget;
h. only when asked for (``--parts``): torch.profiler over the hf sampler and one training epoch on the
   random-init SmolLM2 shape, the ops with the most host and device time, and the device's busy share.

``--parts bh`` runs only those parts (a is always run).

Each part prints a timestamped line, and gpu.md / gpu.json are rewritten after each part (and after
each PRM), so a run cut short still leaves what it measured. A part that fails is recorded with its
error and the run goes on. ``--budget-s`` skips a part whose estimate no longer fits. Without a GPU
everything runs on the CPU; ``--tiny`` shrinks every size so that finishes in minutes (a smoke test).

    PYTHONPATH=. python bench/gpu.py --prepared .gpu/prepared --out OUT [--budget-s 400] [--tiny]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/prm.py, when imported from elsewhere
import prm as prm_bench  # noqa: E402

from prmflow.domains.arith import format_prompt, generate_problems  # noqa: E402

SMOLLM2_CONFIG = Path(__file__).resolve().parents[1] / ".gpu" / "smollm2-135m-config"  # git-ignored, carried
SAMPLES, SAMPLE_SEED, PROBLEM_SEED = 4, 1000, 11  # hf sampler parts: samples per prompt, request seeds, problems
CPU_REFERENCE = prm_bench.RESULTS


@dataclass(frozen=True)
class Sizes:
    """Everything a part's cost depends on; ``FULL`` is sized for one H200 in well under 7 minutes."""

    arith_prompts: int
    arith_max_tokens: int
    arith_batch_rows: int
    smol_prompts: tuple[int, ...]
    smol_max_tokens: int
    smol_layers: int | None  # None: SmolLM2-135M's 30
    epochs: int
    long_epochs: int
    subset: tuple[int, int, int] | None  # (train rows, validation rows, eval problems) or the whole prepared DIR


FULL = Sizes(arith_prompts=64, arith_max_tokens=96, arith_batch_rows=64, smol_prompts=(16, 64), smol_max_tokens=128,
             smol_layers=None, epochs=prm_bench.EPOCHS, long_epochs=32, subset=None)
TINY = Sizes(arith_prompts=4, arith_max_tokens=16, arith_batch_rows=8, smol_prompts=(2,), smol_max_tokens=8,
             smol_layers=2, epochs=1, long_epochs=2, subset=(48, 16, 4))


class Report:
    """The run's results, rewritten to OUT/gpu.json and OUT/gpu.md after every change; the timestamped
    progress lines also go to OUT/gpu.log."""

    def __init__(self, out: Path, budget_s: float) -> None:
        self.out = out
        self.started = time.monotonic()
        self.budget_s = budget_s
        self.data: dict[str, object] = {}
        self.sections: dict[str, list[str]] = {}
        out.mkdir(parents=True, exist_ok=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.budget_s - self.elapsed()

    def log(self, message: str) -> None:
        line = f"[gpu {time.strftime('%H:%M:%S')} +{self.elapsed():6.1f}s] {message}"
        print(line, flush=True)
        with (self.out / "gpu.log").open("a", encoding="utf-8") as f:
            f.write(line + "\n")

    def put(self, key: str, data: object, lines: list[str]) -> None:
        self.data[key] = data
        self.sections[key] = lines
        self.data["elapsed_s"] = round(self.elapsed(), 1)
        (self.out / "gpu.json").write_text(json.dumps(self.data, indent=2, default=str) + "\n", encoding="utf-8")
        md = [f"# prmflow GPU figures ({time.strftime('%Y-%m-%d %H:%M')}, {self.elapsed():.0f} s)", ""]
        for section in self.sections.values():
            md += [*section, ""]
        (self.out / "gpu.md").write_text("\n".join(md), encoding="utf-8")

    def part(self, key: str, title: str, estimate_s: float, body: Callable[[], tuple[object, list[str]]]) -> object:
        """Run one part unless its estimate exceeds the budget left; record its result, or its error."""
        if estimate_s > self.left():
            self.log(f"{title}: skipped ({estimate_s:.0f} s estimated, {self.left():.0f} s of budget left)")
            self.put(key, {"skipped": f"budget: {estimate_s:.0f} s estimated, {self.left():.0f} s left"},
                     [f"## {title}", "", f"Skipped: {estimate_s:.0f} s estimated, {self.left():.0f} s of budget left."])
            return None
        self.log(f"{title}: start")
        started = time.monotonic()
        try:
            data, lines = body()
        except Exception as e:  # noqa: BLE001 - one failed part must not cost the others
            tb = traceback.format_exc()
            self.log(f"{title}: FAILED {type(e).__name__}: {e}\n{tb}")
            self.put(key, {"error": f"{type(e).__name__}: {e}", "traceback": tb[-3000:]},
                     [f"## {title}", "", f"FAILED: `{type(e).__name__}: {e}`"])
            return None
        seconds = time.monotonic() - started
        if isinstance(data, dict):
            data["part_seconds"] = round(seconds, 1)
        self.put(key, data, [f"## {title}", "", *lines, "", f"_(part: {seconds:.0f} s)_"])
        self.log(f"{title}: done in {seconds:.1f} s")
        return data


# ------------------------------------------------------------------------------------------ helpers

def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def arith_requests(count: int, max_tokens: int) -> list:
    """``count`` arith prompts (PROMPT_TEMPLATE) x SAMPLES samples at temperature 1, fixed request seeds."""
    from prmflow.samplers import SamplingRequest

    return [SamplingRequest(f"arith-{i}", format_prompt(p), n=SAMPLES, temperature=1.0, max_tokens=max_tokens,
                            seed=SAMPLE_SEED + i)
            for i, p in enumerate(generate_problems(count, PROBLEM_SEED))]


def hf_generate(model: str, device: str, dtype: str, batch_rows: int, runs: list[list]) -> list[dict]:
    """Load the hf sampler once, warm it up, then time ``generate`` on each request list in ``runs``.

    Generated tokens are the completions' ``token_ids``: cut after EOS (EOS kept, as vLLM does), a stop
    string or max_tokens. ``generate`` keeps padding a batch's finished rows until its last row ends;
    those steps cost time but are not counted.
    """
    from prmflow.samplers import HFSampler, SamplerConfig

    config = SamplerConfig(backend="hf", model=model, device=device, dtype=dtype, batch_size=batch_rows, seed=0)
    out = []
    with HFSampler(config) as sampler:
        sampler.generate(runs[0][:2])  # warm-up: CUDA context, kernels, allocator; per-row seeds, so no side effect
        for requests in runs:
            sync(device)
            started = time.perf_counter()
            results = sampler.generate(requests)
            sync(device)
            seconds = time.perf_counter() - started
            completions = [c for r in results for c in r.completions]
            tokens = sum(len(c.token_ids) for c in completions)
            out.append({
                "model": model, "device": device, "dtype": dtype, "prompts": len(requests), "rows": len(completions),
                "batch_rows": batch_rows, "max_tokens": requests[0].max_tokens, "generated_tokens": tokens,
                "seconds": round(seconds, 3), "tokens_per_s": round(tokens / seconds, 1),
                "finish_reasons": dict(Counter(c.finish_reason for c in completions)),
                "errors": sum(r.error is not None for r in results),
                "token_ids": [c.token_ids for c in completions],
            })
    return out


def public(run: dict) -> dict:
    return {k: v for k, v in run.items() if k != "token_ids"}


def random_init_model(config_dir: Path, out: Path, layers: int | None, device: str,
                      seed: int = 0) -> tuple[Path, int]:
    """A causal LM of ``config_dir``'s architecture with seeded random weights, saved to ``out`` with
    the tokenizer files, so the sampler and trainer load it as a local model directory; also returns its
    parameter count. Initialised on ``device`` (a GPU draws 135 M normals far faster than the CPU)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(config_dir)
    if layers is not None:
        config.num_hidden_layers = layers
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.to("cpu").save_pretrained(out)
    for f in config_dir.iterdir():
        if f.name != "config.json":  # tokenizer, chat template, generation config
            shutil.copy(f, out / f.name)
    params = sum(p.numel() for p in model.parameters())
    del model
    return out, params


def train_tokens(data: Path, base: str) -> int:
    """Tokens (no padding) in one epoch over an export's train split, encoded as the bench's trainer config
    encodes them."""
    from prmflow.models import resolve_model_path
    from prmflow.prm import data as prm_data
    from prmflow.prm.encoding import encode_many
    from prmflow.prm.model import load_tokenizer

    config = prm_bench.train_config(data, data / "unused", base=base)
    examples = prm_data.load(config.train_paths, "train", config.label_column, config.use_weights)
    tokenizer = load_tokenizer(resolve_model_path(base))
    encoded = encode_many(tokenizer, config.step_format, [(e.prompt, e.steps) for e in examples], config.max_length)
    return sum(len(e.input_ids) for e in encoded)


def shrink_prepared(src: Path, dst: Path, train_rows: int, val_rows: int, eval_problems: int) -> Path:
    """A copy of a prepared DIR cut to its first rows and evaluation problems (``--tiny``)."""
    dst.mkdir(parents=True)
    meta = json.loads((src / prm_bench.PREPARED_JSON).read_text(encoding="utf-8"))
    meta["subset"] = f"--tiny: the first {train_rows} training and {val_rows} validation rows of each export"
    (dst / prm_bench.PREPARED_JSON).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    problems = json.loads((src / prm_bench.EVAL_JSON).read_text(encoding="utf-8"))
    keep = dict(list(problems.items())[:eval_problems])
    (dst / prm_bench.EVAL_JSON).write_text(json.dumps(keep) + "\n", encoding="utf-8")
    for source in prm_bench.SOURCES:
        (dst / source.slug).mkdir()
        for split, rows in (("train", train_rows), ("validation", val_rows)):
            lines = (src / source.slug / f"{split}.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
            (dst / source.slug / f"{split}.jsonl").write_text("".join(lines[:rows]), encoding="utf-8")
    return dst


# ------------------------------------------------------------------------------------------- parts

def environment(device: str, threads: int) -> tuple[dict, list[str]]:
    import torch
    import transformers

    data = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "cuda": torch.version.cuda, "device": device, "device_name": prm_bench.device_name(device),
            "cpu_count": os.cpu_count(), "torch_threads": threads, "machine": platform.machine()}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        data["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        data["bf16"] = torch.cuda.is_bf16_supported()
    line = (f"python {data['python']}, torch {data['torch']} (CUDA {data['cuda']}), transformers "
            f"{data['transformers']}; device {device}: {data['device_name']}"
            + (f" ({data['gpu_memory_gib']} GiB)" if "gpu_memory_gib" in data else "")
            + f"; {data['cpu_count']} CPU cores, {threads} torch threads on the CPU side.")
    return data, [line]


def sampler_arith(device: str, sizes: Sizes) -> tuple[dict, list[str]]:
    requests = arith_requests(sizes.arith_prompts, sizes.arith_max_tokens)
    # both devices even when the device is the CPU (the identical fraction then checks reproducibility);
    # each timed twice after the warm-up, the faster kept (same seeds, so the repeat must match)
    timed = [hf_generate("builtin:arith-tiny", d, "float32", sizes.arith_batch_rows, [requests, requests])
             for d in (device, "cpu")]
    repeatable = all(first["token_ids"] == second["token_ids"] for first, second in timed)
    dev, cpu = (min(pair, key=lambda r: r["seconds"]) for pair in timed)
    same = sum(a == b for a, b in zip(dev["token_ids"], cpu["token_ids"], strict=True))
    data = {"runs": [public(dev), public(cpu)], "identical_completions": same, "rows": dev["rows"],
            "identical_fraction": round(same / dev["rows"], 3),
            "speedup": round(dev["tokens_per_s"] / cpu["tokens_per_s"], 2), "repeats_identical": repeatable}
    lines = [f"`builtin:arith-tiny` (float32), {sizes.arith_prompts} arith prompts x {SAMPLES} samples, temperature 1, "
             f"max_tokens {sizes.arith_max_tokens}, {sizes.arith_batch_rows} rows per generate batch, request seeds "
             f"{SAMPLE_SEED}+i; after a warm-up, the faster of two timed runs per device.", "",
             "| device | generated tokens | s | tokens/s | finish reasons |", "|---|---|---|---|---|"]
    lines += [f"| {r['device']} | {r['generated_tokens']} | {r['seconds']:.2f} | {r['tokens_per_s']:.0f} | "
              f"{r['finish_reasons']} |" for r in (dev, cpu)]
    lines += ["", f"{device} / cpu tokens/s: {data['speedup']}x. Identical completions (same seeds): {same} of "
              f"{dev['rows']} ({data['identical_fraction']:.1%}); "
              "the random draws are the same on both (host-side streams): a difference comes from the logits. "
              "The second timed run on each device repeated "
              f"the first token for token: {'yes' if repeatable else 'NO'}."]
    return data, lines


def sampler_smollm2(model_dir: Path, params: int, device: str, sizes: Sizes) -> tuple[dict, list[str]]:
    runs = []
    biggest = max(sizes.smol_prompts) * SAMPLES
    for dtype in ("float32", "bfloat16"):
        # each size twice, the faster kept: a first call at a new shape pays one-off kernel and allocator costs
        batches = [arith_requests(n, sizes.smol_max_tokens) for n in sizes.smol_prompts for _ in range(2)]
        timed = hf_generate(str(model_dir), device, dtype, biggest, batches)
        runs += [min(timed[i:i + 2], key=lambda r: r["seconds"]) for i in range(0, len(timed), 2)]
    data = {"params": params, "runs": [public(r) for r in runs]}
    lines = [f"**Random-init weights** of SmolLM2-135M's shape ({params / 1e6:.0f} M parameters"
             + (f", cut to {sizes.smol_layers} layers" if sizes.smol_layers else "")
             + f"; seeded, built from its config.json + tokenizer): throughput only. Arith prompts x {SAMPLES} "
             f"samples, max_tokens {sizes.smol_max_tokens}, one generate batch per run, on {device}; each size timed "
             "twice after a warm-up, the faster kept.", "",
             "| dtype | prompts | rows | generated tokens | s | tokens/s | finish reasons |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['dtype']} | {r['prompts']} | {r['rows']} | {r['generated_tokens']} | {r['seconds']:.2f} | "
              f"{r['tokens_per_s']:.0f} | {r['finish_reasons']} |" for r in runs]
    return data, lines


def prm_table(prepared, work: Path, device: str, epochs: int, sources, report: Report, key: str,
              title: str) -> tuple[dict, list[str]]:
    """Train + evaluate ``sources`` on ``device``; the partial table is recorded after every PRM."""
    trained, results, data = {}, {}, {}
    base = prm_bench.baselines(prepared.problems)
    head = (prm_bench.header(prepared.meta, prepared.problems, base=prm_bench.BASE_MODEL, epochs=epochs,
                             lr=prm_bench.LR)
            + f" On {prm_bench.device_name(device)} (trainer dtype auto: bf16 autocast on a GPU, float32 on CPU).")
    lines: list[str] = []
    for source in sources:
        trained.update(prm_bench.train_sources(prepared, work / f"epochs-{epochs}", [source], epochs=epochs,
                                               lr=prm_bench.LR, device=device))
        results[source.row] = prm_bench.evaluate(trained[source.row].path, prepared.problems, device)
        lines = [head, "", *prm_bench.results_table(results, trained, base)]
        data = {"results": results, "trained": {k: dataclasses.asdict(t) for k, t in trained.items()},
                "baselines": base}
        report.put(key, data, [f"## {title}", "", *lines, "", "_(in progress)_"])
        report.log(f"{title}: {source.row} done")
    return data, lines


def train_throughput(prepared, work: Path, device: str, threads: int) -> tuple[dict, list[str]]:
    gold = prm_bench.SOURCES[0]
    tokens = train_tokens(prepared.export(gold), prm_bench.BASE_MODEL)
    runs = {}
    for d in dict.fromkeys(("cpu", device)):
        t = prm_bench.train_prm(prepared.export(gold), work / f"prm-throughput-{d}", use_weights=False, epochs=1,
                                lr=prm_bench.LR, device=d, threads=threads)
        runs[d] = {**dataclasses.asdict(t), "steps_per_s": round(t.steps_per_s, 2),
                   "tokens_per_s": round(tokens / t.step_seconds, 0)}
    ratio = runs[device]["steps_per_s"] / runs["cpu"]["steps_per_s"]
    data = {"runs": runs, "tokens_per_epoch": tokens, "speedup": round(ratio, 2)}
    lines = [f"The gold PRM on `builtin:arith-tiny`, 1 epoch ({tokens} tokens), batch 16; the CPU with {threads} "
             "torch threads (float32), the device with the trainer's default dtype.", "",
             "| device | steps | step s | steps/s | tokens/s | whole train() s |", "|---|---|---|---|---|---|"]
    lines += [f"| {d} | {r['steps']} | {r['step_seconds']:.2f} | {r['steps_per_s']:.1f} | {r['tokens_per_s']:.0f} | "
              f"{r['seconds']:.1f} |" for d, r in runs.items()]
    lines += ["", f"{device} / cpu train steps/s: {ratio:.2f}x."]
    return data, lines


def train_smollm2(prepared, model_dir: Path, params: int, work: Path, device: str) -> tuple[dict, list[str]]:
    import torch

    gold = prm_bench.SOURCES[0]
    tokens = train_tokens(prepared.export(gold), str(model_dir))
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t = prm_bench.train_prm(prepared.export(gold), work / "prm-smollm2", use_weights=False, epochs=1, lr=prm_bench.LR,
                            device=device, base=str(model_dir))
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    data = {**dataclasses.asdict(t), "params": params, "tokens_per_epoch": tokens, "steps_per_s": round(t.steps_per_s, 2),
            "tokens_per_s": round(tokens / t.step_seconds, 0), "peak_gpu_gib": peak and round(peak, 2)}
    lines = [f"PRM trainer, base = **random-init** SmolLM2-135M shape ({params / 1e6:.0f} M parameters), gold export, "
             f"1 epoch, batch 16, max_length {prm_bench.MAX_LENGTH}, on {device}: {t.steps} steps in "
             f"{t.step_seconds:.2f} s = {t.steps_per_s:.2f} steps/s, {data['tokens_per_s']:.0f} tokens/s ({tokens} "
             f"tokens an epoch); whole train() {t.seconds:.1f} s"
             + (f"; peak GPU memory {peak:.2f} GiB." if peak is not None else ".")]
    return data, lines


def _top_ops(prof, attr: str, n: int = 12) -> list[str]:
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, attr, 0) or 0, reverse=True)[:n]
    lines = ["| op | calls | self host ms | self device ms |", "|---|---|---|---|"]
    lines += [f"| `{e.key[:60]}` | {e.count} | {e.self_cpu_time_total / 1e3:.1f} | "
              f"{(getattr(e, 'self_device_time_total', 0) or 0) / 1e3:.1f} |" for e in events]
    return lines


def profiled(device: str, body: Callable[[], object]) -> tuple[object, float, float, float]:
    """(the profiler, wall s, summed self host s, summed self device s) of ``body()``."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as prof:
        started = time.perf_counter()
        body()
        sync(device)
        wall = time.perf_counter() - started
    events = prof.key_averages()
    host = sum(e.self_cpu_time_total for e in events) / 1e6
    dev = sum((getattr(e, "self_device_time_total", 0) or 0) for e in events) / 1e6
    return prof, wall, host, dev


def profile_parts(source_dir: Path, model_dir: Path, work: Path, device: str, sizes: Sizes) -> tuple[dict, list[str]]:
    # small on purpose: at 16 prompts x 64 tokens and 10 training steps the profiler outran a 250 s
    # budget on an H200 (it records every op of 30 layers per token); these sizes are not yet tried there
    small = shrink_prepared(source_dir, work / "profile-prepared", 48, 16, 1)  # 3 training steps
    gold = prm_bench.SOURCES[0]
    requests = arith_requests(2, 16)
    data, lines = {}, []
    jobs = [
        ("sampler float32", lambda: hf_generate(str(model_dir), device, "float32", len(requests) * SAMPLES,
                                                [requests])),
        ("sampler bfloat16", lambda: hf_generate(str(model_dir), device, "bfloat16", len(requests) * SAMPLES,
                                                 [requests])),
        ("trainer, 1 epoch of 48 rows", lambda: prm_bench.train_prm(
            small / gold.slug, work / "prm-profile", use_weights=False, epochs=1, lr=prm_bench.LR, device=device,
            base=str(model_dir))),
    ]
    for name, body in jobs:
        prof, wall, host, dev = profiled(device, body)
        data[name] = {"wall_s": round(wall, 2), "self_host_s": round(host, 2), "self_device_s": round(dev, 2)}
        lines += [f"### {name} (random-init SmolLM2-135M shape; includes loading the model)", "",
                  f"wall {wall:.2f} s; summed self host time {host:.2f} s; summed self device time {dev:.2f} s "
                  f"(device busy {dev / wall:.0%} of the wall).", "", "By self host time:", "",
                  *_top_ops(prof, "self_cpu_time_total"), ""]
        if device == "cuda":
            lines += ["By self device time:", "", *_top_ops(prof, "self_device_time_total"), ""]
    return data, lines


# -------------------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prepared", required=True, help="a DIR written by bench/prm.py --prepare")
    ap.add_argument("--out", required=True, help="where gpu.md and gpu.json go")
    ap.add_argument("--budget-s", type=float, default=400, help="skip parts whose estimate no longer fits")
    ap.add_argument("--tiny", action="store_true", help="very small sizes: a smoke test on any machine")
    ap.add_argument("--parts", default="bcdefg", help="the parts to run, by letter (a always; h only when named)")
    ap.add_argument("--smollm2-config", default=str(SMOLLM2_CONFIG),
                    help="SmolLM2-135M's config.json + tokenizer files (no weights)")
    args = ap.parse_args(argv)

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars would crowd the timestamped lines
    sizes = TINY if args.tiny else FULL
    device = "cuda" if torch.cuda.is_available() else "cpu"
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    report = Report(Path(args.out), args.budget_s)
    report.log(f"device {device}, sizes {'tiny' if args.tiny else 'full'}, budget {args.budget_s:.0f} s")
    report.part("environment", "a. Environment", 0, lambda: environment(device, threads))
    wanted = set(args.parts)

    with tempfile.TemporaryDirectory(prefix="prmflow-gpu-") as tmp:
        work = Path(tmp)
        source_dir = Path(args.prepared)
        if sizes.subset:
            source_dir = shrink_prepared(source_dir, work / "prepared", *sizes.subset)
        prepared = prm_bench.load_prepared(source_dir)

        if "b" in wanted:
            report.part("sampler_arith", "b. hf sampler, builtin:arith-tiny: device vs CPU", 30,
                        lambda: sampler_arith(device, sizes))
        table = None
        if "c" in wanted:
            table = report.part("prm", f"c. PRMs on {device}, {sizes.epochs} epochs (bench/prm.md's hyperparameters)",
                                120, lambda: prm_table(prepared, work, device, sizes.epochs, prm_bench.SOURCES, report,
                                                       "prm", f"c. PRMs on {device}, {sizes.epochs} epochs"))
            if CPU_REFERENCE.is_file():
                report.put("cpu_reference", {"path": str(CPU_REFERENCE)},
                           ["## CPU reference (bench/results/prm.md)", "", CPU_REFERENCE.read_text(encoding="utf-8")])
        if "d" in wanted:
            report.part("train_throughput", "d. PRM training throughput, 1 epoch: CPU vs device", 45,
                        lambda: train_throughput(prepared, work, device, threads))

        smol: dict = {}

        def build() -> tuple[dict, list[str]]:
            path, params = random_init_model(Path(args.smollm2_config), work / "smollm2-random", sizes.smol_layers,
                                             device)
            smol.update(path=path, params=params)
            return {"params": params}, [f"Built and saved in this part: {params / 1e6:.1f} M parameters."]

        if wanted & set("efh"):
            report.part("smollm2_build", "e0. Random-init SmolLM2-135M-shape model", 20, build)
        if smol and "e" in wanted:
            report.part("sampler_smollm2", "e. hf sampler, random-init SmolLM2-135M shape", 60,
                        lambda: sampler_smollm2(smol["path"], smol["params"], device, sizes))
        if smol and "f" in wanted:
            report.part("train_smollm2", "f. PRM trainer, random-init SmolLM2-135M-shape base", 40,
                        lambda: train_smollm2(prepared, smol["path"], smol["params"], work, device))

        if table and "results" in table and "g" in wanted:
            trained = table["trained"]
            best = prm_bench.best_pseudo(table["results"])
            longer = [s for s in prm_bench.SOURCES if s.row in (prm_bench.GOLD, best)]
            scale = sizes.long_epochs / sizes.epochs
            estimate = sum(trained[s.row]["seconds"] for s in longer) * scale + 10
            report.part("prm_long", f"g. Gold and the best pseudo-label PRM, {sizes.long_epochs} epochs", estimate,
                        lambda: prm_table(prepared, work, device, sizes.long_epochs, longer, report, "prm_long",
                                          f"g. {sizes.long_epochs} epochs"))
        if smol and "h" in wanted:
            report.part("profile", "h. Where the time goes: torch.profiler, random-init SmolLM2-135M shape", 60,
                        lambda: profile_parts(source_dir, smol["path"], work, device, sizes))
    report.log(f"all parts done; results in {report.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
