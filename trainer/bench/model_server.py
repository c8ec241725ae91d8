"""Tokens per second of the development model server, one request at a time and batched.

    npm run bench:model-server -- [--model NAME=DIR ...] [--max-tokens 128] [--prompt-tokens 120]
                                  [--sequential 4] [--concurrency 16,32] [--threads 1] [--rounds 1]

Without `--model` it builds two random-weight models in a temporary folder (nothing downloaded):
`tiny` (`make_tiny_model`: hidden 128, 2 layers) and `world-shaped` (the neural world's likely shape:
hidden 256, 4 layers, 4 heads, 2 KV heads, intermediate 704, the tiny model's 2,048-token vocabulary).

For each model it starts `python -m spark_trainer serve-model` in its own process and drives it
over HTTP as stage 1 does, in one run: `--sequential` requests one after the other with n = 1 and
with n = 8, then `--concurrency` requests of n = 8 sent at once. Every request has its own prompt
(GSM8K questions, about `--prompt-tokens` tokens) and seed, temperature 1, `max_tokens` as given;
random-weight models seldom stop, so almost every sample runs to `max_tokens`. `--rounds N` repeats
the cases N times, alternating, and reports each case's median, so a busy machine slows all alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from spark_trainer.local_s3 import free_port
from spark_trainer.models import load_tokenizer
from spark_trainer.tiny_model import default_datasets_dir, make_tiny_model

# What stage 1 sends: several samples per request, many requests in flight.
SAMPLES_PER_REQUEST = 8


def make_world_shaped_model(directory: Path, seed: int = 0) -> Path:
    """A random-weight Qwen2 model of the neural world's likely shape, with the tiny model's tokenizer."""
    make_tiny_model(directory, seed=seed)
    tiny = Qwen2Config.from_pretrained(directory)
    config = Qwen2Config(
        vocab_size=tiny.vocab_size,
        hidden_size=256,
        intermediate_size=704,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tiny.bos_token_id,
        eos_token_id=tiny.eos_token_id,
        pad_token_id=tiny.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tiny.eos_token_id
    model.generation_config.pad_token_id = tiny.pad_token_id
    model.save_pretrained(directory, safe_serialization=True)
    return directory


def prompts(model_dir: Path, count: int, tokens: int) -> list[str]:
    """`count` different prompts of about `tokens` tokens each: GSM8K questions run together."""
    tokenizer = load_tokenizer(model_dir)
    path = default_datasets_dir() / "gsm8k" / "train.jsonl"
    questions = (
        [json.loads(line)["question"] for line in path.open() if line.strip()][: count * 20]
        if path.is_file()
        else [
            f"Start with {i}, add 25, times 3, minus 48, divide by 6. What is the result?"
            for i in range(count * 20)
        ]
    )
    out, at = [], 0
    for _ in range(count):
        text = ""
        while len(tokenizer(text, add_special_tokens=False)["input_ids"]) < tokens:
            text += questions[at % len(questions)] + " "
            at += 1
        out.append(text.strip())
    return out


class Server:
    """`serve-model` in its own process, as a user starts it."""

    def __init__(self, name: str, model_dir: Path, threads: int, extra: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "spark_trainer", "serve-model", "--port", str(self.port)]
        command += ["--model", f"{name}={model_dir}", "--threads", str(threads), "--device", "cpu", *extra]
        self.process = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"serve-model for {model_dir} did not start")
            time.sleep(0.2)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def run_case(
    server: Server, model: str, texts: list[str], n: int, concurrent: bool, max_tokens: int
) -> tuple[int, float]:
    """Completion tokens and wall seconds for one request per text."""

    def one(index_text: tuple[int, str]) -> int:
        index, text = index_text
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": text}],
            "n": n,
            "temperature": 1.0,
            "seed": index,
            "max_tokens": max_tokens,
        }
        response = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=3600)
        response.raise_for_status()
        return int(response.json()["usage"]["completion_tokens"])

    start = time.perf_counter()
    if concurrent:
        with ThreadPoolExecutor(len(texts)) as pool:
            tokens = sum(pool.map(one, enumerate(texts)))
    else:
        tokens = sum(one(item) for item in enumerate(texts))
    return tokens, time.perf_counter() - start


def bench_model(name: str, model_dir: Path, args: argparse.Namespace) -> list[list[str]]:
    extra = []
    if args.max_batch_size is not None:
        extra += ["--max-batch-size", str(args.max_batch_size)]
    if args.max_batch_tokens is not None:
        extra += ["--max-batch-tokens", str(args.max_batch_tokens)]
    most = max([args.sequential, *args.concurrency])
    texts = prompts(model_dir, most, args.prompt_tokens)
    prompt_lengths = [len(load_tokenizer(model_dir)(t)["input_ids"]) for t in texts]
    cases = [
        ("one at a time", 1, False, args.sequential),
        ("one at a time", SAMPLES_PER_REQUEST, False, args.sequential),
    ]
    cases += [("concurrent", SAMPLES_PER_REQUEST, True, c) for c in args.concurrency]
    server = Server(name, model_dir, args.threads, extra)
    try:
        run_case(server, name, texts[:1], 1, False, 8)  # warm-up: first-call allocations
        measured: dict[int, list[tuple[int, float]]] = {i: [] for i in range(len(cases))}
        for _ in range(args.rounds):
            for i, (_, n, concurrent, requests) in enumerate(cases):
                measured[i].append(run_case(server, name, texts[:requests], n, concurrent, args.max_tokens))
    finally:
        server.close()
    rows, baseline = [], None
    for i, (how, n, _, requests) in enumerate(cases):
        tokens = int(statistics.median(t for t, _ in measured[i]))
        wall = statistics.median(w for _, w in measured[i])
        rate = tokens / wall
        baseline = baseline or rate
        rows.append(
            [
                name,
                f"{how}, n={n}",
                str(requests),
                str(requests * n),
                str(tokens),
                f"{wall:.1f}",
                f"{rate:.0f}",
                f"{rate / baseline:.1f}×",
            ]
        )
    print(
        f"{name}: prompts {min(prompt_lengths)}–{max(prompt_lengths)} tokens, max_tokens {args.max_tokens}",
        file=sys.stderr,
    )
    return rows


def table(rows: list[list[str]]) -> str:
    head = [
        "model",
        "requests sent",
        "requests",
        "samples",
        "tokens generated",
        "wall s",
        "tokens/s",
        "speed-up",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["--:"] * (len(head) - 2)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _model(value: str) -> tuple[str, Path]:
    name, sep, directory = value.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {value!r}")
    return name, Path(directory).expanduser().resolve()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=_model, action="append", metavar="NAME=DIR", help="a model folder")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--prompt-tokens", type=int, default=120, help="about this many tokens per prompt")
    parser.add_argument("--sequential", type=int, default=4, help="requests sent one after the other")
    parser.add_argument(
        "--concurrency", type=lambda v: [int(x) for x in v.split(",")], default=[16, 32], help="e.g. 16,32"
    )
    parser.add_argument("--threads", type=int, default=1, help="the server's torch threads")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--max-batch-size", type=int, default=None, help="passed to serve-model")
    parser.add_argument("--max-batch-tokens", type=int, default=None, help="passed to serve-model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-model-server-") as scratch:
        models = args.model or [
            ("tiny", make_tiny_model(Path(scratch) / "tiny")),
            ("world-shaped", make_world_shaped_model(Path(scratch) / "world-shaped")),
        ]
        rows = [row for name, directory in models for row in bench_model(name, directory, args)]
    print(table(rows))


if __name__ == "__main__":
    main()
