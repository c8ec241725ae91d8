"""Peak host memory per rank of opening a session and one GRPO step, on CPU (1 or 2 ranks, gloo).

    python bench/memory.py MODEL_DIR --world 2 --adapter full

Each rank is forked from this process after the imports, resets its peak-RSS mark
(`/proc/self/clear_refs`), and reports `VmHWM` (peak resident set) minus its `VmRSS` before the
session opened, once the session is open (`openDeltaMiB`: loading) and after the step
(`deltaMiB`: loading, the step's activations and the optimiser state), in MiB.
Run with `PYTHONPATH` pointing at another `src/` to measure another version of the trainer.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

from spark_trainer.protocol import GrpoExample, GrpoLoss, SessionConfig  # noqa: E402
from spark_trainer.runtime import Runtime  # noqa: E402

ADAPTERS = {
    "lora": {
        "kind": "lora",
        "rank": 8,
        "alpha": 16,
        "targetModules": ["q_proj", "k_proj", "v_proj", "o_proj"],
    },
    "full": {"kind": "full"},
}


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def batch(size: int = 8) -> list[GrpoExample]:
    return [
        GrpoExample.model_validate(
            {
                "prompt": [
                    {"role": "user", "content": f"Natalia sold {40 + i} clips in April. How many?" * 4}
                ],
                "completion": f"Step 1: {40 + i} / 2 = {(40 + i) / 2}.\n#### {(40 + i) / 2}" * 3,
                "advantage": 1.0 if i % 2 else -1.0,
            }
        )
        for i in range(size)
    ]


def rank_main(rank: int, world: int, port: int, model_dir: str, adapter: str, out: str) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    Path("/proc/self/clear_refs").write_text("5")  # the peak RSS mark starts here
    before = status_kib("VmRSS")
    runtime = Runtime({"tiny": Path(model_dir)}, device="cpu")
    opened: dict[str, int] = {}
    execute = runtime._execute

    def noting(name: str, *args: Any) -> Any:
        # The peak so far once the session is open: what loading took, before any step.
        out = execute(name, *args)
        if name == "open":
            opened["kib"] = status_kib("VmHWM")
        return out

    runtime._execute = noting  # type: ignore[method-assign]
    if rank > 0:
        runtime.follow()
    else:
        config = SessionConfig.model_validate(
            {
                "baseModel": "tiny",
                "adapter": ADAPTERS[adapter],
                "optimizer": {
                    "name": "adamw",
                    "learningRate": 1e-4,
                    "betas": [0.9, 0.999],
                    "weightDecay": 0.0,
                    "warmupSteps": 0,
                },
                "seed": 1,
            }
        )
        runtime.open("s", config)
        runtime.train_step(
            "s", 0, batch(), GrpoLoss(kind="grpo", klCoefficient=0.001, entropyCoefficient=0), None
        )
        runtime.close("s")
        runtime.shutdown()
    peak = status_kib("VmHWM")
    result = {"rank": rank, "beforeMiB": round(before / 1024, 1), "peakMiB": round(peak / 1024, 1)}
    result["deltaMiB"] = round((peak - before) / 1024, 1)
    result["openDeltaMiB"] = round((opened["kib"] - before) / 1024, 1)
    Path(out, f"rank-{rank}.json").write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--world", type=int, default=1)
    parser.add_argument("--adapter", choices=sorted(ADAPTERS), default="lora")
    parser.add_argument("--out", default="/tmp/spark-trainer-memory")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fork = multiprocessing.get_context("fork")
    ranks = [
        fork.Process(target=rank_main, args=(r, args.world, port, args.model_dir, args.adapter, args.out))
        for r in range(args.world)
    ]
    for process in ranks:
        process.start()
    for process in ranks:
        process.join(timeout=600)
    rows: list[dict[str, Any]] = [
        json.loads(Path(args.out, f"rank-{r}.json").read_text()) for r in range(args.world)
    ]
    print(json.dumps({"world": args.world, "adapter": args.adapter, "ranks": rows}))


if __name__ == "__main__":
    main()
