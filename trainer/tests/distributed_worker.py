"""Trains one LoRA and one full session through `Runtime` on however many ranks torchrun gives,
then saves both: `<out>/lora` and `<out>/full`. Run with plain python for one rank.

argv: model_dir out_dir steps micro_batch_tokens [adapter names, comma-separated]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from helpers import batch_for, session_config

from spark_trainer.runtime import Runtime

SGD = {"name": "sgd", "learningRate": 0.5, "betas": [0.9, 0.999], "weightDecay": 0.0, "warmupSteps": 0}
ADAPTERS = {
    "lora": {"kind": "lora", "rank": 4, "alpha": 8, "targetModules": ["q_proj", "v_proj", "up_proj"]},
    "full": {"kind": "full"},
}


def run(
    model_dir: Path,
    out: Path,
    steps: int,
    budget: int,
    names: list[str] | None = None,
    *,
    optimizer: dict[str, Any] | None = SGD,
    resume: tuple[Path, dict[str, Any]] | None = None,
    first_step: int = 0,
) -> None:
    """Steps [first_step, first_step + steps) of each named session, resumed from `resume` if given."""
    runtime = Runtime({"tiny": model_dir}, device="cpu", micro_batch_tokens=budget)
    if runtime.rank > 0:
        # A spy, not a stand-in: counts the ranks > 0 that read the weights from disk (FSDP2:
        # none, rank 0 broadcasts into their shards).
        from spark_trainer import engine

        loads: list[str] = []
        real = engine.load_model

        def counted(*args: Any, **kwargs: Any) -> Any:
            loads.append(str(args[0]))
            return real(*args, **kwargs)

        engine.load_model = counted  # type: ignore[assignment]
        try:
            runtime.follow()
        finally:
            engine.load_model = real  # type: ignore[assignment]
            (out / f"rank-{runtime.rank}-loads.json").write_text(json.dumps(loads))
        return
    try:
        for name in names or list(ADAPTERS):
            runtime.open(name, session_config(adapter=ADAPTERS[name], optimizer=optimizer), resume)
            for step in range(first_step, first_step + steps):
                batch, loss = batch_for(step)
                metrics = runtime.train_step(name, step, batch[:5], loss, None)
                (out / f"{name}-{step}.json").parent.mkdir(parents=True, exist_ok=True)
                (out / f"{name}-{step}.json").write_text(json.dumps(metrics))
            (out / f"{name}-engine.json").write_text(json.dumps(runtime.save(name, out / name)))
            runtime.close(name)
    finally:
        runtime.shutdown()


if __name__ == "__main__":
    names = sys.argv[5].split(",") if len(sys.argv) > 5 else None
    run(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), names)


# A chat template that refuses a system message after the first, as Gemma's refuses roles that
# do not alternate: a line every rank parses, but only the rank that encodes it fails on.
STRICT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' and not loop.first %}"
    "{{- raise_exception('System messages must come first') }}{%- endif %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
DIE_AT_STEP = 1


def strict_model(model_dir: Path, out: Path) -> Path:
    """A copy of the model folder whose chat template is STRICT_TEMPLATE."""
    import shutil

    strict = out / "strict-model"
    if not strict.exists():
        shutil.copytree(model_dir, strict)
        config_path = strict / "tokenizer_config.json"
        config = json.loads(config_path.read_text())
        config["chat_template"] = STRICT_TEMPLATE
        config_path.write_text(json.dumps(config))
        (strict / "chat_template.jinja").unlink(missing_ok=True)
    return strict


def run_faults(model_dir: Path, out: Path) -> None:
    """On 2 ranks: step 0 holds a line only rank 1 fails to encode (the same invalid-request on
    both, and the ranks go on); step 0 again with good lines; then rank 1 fails inside step 1's
    forward pass (after the step's first collective), which must end both ranks at once."""
    from spark_trainer.engine import Engine
    from spark_trainer.protocol import ProtocolError

    runtime = Runtime({"tiny": model_dir}, device="cpu", micro_batch_tokens=4096)
    if runtime.rank == 1:
        original = Engine._micro_batch_loss

        def dying(self: Engine, batch: Any, loss: Any, n_tokens: int) -> Any:
            if self.updates_done == DIE_AT_STEP:
                raise RuntimeError("injected: CUDA error: an illegal memory access on rank 1")
            return original(self, batch, loss, n_tokens)

        Engine._micro_batch_loss = dying  # type: ignore[method-assign]
        runtime.follow()
        return
    result: dict[str, Any] = {}
    try:
        runtime.open("lora", session_config(adapter=ADAPTERS["lora"], optimizer=SGD))
        batch, loss = batch_for(0)
        bad = batch[4].model_copy(
            update={"prompt": [*batch[4].prompt, batch[4].prompt[0].model_copy(update={"role": "system"})]}
        )
        try:
            runtime.train_step("lora", 0, [*batch[:4], bad, batch[5]], loss, None)
        except ProtocolError as err:
            result["encode"] = {"code": err.code, "message": err.message}
        result["step0"] = runtime.train_step("lora", 0, batch, loss, None)
        try:
            runtime.train_step("lora", 1, *batch_for(1)[:1], batch_for(1)[1], None)
        except Exception as err:  # noqa: BLE001 - the test reads what rank 0 saw
            result["die"] = repr(err)
        result["failure"] = runtime.failure
    finally:
        (out / "faults.json").write_text(json.dumps(result))
        runtime.shutdown()
