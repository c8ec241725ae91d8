"""Optimiser state as safetensors: tensors keyed `state/<parameter name>/<key>`, param groups in
the metadata (JSON), so a checkpoint holds no pickle and names survive a change of sharding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

FORMAT = "spark-trainer-optimizer/1"


def save_optimizer_state(state: dict[str, Any], path: Path) -> None:
    """`state`: a full optimiser state dict keyed by parameter name (torch's
    `get_optimizer_state_dict(..., full_state_dict=True)`)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for name, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state/{name}/{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(name, {})[key] = value
    metadata = {
        "format": FORMAT,
        "param_groups": json.dumps(state["param_groups"]),
        "scalars": json.dumps(scalars),
    }
    save_file(tensors, str(path), metadata=metadata)


def load_optimizer_state(path: Path) -> dict[str, Any]:
    """The state dict `save_optimizer_state` wrote."""
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"{path.name}: not an optimiser state written by this trainer")
        state: dict[str, dict[str, Any]] = {
            name: dict(values) for name, values in json.loads(metadata["scalars"]).items()
        }
        for key in f.keys():
            _, rest = key.split("/", 1)
            name, field = rest.rsplit("/", 1)
            state.setdefault(name, {})[field] = f.get_tensor(key)
    groups = json.loads(metadata["param_groups"])
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    return {"state": state, "param_groups": groups}
