"""Steps per second of the trainer server through the protocol, next to a plain PyTorch loop.

    npm run bench:trainer -- [--model DIR] [--steps 20] [--batch 8] [--checkpoint-every 10] [--rounds 2]

Both sides train the same LoRA on the same model with the same batches (GSM8K questions and
answers as SFT examples, tokenised the same way):
- plain: transformers + peft + AdamW in this process: forward, loss on completion tokens, backward,
  step. No HTTP, no S3, no checkpoint: what a person would write in a notebook.
- server: `python -m spark_trainer serve` in its own process, driven over HTTP as the control plane
  drives it: each step reads its batch from S3 (versitygw on loopback) and checks its SHA-256; a
  checkpoint (adapter, optimiser state, trainer state, COMMITTED marker) goes to S3 every K steps.
Rounds alternate plain and server so that a busy machine slows both alike. One table is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import torch
from peft import LoraConfig, get_peft_model

from spark_trainer.local_s3 import free_port, local_s3, wait_for_port
from spark_trainer.models import load_model, load_tokenizer, pick_device
from spark_trainer.s3 import ObjectStore
from spark_trainer.tiny_model import default_datasets_dir, make_tiny_model
from spark_trainer.tokens import encode_example

LORA = {"kind": "lora", "rank": 8, "alpha": 16, "targetModules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
OPTIMIZER = {"name": "adamw", "learningRate": 1e-4, "betas": [0.9, 0.999], "weightDecay": 0, "warmupSteps": 0}
BUCKET = "spark"


def examples(count: int) -> list[dict[str, Any]]:
    rows = []
    path = default_datasets_dir() / "gsm8k" / "train.jsonl"
    with path.open() as lines:
        for line in lines:
            row = json.loads(line)
            rows.append(
                {"prompt": [{"role": "user", "content": row["question"]}], "completion": row["answer"]}
            )
            if len(rows) == count:
                break
    return rows


def plain_loop(model_dir: Path, batches: list[list[dict[str, Any]]]) -> float:
    """Seconds per step of a hand-written loop; the first step (allocations) is not timed."""
    torch.manual_seed(0)
    device = pick_device(None)
    tokenizer = load_tokenizer(model_dir)
    model = load_model(model_dir, device)
    config = LoraConfig(
        r=LORA["rank"], lora_alpha=LORA["alpha"], target_modules=LORA["targetModules"], lora_dropout=0.0
    )
    model = get_peft_model(model, config)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=OPTIMIZER["learningRate"], betas=(0.9, 0.999), weight_decay=0)
    started = 0.0
    for index, batch in enumerate(batches):
        if index == 1:
            started = time.perf_counter()
        encoded = [encode_example(tokenizer, ex["prompt"], ex["completion"]) for ex in batch]
        width = max(len(e.input_ids) for e in encoded)
        ids = torch.zeros((len(encoded), width), dtype=torch.long)
        labels = torch.full((len(encoded), width), -100, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, e in enumerate(encoded):
            ids[row, : len(e.input_ids)] = torch.tensor(e.input_ids)
            labels[row, e.prompt_len : len(e.input_ids)] = torch.tensor(e.input_ids[e.prompt_len :])
            mask[row, : len(e.input_ids)] = 1
        ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1)
        )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - started) / (len(batches) - 1)


def server_loop(
    model_dir: Path,
    batches: list[list[dict[str, Any]]],
    env: dict[str, str],
    store: ObjectStore,
    every: int,
    tag: str,
) -> tuple[float, float]:
    """Seconds per step through the protocol (checkpoints included), and seconds per checkpoint."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spark_trainer",
            "serve",
            "--port",
            str(port),
            "--model",
            f"bench={model_dir}",
            "--publish-dir",
            str(Path(env["BENCH_TMP"]) / "publish"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process, "the trainer server")
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
        refs = []
        for step, batch in enumerate(batches):
            body = "".join(json.dumps(line) + "\n" for line in batch).encode()
            uri = f"s3://{BUCKET}/bench/{tag}/batch-{step:04d}.jsonl"
            store.put(uri, body, content_type="application/x-ndjson")
            refs.append({"uri": uri, "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)})
        session = f"bench-{tag}"
        created = http.post(
            "/v1/sessions",
            json={
                "protocolVersion": 1,
                "sessionId": session,
                "baseModel": "bench",
                "adapter": LORA,
                "optimizer": OPTIMIZER,
                "seed": 0,
            },
        )
        created.raise_for_status()
        checkpoint_s = []
        started = 0.0
        for step, ref in enumerate(refs):
            if step == 1:
                started = time.perf_counter()
            r = http.post(
                f"/v1/sessions/{session}/steps",
                json={"protocolVersion": 1, "step": step, "batch": ref, "loss": {"kind": "sft"}},
            )
            r.raise_for_status()
            if (step + 1) % every == 0:
                t = time.perf_counter()
                uri = f"s3://{BUCKET}/bench/{tag}/checkpoints/step-{step:06d}"
                r = http.post(
                    f"/v1/sessions/{session}/checkpoints",
                    json={"protocolVersion": 1, "uri": uri, "step": step},
                )
                r.raise_for_status()
                checkpoint_s.append(time.perf_counter() - t)
        per_step = (time.perf_counter() - started) / (len(refs) - 1)
        return per_step, sum(checkpoint_s) / max(1, len(checkpoint_s))
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, help="a model folder (default: the tiny test model)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--checkpoint-every", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="trainer-bench-"))
    model_dir = args.model.resolve() if args.model else make_tiny_model(tmp / "tiny", seed=0)
    rows = examples(args.steps * args.batch)
    batches = [rows[i * args.batch : (i + 1) * args.batch] for i in range(args.steps)]

    try:
        with local_s3(tmp / "s3") as s3:
            env = {
                **os.environ,
                "SPARK_S3_ENDPOINT": s3.endpoint or "",
                "SPARK_S3_FORCE_PATH_STYLE": "true",
                "AWS_ACCESS_KEY_ID": s3.access_key_id or "",
                "AWS_SECRET_ACCESS_KEY": s3.secret_access_key or "",
                "BENCH_TMP": str(tmp),
            }
            store = ObjectStore(s3)
            store.ensure_bucket(BUCKET)
            plain, server, checkpoint = [], [], []
            for round_ in range(args.rounds):
                plain.append(plain_loop(model_dir, batches))
                per_step, per_ckpt = server_loop(
                    model_dir, batches, env, store, args.checkpoint_every, f"r{round_}"
                )
                server.append(per_step)
                checkpoint.append(per_ckpt)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs)

    chars = sum(len(r["completion"]) for r in rows) // len(rows)
    print(
        f"\nmodel {model_dir.name}, {args.steps} steps x {args.batch} examples "
        f"(~{chars} completion chars each), "
        f"LoRA r{LORA['rank']}, checkpoint every {args.checkpoint_every} steps, {args.rounds} rounds, "
        f"torch {torch.__version__} on {pick_device(None)} with {torch.get_num_threads()} threads\n"
    )
    print("| loop | s/step | steps/s | vs plain |")
    print("|---|---|---|---|")
    print(
        f"| plain PyTorch (no HTTP, S3 or checkpoints) | {mean(plain):.3f} | {1 / mean(plain):.2f} | 1.00 |"
    )
    print(
        f"| trainer server (HTTP + S3 batches + checkpoints) | {mean(server):.3f} | {1 / mean(server):.2f} | "
        f"{mean(plain) / mean(server):.2f} |"
    )
    print(
        f"\none checkpoint to S3 (adapter, optimiser, state, marker): {mean(checkpoint):.3f} s, "
        f"spread over {args.checkpoint_every} steps in the server row"
    )


if __name__ == "__main__":
    main()
