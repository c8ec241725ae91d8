"""Resumes a session from a checkpoint folder in a fresh process, trains steps [start, end), saves.

argv: model_dir checkpoint_dir engine_state_json config_json out_dir start end
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from helpers import batch_for, session_config

from spark_trainer.distributed import DistContext
from spark_trainer.engine import Engine


def main() -> None:
    model_dir, checkpoint, state, config, out, start, end = sys.argv[1:8]
    ctx = DistContext(rank=0, world=1, device=torch.device("cpu"))
    engine = Engine(
        Path(model_dir),
        session_config(**json.loads(config)),
        ctx,
        4096,
        (Path(checkpoint), json.loads(state)),
    )
    for step in range(int(start), int(end)):
        engine.train_step(step, *batch_for(step), None)
    engine.save(Path(out))


if __name__ == "__main__":
    main()
